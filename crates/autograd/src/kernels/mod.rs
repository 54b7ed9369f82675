//! Compute kernels: plain functions on slices that know nothing of tapes.
//!
//! The tape decides *what* to compute ([`crate::ops`]); these decide *how fast*.
//! [`gemm`] is the matrix-multiply kernel (packed, register-blocked AVX2/FMA with a portable
//! fallback); the rest are the elementwise, broadcast and reduction loops of the other ops.

pub mod gemm;

use crate::float::Float;
use crate::shape::{broadcast_strides, numel, strides, Shape};

/// `out = f(a, b)` elementwise, with `a` and `b` broadcast to `out_shape`.
///
/// Fast paths for equal shapes and a scalar operand (both vectorised and split over threads
/// by [`par_chunks_mut`]), and a trailing-dimension operand (a bias row added to every row
/// of a batch); an odometer over strides for the general case.
pub fn binary_broadcast<T: Float>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
    f: impl Fn(T, T) -> T + Sync,
) {
    let n = out.len();
    if a.len() == n && b.len() == n {
        par_chunks_mut(out, |at, out| {
            for ((o, &x), &y) in out.iter_mut().zip(&a[at..]).zip(&b[at..]) {
                *o = f(x, y);
            }
        });
    } else if a.len() == n && b.len() == 1 {
        let y = b[0];
        par_chunks_mut(out, |at, out| {
            for (o, &x) in out.iter_mut().zip(&a[at..]) {
                *o = f(x, y);
            }
        });
    } else if b.len() == n && a.len() == 1 {
        let x = a[0];
        par_chunks_mut(out, |at, out| {
            for (o, &y) in out.iter_mut().zip(&b[at..]) {
                *o = f(x, y);
            }
        });
    } else if a.len() == n && is_trailing(b_shape, out_shape) {
        for (orow, arow) in out.chunks_exact_mut(b.len()).zip(a.chunks_exact(b.len())) {
            for ((o, &x), &y) in orow.iter_mut().zip(arow).zip(b) {
                *o = f(x, y);
            }
        }
    } else if b.len() == n && is_trailing(a_shape, out_shape) {
        for (orow, brow) in out.chunks_exact_mut(a.len()).zip(b.chunks_exact(a.len())) {
            for ((o, &x), &y) in orow.iter_mut().zip(a).zip(brow) {
                *o = f(x, y);
            }
        }
    } else {
        let sa = broadcast_strides(a_shape, out_shape);
        let sb = broadcast_strides(b_shape, out_shape);
        for_each_strided2(out_shape, &sa, &sb, |o, ia, ib| out[o] = f(a[ia], b[ib]));
    }
}

/// Below this many elements an elementwise kernel stays on one thread (handing work to
/// the other thread costs a few microseconds).
const PARALLEL_MIN: usize = 1 << 16;

/// A raw pointer that may cross threads; each thread derives a disjoint sub-slice from it.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used by `par_chunks_mut`, whose parts are disjoint ranges of one slice.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied, never written through by two threads
// at the same index.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Runs `f` compiled with AVX2 and FMA enabled when the CPU has them, so the elementwise
/// loops inlined into it use 8-lane vectors instead of the baseline's 4 (measured with
/// callgrind: 0.8 instead of 1.6 instructions per element of a bias gradient). Floating-point
/// results are unchanged: Rust never fuses a separate multiply and add.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if gemm::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (run-time detection, cached).
        return unsafe { run_avx2(f) };
    }
    f()
}

/// `f()` compiled with AVX2 and FMA (see [`vectorized`]).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Arrays shorter than this skip [`vectorized`]. For a handful of elements the 8-lane loop's
/// set-up and longer scalar tail cost more than they save (callgrind, seed network: +290
/// instructions per step with the wide build from 1 element). At 64 elements deep-narrow's
/// forward ran slower (65 -> 80 µs, interleaved runs) though it executed fewer
/// instructions; from its 1,024-element layers the wide build pays: 469.0 M -> 446.9 M
/// instructions per 200 steps (relu mask, bias gradient, bias + ReLU) and 208.7 -> 205-206
/// µs per step, best of 10 interleaved runs.
const VECTOR_MIN: usize = 1024;

