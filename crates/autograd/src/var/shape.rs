//! Shape ops as methods of [`Var`] ([`crate::ops::shape`]).

use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{Op, ShapeOp};
use crate::shape::Shape;

impl<'t, T: Float> Var<'t, T> {
    /// The same data with a new shape.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::Shape(ShapeOp::Reshape(crate::shape::from_dims(shape))))
    }
    /// Dimensions reordered: result dimension `d` is dimension `perm[d]` of `self`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Var<'t, T> {
        self.op1(Op::Shape(ShapeOp::Permute(crate::shape::from_dims(perm))))
    }
    /// Swaps two dimensions.
    ///
    /// # Panics
    /// If a dimension is out of range.
    #[track_caller]
    pub fn transpose(&self, d0: usize, d1: usize) -> Var<'t, T> {
        let nd = self.shape().len();
        assert!(
            d0 < nd && d1 < nd,
            "transpose: dimensions {d0} and {d1} for a {nd}-d variable (at {})",
            Location::caller()
        );
        let mut perm: Shape = (0..nd).collect();
        perm.swap(d0, d1);
        self.op1(Op::Shape(ShapeOp::Permute(perm)))
    }
    /// Transpose of a 2-d variable (a copy; use [`Var::matmul_t`] to multiply by a
    /// transpose without one).
    #[track_caller]
    pub fn t(&self) -> Var<'t, T> {
        self.transpose(0, 1)
    }
    /// Broadcast to a larger shape.
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::Shape(ShapeOp::Expand(crate::shape::from_dims(shape))))
    }
    /// Sum over broadcast dimensions down to `shape` (the adjoint of [`Var::expand`]).
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::Shape(ShapeOp::SumTo(crate::shape::from_dims(shape))))
    }
    /// `before` entries of `value` in front of `self` along `axis` and `after` at the end;
    /// a negative width removes that many entries instead (PyTorch's constant `F.pad` on
    /// one dimension: `pad(1, 2, -1, 0.0)` of a `[3, 4]` is `F.pad(x, (2, -1))`).
    ///
    /// # Panics
    /// If `axis` is out of range or more entries are removed than there are.
    #[track_caller]
    pub fn pad(&self, axis: usize, before: isize, after: isize, value: T) -> Var<'t, T> {
        self.op1(Op::Shape(ShapeOp::Pad { axis, before, after, value: value.to_f64() }))
    }
}
