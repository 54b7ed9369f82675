//! Log-sum-exp as a method of [`Var`] ([`crate::ops::logsumexp`]).

use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{LogSumExp, Op};

impl<'t, T: Float> Var<'t, T> {
    /// `ln Σ e^self` along `axis`, computed without overflow (PyTorch's `logsumexp`).
    ///
    /// # Panics
    /// If `axis` is out of range.
    #[track_caller]
    pub fn logsumexp(&self, axis: usize, keepdim: bool) -> Var<'t, T> {
        let op = Op::LogSumExp(LogSumExp { axis, keepdim });
        Var::new(self.tape, self.tape.record(op, &[self.id], Location::caller()))
    }
}
