//! The softmax family as methods of [`Var`] ([`crate::ops::softmax`]).

use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{Op, SoftmaxOp};

impl<'t, T: Float> Var<'t, T> {
    #[track_caller]
    fn softmax_op(&self, op: Op<T>) -> Var<'t, T> {
        Var::new(self.tape, self.tape.record(op, &[self.id], Location::caller()))
    }

    /// `log(softmax(self))` along `axis`, computed stably in one node (as
    /// `torch.log_softmax(x, dim=axis)`): `x - max - ln Σ e^(x - max)`.
    ///
    /// # Panics
    /// `log_softmax: axis 2 out of range for shape [3, 4]`.
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Var<'t, T> {
        self.softmax_op(Op::Softmax(SoftmaxOp::LogSoftmax { axis }))
    }

    /// `e^x / Σ e^x` along `axis`, computed stably in one node (as
    /// `torch.softmax(x, dim=axis)`).
    ///
    /// # Panics
    /// `softmax: axis 2 out of range for shape [3, 4]`.
    #[track_caller]
    pub fn softmax(&self, axis: usize) -> Var<'t, T> {
        self.softmax_op(Op::Softmax(SoftmaxOp::Softmax { axis }))
    }

    /// The index of the largest element along `axis`, as a value (the axis removed; the
    /// first index on ties; a NaN counts as largest), like `torch.argmax(x, dim=axis)`.
    /// The result never requires grad: indices have no gradient.
    ///
    /// # Panics
    /// `argmax: axis 1 out of range for shape [3]`, or an empty axis.
    #[track_caller]
    pub fn argmax(&self, axis: usize) -> Var<'t, T> {
        let _no_grad = self.tape().no_grad();
        self.softmax_op(Op::Softmax(SoftmaxOp::Argmax { axis }))
    }
}
