//! Indexing: `take` (a gather by flat indices) and `scatter_add` (its adjoint), and the
//! views built on them: `index_select`, `gather`, `cat` and `stack` (`narrow` is a pad).
//!
//! Both ops are linear and each one's backward rule is the other one, with the same
//! indices: `take` reads `y[i] = x[idx[i]]`, so `dx[idx[i]] += dy[i]` (a scatter-add);
//! `scatter_add` writes `y[idx[i]] += x[i]`, so `dx[i] = dy[idx[i]]` (a take). Indices
//! are flat (row-major) positions, checked once when the op is made.

use std::sync::Arc;

use super::{Graph, Op, OpFamily, View};
use crate::float::Float;
use crate::shape::{numel, Shape};

/// A gather or scatter by flat indices.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexOp {
    /// `y[i] = x[index[i]]`, `y` shaped `shape`; `x` has `src` elements.
    Take {
        /// Flat positions in `x`, one per element of `y`.
        index: Arc<[usize]>,
        /// Shape of `y`.
        shape: Shape,
        /// Number of elements of `x`.
        src: usize,
    },
    /// `y = 0` shaped `shape`, then `y[index[i]] += x[i]` for every element of `x`.
    ScatterAdd {
        /// Flat positions in `y`, one per element of `x`.
        index: Arc<[usize]>,
        /// Shape of `y`.
        shape: Shape,
    },
}

impl<T: Float> OpFamily<T> for IndexOp {
    fn name(&self) -> &'static str {
        match self {
            IndexOp::Take { .. } => "take",
            IndexOp::ScatterAdd { .. } => "scatter_add",
        }
    }

    fn arity(&self) -> usize {
        1
    }

    /// Checks the input's size against the indices.
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        let x = ins[0];
        match self {
            IndexOp::Take { shape, src, .. } => {
                ensure!(numel(x) == *src, "take: input {x:?} has {} elements, the indices address {src}", numel(x));
                Ok(shape.clone())
            }
            IndexOp::ScatterAdd { index, shape } => {
                ensure!(
                    numel(x) == index.len(),
                    "scatter_add: input {x:?} has {} elements for {} indices",
                    numel(x),
                    index.len()
                );
                Ok(shape.clone())
            }
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        let x = ins[0];
        match self {
            IndexOp::Take { index, .. } => {
                for (o, &i) in out.iter_mut().zip(index.iter()) {
                    *o = x.data[i];
                }
            }
            IndexOp::ScatterAdd { index, .. } => {
                out.fill(T::ZERO);
                for (&v, &i) in x.data.iter().zip(index.iter()) {
                    out[i] += v;
                }
            }
        }
    }

    /// Each op's rule is the other op with the same indices.
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, dy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        let xs = g.shape(x[0]);
        let back = match self {
            // y[i] = x[idx[i]]  =>  dx[idx[i]] += dy[i]
            IndexOp::Take { index, .. } => IndexOp::ScatterAdd { index: index.clone(), shape: xs },
            // y[idx[i]] += x[i]  =>  dx[i] = dy[idx[i]]
            IndexOp::ScatterAdd { index, shape } => {
                IndexOp::Take { index: index.clone(), shape: xs, src: numel(shape) }
            }
        };
        [Some(g.apply(Op::Index(back), &[dy])), None, None]
    }
}
