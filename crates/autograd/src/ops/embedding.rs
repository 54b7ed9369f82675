//! Row gather: `embedding(weight, indices)`, as `torch.nn.functional.embedding`, and its
//! gradient, a scatter-add into the weight's shape.
//!
//! Indices are values of the element type (integers in `0..V`, as class targets are), of
//! any shape; they get no gradient.

use super::loss::is_index;
use super::{Graph, Op, OpFamily, View};
use crate::float::Float;
use crate::shape::Shape;

/// The embedding lookup and its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingOp {
    /// `weight[idx, :]`: rows of a `[V, D]` weight gathered by indices of any shape.
    Lookup,
    /// The gradient of [`EmbeddingOp::Lookup`]: `dy`'s rows scatter-added into a
    /// `[rows, D]` zero matrix at the indices.
    Grad {
        /// The weight's row count `V`.
        rows: usize,
    },
}

impl<T: Float> OpFamily<T> for EmbeddingOp {
    fn name(&self) -> &'static str {
        match self {
            EmbeddingOp::Lookup => "embedding",
            EmbeddingOp::Grad { .. } => "embedding_backward",
        }
    }

    fn arity(&self) -> usize {
        2
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match *self {
            EmbeddingOp::Lookup => embedding_shape(ins[0], ins[1]),
            EmbeddingOp::Grad { rows } => embedding_grad_shape(ins[0], ins[1], rows),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        match *self {
            EmbeddingOp::Lookup => embedding_forward(ins[0], ins[1], out),
            EmbeddingOp::Grad { rows } => embedding_grad_forward(ins[0], ins[1], rows, out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match self {
            EmbeddingOp::Lookup => [need[0].then(|| embedding_vjp(g, x[0], x[1], gy)), None, None],
            EmbeddingOp::Grad { .. } => embedding_grad_vjp(g, x[1], gy, need),
        }
    }
}

/// Result shape of `embedding(weight, indices)`: `indices.shape + [D]` for a weight
/// `[V, D]`.
///
/// # Errors
/// `embedding: weight [3] is not a matrix [V, D]`.
pub fn embedding_shape(weight: &[usize], indices: &[usize]) -> Result<Shape, String> {
    ensure!(weight.len() == 2, "embedding: weight {weight:?} is not a matrix [V, D]");
    let mut s = crate::shape::from_dims(indices);
    s.push(weight[1]);
    Ok(s)
}

/// The row an index value names, checked against the row count.
///
/// # Panics
/// `embedding: index 8 is outside 0..8` (the tape checks indices before recording, so this
/// fires only for a direct call with a bad index).
#[inline]
fn row<T: Float>(i: T, rows: usize) -> usize {
    let v = i.to_f64();
    assert!(is_index(v, rows), "embedding: index {v} is outside 0..{rows}");
    v as usize
}

/// `out[i, :] = weight[idx_i, :]`.
pub fn embedding_forward<T: Float>(weight: View<'_, T>, indices: View<'_, T>, out: &mut [T]) {
    let (rows, d) = (weight.shape[0], weight.shape[1]);
    for (o, &i) in out.chunks_exact_mut(d).zip(indices.data) {
        let r = row(i, rows);
        o.copy_from_slice(&weight.data[r * d..(r + 1) * d]);
    }
}

/// Backward of `y = weight[idx]` given `dy`: the scatter-add of `dy`'s rows into a
/// `[V, D]` zero matrix.
pub fn embedding_vjp<T: Float, G: Graph<T>>(g: &mut G, weight: G::V, indices: G::V, dy: G::V) -> G::V {
    // d/dweight[r, :] = Σ_{i: idx_i = r} dy[i, :]
    let rows = g.shape(weight)[0];
    g.apply(Op::Embedding(EmbeddingOp::Grad { rows }), &[dy, indices])
}

/// Result shape of the embedding gradient: `[rows, D]` for `dy` `indices.shape + [D]`.
///
/// # Errors
/// `embedding_backward: dy [2, 5] does not fit indices [3]`.
pub fn embedding_grad_shape(dy: &[usize], indices: &[usize], rows: usize) -> Result<Shape, String> {
    let fits = dy.len() == indices.len() + 1 && crate::shape::same(&dy[..indices.len()], indices);
    ensure!(fits, "embedding_backward: dy {dy:?} does not fit indices {indices:?}");
    Ok(crate::shape::from_dims(&[rows, dy[dy.len() - 1]]))
}

/// `out = 0`, then `out[idx_i, :] += dy[i, :]` in the order of the indices (PyTorch's
/// order: repeated indices add up one after the other).
pub fn embedding_grad_forward<T: Float>(dy: View<'_, T>, indices: View<'_, T>, rows: usize, out: &mut [T]) {
    let d = dy.shape[dy.shape.len() - 1];
    out.fill(T::ZERO);
    for (g, &i) in dy.data.chunks_exact(d).zip(indices.data) {
        let r = row(i, rows);
        for (o, &v) in out[r * d..(r + 1) * d].iter_mut().zip(g) {
            *o += v;
        }
    }
}

/// Backward of `gw = scatter_add(dy, idx)` (for gradients of gradients): linear in `dy`,
/// whose gradient is the gather of the incoming `ggw` rows, `embedding(ggw, idx)`.
pub fn embedding_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    indices: G::V,
    ggw: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/d(dy[i, :]) Σ_r <ggw[r, :], gw[r, :]> = ggw[idx_i, :]
    [need[0].then(|| g.apply(Op::Embedding(EmbeddingOp::Lookup), &[ggw, indices])), None, None]
}
