//! `Sequential`, with `mlp`, `mlp_with` and `mlp_norm` for multilayer perceptrons (with
//! the normalisation layers of `norm.rs` between the hidden layers).

use std::fmt;

use tapegrad::{Float, Param, Tape, TorchRng, Var};

use crate::module::{Activation, Buffer, Linear, Module, ReLU, Sigmoid, Tanh};
use crate::norm::{BatchNorm1d, LayerNorm};

/// Modules applied in order; child `i`'s parameters are named `"{i}.{name}"`.
///
/// A module followed by a [`ReLU`] runs as one fused node when it has one
/// ([`Module::forward_relu`]: `Linear` records `linear_relu`), which saves a pass over the
/// activations and a node in each direction; the numbers are the same.
pub struct Sequential<T: Float> {
    layers: Vec<Box<dyn Module<T>>>,
}

impl<T: Float> Sequential<T> {
    /// From a list of modules.
    pub fn new(layers: Vec<Box<dyn Module<T>>>) -> Self {
        Sequential { layers }
    }

    /// The multilayer perceptron `Linear(s0, s1), ReLU, Linear(s1, s2), ..., Linear` (no
    /// ReLU after the last), initialised in order from `rng` as PyTorch would:
    /// [`Sequential::mlp_with`] and [`Activation::ReLU`].
    ///
    /// # Panics
    /// With fewer than two sizes, or a zero size.
    pub fn mlp(tape: &Tape<T>, sizes: &[usize], rng: &mut TorchRng) -> Self {
        Self::mlp_with(tape, sizes, Activation::ReLU, rng)
    }

    /// The multilayer perceptron with `activation` between the linear layers (none after
    /// the last), initialised in order from `rng` as PyTorch would.
    ///
    /// ```
    /// use tapegrad::{Tape, TorchRng};
    /// use tapegrad_nn::{Activation, Sequential};
    /// let tape = Tape::<f32>::new();
    /// let net = Sequential::mlp_with(&tape, &[4, 8, 2], Activation::Tanh, &mut TorchRng::manual_seed(0));
    /// assert_eq!(net.to_string().lines().nth(2).unwrap().trim(), "(1): Tanh()");
    /// ```
    ///
    /// # Panics
    /// With fewer than two sizes, or a zero size.
    pub fn mlp_with(tape: &Tape<T>, sizes: &[usize], activation: Activation, rng: &mut TorchRng) -> Self {
        Self::perceptron(tape, sizes, activation, Norm::None, rng)
    }

    /// The multilayer perceptron of [`Sequential::mlp`] with a normalisation layer after
    /// every hidden Linear, before its ReLU: `Linear, Norm, ReLU, ..., Linear`. With
    /// [`Norm::Batch`] the hidden Linears have no bias (the batch mean cancels it: its
    /// gradient would be rounding noise), as PyTorch practice has it. [`Norm::None`] is
    /// [`Sequential::mlp`].
    ///
    /// # Panics
    /// With fewer than two sizes, or a zero size.
    pub fn mlp_norm(tape: &Tape<T>, sizes: &[usize], norm: Norm, rng: &mut TorchRng) -> Self {
        Self::perceptron(tape, sizes, Activation::ReLU, norm, rng)
    }

    /// `Linear, [Norm], activation, ..., Linear`: [`Sequential::mlp_with`] and
    /// [`Sequential::mlp_norm`] in one.
    fn perceptron(tape: &Tape<T>, sizes: &[usize], activation: Activation, norm: Norm, rng: &mut TorchRng) -> Self {
        assert!(sizes.len() >= 2, "mlp: need at least two layer sizes, got {sizes:?}");
        assert!(sizes.iter().all(|&s| s > 0), "mlp: layer sizes must be positive, got {sizes:?}");
        let mut layers: Vec<Box<dyn Module<T>>> = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let hidden = i + 2 < sizes.len();
            let bias = !(hidden && norm == Norm::Batch);
            layers.push(Box::new(Linear::with_bias(tape, w[0], w[1], bias, rng)));
            if hidden {
                match norm {
                    Norm::None => {}
                    Norm::Batch => layers.push(Box::new(BatchNorm1d::new(tape, w[1]))),
                    Norm::Layer => layers.push(Box::new(LayerNorm::new(tape, w[1]))),
                }
                layers.push(match activation {
                    Activation::ReLU => Box::new(ReLU),
                    Activation::Tanh => Box::new(Tanh),
                    Activation::Sigmoid => Box::new(Sigmoid),
                });
            }
        }
        Sequential { layers }
    }

    /// Number of child modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Float> fmt::Display for Sequential<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sequential(")?;
        for (i, l) in self.layers.iter().enumerate() {
            writeln!(f, "  ({i}): {l}")?;
        }
        write!(f, ")")
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let mut h = x;
        let mut i = 0;
        while i < self.layers.len() {
            let layer = &self.layers[i];
            if self.layers.get(i + 1).is_some_and(|next| next.is_relu()) {
                if let Some(y) = layer.forward_relu(h) {
                    h = y;
                    i += 2;
                    continue;
                }
            }
            h = layer.forward(h);
            i += 1;
        }
        h
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            for (name, p) in l.named_parameters() {
                out.push((format!("{i}.{name}"), p));
            }
        }
        out
    }

    fn named_buffers(&self) -> Vec<(String, &Buffer<T>)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            for (name, b) in l.named_buffers() {
                out.push((format!("{i}.{name}"), b));
            }
        }
        out
    }

    fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }
}

/// The normalisation layer of [`Sequential::mlp_norm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Norm {
    /// None: `Linear, ReLU, ..., Linear`.
    #[default]
    None,
    /// [`BatchNorm1d`] after every hidden (bias-free) Linear.
    Batch,
    /// [`LayerNorm`] after every hidden Linear.
    Layer,
}

impl Norm {
    /// The command-line name: `none`, `batch` or `layer`.
    pub fn name(self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::Batch => "batch",
            Norm::Layer => "layer",
        }
    }

    /// The norm of a command-line name (`none`, `batch`, `layer`).
    pub fn from_name(name: &str) -> Option<Norm> {
        [Norm::None, Norm::Batch, Norm::Layer].into_iter().find(|n| n.name() == name)
    }
}