/// Calls `f(offset, part)` on disjoint consecutive parts of `out`: on one thread, or split
/// across the configured threads ([`gemm::set_num_threads`]) when `out` is large. Arrays of
/// 1,024 elements or more run through an AVX2+FMA build of `f` when the CPU has them.
pub fn par_chunks_mut<T: Float>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    par_parts(out, 16, f);
}

/// [`par_chunks_mut`] with parts made of whole rows of `row` elements (`out.len()` a
/// multiple of `row`, `row >= 1`).
pub fn par_rows_mut<T: Float>(out: &mut [T], row: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    debug_assert!(row >= 1 && out.len().is_multiple_of(row));
    par_parts(out, row, f);
}

/// Parts of whole `unit`s (16 elements is a cache line of `f32`).
fn par_parts<T: Float>(out: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    par_parts_sized(out, unit, out.len(), f);
}

/// [`par_parts`] for a kernel that touches `work` elements in all (at least `out.len()`),
/// which decides whether it is vectorised and split.
fn par_parts_sized<T: Float>(out: &mut [T], unit: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let n = out.len();
    let threads = gemm::num_threads();
    if work < VECTOR_MIN {
        f(0, out);
        return;
    }
    if threads <= 1 || work < PARALLEL_MIN {
        vectorized(|| f(0, out));
        return;
    }
    let chunk = n.div_ceil(threads).next_multiple_of(unit);
    let ptr = SendPtr(out.as_mut_ptr());
    gemm::run_parallel(threads, &|t| {
        let start = (t * chunk).min(n);
        let end = ((t + 1) * chunk).min(n);
        if start < end {
            let p = ptr;
            // SAFETY: `start..end` lies inside `out` (both clamped to `n`), and the ranges of
            // different `t` are disjoint, so each thread gets exclusive access to its part;
            // `out` stays mutably borrowed until `run_parallel` returns after all parts.
            let part = unsafe { std::slice::from_raw_parts_mut(p.0.add(start), end - start) };
            vectorized(|| f(start, part));
        }
    });
}

/// `row[j] = row[j] + bias[j]`, then clamped at zero if `relu` (a select, so `-0.0` and NaN
/// pass through as they are).
#[inline(always)]
pub(crate) fn bias_relu_row<T: Float>(row: &mut [T], bias: &[T], relu: bool) {
    for (v, &bj) in row.iter_mut().zip(bias) {
        let s = *v + bj;
        // a select, not a conditional store, so the loop vectorises
        *v = if relu && s < T::ZERO { T::ZERO } else { s };
    }
}

/// `row[j] + bias[j]` on every row of `out` (rows of `bias.len()` elements), clamped at zero
/// if `relu` (a select: `-0.0` and NaN pass as they are), split over threads at row
/// boundaries: the linear layer's bias and ReLU after its product.
pub fn bias_relu_rows<T: Float>(out: &mut [T], bias: &[T], relu: bool) {
    let n = bias.len();
    assert!(n > 0 && out.len().is_multiple_of(n), "bias_relu_rows: {} elements in rows of {n}", out.len());
    par_rows_mut(out, n, |_, rows| {
        for row in rows.chunks_exact_mut(n) {
            bias_relu_row(row, bias, relu);
        }
    });
}

/// `y = alpha * x + y` elementwise, each element rounded once (a fused multiply-add): the
/// SGD update `p + (-lr)·g` as PyTorch's CPU kernel computes it.
///
/// With AVX2+FMA this is a vectorised `vfmadd` loop; without the feature enabled at
/// compile time a plain `mul_add` becomes a libm call per element (about 3 ns each), so
/// the feature is detected at run time.
pub fn fma_axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "fma_axpy: lengths {} and {} differ", x.len(), y.len());
    par_chunks_mut(y, |at, y| {
        let x = &x[at..at + y.len()];
        #[cfg(target_arch = "x86_64")]
        if gemm::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
            unsafe { fma_axpy_avx2(alpha, x, y) };
            return;
        }
        fma_axpy_body(alpha, x, y);
    });
}

