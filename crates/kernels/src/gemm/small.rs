//! The plain loops (no packing) for small problems, `f64` and CPUs without AVX2, and the
//! tiny-product test that lets the smallest `f32` products skip the general dispatch.

#[cfg(target_arch = "x86_64")]
use super::{x86, Epilogue, Operands};
use super::{Problem, TINY_WORK};
use crate::cpu;
use crate::Element;

/// Whether `p` takes the tiny entry: at most [`TINY_WORK`] multiply-adds, AVX2, sizes at
/// least 1, strides below 2^24 (so nothing below overflows) and every slice long enough,
/// checked with plain arithmetic. Anything else (empty sizes, huge strides, short slices)
/// goes to the general path, which handles or reports it.
#[inline]
pub(super) fn is_tiny<T>(p: &Problem<'_, T>) -> bool {
    let (m, k, n) = (p.m, p.k, p.n);
    if p.m.saturating_mul(p.k).saturating_mul(p.n) > TINY_WORK || !cpu::has_avx2() {
        return false;
    }
    if m == 0 || k == 0 || n == 0 || (p.rsa | p.csa | p.rsb | p.csb) >= 1 << 24 {
        return false;
    }
    let [a_len, b_len, c_len] = p.lens;
    a_len > (m - 1) * p.rsa + (k - 1) * p.csa && b_len > (k - 1) * p.rsb + (n - 1) * p.csb && c_len >= m * n
}

/// A tiny `f32` product ([`is_tiny`] holds, so AVX2 is available and the bounds are
/// checked): the broadcast kernel when rows of B are contiguous and at least a vector wide,
/// the dot kernel when rows of A and columns of B are contiguous (`x·Wᵀ`), else the plain
/// loop. Leaves the epilogue to the caller.
#[inline]
pub(super) fn tiny_f32(p: &Problem<'_, f32>, accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let (m, k, n) = (p.m, p.k, p.n);
        let o = Operands { epi: Epilogue::None, ..p.ops };
        // SAFETY: AVX2+FMA are available and the slices hold every element of the m×k A,
        // k×n B and m×n C views (`is_tiny`), and m, k, n >= 1. Each kernel's layout
        // requirement is the condition of its branch (the plain loop has none).
        unsafe {
            if p.csb == 1 && n >= 8 {
                x86::direct(m, k, n, o, accumulate);
            } else if p.csa == 1 && p.rsb == 1 {
                x86::dot(m, k, n, o, accumulate);
            } else {
                gemm_small_avx2(p, p.c_slice(), accumulate);
            }
        }
        return;
    }
    #[allow(unreachable_code)]
    gemm_small(p, accumulate)
}

/// `C (+)= A·B` with the plain loops (compiled for AVX2+FMA when available); `p` is
/// bounds-checked with `ldc == n`.
#[inline]
pub(super) fn gemm_small<T: Element>(p: &Problem<'_, T>, accumulate: bool) {
    // SAFETY: bounds checked, `ldc == n`.
    let c = unsafe { p.c_slice() };
    #[cfg(target_arch = "x86_64")]
    if cpu::has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { gemm_small_avx2(p, c, accumulate) };
    }
    gemm_small_body(p, c, accumulate);
}

/// [`gemm_small_body`] compiled with AVX2+FMA enabled.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_small_avx2<T: Element>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    gemm_small_body(p, c, accumulate);
}

/// Plain loops over register tiles of C (no packing): 4×8 tiles when rows of B are
/// contiguous and at least 8 wide, 4×4 otherwise, with 1-row / 1-column tiles at the edges.
#[inline(always)]
fn gemm_small_body<T: Element>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    if p.csb == 1 && p.n >= 8 {
        small_tiles::<T, 8, true>(p, c, accumulate);
    } else if p.csb == 1 {
        small_tiles::<T, 4, true>(p, c, accumulate);
    } else {
        small_tiles::<T, 4, false>(p, c, accumulate);
    }
}

/// Covers C with `4×W` tiles and edge tiles; `UNIT` means `csb == 1`.
#[inline(always)]
fn small_tiles<T: Element, const W: usize, const UNIT: bool>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    let (m, n) = (p.m, p.n);
    let (m4, nw) = (m - m % 4, n - n % W);
    for i in (0..m4).step_by(4) {
        for j in (0..nw).step_by(W) {
            small_tile::<T, 4, W, UNIT>(p, c, i, j, accumulate);
        }
        for j in nw..n {
            small_tile::<T, 4, 1, false>(p, c, i, j, accumulate);
        }
    }
    for i in m4..m {
        for j in (0..nw).step_by(W) {
            small_tile::<T, 1, W, UNIT>(p, c, i, j, accumulate);
        }
        for j in nw..n {
            small_tile::<T, 1, 1, false>(p, c, i, j, accumulate);
        }
    }
}

/// One `R×W` tile of C at `(i0, j0)` accumulated in registers over the whole depth.
#[inline(always)]
fn small_tile<T: Element, const R: usize, const W: usize, const UNIT: bool>(
    p: &Problem<'_, T>,
    c: &mut [T],
    i0: usize,
    j0: usize,
    accumulate: bool,
) {
    debug_assert!(i0 + R <= p.m && j0 + W <= p.n);
    let csb = if UNIT { 1 } else { p.csb };
    let mut acc = [[T::ZERO; W]; R];
    for q in 0..p.k {
        // SAFETY: i0 + R <= m, j0 + W <= n and q < k, and the bounds check verified that
        // every (i, q) of A and (q, j) of B inside those sizes is in bounds.
        let (av, bv) = unsafe {
            let a: [T; R] = std::array::from_fn(|r| *p.a.add((i0 + r) * p.rsa + q * p.csa));
            let b: [T; W] = std::array::from_fn(|l| *p.b.add(q * p.rsb + (j0 + l) * csb));
            (a, b)
        };
        for r in 0..R {
            for l in 0..W {
                acc[r][l] += av[r] * bv[l];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let start = (i0 + r) * p.n + j0;
        for (cj, &v) in c[start..start + W].iter_mut().zip(row) {
            *cj = if accumulate { *cj + v } else { v };
        }
    }
}
