//! Fused losses as methods of [`Var`] ([`crate::ops::loss`]).

use std::borrow::Borrow;
use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::loss::{is_index, nll_shape};
use crate::ops::{LossOp, Nll, Op, Reduction, DEFAULT_IGNORE_INDEX};

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
    /// values of the element type; targets of -100 (PyTorch's default `ignore_index`) are
    /// ignored. Targets get no gradient.
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is neither an integer in `0..C` nor -100.
    #[track_caller]
    pub fn nll_loss_sum(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.nll_loss(target, Reduction::Sum, DEFAULT_IGNORE_INDEX)
    }

    /// `-mean_i self[i, t_i]` in one node (a 0-d result), as
    /// `torch.nn.functional.nll_loss(self, target)`: the mean over the targets that are not
    /// -100 (NaN when there are none).
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is neither an integer in `0..C` nor -100.
    #[track_caller]
    pub fn nll_loss_mean(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.nll_loss(target, Reduction::Mean, DEFAULT_IGNORE_INDEX)
    }

    /// `torch.nn.functional.nll_loss(self, target, ignore_index=ignore_index,
    /// reduction=...)` in one node: the terms `-self[i, t_i]` (0 where `t_i` is
    /// `ignore_index`), their sum, or their mean over the targets not ignored (0/0 = NaN
    /// when every target is ignored; the gradient is then all zeros, as PyTorch's).
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is neither an integer in `0..C` nor
    /// `ignore_index`.
    #[track_caller]
    pub fn nll_loss(&self, target: impl Borrow<Var<'t, T>>, reduction: Reduction, ignore_index: i64) -> Var<'t, T> {
        let (target, loc) = (target.borrow(), Location::caller());
        self.check_same_tape(target, "nll_loss");
        let (shape, tshape) = (self.shape(), target.shape());
        if let Err(e) = nll_shape(&shape, &tshape, reduction) {
            panic!("{e} (at {})", Location::caller());
        }
        let classes = shape[shape.len() - 1];
        let nll = Nll { reduction, ignore_index };
        target.with_value(|t| {
            if let Some(&bad) = t.iter().find(|&&v| !nll.ignores(v) && !is_index(v.to_f64(), classes)) {
                panic!("nll_loss: target {bad} is not a class index in 0..{classes} nor the ignore_index {ignore_index} (at {loc})");
            }
        });
        Var::new(self.tape, self.tape.record(Op::Loss(LossOp::Nll(nll)), &[self.id, target.id], Location::caller()))
    }

    /// `torch.nn.functional.cross_entropy(self, target, ignore_index=ignore_index,
    /// reduction=...)` for class indices: `nll_loss(log_softmax(self, class axis))`, two
    /// nodes, where the class axis is the last of `[N, C]` (or the only one of `[C]`).
    ///
    /// # Panics
    /// As [`Var::nll_loss`].
    #[track_caller]
    pub fn cross_entropy(
        &self,
        target: impl Borrow<Var<'t, T>>,
        reduction: Reduction,
        ignore_index: i64,
    ) -> Var<'t, T> {
        let class_axis = if self.shape().len() == 1 { 0 } else { 1 };
        self.log_softmax(class_axis).nll_loss(target, reduction, ignore_index)
    }
}
