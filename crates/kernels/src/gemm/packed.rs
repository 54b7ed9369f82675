//! The blocked algorithm with packed operands (BLIS / GotoBLAS), for the large products.
//!
//! Operands are arbitrary strided views, so transposed operands never need a separate
//! copy: the packing routines read any strides. For one thread the loops are
//!
//! ```text
//! for jc in 0..n step NC            // B column block (kc×nc packed panel lives in L3)
//!   for pc in 0..k step KC          // depth block
//!     pack B[pc.., jc..] into NR-wide micro-panels (row p of a panel = NR values)
//!     for ic in 0..m step MC        // A row block (mc×kc packed block lives in L2)
//!       pack A[ic.., pc..] into MR-tall micro-panels (row p of a panel = MR values)
//!       for jr in micro-panels of B // one kc×NR B micro-panel stays in L1
//!         for ir in micro-panels of A
//!           micro-kernel: MR×NR tile of C += A-panel · B-panel (kept in registers)
//! ```
//!
//! Block sizes are balanced (e.g. k = 257 gives two depth blocks of 129, not 256 + 1).
//! Edge panels are zero-padded when packed, so the micro-kernel always computes a full
//! MR×NR tile; partial tiles are written through a small stack buffer. Micro-kernels:
//! AVX-512F (`f32`: 12×32, `f64`: 12×16, i.e. 24 zmm accumulators), AVX2+FMA (`f32`: 6×16,
//! `f64`: 6×8, i.e. 12 ymm accumulators) and a portable plain-Rust kernel of the AVX2
//! geometry; [`Blocks`] gives each one's block sizes. Several threads split the problem along `n` (or `m`) into
//! whole micro-panels, each running the serial algorithm on its own part of C.

use std::marker::PhantomData;

use super::{Operands, Problem};
use crate::cpu::Isa;
use crate::threads::run_parallel;
use crate::Element;

/// Alignment (in bytes) of packed buffers.
const ALIGN: usize = 64;
/// Largest MR·NR over the element types and instruction sets (size of the edge-tile
/// scratch buffer).
const MAX_TILE: usize = 12 * 32;

/// The block sizes of the packed algorithm for one element type and micro-kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// Micro-tile rows.
    pub mr: usize,
    /// Micro-tile columns.
    pub nr: usize,
    /// Depth block (a kc×nr B panel plus an mr×kc A panel fit in L1).
    pub kc: usize,
    /// Row block (an mc×kc packed A block fits in L2), a multiple of mr.
    pub mc: usize,
    /// Column block (a kc×nc packed B block fits in L3), a multiple of nr.
    pub nc: usize,
}

/// Splits `total` into `parts` ranges made of whole `unit`s; returns range `t`.
fn split_range(total: usize, unit: usize, parts: usize, t: usize) -> (usize, usize) {
    let units = total.div_ceil(unit);
    let per = units.div_ceil(parts) * unit;
    let start = (t * per).min(total);
    (start, ((t + 1) * per).min(total))
}

