//! The L1 loss.

use tapegrad::{Float, Var};

/// How a loss reduces its elementwise terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Sum over all elements.
    Sum,
    /// Mean over all elements.
    Mean,
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
