//! `Embedding`: a lookup table of learned rows, as `torch.nn.Embedding`.

use std::fmt;

use tapegrad::{Float, Param, Tape, Tensor, TorchRng, Var};

use crate::Module;

/// A table of `num_embeddings` rows of `embedding_dim` values; its forward pass maps
/// indices of any shape (integer values in `0..num_embeddings`, as the element type) to
/// their rows, `indices.shape + [embedding_dim]`. Its weight is named `weight`, as
/// PyTorch's.
#[derive(Clone, Copy, Debug)]
pub struct Embedding {
    /// Weight `[num_embeddings, embedding_dim]`.
    pub weight: Param,
    /// Number of rows `V`.
    pub num_embeddings: usize,
    /// Row length `D`.
    pub embedding_dim: usize,
}

impl Embedding {
    /// A table with PyTorch's default initialisation, `normal_(0, 1)` drawn from `rng`:
    /// bit for bit `nn.Embedding(V, D)` after the same `torch.manual_seed` (float32 values,
    /// widened for `f64` as `nn.Embedding(V, D).double()`; see
    /// [`TorchRng::fill_normal_f32`] for both of torch's paths).
    ///
    /// ```
    /// use tapegrad::{Tape, Tensor, TorchRng};
    /// use tapegrad_nn::{Embedding, Module};
    /// let tape = Tape::<f32>::new();
    /// let emb = Embedding::new(&tape, 8, 4, &mut TorchRng::manual_seed(2));
    /// let rows = emb.forward(tape.input(Tensor::new(vec![3.0, 3.0, 0.0], &[3])));
    /// assert_eq!(rows.shape().as_slice(), &[3, 4]);
    /// ```
    ///
    /// # Panics
    /// If either size is 0.
    pub fn new<T: Float>(tape: &Tape<T>, num_embeddings: usize, embedding_dim: usize, rng: &mut TorchRng) -> Self {
        assert!(
            num_embeddings > 0 && embedding_dim > 0,
            "Embedding: sizes {num_embeddings} x {embedding_dim} must be positive"
        );
        let mut w = vec![0f32; num_embeddings * embedding_dim];
        rng.fill_normal_f32(&mut w, 0.0, 1.0);
        let w =
            Tensor::new(w.into_iter().map(|v| T::from_f64(f64::from(v))).collect(), &[num_embeddings, embedding_dim]);
        Self::from_tensor(tape, w)
    }

    /// A table with a given weight `[V, D]`.
    ///
    /// # Panics
    /// If the weight is not a matrix.
    pub fn from_tensor<T: Float>(tape: &Tape<T>, weight: Tensor<T>) -> Self {
        assert!(weight.ndim() == 2, "Embedding: weight {:?} is not a matrix [V, D]", weight.shape());
        let (num_embeddings, embedding_dim) = (weight.shape()[0], weight.shape()[1]);
        Embedding { weight: tape.parameter(weight), num_embeddings, embedding_dim }
    }
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Embedding({}, {})", self.num_embeddings, self.embedding_dim)
    }
}

impl<T: Float> Module<T> for Embedding {
    /// The rows named by the indices `x` (see [`Var::embedding`]).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.tape().var(self.weight).embedding(x)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        vec![("weight".into(), self.weight)]
    }
}
