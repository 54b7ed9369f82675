//! `Flatten`: dimensions merged into one, as `torch.nn.Flatten(start_dim)`.

use std::fmt;

use tapegrad::{Float, Param, Var};

use crate::Module;

/// Merges the dimensions from `start_dim` to the last into one (`torch.nn.Flatten(start_dim,
/// -1)`): a character model's `[B, T, context, D]` embeddings become `[B, T, context·D]`.
/// No parameters; the values are not moved, only the shape changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// The first dimension merged.
    pub start_dim: usize,
}

impl Flatten {
    /// Merges dimensions `start_dim..` into one.
    pub fn new(start_dim: usize) -> Self {
        Flatten { start_dim }
    }
}

impl fmt::Display for Flatten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flatten(start_dim={}, end_dim=-1)", self.start_dim)
    }
}

impl<T: Float> Module<T> for Flatten {
    /// `x` with its dimensions from `start_dim` on merged.
    ///
    /// # Panics
    /// If `x` has no dimension `start_dim`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            self.start_dim < shape.len(),
            "flatten: no dimension {} in {:?} (at {})",
            self.start_dim,
            shape.as_slice(),
            std::panic::Location::caller()
        );
        let mut s = tapegrad::shape::from_dims(&shape[..self.start_dim]);
        s.push(shape[self.start_dim..].iter().product());
        x.reshape(&s)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }
}