/// The packed algorithm with the micro-kernel of `isa` (supported by the CPU), split over
/// `threads` pool threads; `p` is bounds-checked with `m, k, n >= 1`.
pub(super) fn gemm_packed<T: Element>(isa: Isa, threads: usize, p: &Problem<'_, T>, accumulate: bool) {
    let (m, k, n) = (p.m, p.k, p.n);
    // Split the dimension whose split duplicates the cheaper packing: splitting n makes
    // every thread pack all of A (m·k), splitting m makes every thread pack all of B.
    let split_n = m <= n;
    let bl = T::blocks(isa);
    let threads = if split_n { threads.min(n.div_ceil(bl.nr)) } else { threads.min(m.div_ceil(bl.mr)) };
    // Every part sizes its packing buffers for the largest, the first.
    let room = if split_n {
        let (n0, n1) = split_range(n, bl.nr, threads, 0);
        (m, n1 - n0)
    } else {
        let (m0, m1) = split_range(m, bl.mr, threads, 0);
        (m1 - m0, n)
    };
    let (alen, blen) = buffer_lens(bl, k, room);
    T::with_buffers(|abuf, bbuf| {
        let (apacks, bpacks) = (PartBuffers::new(abuf, alen, threads), PartBuffers::new(bbuf, blen, threads));
        let run_part = |t: usize| {
            let (m0, m1, n0, n1) = if split_n {
                let (n0, n1) = split_range(n, bl.nr, threads, t);
                (0, m, n0, n1)
            } else {
                let (m0, m1) = split_range(m, bl.mr, threads, t);
                (m0, m1, 0, n)
            };
            if m0 == m1 || n0 == n1 {
                return;
            }
            // SAFETY: the bounds were checked, so every element of the sub-problem
            // [m0, m1)×[n0, n1) is in bounds; the offsets stay inside the slices.
            // Parts are disjoint in C, so no two threads write the same element, and
            // part t's packing buffers are its own.
            unsafe {
                let part = p.ops.at(m0, n0);
                let packs = ((apacks.part(t), alen), (bpacks.part(t), blen));
                gemm_serial(isa, m1 - m0, k, n1 - n0, &part, accumulate, packs);
            }
        };
        if threads <= 1 {
            run_part(0);
        } else {
            run_parallel(threads, &run_part);
        }
    });
}

/// One packing buffer of `len` elements for each of the `parts` parts of a job, carved
/// from one of the calling thread's buffers and each aligned to [`ALIGN`]. The caller
/// sizes them before the job is published, so a pool worker that claims a part packs
/// into memory the caller already has, and never allocates.
pub(super) struct PartBuffers<'a, T> {
    base: *mut T,
    stride: usize,
    parts: usize,
    /// The buffer stays borrowed while the parts use it.
    _buf: PhantomData<&'a mut Vec<T>>,
}

// SAFETY: a part's buffer is used only by the thread running that part (each part runs
// once), and the parts' buffers are disjoint.
unsafe impl<T: Send> Sync for PartBuffers<'_, T> {}

impl<'a, T: Element> PartBuffers<'a, T> {
    /// Grows `buf` (grow-only) to hold `parts` buffers of `len` elements.
    pub(super) fn new(buf: &'a mut Vec<T>, len: usize, parts: usize) -> Self {
        let stride = len.next_multiple_of(ALIGN / std::mem::size_of::<T>());
        PartBuffers { base: aligned_buffer(buf, stride * parts), stride, parts, _buf: PhantomData }
    }

    /// Part `t`'s buffer, aligned and `len` elements long.
    pub(super) fn part(&self, t: usize) -> *mut T {
        assert!(t < self.parts, "packing buffer of part {t} of {}", self.parts);
        // SAFETY: `t < parts`, and the buffer holds `parts` strides from `base`.
        unsafe { self.base.add(t * self.stride) }
    }
}

/// Lengths of the A and B packing buffers for every sub-problem of at most `room` =
/// (rows, columns) of depth `k`: block lengths are not monotonic in the size, so the
/// bound is the block maximum or the size rounded up to whole micro-panels.
fn buffer_lens(bl: Blocks, k: usize, room: (usize, usize)) -> (usize, usize) {
    let kc = block_len(k, bl.kc, 1);
    let mc = room.0.next_multiple_of(bl.mr).min(bl.mc);
    let nc = room.1.next_multiple_of(bl.nr).min(bl.nc);
    (mc * kc, nc.next_multiple_of(bl.nr) * kc)
}

/// Length of balanced blocks of at most `max` (a multiple of `align`) covering `total`.
fn block_len(total: usize, max: usize, align: usize) -> usize {
    let blocks = total.div_ceil(max);
    total.div_ceil(blocks).next_multiple_of(align).min(max)
}

/// Returns a pointer into `buf` aligned to [`ALIGN`] with room for `len` elements,
/// growing `buf` if necessary (grow-only, so steady state does not allocate).
pub(super) fn aligned_buffer<T: Element>(buf: &mut Vec<T>, len: usize) -> *mut T {
    let slack = ALIGN / std::mem::size_of::<T>();
    if buf.len() < len + slack {
        buf.resize(len + slack, T::ZERO);
    }
    let offset = buf.as_ptr().align_offset(ALIGN);
    debug_assert!(offset <= slack);
    // SAFETY: `offset <= slack` and the buffer holds `len + slack` elements.
    unsafe { buf.as_mut_ptr().add(offset) }
}

