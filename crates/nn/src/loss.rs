//! Losses: the [`Loss`] trait, [`L1Loss`] and [`MSELoss`] (regression), and
//! [`CrossEntropyLoss`] (classification).

pub use tapegrad::Reduction;
use tapegrad::{Float, Var, DEFAULT_IGNORE_INDEX};

/// A loss: a 0-d value of a prediction against a target, recorded on their tape. Any loss
/// can drive [`crate::Accumulation`].
pub trait Loss<T: Float> {
    /// The loss of `prediction` against `target` (same shapes, or shapes that broadcast).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T>;

    /// The sum of the loss terms (this loss with [`Reduction::Sum`]), which
    /// [`crate::LossScale::PerLossTerm`] divides by the whole batch's term count.
    ///
    /// # Panics
    /// As [`Loss::forward`].
    fn forward_sum<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T>;

    /// The number of loss terms `target` holds, which a mean divides by: every element
    /// (the default), or for [`CrossEntropyLoss`] the targets that are not `ignore_index`.
    fn loss_terms(&self, target: &[T]) -> usize {
        target.len()
    }
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
                Reduction::None => (prediction - target).abs(),
            };
        }
        let d = (prediction - target).abs();
        match self.reduction {
            Reduction::Sum => d.sum(),
            Reduction::Mean => d.mean(),
            Reduction::None => d,
        }
    }
}

impl<T: Float> Loss<T> for L1Loss {
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        L1Loss::forward(self, prediction, target)
    }

    #[track_caller]
    fn forward_sum<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        L1Loss::new(Reduction::Sum).forward(prediction, target)
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
            Reduction::None => sq,
        }
    }
}

impl<T: Float> Loss<T> for MSELoss {
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        MSELoss::forward(self, prediction, target)
    }

    #[track_caller]
    fn forward_sum<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        MSELoss::new(Reduction::Sum).forward(prediction, target)
    }
}

/// Cross-entropy of logits against class indices, as `torch.nn.CrossEntropyLoss` (no
/// class weights, no label smoothing): `-log_softmax(logits)[i, t_i]` per sample, with
/// targets equal to `ignore_index` (-100 by default, as PyTorch) skipped: unreduced,
/// summed, or averaged over the targets kept (NaN when every target is ignored, with zero
/// gradients, as PyTorch).
///
/// It is `nll_loss(log_softmax(logits, 1), target)` ([`Var::cross_entropy`]), two nodes:
/// the log-softmax subtracts each row's maximum first, so large logits (`|x|` of 1e4)
/// neither overflow nor lose the answer, and its fused gradient is `softmax - onehot`
/// (over the count for a mean) in two passes.
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// use tapegrad_nn::{CrossEntropyLoss, Reduction};
/// let tape = Tape::<f64>::new();
/// let logits = tape.leaf(&Tensor::zeros(&[3, 4]), true);
/// // the middle row is padding: the mean is over the two other rows
/// let t = tape.input(Tensor::new(vec![1.0, -100.0, 2.0], &[3]));
/// let loss = CrossEntropyLoss::new(Reduction::Mean).forward(logits, t);
/// assert!((loss.item() - 4f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossEntropyLoss {
    /// The reduction.
    pub reduction: Reduction,
    /// Targets equal to this value contribute nothing (padding).
    pub ignore_index: i64,
}

impl CrossEntropyLoss {
    /// A cross-entropy loss with the given reduction and PyTorch's default `ignore_index`
    /// (-100).
    pub fn new(reduction: Reduction) -> Self {
        CrossEntropyLoss { reduction, ignore_index: DEFAULT_IGNORE_INDEX }
    }

    /// This loss with another `ignore_index`.
    pub fn with_ignore_index(self, ignore_index: i64) -> Self {
        CrossEntropyLoss { ignore_index, ..self }
    }

    /// The loss of `logits` (`[N, C]`, or `[C]` for one sample) against `target`, the
    /// class indices as values of the element type (`[N]`, or `[]`): 0-d for a sum or
    /// mean, the targets' shape without reduction. Logits `[..., C]` of more dimensions
    /// take targets `[...]` (the class axis last, as a language model's
    /// `logits.reshape(-1, C)` against `targets.reshape(-1)`; PyTorch itself would want
    /// the classes on axis 1 there).
    ///
    /// # Panics
    /// If the shapes do not fit, or a target is neither an integer in `0..C` nor
    /// `ignore_index`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, logits: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        let shape = logits.shape();
        if shape.len() > 2 && target.shape().as_slice() == &shape[..shape.len() - 1] {
            let classes = shape[shape.len() - 1];
            let n = target.shape().iter().product::<usize>();
            let loss =
                logits.reshape(&[n, classes]).cross_entropy(target.reshape(&[n]), self.reduction, self.ignore_index);
            return if self.reduction == Reduction::None { loss.reshape(&target.shape()) } else { loss };
        }
        logits.cross_entropy(target, self.reduction, self.ignore_index)
    }
}

impl<T: Float> Loss<T> for CrossEntropyLoss {
    /// `prediction` holds the logits, `target` the class indices (see
    /// [`CrossEntropyLoss::forward`]).
    #[track_caller]
    fn forward<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        CrossEntropyLoss::forward(self, prediction, target)
    }

    #[track_caller]
    fn forward_sum<'t>(&self, prediction: Var<'t, T>, target: Var<'t, T>) -> Var<'t, T> {
        CrossEntropyLoss { reduction: Reduction::Sum, ..*self }.forward(prediction, target)
    }

    /// The targets that are not `ignore_index`.
    fn loss_terms(&self, target: &[T]) -> usize {
        tapegrad::ops::Nll { reduction: self.reduction, ignore_index: self.ignore_index }.count(target)
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