#[inline(always)]
fn fma_axpy_body<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = alpha.mul_add(x, *y);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_axpy_avx2<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    fma_axpy_body(alpha, x, y);
}

/// Whether `small` (without leading ones) equals the trailing dimensions of `big`, so that
/// broadcasting it repeats it contiguously.
fn is_trailing(small: &[usize], big: &[usize]) -> bool {
    let first = small.iter().position(|&d| d != 1).unwrap_or(small.len());
    let s = &small[first..];
    s.len() <= big.len() && &big[big.len() - s.len()..] == s
}

/// Sum of a slice with 16 independent accumulators: vectorised, and not limited by the
/// latency of one long chain of additions (also more accurate than a sequential sum).
/// Slices longer than 16,384 elements are summed block by block (in parallel when large) and
/// the block sums added in order, so the result does not depend on the thread count.
pub fn sum<T: Float>(x: &[T]) -> T {
    sum_zip(x, x, |v, _| v)
}

/// `Σ |a[i] - b[i]|`, in the same order as [`sum`] of the differences (`a`, `b` of one length).
pub fn sum_abs_diff<T: Float>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "sum_abs_diff: lengths {} and {} differ", a.len(), b.len());
    sum_zip(a, b, |x, y| (x - y).abs())
}

/// Elements per block of a long sum (64 KB of `f32`).
const SUM_BLOCK: usize = 1 << 14;

/// `Σ f(a[i], b[i])`: [`sum_lanes`] of each [`SUM_BLOCK`]-element block, the block sums
/// added in block order; the blocks are split over the threads from [`PARALLEL_MIN`]
/// elements (in groups of 64 blocks, so the partial sums live on the stack).
#[inline(always)]
fn sum_zip<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> T {
    let n = a.len();
    if n <= SUM_BLOCK {
        return if n >= VECTOR_MIN { vectorized(|| sum_lanes(a, b, &f)) } else { sum_lanes(a, b, &f) };
    }
    const GROUP: usize = 64;
    let mut total = T::ZERO;
    for g0 in (0..n).step_by(GROUP * SUM_BLOCK) {
        let g1 = (g0 + GROUP * SUM_BLOCK).min(n);
        let blocks = (g1 - g0).div_ceil(SUM_BLOCK);
        let mut partial = [T::ZERO; GROUP];
        par_parts_sized(&mut partial[..blocks], 1, g1 - g0, |at, part| {
            for (q, p) in part.iter_mut().enumerate() {
                let start = g0 + (at + q) * SUM_BLOCK;
                let end = (start + SUM_BLOCK).min(g1);
                *p = sum_lanes(&a[start..end], &b[start..end], &f);
            }
        });
        for &p in &partial[..blocks] {
            total += p;
        }
    }
    total
}

/// `Σ f(a[i], b[i])` over 16 interleaved accumulators (so the loop vectorises), then the
/// remainder in order.
#[inline(always)]
fn sum_lanes<T: Float>(a: &[T], b: &[T], f: &impl Fn(T, T) -> T) -> T {
    const LANES: usize = 16;
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += f(x, y);
        }
    }
    let mut total = T::ZERO;
    for w in (0..LANES).step_by(2) {
        total += acc[w] + acc[w + 1];
    }
    ra.iter().zip(rb).fold(total, |t, (&x, &y)| t + f(x, y))
}

/// `out = src` broadcast from `src_shape` to `out_shape`.
pub fn expand<T: Float>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T]) {
    if src.len() == 1 {
        out.fill(src[0]);
    } else if is_trailing(src_shape, out_shape) {
        for row in out.chunks_exact_mut(src.len()) {
            row.copy_from_slice(src);
        }
    } else {
        let s = broadcast_strides(src_shape, out_shape);
        for_each_strided2(out_shape, &s, &s, |o, i, _| out[o] = src[i]);
    }
}

