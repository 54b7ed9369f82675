//! Fused losses: `l1_loss`, `reduction(|a - b|)` in one node (as `torch.nn.functional.l1_loss`).
//!
//! The same value as `(a - b).abs().sum()` (or `.mean()`), bit for bit, in one node instead
//! of three: one record forward, one rule backward, and no intermediate `a - b` or `|a - b|`
//! kept on the tape.

use super::{Binary, Graph, View};
use crate::float::Float;
use crate::shape::Shape;

/// Result shape of `l1_loss(a, b)`: a 0-d value; `a` and `b` must have the same shape
/// (the composition `(a - b).abs().mean()` is there for broadcasting).
///
/// # Panics
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
    let n = g.shape(a).iter().product::<usize>();
    let dy = if mean { g.mul_scalar(dy, T::ONE / T::from_usize(n)) } else { dy };
    let d = g.binary(Binary::Sub, a, b);
    let da = g.binary(Binary::SignMul, dy, d); // the 0-d dy broadcast over every element
    let db = need[1].then(|| g.neg(da));
    [need[0].then_some(da), db]
}
