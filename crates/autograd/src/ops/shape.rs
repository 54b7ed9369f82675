//! Shape ops: reshape, permute (transpose), expand (broadcast) and sum_to (its adjoint).
//! Their backward rules are each other: reshape ↔ reshape, permute ↔ inverse permute,
//! expand ↔ sum_to.

use super::{Graph, OpFamily, View};
use crate::float::Float;
use crate::shape::{broadcasts_to, numel, Shape};

/// A shape op of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeOp {
    /// Same data, new shape.
    Reshape(Shape),
    /// Dimensions reordered: output dimension `d` is input dimension `perm[d]`.
    Permute(Shape),
    /// Broadcast to a larger shape.
    Expand(Shape),
    /// Sum over broadcast dimensions down to a smaller shape (the adjoint of `Expand`).
    SumTo(Shape),
}

impl<T: Float> OpFamily<T> for ShapeOp {
    fn name(&self) -> &'static str {
        match self {
            ShapeOp::Reshape(_) => "reshape",
            ShapeOp::Permute(_) => "permute",
            ShapeOp::Expand(_) => "expand",
            ShapeOp::SumTo(_) => "sum_to",
        }
    }

    fn arity(&self) -> usize {
        1
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match self {
            ShapeOp::Reshape(s) => reshape_shape(ins[0], s),
            ShapeOp::Permute(p) => permute_shape(ins[0], p),
            ShapeOp::Expand(s) => expand_shape(ins[0], s),
            ShapeOp::SumTo(s) => sum_to_shape(ins[0], s),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]) {
        let x = ins[0];
        match self {
            ShapeOp::Reshape(_) => out.copy_from_slice(x.data),
            ShapeOp::Permute(p) => crate::kernels::permute(x.data, x.shape, p, out),
            ShapeOp::Expand(_) => crate::kernels::expand(x.data, x.shape, out_shape, out),
            ShapeOp::SumTo(_) => crate::kernels::sum_to(x.data, x.shape, out_shape, out, false),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        let d = match self {
            // d/dx reshape(x) = reshape back
            ShapeOp::Reshape(_) => {
                let s = g.shape(x[0]);
                g.reshape(gy, &s)
            }
            // d/dx permute(x, p) = permute by p⁻¹
            ShapeOp::Permute(p) => g.permute(gy, &inverse_perm(p)),
            // d/dx expand(x) = sum back over the broadcast dimensions
            ShapeOp::Expand(_) => {
                let s = g.shape(x[0]);
                g.sum_to(gy, &s)
            }
            // d/dx sum_to(x) = broadcast back
            ShapeOp::SumTo(_) => {
                let s = g.shape(x[0]);
                g.expand(gy, &s)
            }
        };
        [Some(d), None, None]
    }
}

/// Result shape of a reshape.
///
/// # Errors
/// `reshape: [2, 3] (6 elements) into [4, 2] (8 elements)`.
pub fn reshape_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(numel(x) == numel(to), "reshape: {x:?} ({} elements) into {to:?} ({} elements)", numel(x), numel(to));
    Ok(crate::shape::from_dims(to))
}

/// Result shape of a permutation.
///
/// # Errors
/// `permute: [1, 1] is not a permutation of the 2 dimensions of [2, 3]`.
pub fn permute_shape(x: &[usize], perm: &[usize]) -> Result<Shape, String> {
    let mut seen: Shape = smallvec::smallvec![0; x.len()];
    let ok = perm.len() == x.len()
        && perm.iter().all(|&p| {
            p < x.len() && {
                seen[p] += 1;
                seen[p] == 1
            }
        });
    ensure!(ok, "permute: {perm:?} is not a permutation of the {} dimensions of {x:?}", x.len());
    Ok(perm.iter().map(|&p| x[p]).collect())
}

/// The permutation that undoes `perm`.
pub fn inverse_perm(perm: &[usize]) -> Shape {
    let mut inv: Shape = smallvec::smallvec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Result shape of an expand.
///
/// # Errors
/// `expand: [3, 2] cannot be broadcast to [3, 4]`.
pub fn expand_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(broadcasts_to(x, to), "expand: {x:?} cannot be broadcast to {to:?}");
    Ok(crate::shape::from_dims(to))
}

/// Result shape of a sum_to.
///
/// # Errors
/// `sum_to: [3, 4] cannot be summed to [2]` unless `to` broadcasts to `x`.
pub fn sum_to_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(broadcasts_to(to, x), "sum_to: {x:?} cannot be summed to {to:?}");
    Ok(crate::shape::from_dims(to))
}