/// `out = src` summed over the dimensions along which `out_shape` was broadcast to
/// `src_shape` (the reduction that undoes broadcasting). With `accumulate`, adds into `out`.
pub fn sum_to<T: Float>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T], accumulate: bool) {
    if src.len() >= PARALLEL_MIN && out.len() >= 32 && out.len() < src.len() && is_trailing(out_shape, src_shape) {
        // A bias gradient: the threads take disjoint column ranges, each summing all the
        // rows in order, so the sums are the same floats as on one thread.
        let cols = out.len();
        return par_parts_sized(out, 16, src.len(), |at, part| {
            if !accumulate {
                part.fill(T::ZERO);
            }
            for row in src.chunks_exact(cols) {
                for (o, &s) in part.iter_mut().zip(&row[at..]) {
                    *o += s;
                }
            }
        });
    }
    #[cfg(target_arch = "x86_64")]
    if src.len() >= VECTOR_MIN && gemm::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (run-time detection, cached).
        return unsafe { sum_to_avx2(src, src_shape, out_shape, out, accumulate) };
    }
    sum_to_body(src, src_shape, out_shape, out, accumulate);
}

/// [`sum_to`] compiled with AVX2 and FMA (8-lane adds).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum_to_avx2<T: Float>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T], accumulate: bool) {
    sum_to_body(src, src_shape, out_shape, out, accumulate);
}

#[inline(always)]
fn sum_to_body<T: Float>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T], accumulate: bool) {
    if !accumulate {
        out.fill(T::ZERO);
    }
    if out.len() == 1 {
        out[0] += sum(src);
    } else if out.len() == src.len() {
        for (o, &s) in out.iter_mut().zip(src) {
            *o += s;
        }
    } else if is_trailing(out_shape, src_shape) {
        for row in src.chunks_exact(out.len()) {
            for (o, &s) in out.iter_mut().zip(row) {
                *o += s;
            }
        }
    } else {
        let s = broadcast_strides(out_shape, src_shape);
        for_each_strided2(src_shape, &s, &s, |i, o, _| out[o] += src[i]);
    }
}

/// Sums (or averages) `src` along `axis`: `src` viewed as `[outer, len, inner]`, `out` as
/// `[outer, inner]`.
pub fn reduce_axis<T: Float>(src: &[T], shape: &[usize], axis: usize, mean: bool, out: &mut [T]) {
    let len = shape[axis];
    let inner: usize = numel(&shape[axis + 1..]);
    let outer: usize = numel(&shape[..axis]);
    out.fill(T::ZERO);
    for o in 0..outer {
        let dst = &mut out[o * inner..(o + 1) * inner];
        for l in 0..len {
            let row = &src[(o * len + l) * inner..(o * len + l + 1) * inner];
            for (d, &s) in dst.iter_mut().zip(row) {
                *d += s;
            }
        }
    }
    if mean && len > 0 {
        let scale = T::ONE / T::from_usize(len);
        out.iter_mut().for_each(|v| *v *= scale);
    }
}

/// `out = src` with its dimensions permuted: output dimension `d` is input dimension `perm[d]`.
pub fn permute<T: Float>(src: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
    let st = strides(shape);
    let out_shape: Shape = perm.iter().map(|&p| shape[p]).collect();
    let ps: Shape = perm.iter().map(|&p| st[p]).collect();
    if out_shape.len() == 2 {
        // 2-d transpose in cache-friendly tiles
        let (r, c) = (out_shape[0], out_shape[1]);
        const TILE: usize = 32;
        for i0 in (0..r).step_by(TILE) {
            for j0 in (0..c).step_by(TILE) {
                for i in i0..(i0 + TILE).min(r) {
                    for j in j0..(j0 + TILE).min(c) {
                        out[i * c + j] = src[i * ps[0] + j * ps[1]];
                    }
                }
            }
        }
        return;
    }
    for_each_strided2(&out_shape, &ps, &ps, |o, i, _| out[o] = src[i]);
}

