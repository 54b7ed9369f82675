//! Losses: the [`Loss`] trait, [`L1Loss`] and [`MSELoss`] (regression), and
//! [`CrossEntropyLoss`] (classification).

use tapegrad::{Float, Var};

/// How a loss reduces its elementwise terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Sum over all elements.
    Sum,
    /// Mean over all elements.
    Mean,
}

/// A loss: a 0-d value of a prediction against a target, recorded on their tape. Any loss
/// can drive [`crate::Accumulation`].
pub trait Loss<T: Float> {
    /// The loss of `prediction` against `target` (same shapes, or shapes that broadcast).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T>;
}

/// `reduction(|prediction - target|)`, as `torch.nn.L1Loss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Loss {
    /// The reduction.
    pub reduction: Reduction,
}

impl L1Loss {
    /// An L1 loss with the given reduction.
    pub fn new(reduction: Reduction) -> Self {
        L1Loss { reduction }
    }

    /// The loss of `prediction` against `target` (same shapes).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        if prediction.same_shape(&target) {
            // one fused node, the same value as the composition below
            return match self.reduction {
                Reduction::Sum => prediction.l1_loss_sum(target),
                Reduction::Mean => prediction.l1_loss_mean(target),
            };
        }
        let d = (prediction - target).abs();
        match self.reduction {
            Reduction::Sum => d.sum(),
            Reduction::Mean => d.mean(),
        }
    }
}

impl<T: Float> Loss<T> for L1Loss {
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        L1Loss::forward(self, prediction, target)
    }
}

/// `reduction((prediction - target)²)`, as `torch.nn.MSELoss`.
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// use tapegrad_nn::{MSELoss, Reduction};
/// let tape = Tape::<f32>::new();
/// let y = tape.leaf(&Tensor::new(vec![1.0, 3.0], &[2]), true);
/// let t = tape.input(Tensor::new(vec![0.0, 1.0], &[2]));
/// let loss = MSELoss::new(Reduction::Mean).forward(y, t);
/// assert_eq!(loss.item(), 2.5); // (1 + 4) / 2
/// loss.backward();
/// assert_eq!(y.grad().unwrap().data(), &[1.0, 2.0]); // 2 (y - t) / n
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MSELoss {
    /// The reduction.
    pub reduction: Reduction,
}

impl MSELoss {
    /// A mean-squared-error loss with the given reduction.
    pub fn new(reduction: Reduction) -> Self {
        MSELoss { reduction }
    }

    /// The loss of `prediction` against `target`.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        // d = y - t; Σ d·d (or the mean): PyTorch's forward `diff * diff`, backward 2·d·dy
        let d = prediction - target;
        let sq = d * d;
        match self.reduction {
            Reduction::Sum => sq.sum(),
            Reduction::Mean => sq.mean(),
        }
    }
}

impl<T: Float> Loss<T> for MSELoss {
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        MSELoss::forward(self, prediction, target)
    }
}

/// Cross-entropy of logits against class indices, as `torch.nn.CrossEntropyLoss`
/// (no class weights, no label smoothing): `-log_softmax(logits)[i, t_i]`, summed or
/// averaged over the `N` samples.
///
/// It is `nll_loss(log_softmax(logits, 1), target)`, two nodes: the log-softmax subtracts
/// each row's maximum first, so large logits (`|x|` of 1e4) neither overflow nor lose the
/// answer, and its fused gradient is `softmax - onehot` (over `N` for a mean) in two passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossEntropyLoss {
    /// The reduction.
    pub reduction: Reduction,
}

impl CrossEntropyLoss {
    /// A cross-entropy loss with the given reduction.
    pub fn new(reduction: Reduction) -> Self {
        CrossEntropyLoss { reduction }
    }

    /// The loss of `logits` (`[N, C]`, or `[C]` for one sample) against `target`, the
    /// class indices as values of the element type (`[N]`, or `[]`).
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is not an integer in `0..C`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, logits: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        let class_axis = if logits.shape().len() == 1 { 0 } else { 1 };
        let logp = logits.log_softmax(class_axis);
        match self.reduction {
            Reduction::Sum => logp.nll_loss_sum(target),
            Reduction::Mean => logp.nll_loss_mean(target),
        }
    }
}

impl<T: Float> Loss<T> for CrossEntropyLoss {
    /// `prediction` holds the logits, `target` the class indices (see
    /// [`CrossEntropyLoss::forward`]).
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        CrossEntropyLoss::forward(self, prediction, target)
    }
}

/// `Default` of each loss: PyTorch's default, `reduction='mean'`.
macro_rules! mean_by_default {
    ($($loss:ident),*) => {$(
        impl Default for $loss {
            /// With [`Reduction::Mean`], as PyTorch's default.
            fn default() -> Self {
                $loss::new(Reduction::Mean)
            }
        }
    )*};
}

mean_by_default!(L1Loss, MSELoss, CrossEntropyLoss);
