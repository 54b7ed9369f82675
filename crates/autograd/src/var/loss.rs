//! Fused losses as methods of [`Var`] ([`crate::ops::loss`]).

use std::borrow::Borrow;
use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{LossOp, Op};

impl<'t, T: Float> Var<'t, T> {
    /// `Σ |self - target|` in one node (a 0-d result): the value of
    /// `(self - target).abs().sum()`, bit for bit, recorded and differentiated as one op.
    ///
    /// # Panics
    /// If the shapes differ (the composition broadcasts; this does not).
    #[track_caller]
    pub fn l1_loss_sum(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.l1(target.borrow(), false)
    }

    /// `mean |self - target|` in one node (a 0-d result): the value of
    /// `(self - target).abs().mean()`, bit for bit, as `torch.nn.functional.l1_loss`.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn l1_loss_mean(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.l1(target.borrow(), true)
    }

    #[track_caller]
    fn l1(&self, target: &Var<'t, T>, mean: bool) -> Var<'t, T> {
        self.check_same_tape(target, "l1_loss");
        Var::new(self.tape, self.tape.record(Op::Loss(LossOp::L1 { mean }), &[self.id, target.id], Location::caller()))
    }

    /// `-Σ_i self[i, t_i]` in one node (a 0-d result), as
    /// `torch.nn.functional.nll_loss(self, target, reduction='sum')`: `self` holds
    /// log-probabilities `[N, C]` (or `[C]`), `target` the class indices `[N]` (or `[]`) as
    /// values of the element type. Targets get no gradient.
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is not an integer in `0..C`.
    #[track_caller]
    pub fn nll_loss_sum(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.nll(target.borrow(), false)
    }

    /// `-mean_i self[i, t_i]` in one node (a 0-d result), as
    /// `torch.nn.functional.nll_loss(self, target)` (the mean over the `N` samples).
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is not an integer in `0..C`.
    #[track_caller]
    pub fn nll_loss_mean(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.nll(target.borrow(), true)
    }

    #[track_caller]
    fn nll(&self, target: &Var<'t, T>, mean: bool) -> Var<'t, T> {
        self.check_same_tape(target, "nll_loss");
        let (shape, tshape) = (self.shape(), target.shape());
        if let Err(e) = crate::ops::loss::nll_shape(&shape, &tshape) {
            panic!("{e} (at {})", Location::caller());
        }
        let classes = shape[shape.len() - 1];
        target.with_value(|t| {
            if let Some(&bad) = t.iter().find(|&&v| {
                let v = v.to_f64();
                !(v >= 0.0 && v < classes as f64 && v.fract() == 0.0)
            }) {
                panic!("nll_loss: target {bad} is not a class index in 0..{classes} (at {})", Location::caller());
            }
        });
        Var::new(self.tape, self.tape.record(Op::Loss(LossOp::Nll { mean }), &[self.id, target.id], Location::caller()))
    }
}