/// Calls `f(out_index, a_index, b_index)` for every element of `shape` in row-major order,
/// where `a_index` and `b_index` walk two tensors with the given strides (an odometer over
/// the dimensions, innermost dimension as a tight loop).
pub fn for_each_strided2(shape: &[usize], sa: &[usize], sb: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let n = numel(shape);
    if n == 0 {
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        f(0, 0, 0);
        return;
    }
    let mut idx: Shape = smallvec::smallvec![0; nd];
    let (inner, ia_step, ib_step) = (shape[nd - 1], sa[nd - 1], sb[nd - 1]);
    let (mut pa, mut pb, mut out) = (0usize, 0usize, 0usize);
    loop {
        for j in 0..inner {
            f(out + j, pa + j * ia_step, pb + j * ib_step);
        }
        out += inner;
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            pa += sa[d];
            pb += sb[d];
            if idx[d] < shape[d] {
                break;
            }
            pa -= sa[d] * shape[d];
            pb -= sb[d] * shape[d];
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_paths_agree_with_general_walk() {
        let a: Vec<f64> = (0..24).map(|v| v as f64).collect();
        let b = [10.0, 20.0, 30.0, 40.0];
        let mut fast = vec![0.0; 24];
        binary_broadcast(&a, &[2, 3, 4], &b, &[4], &[2, 3, 4], &mut fast, |x, y| x + y);
        let mut slow = vec![0.0; 24];
        let sa = broadcast_strides(&[2, 3, 4], &[2, 3, 4]);
        let sb = broadcast_strides(&[4], &[2, 3, 4]);
        for_each_strided2(&[2, 3, 4], &sa, &sb, |o, i, j| slow[o] = a[i] + b[j]);
        assert_eq!(fast, slow);
        // a column broadcast [3,1] against [2,3,4] takes the general path
        let c = [1.0, 2.0, 3.0];
        binary_broadcast(&a, &[2, 3, 4], &c, &[3, 1], &[2, 3, 4], &mut fast, |x, y| x * y);
        assert_eq!(fast[5], 5.0 * 2.0);
        let mut back = [0.0; 3];
        sum_to(&fast, &[2, 3, 4], &[3, 1], &mut back, false);
        let want: f64 = (0..2).flat_map(|o| (0..4).map(move |i| (o * 12 + 4 + i) as f64 * 2.0)).sum();
        assert_eq!(back[1], want);
    }

    #[test]
    fn parallel_chunks_cover_every_element_once() {
        gemm::set_num_threads(2);
        let n = PARALLEL_MIN * 3 + 5;
        let mut out = vec![0.0f64; n];
        par_chunks_mut(&mut out, |at, part| {
            for (i, v) in part.iter_mut().enumerate() {
                *v += (at + i) as f64;
            }
        });
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut y = vec![1.0f64; n];
        fma_axpy(2.0, &x, &mut y);
        // parts of whole rows: every part starts at a row boundary
        let row = 1000;
        let mut rows = vec![0.0f64; row * (PARALLEL_MIN / row + 7)];
        let starts = std::sync::Mutex::new(Vec::new());
        par_rows_mut(&mut rows, row, |at, part| {
            starts.lock().unwrap().push((at, part.len()));
            for (i, v) in part.iter_mut().enumerate() {
                *v += (at + i) as f64;
            }
        });
        gemm::set_num_threads(1);
        let starts = starts.into_inner().unwrap();
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(starts.iter().all(|&(at, len)| at % row == 0 && len % row == 0), "{starts:?}");
        assert!(rows.iter().enumerate().all(|(i, &v)| v == i as f64));
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as f64));
        assert!(y.iter().enumerate().all(|(i, &v)| v == 1.0 + 2.0 * i as f64));
    }

    /// A bias-gradient `sum_to` large enough to split over two threads (column ranges)
    /// sums every column in row order: the same floats as the plain loop, also when
    /// accumulating, for column counts that do and do not fill whole 16-column units.
    #[test]
    fn parallel_sum_to_matches_plain_loop() {
        for (rows, cols) in [(256, 1024), (64, 1025), (2049, 33), (600, 200)] {
            assert!(rows * cols >= PARALLEL_MIN);
            let src: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1013) as f32 * 0.013 - 6.0).collect();
            let start: Vec<f32> = (0..cols).map(|j| j as f32 * 0.5).collect();
            let column_sums = |init: &[f32]| {
                let mut sums = init.to_vec();
                for row in src.chunks_exact(cols) {
                    for (w, &v) in sums.iter_mut().zip(row) {
                        *w += v;
                    }
                }
                sums
            };
            let (want_acc, want) = (column_sums(&start), column_sums(&vec![0.0; cols]));
            for threads in [1, 2] {
                gemm::set_num_threads(threads);
                let mut acc = start.clone();
                sum_to(&src, &[rows, cols], &[1, cols], &mut acc, true);
                let mut fresh = vec![f32::NAN; cols];
                sum_to(&src, &[rows, cols], &[cols], &mut fresh, false);
                gemm::set_num_threads(1);
                assert_eq!(acc, want_acc, "{rows}x{cols}, {threads} thread(s), accumulating");
                assert_eq!(fresh, want, "{rows}x{cols}, {threads} thread(s)");
            }
        }
    }

    /// The 8-lane (AVX2) builds of the elementwise loops give the plain loops' results bit
    /// for bit, on both sides of the [`VECTOR_MIN`] cut-off.
    #[test]
    fn vectorized_loops_match_plain_loops() {
        for rows in [1, 3, 16] {
            for cols in [1, 7, 63, 64, 65, 300, 1023, 1024, 1025, 2048] {
                let src: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1013) as f32 * 0.013 - 6.0).collect();
                let mut want = vec![0.0f32; cols];
                for row in src.chunks_exact(cols) {
                    for (w, &v) in want.iter_mut().zip(row) {
                        *w += v;
                    }
                }
                let mut got = vec![f32::NAN; cols];
                sum_to(&src, &[rows, cols], &[cols], &mut got, false);
                assert_eq!(got, want, "sum_to {rows}x{cols}");
                let mut out = vec![0.0f32; src.len()];
                par_chunks_mut(&mut out, |at, out| {
                    for (o, &x) in out.iter_mut().zip(&src[at..]) {
                        *o = if x < 0.0 { 0.0 } else { x * 1.5 + 0.25 };
                    }
                });
                let plain: Vec<f32> = src.iter().map(|&x| if x < 0.0 { 0.0 } else { x * 1.5 + 0.25 }).collect();
                assert_eq!(out, plain, "elementwise {rows}x{cols}");
            }
        }
    }

    #[test]
    fn fma_axpy_rounds_once() {
        let x: Vec<f32> = (0..37).map(|i| 0.1 + i as f32 * 0.37).collect();
        let mut y: Vec<f32> = (0..37).map(|i| 1.0 / (1.0 + i as f32)).collect();
        let want: Vec<f32> = x.iter().zip(&y).map(|(&x, &y)| (-0.1f32).mul_add(x, y)).collect();
        fma_axpy(-0.1f32, &x, &mut y);
        assert_eq!(y, want);
    }

    #[test]
    fn permute_3d_and_2d() {
        let a: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut out = vec![0.0; 24];
        permute(&a, &[2, 3, 4], &[2, 0, 1], &mut out); // out shape [4, 2, 3]
                                                       // out[i][j][k] = a[j][k][i]
        assert_eq!(out[(2 + 1) * 3 + 2], a[(3 + 2) * 4 + 1]); // out[1][1][2] = a[1][2][1]
        let mut t = vec![0.0; 24];
        permute(&a, &[4, 6], &[1, 0], &mut t);
        assert_eq!(t[5 * 4 + 3], a[3 * 6 + 5]);
    }
}
