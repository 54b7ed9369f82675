//! The direct `f32` paths (AVX2): products computed without packing A, by the kernels in
//! [`x86`](super::x86). Which one runs is decided by [`choose`](super::choose); this module
//! runs it.

#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(target_arch = "x86_64")]
use super::packed::{pack_block, PartBuffers};
use super::{small, Path, Problem};
#[cfg(target_arch = "x86_64")]
use super::{x86, x86_512, Epilogue, GemmElement, Operands, PARALLEL_WORK};
#[cfg(target_arch = "x86_64")]
use crate::cpu::{self, Isa};
#[cfg(target_arch = "x86_64")]
use crate::threads::{num_threads, run_parallel};

/// `f64` has no direct kernels: the plain loops.
pub(super) fn run_f64(_: Path, p: &Problem<'_, f64>, accumulate: bool) -> bool {
    small::gemm_small(p, accumulate);
    false
}

/// Runs the direct `path` on `p` (bounds-checked, `m, k, n >= 1`), the plain loops without
/// AVX2; returns whether it applied the epilogue (only the panel path does). The dot and
/// swap paths need `x·Wᵀ` (`csa == 1 && rsb == 1`) and run as broadcast otherwise.
#[inline]
pub(super) fn run_f32(path: Path, p: &Problem<'_, f32>, accumulate: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if cpu::has_avx2() {
        let dot = p.csa == 1 && p.rsb == 1;
        // The other paths leave the epilogue to the pass after them.
        let o = Operands { epi: Epilogue::None, ..p.ops };
        let (m, k, n) = (p.m, p.k, p.n);
        match path {
            Path::Panel => {
                panel(p, accumulate);
                return p.epi != Epilogue::None;
            }
            Path::Swap if dot => swap(p, accumulate),
            // SAFETY: AVX2+FMA are available; bounds were checked, m, k, n >= 1 and rows
            // of A and columns of B are contiguous.
            Path::Dot if dot => unsafe { x86::dot(m, k, n, o, accumulate) },
            // SAFETY: as above, with rows of B contiguous (or B a single column).
            _ if p.csb == 1 || p.n == 1 => unsafe { x86::direct(m, k, n, o, accumulate) },
            _ => staged(p, accumulate),
        }
        return false;
    }
    let _ = path;
    small::gemm_small(p, accumulate);
    false
}

/// [`Path::Panel`]: B packed one k×16 panel (k×32 with AVX-512) at a time into the part's
/// own buffer (carved from the calling thread's: [`PartBuffers`]), then the broadcast
/// kernel reads A in place (6×16 tiles, 12×32 with AVX-512, over the whole depth) and
/// applies the epilogue in registers. Threads take panels one at a time from a shared counter (a
/// thread slowed by a neighbour takes fewer); A is shared, read in place.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn panel(p: &Problem<'_, f32>, accumulate: bool) {
    let (k, n) = (p.k, p.n);
    // AVX-512: k×32 panels for the 12×32 tiles of `x86_512::panel_block`.
    let wide = cpu::has_avx512();
    let width = if wide { 32 } else { 16 };
    let threads = if p.work() < PARALLEL_WORK { 1 } else { num_threads() };
    let threads = threads.min(n.div_ceil(width));
    let next = AtomicUsize::new(0);
    // each part's panel buffer, sized by the caller before the job is published
    f32::with_buffers(|_, buf| {
        let panels = PartBuffers::new(buf, width * k, threads);
        let run_part = |t: usize| {
            let panel = panels.part(t);
            loop {
                let j0 = width * next.fetch_add(1, Ordering::Relaxed);
                if j0 >= n {
                    break;
                }
                let w = width.min(n - j0);
                // SAFETY: AVX2+FMA (and AVX-512F if `wide`) are available; bounds were
                // checked and m, k, n >= 1. Columns j0..j0 + w <= n of B are packed into
                // this part's k×width `panel` (row stride width, zero columns past w);
                // the kernel reads A in place (any strides), the first w columns of
                // `panel`, and writes columns j0..j0 + w of C, which no other thread
                // touches (each panel index is handed out once).
                unsafe {
                    let o = p.ops.at(0, j0);
                    pack_block(Isa::Avx2, o.b, p.rsb, p.csb, k, w, width, panel);
                    if wide {
                        let packed = std::slice::from_raw_parts(panel, width * k);
                        x86_512::panel_block(p.m, k, w, o, packed, accumulate);
                    } else {
                        x86::direct(p.m, k, w, Operands { b: panel, rsb: 16, csb: 1, ..o }, accumulate);
                    }
                }
            }
        };
        if threads <= 1 {
            run_part(0);
        } else {
            run_parallel(threads, &run_part);
        }
    });
}