/// Serial blocked algorithm on one (sub-)problem, packing A and B into `packs` (pointers
/// to aligned buffers with their lengths, [`buffer_lens`] of a size at least this one's).
///
/// # Safety
/// Every element addressed by `ops` for the sizes `m, k, n` must be valid (reads for A
/// and B, writes for C), no other thread may access that part of C or the packing
/// buffers concurrently, and the CPU supports `isa`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_serial<T: Element>(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    ops: &Operands<T>,
    accumulate: bool,
    ((apack, alen), (bpack, blen)): ((*mut T, usize), (*mut T, usize)),
) {
    let bl = T::blocks(isa);
    let kc_max = block_len(k, bl.kc, 1);
    let mc_max = block_len(m, bl.mc, bl.mr);
    let nc_max = block_len(n, bl.nc, bl.nr);
    // the blocks fit the buffers (checked here as the packing writes through raw pointers)
    assert!(mc_max * kc_max <= alen && nc_max.next_multiple_of(bl.nr) * kc_max <= blen);
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let beta = accumulate || pc > 0;
            // SAFETY: the source block is inside the caller-guaranteed view and the
            // destination has room for ceil(nc/NR)·NR·kc elements.
            unsafe {
                let src = ops.b.add(pc * ops.rsb + jc * ops.csb);
                pack_block(isa, src, ops.rsb, ops.csb, kc, nc, bl.nr, bpack);
            }
            for ic in (0..m).step_by(mc_max) {
                let mc = mc_max.min(m - ic);
                // SAFETY: as for B; `apack` holds mc_max·kc_max elements.
                unsafe {
                    let src = ops.a.add(ic * ops.rsa + pc * ops.csa);
                    pack_block(isa, src, ops.csa, ops.rsa, kc, mc, bl.mr, apack);
                    let c = ops.c.add(ic * ops.ldc + jc);
                    debug_assert!(mc.next_multiple_of(bl.mr) * kc <= mc_max * kc_max);
                    debug_assert!(nc.next_multiple_of(bl.nr) * kc <= nc_max.next_multiple_of(bl.nr) * kc_max);
                    macro_block(isa, mc, nc, kc, apack, bpack, c, ops.ldc, beta);
                }
            }
        }
    }
}

/// Packs a `kc`-deep, `w`-wide block (element (p, j) at `src[p*sp + j*sj]`) into
/// `width`-wide micro-panels: panel `q`, row `p` starts at `dst[(q*kc + p)*width]`.
/// Columns past `w` in the last panel are zero-filled.
///
/// # Safety
/// `src` must be valid for the whole view; `dst` for `ceil(w/width)·width·kc` writes.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_block<T: Element>(
    isa: Isa,
    src: *const T,
    sp: usize,
    sj: usize,
    kc: usize,
    w: usize,
    width: usize,
    dst: *mut T,
) {
    if sj == 1 {
        // SAFETY: same contract.
        return unsafe { pack_block_rows(src, sp, kc, w, width, dst) };
    }
    for (q, j0) in (0..w).step_by(width).enumerate() {
        let cols = width.min(w - j0);
        // SAFETY: panel `q` lies inside both the source view and the destination.
        unsafe {
            let s = src.add(j0 * sj);
            let d = dst.add(q * kc * width);
            if cols == width && sp == 1 && T::pack_transposed(isa, s, sj, kc, width, d) {
                continue;
            }
            pack_panel(s, sp, sj, kc, cols, width, d);
        }
    }
}

