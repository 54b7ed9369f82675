//! Elementwise kernels: broadcast binaries, expand, permute, strided walks, the fused
//! bias + ReLU pass and the SGD update's axpy.

use crate::cpu;
use crate::layout::{broadcast_strides, numel, strides, Shape};
use crate::threads::{par_chunks_mut, par_rows_mut};
use crate::Element;

/// `out = f(a, b)` elementwise, with `a` and `b` broadcast to `out_shape`.
///
/// Fast paths for equal shapes and a scalar operand (both vectorised and split over threads
/// by [`par_chunks_mut`]), and a trailing-dimension operand (a bias row added to every row
/// of a batch); an odometer over strides for the general case.
pub fn binary_broadcast<T: Element>(
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

/// `row[j] = row[j] + bias[j]`, then [`Element::relu`] if `relu`.
#[inline(always)]
pub(crate) fn bias_relu_row<T: Element>(row: &mut [T], bias: &[T], relu: bool) {
    for (v, &bj) in row.iter_mut().zip(bias) {
        let s = *v + bj;
        // a select, not a conditional store, so the loop vectorises
        *v = if relu { s.relu() } else { s };
    }
}

/// `row[j] + bias[j]` on every row of `out` (rows of `bias.len()` elements), then
/// [`Element::relu`] if `relu`, split over threads at row boundaries: the linear layer's
/// bias and ReLU after its product.
pub fn bias_relu_rows<T: Element>(out: &mut [T], bias: &[T], relu: bool) {
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
/// compile time a plain `mul_add` becomes a libm call per element, so the feature is
/// detected at run time.
pub fn fma_axpy<T: Element>(alpha: T, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "fma_axpy: lengths {} and {} differ", x.len(), y.len());
    par_chunks_mut(y, |at, y| {
        let x = &x[at..at + y.len()];
        #[cfg(target_arch = "x86_64")]
        if cpu::has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
            unsafe { fma_axpy_avx2(alpha, x, y) };
            return;
        }
        fma_axpy_body(alpha, x, y);
    });
}

#[inline(always)]
fn fma_axpy_body<T: Element>(alpha: T, x: &[T], y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = alpha.mul_add(x, *y);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_axpy_avx2<T: Element>(alpha: T, x: &[T], y: &mut [T]) {
    fma_axpy_body(alpha, x, y);
}

/// Whether `small` (without leading ones) equals the trailing dimensions of `big`, so that
/// broadcasting it repeats it contiguously.
pub fn is_trailing(small: &[usize], big: &[usize]) -> bool {
    let first = small.iter().position(|&d| d != 1).unwrap_or(small.len());
    let s = &small[first..];
    s.len() <= big.len() && &big[big.len() - s.len()..] == s
}

/// `out = src` broadcast from `src_shape` to `out_shape`.
pub fn expand<T: Element>(src: &[T], src_shape: &[usize], out_shape: &[usize], out: &mut [T]) {
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

/// `out = src` with its dimensions permuted: output dimension `d` is input dimension `perm[d]`.
pub fn permute<T: Element>(src: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
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
    use crate::reduce::sum_to;
    use crate::threads::{set_num_threads, PARALLEL_MIN};

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
    #[should_panic(expected = "par_chunks_mut_n: slices of lengths [3, 2] differ")]
    fn chunks_of_unequal_slices_panic() {
        crate::par_chunks_mut_n([&mut [0.0f32; 3][..], &mut [0.0f32; 2][..]], |_, _| {});
    }

    #[test]
    fn parallel_chunks_cover_every_element_once() {
        let _threads = crate::threads::thread_count_guard();
        set_num_threads(2);
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
        // N slices walked together: the same range of each, every element once
        let (mut a, mut b, mut c) = (vec![0.0f64; n], vec![1.0f64; n], vec![2.0f64; n]);
        let parts = std::sync::Mutex::new(Vec::new());
        crate::par_chunks_mut_n([&mut a[..], &mut b[..], &mut c[..]], |at, [a, b, c]| {
            assert!(a.len() == b.len() && b.len() == c.len());
            parts.lock().unwrap().push(at);
            for (i, ((a, b), c)) in a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut()).enumerate() {
                *a += (at + i) as f64;
                *b += *a;
                *c += *b;
            }
        });
        set_num_threads(1);
        assert_eq!(parts.into_inner().unwrap().len(), 2);
        for i in 0..n {
            assert_eq!((a[i], b[i], c[i]), (i as f64, 1.0 + i as f64, 3.0 + i as f64), "element {i}");
        }
        let starts = starts.into_inner().unwrap();
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(starts.iter().all(|&(at, len)| at % row == 0 && len % row == 0), "{starts:?}");
        assert!(rows.iter().enumerate().all(|(i, &v)| v == i as f64));
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as f64));
        assert!(y.iter().enumerate().all(|(i, &v)| v == 1.0 + 2.0 * i as f64));
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