/// [`Path::Swap`]: `Cᵀ = Bᵀ·Aᵀ` with the broadcast kernel: A transposed into a
/// thread-local buffer, the kernel writes a thread-local Cᵀ (6×16 tiles, 12×8 for a last 8
/// columns), Cᵀ transposed (added if `accumulate`) into C; 8×8 register transposes.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn swap(p: &Problem<'_, f32>, accumulate: bool) {
    let (m, k, n) = (p.m, p.k, p.n);
    f32::with_buffers(|xt, ct| {
        let (xt, ct) = (grown(xt, k * m), grown(ct, n * m));
        // SAFETY: AVX2+FMA are available; bounds were checked and m, k, n >= 1. The
        // first transpose reads the m×k A (rows at stride rsa, contiguous) and writes
        // the k×m buffer `xt`; the kernel computes the n×m product Cᵀ = Bᵀ·Aᵀ into
        // `ct`, reading Bᵀ (n×k, row stride csb, contiguous rows as rsb == 1) in place
        // and `xt` as a row-major k×m B; the last transpose writes the m×n C.
        unsafe {
            x86::transpose(m, k, p.a, p.rsa, xt.as_mut_ptr(), m, false);
            let o = Operands {
                a: p.b,
                rsa: p.csb,
                csa: 1,
                b: xt.as_ptr(),
                rsb: m,
                csb: 1,
                c: ct.as_mut_ptr(),
                ldc: m,
                bias: std::ptr::null(),
                epi: Epilogue::None,
            };
            x86::direct_swap(n, k, m, o, false);
            x86::transpose(n, m, ct.as_ptr(), m, p.c, n, accumulate);
        }
    });
}

/// The broadcast kernel on B copied row-major into a thread-local buffer.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn staged(p: &Problem<'_, f32>, accumulate: bool) {
    f32::with_buffers(|_, buf| {
        let b = stage_b(p, buf);
        // SAFETY: AVX2+FMA are available; bounds were checked, m, k, n >= 1; `b` is B
        // copied row-major (row stride n).
        unsafe {
            x86::direct(p.m, p.k, p.n, Operands { b, rsb: p.n, csb: 1, epi: Epilogue::None, ..p.ops }, accumulate)
        };
    });
}

/// The first `len` elements of `buf`, growing it (never shrinking) if it is shorter.
#[cfg(target_arch = "x86_64")]
fn grown(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Copies B row-major (element (p, j) at `buf[p*n + j]`) into `buf`, growing it if
/// needed, and returns a pointer to the copy.
#[cfg(target_arch = "x86_64")]
fn stage_b(p: &Problem<'_, f32>, buf: &mut Vec<f32>) -> *const f32 {
    let (k, n) = (p.k, p.n);
    if buf.len() < k * n {
        buf.resize(k * n, 0.0);
    }
    let dst = &mut buf[..k * n];
    if p.rsb == 1 && n.is_multiple_of(2) {
        // SAFETY: AVX2 was detected by the caller; the source lines j < n hold k values
        // each (bounds checked) and `dst` holds k·n values; n is even.
        unsafe { x86::pack_transposed_f32(p.b, p.csb, k, n, dst.as_mut_ptr()) };
    } else {
        for (q, row) in dst.chunks_exact_mut(n).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                // SAFETY: (q, j) is inside the bounds-checked k×n view of B.
                *x = unsafe { *p.b.add(q * p.rsb + j * p.csb) };
            }
        }
    }
    dst.as_ptr()
}
