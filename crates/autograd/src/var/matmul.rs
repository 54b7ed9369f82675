//! Matrix products as methods of [`Var`] ([`crate::ops::matmul`]).

use std::borrow::Borrow;
use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{MatmulOp, Op};

impl<'t, T: Float> Var<'t, T> {
    /// Matrix product `self · other` of 2-d variables.
    ///
    /// # Panics
    /// `matmul: [2, 4] x [8, 2]: inner dimensions 4 and 8 differ`.
    #[track_caller]
    pub fn matmul(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.matmul_ex(other, false, false)
    }

    /// `self · otherᵀ` without materialising the transpose (the `x·Wᵀ` of a linear layer).
    #[track_caller]
    pub fn matmul_t(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.matmul_ex(other, false, true)
    }

    /// `op(self) · op(other)`, each operand optionally read as transposed.
    #[track_caller]
    pub fn matmul_ex(&self, other: impl Borrow<Var<'t, T>>, ta: bool, tb: bool) -> Var<'t, T> {
        let other = other.borrow();
        self.check_same_tape(other, "matmul");
        Var::new(
            self.tape,
            self.tape.record(Op::Matmul(MatmulOp::Matmul { ta, tb }), &[self.id, other.id], Location::caller()),
        )
    }

    /// `self · weightᵀ + bias` in one node (self `[batch, in]`, weight `[out, in]`, bias
    /// `[out]`), as `torch.nn.functional.linear`.
    #[track_caller]
    pub fn linear(&self, weight: impl Borrow<Var<'t, T>>, bias: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.linear_op(weight.borrow(), bias.borrow(), false)
    }

    /// `relu(self · weightᵀ + bias)` in one node: the linear layer and its activation
    /// fused (one pass and one buffer less forward, one node less backward).
    #[track_caller]
    pub fn linear_relu(&self, weight: impl Borrow<Var<'t, T>>, bias: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.linear_op(weight.borrow(), bias.borrow(), true)
    }

    #[track_caller]
    fn linear_op(&self, w: &Var<'t, T>, b: &Var<'t, T>, relu: bool) -> Var<'t, T> {
        let name = if relu { "linear_relu" } else { "linear" };
        self.check_same_tape(w, name);
        self.check_same_tape(b, name);
        let op = Op::Matmul(MatmulOp::Linear { relu });
        Var::new(self.tape, self.tape.record(op, &[self.id, w.id, b.id], Location::caller()))
    }
}
