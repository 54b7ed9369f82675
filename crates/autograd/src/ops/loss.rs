//! Fused losses: `l1_loss`, `reduction(|a - b|)` in one node (as `torch.nn.functional.l1_loss`).
//!
//! The same value as `(a - b).abs().sum()` (or `.mean()`), bit for bit, in one node instead
//! of three: one record forward, one rule backward, and no intermediate `a - b` or `|a - b|`
//! kept on the tape.

use super::{Binary, Graph, Op, View};
use crate::float::Float;
use crate::shape::Shape;

/// Result shape of `l1_loss(a, b)`: a 0-d value; `a` and `b` must have the same shape
/// (the composition `(a - b).abs().mean()` is there for broadcasting).
///
/// # Errors
/// `l1_loss: prediction [2, 2] and target [2, 3] differ in shape`.
pub fn l1_shape(a: &[usize], b: &[usize]) -> Result<Shape, String> {
    ensure!(crate::shape::same(a, b), "l1_loss: prediction {a:?} and target {b:?} differ in shape");
    Ok(Shape::new())
}

/// `out[0] = Σ |a - b|` (divided by the element count for a mean).
pub fn l1_forward<T: Float>(a: View<'_, T>, b: View<'_, T>, mean: bool, out: &mut [T]) {
    let s = crate::kernels::sum_abs_diff(a.data, b.data);
    out[0] = if mean { s / T::from_usize(a.data.len()) } else { s };
}

/// Backward of `y = Σ |a - b|` (or the mean) given the 0-d `dy`.
pub fn l1_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    a: G::V,
    b: G::V,
    mean: bool,
    dy: G::V,
    need: [bool; 2],
) -> [Option<G::V>; 2] {
    // d/da Σ|a - b| = sign(a - b), d/db = -sign(a - b); a mean divides both by n
    let da = g.apply(Op::L1LossGrad { mean }, &[dy, a, b]);
    let db = need[1].then(|| g.neg(da));
    [need[0].then_some(da), db]
}

/// Result shape of the L1 gradient `c·dy·sign(a - b)`: `a`'s (`dy` one element, `a` and
/// `b` of one shape).
///
/// # Errors
/// `l1_loss_backward: dy [2], a [3], b [3]: need a one-element dy and a, b of one shape`.
pub fn l1_grad_shape(dy: &[usize], a: &[usize], b: &[usize]) -> Result<Shape, String> {
    let ok = dy.iter().product::<usize>() == 1 && crate::shape::same(a, b);
    ensure!(ok, "l1_loss_backward: dy {dy:?}, a {a:?}, b {b:?}: need a one-element dy and a, b of one shape");
    Ok(crate::shape::from_dims(a))
}

/// `out = (dy·c)·sign(a - b)` with `c = 1/n` for a mean (else no scaling) in one pass: the
/// same floats as `sign_mul(dy·c, a - b)`, without the `a - b` intermediate.
pub fn l1_grad_forward<T: Float>(dy: View<'_, T>, a: View<'_, T>, b: View<'_, T>, mean: bool, out: &mut [T]) {
    let s = if mean { dy.data[0] * (T::ONE / T::from_usize(a.data.len())) } else { dy.data[0] };
    crate::kernels::par_chunks_mut(out, |at, out| {
        for ((o, &x), &y) in out.iter_mut().zip(&a.data[at..]).zip(&b.data[at..]) {
            *o = s * super::unary::sign(x - y);
        }
    });
}

/// Backward of `g = c·dy·sign(a - b)` (for gradients of gradients): sign is flat almost
/// everywhere, so only `dy` has a gradient, `c·Σ gy·sign(a - b)`.
#[allow(clippy::too_many_arguments)]
pub fn l1_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    a: G::V,
    b: G::V,
    mean: bool,
    gy: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/d(dy) c·dy·sign(a - b) = c·sign(a - b)
    let gdy = need[0].then(|| {
        let d = g.binary(Binary::Sub, a, b);
        let t = g.binary(Binary::SignMul, gy, d);
        let s = g.shape(dy);
        let t = g.sum_to(t, &s);
        if mean {
            let n = g.shape(a).iter().product::<usize>();
            g.mul_scalar(t, T::ONE / T::from_usize(n))
        } else {
            t
        }
    });
    [gdy, None, None]
}
