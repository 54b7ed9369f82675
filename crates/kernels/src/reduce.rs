//! Reductions: sums in a fixed order (the same result on any thread count), the sum that
//! undoes broadcasting, and axis sums.

use crate::cpu::{self, vectorized};
use crate::elementwise::{for_each_strided2, is_trailing};
use crate::layout::{broadcast_strides, numel};
use crate::threads::{par_parts_sized, PARALLEL_MIN, VECTOR_MIN};
use crate::Element;

/// Sum of a slice with 16 independent accumulators: vectorised, and not limited by the
/// latency of one long chain of additions (also more accurate than a sequential sum).
/// Slices longer than 16,384 elements are summed block by block (in parallel when large) and
/// the block sums added in order, so the result does not depend on the thread count.
pub fn sum<T: Element>(x: &[T]) -> T {
    sum_zip(x, x, |v, _| v)
}

/// `Σ |a[i] - b[i]|`, in the same order as [`sum`] of the differences (`a`, `b` of one length).
pub fn sum_abs_diff<T: Element>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "sum_abs_diff: lengths {} and {} differ", a.len(), b.len());
    sum_zip(a, b, |x, y| (x - y).abs())
}

/// Elements per block of a long sum (64 KB of `f32`).
const SUM_BLOCK: usize = 1 << 14;

/// `Σ f(a[i], b[i])`: [`sum_lanes`] of each [`SUM_BLOCK`]-element block, the block sums
/// added in block order; the blocks are split over the threads from [`PARALLEL_MIN`]
/// elements (in groups of 64 blocks, so the partial sums live on the stack).
#[inline(always)]
fn sum_zip<T: Element>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> T {
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
fn sum_lanes<T: Element>(a: &[T], b: &[T], f: &impl Fn(T, T) -> T) -> T {
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

/// `out = src` summed over the dimensions along which `out_shape` was broadcast to
/// `src_shape` (the reduction that undoes broadcasting). With `accumulate`, adds into `out`.
pub fn sum_to<T: Element>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T], accumulate: bool) {
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
    if src.len() >= VECTOR_MIN && cpu::has_avx2() {
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
unsafe fn sum_to_avx2<T: Element>(
    src: &[T],
    src_shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
    accumulate: bool,
) {
    sum_to_body(src, src_shape, out_shape, out, accumulate);
}

#[inline(always)]
fn sum_to_body<T: Element>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T], accumulate: bool) {
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
pub fn reduce_axis<T: Element>(src: &[T], shape: &[usize], axis: usize, mean: bool, out: &mut [T]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::{par_chunks_mut, set_num_threads};

    /// A bias-gradient `sum_to` large enough to split over two threads (column ranges)
    /// sums every column in row order: the same floats as the plain loop, also when
    /// accumulating, for column counts that do and do not fill whole 16-column units.
    #[test]
    fn parallel_sum_to_matches_plain_loop() {
        let _threads = crate::threads::thread_count_guard();
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
                set_num_threads(threads);
                let mut acc = start.clone();
                sum_to(&src, &[rows, cols], &[1, cols], &mut acc, true);
                let mut fresh = vec![f32::NAN; cols];
                sum_to(&src, &[rows, cols], &[cols], &mut fresh, false);
                set_num_threads(1);
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
}
