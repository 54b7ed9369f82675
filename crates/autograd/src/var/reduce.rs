//! Reductions as methods of [`Var`] ([`crate::ops::reduce`]).

use super::Var;
use crate::float::Float;
use crate::ops::{Op, Reduce};

impl<'t, T: Float> Var<'t, T> {
    /// Sum of all elements (a 0-d result).
    #[track_caller]
    pub fn sum(&self) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: false, axis: None, keepdim: false }))
    }
    /// Mean of all elements (a 0-d result).
    #[track_caller]
    pub fn mean(&self) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: true, axis: None, keepdim: false }))
    }
    /// Sum along `axis`.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: false, axis: Some(axis), keepdim }))
    }
    /// Mean along `axis`.
    #[track_caller]
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: true, axis: Some(axis), keepdim }))
    }
}