/// [`pack_block`] for row-contiguous sources (`sj == 1`): walks the source row by row
/// (sequential reads, one `width`-long store per panel) instead of panel by panel,
/// which would stride through memory.
///
/// # Safety
/// As for [`pack_block`].
unsafe fn pack_block_rows<T: Element>(src: *const T, sp: usize, kc: usize, w: usize, width: usize, dst: *mut T) {
    let (full, rest) = (w / width, w % width);
    // SAFETY: reads stay in the kc×w source view; panel q < ceil(w/width) occupies
    // dst[q·kc·width ..][.. kc·width], inside the destination.
    unsafe {
        if rest > 0 {
            std::ptr::write_bytes(dst.add(full * kc * width), 0, kc * width);
        }
        // Constant lengths for the usual widths let the copies compile to a few vector
        // moves instead of `memcpy` calls.
        let copy_rows = |len: usize| {
            for p in 0..kc {
                let (s, d) = (src.add(p * sp), dst.add(p * width));
                for q in 0..full {
                    std::ptr::copy_nonoverlapping(s.add(q * width), d.add(q * kc * width), len);
                }
                if rest > 0 {
                    std::ptr::copy_nonoverlapping(s.add(full * width), d.add(full * kc * width), rest);
                }
            }
        };
        match width {
            32 => copy_rows(32),
            16 => copy_rows(16),
            8 => copy_rows(8),
            6 => copy_rows(6),
            _ => copy_rows(width),
        }
    }
}

/// Scalar packing of one micro-panel (see [`pack_block`]).
///
/// # Safety
/// As for [`pack_block`] with a single panel.
unsafe fn pack_panel<T: Element>(
    src: *const T,
    sp: usize,
    sj: usize,
    kc: usize,
    cols: usize,
    width: usize,
    dst: *mut T,
) {
    // SAFETY: for the whole body, reads stay in the kc×cols source view, writes in kc×width.
    unsafe {
        if cols < width {
            std::ptr::write_bytes(dst, 0, kc * width);
        }
        if sp == 1 {
            // Walk each source line contiguously.
            for j in 0..cols {
                let s = src.add(j * sj);
                for p in 0..kc {
                    *dst.add(p * width + j) = *s.add(p);
                }
            }
        } else {
            for p in 0..kc {
                for j in 0..cols {
                    *dst.add(p * width + j) = *src.add(p * sp + j * sj);
                }
            }
        }
    }
}

/// Runs the micro-kernel over all MR×NR tiles of an `mc×nc` block of C.
///
/// # Safety
/// `apack`/`bpack` hold packed blocks for these sizes; `c` is valid for an `mc×nc`
/// view with row stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_block<T: Element>(
    isa: Isa,
    mc: usize,
    nc: usize,
    kc: usize,
    apack: *const T,
    bpack: *const T,
    c: *mut T,
    ldc: usize,
    beta: bool,
) {
    let Blocks { mr, nr, .. } = T::blocks(isa);
    for (jq, jr) in (0..nc).step_by(nr).enumerate() {
        let cols = nr.min(nc - jr);
        for (iq, ir) in (0..mc).step_by(mr).enumerate() {
            let rows = mr.min(mc - ir);
            // SAFETY: panel offsets are inside the packed blocks; the tile origin is
            // inside C, and partial tiles go through `tile`, never touching C outside
            // the rows×cols part.
            unsafe {
                let a = apack.add(iq * kc * mr);
                let b = bpack.add(jq * kc * nr);
                let ct = c.add(ir * ldc + jr);
                if rows == mr && cols == nr {
                    T::micro_kernel(isa, kc, a, b, ct, ldc, beta);
                } else {
                    debug_assert!(mr * nr <= MAX_TILE);
                    let mut tile = [T::ZERO; MAX_TILE];
                    T::micro_kernel(isa, kc, a, b, tile.as_mut_ptr(), nr, false);
                    for i in 0..rows {
                        for j in 0..cols {
                            let cij = ct.add(i * ldc + j);
                            let v = tile[i * nr + j];
                            *cij = if beta { *cij + v } else { v };
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------

pub(super) unsafe fn portable_kernel<T: Element, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: usize,
    beta: bool,
) {
    let mut acc = [[T::ZERO; NR]; MR];
    // SAFETY: the caller guarantees kc·MR values at `a` and kc·NR values at `b`.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: (i, j) is inside the MR×NR tile the caller guarantees.
            unsafe {
                let cij = c.add(i * ldc + j);
                *cij = if beta { *cij + v } else { v };
            }
        }
    }
}
