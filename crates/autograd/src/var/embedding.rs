//! The embedding lookup as a method of [`Var`] ([`crate::ops::embedding`]).

use std::borrow::Borrow;
use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::embedding::embedding_shape;
use crate::ops::loss::is_index;
use crate::ops::{EmbeddingOp, Op};

impl<'t, T: Float> Var<'t, T> {
    /// The rows of `self` (a weight `[V, D]`) named by `indices` (any shape, integer values
    /// in `0..V`): a result of shape `indices.shape + [D]`, as
    /// `torch.nn.functional.embedding(indices, self)`. The weight's gradient adds up the
    /// result's gradient rows at their indices (repeated indices add up); indices get none.
    ///
    /// # Panics
    /// If `self` is not a matrix, or an index is not an integer in `0..V` (the message names
    /// the index, `V` and the caller's line).
    #[track_caller]
    pub fn embedding(&self, indices: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        let (indices, loc) = (indices.borrow(), Location::caller());
        self.check_same_tape(indices, "embedding");
        let shape = self.shape();
        if let Err(e) = embedding_shape(&shape, &indices.shape()) {
            panic!("{e} (at {})", Location::caller());
        }
        let rows = shape[0];
        indices.with_value(|ix| {
            if let Some(&bad) = ix.iter().find(|&&v| !is_index(v.to_f64(), rows)) {
                panic!("embedding: index {bad} is outside 0..{rows} (at {loc})");
            }
        });
        let op = Op::Embedding(EmbeddingOp::Lookup);
        Var::new(self.tape, self.tape.record(op, &[self.id, indices.id], Location::caller()))
    }
}
