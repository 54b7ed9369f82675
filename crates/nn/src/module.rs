//! Modules: the `Module` trait and `Buffer`, `Linear`, the activations `ReLU`, `Tanh`,
//! `Sigmoid`; `Sequential` is in `sequential.rs`, the normalisation layers in `norm.rs`.

use std::cell::{Cell, RefCell};
use std::fmt;

use tapegrad::rng::kaiming_uniform_bound;
use tapegrad::{Float, Param, Tape, Tensor, TorchRng, Var};

/// A layer (or network) whose parameters live on a tape.
pub trait Module<T: Float>: fmt::Display {
    /// Records the forward pass of `x` on `x`'s tape. Shape errors name the caller's line
    /// (`#[track_caller]` here applies to every implementation, through `dyn` calls too).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T>;

    /// Parameters with their names, in PyTorch's `named_parameters()` order.
    fn named_parameters(&self) -> Vec<(String, Param)>;

    /// Parameters in PyTorch's `parameters()` order.
    fn parameters(&self) -> Vec<Param> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// `relu(self.forward(x))` as one fused op, if this module has one (see
    /// [`Sequential`](crate::Sequential), which uses it for each module followed by a [`ReLU`]).
    #[track_caller]
    fn forward_relu<'t>(&self, _x: Var<'t, T>) -> Option<Var<'t, T>> {
        None
    }

    /// Whether this module is a ReLU.
    fn is_relu(&self) -> bool {
        false
    }

    /// Buffers with their names (PyTorch's `named_buffers()` order): state that forward
    /// may update, saved and loaded with the parameters, never trained. None by default.
    fn named_buffers(&self) -> Vec<(String, &Buffer<T>)> {
        Vec::new()
    }

    /// Switches training mode (`true`, the default: PyTorch's `model.train()`) or
    /// evaluation mode (`false`: `model.eval()`). Only modules that behave differently
    /// (batch normalisation) keep it; containers pass it to their children.
    fn set_training(&mut self, _training: bool) {}
}

/// A module's buffer (PyTorch's `register_buffer`): state that forward updates in training
/// mode, saved and loaded with the parameters under its state-dict name, never trained.
#[derive(Debug)]
pub enum Buffer<T: Float> {
    /// A tensor of the tape's element type (`running_mean`, `running_var`).
    Float(RefCell<Tensor<T>>),
    /// A 0-d 64-bit integer (`num_batches_tracked`, int64 in PyTorch's state dict).
    Int64(Cell<i64>),
}

impl<T: Float> Buffer<T> {
    /// The shape (`[]` for an integer).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Buffer::Float(t) => t.borrow().shape().to_vec(),
            Buffer::Int64(_) => Vec::new(),
        }
    }

    /// The values as `f64` (exact for `f32`, `f64` and counts below 2^53).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Buffer::Float(t) => t.borrow().data().iter().map(|v| v.to_f64()).collect(),
            Buffer::Int64(c) => vec![c.get() as f64],
        }
    }
}

/// `y = x Wᵀ + b` with `W` stored `[out, in]`, for `x` `[batch, in]` or `[..., in]` (as
/// `torch.nn.Linear`).
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// Weight `[out, in]`.
    pub weight: Param,
    /// Bias `[out]`, if the layer has one.
    pub bias: Option<Param>,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

impl Linear {
    /// A layer with PyTorch's default initialisation: the weight, then the bias, each
    /// uniform on `±1/sqrt(in)` drawn from `rng` (bit for bit `nn.Linear(in, out)` after the
    /// same `torch.manual_seed`).
    ///
    /// # Panics
    /// If `in_features` is 0.
    pub fn new<T: Float>(tape: &Tape<T>, in_features: usize, out_features: usize, rng: &mut TorchRng) -> Self {
        Self::with_bias(tape, in_features, out_features, true, rng)
    }

    /// As [`Linear::new`], with or without a bias (`nn.Linear(in, out, bias=False)` draws
    /// the weight only, so the generator moves on less).
    ///
    /// # Panics
    /// If `in_features` is 0.
    pub fn with_bias<T: Float>(
        tape: &Tape<T>,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut TorchRng,
    ) -> Self {
        assert!(in_features > 0, "Linear: in_features must be positive");
        let wb = T::from_f64(kaiming_uniform_bound(in_features));
        let w = Tensor::uniform(&[out_features, in_features], -wb, wb, rng);
        if !bias {
            return Linear { weight: tape.parameter(w), bias: None, in_features, out_features };
        }
        let bb = T::from_f64(1.0 / (in_features as f64).sqrt());
        let b = Tensor::uniform(&[out_features], -bb, bb, rng);
        Self::from_tensors(tape, w, b)
    }

    /// A layer with given weight `[out, in]` and bias `[out]`.
    ///
    /// # Panics
    /// If the shapes do not fit.
    pub fn from_tensors<T: Float>(tape: &Tape<T>, weight: Tensor<T>, bias: Tensor<T>) -> Self {
        assert!(
            weight.ndim() == 2 && bias.shape() == [weight.shape()[0]],
            "Linear: weight {:?} and bias {:?} do not fit",
            weight.shape(),
            bias.shape()
        );
        let (out_features, in_features) = (weight.shape()[0], weight.shape()[1]);
        Linear { weight: tape.parameter(weight), bias: Some(tape.parameter(bias)), in_features, out_features }
    }
}

impl fmt::Display for Linear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bias = if self.bias.is_some() { "True" } else { "False" };
        write!(f, "Linear(in_features={}, out_features={}, bias={bias})", self.in_features, self.out_features)
    }
}

impl<T: Float> Module<T> for Linear {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let (rows, shape) = as_rows(x, self.out_features);
        let y = match self.bias {
            Some(b) => rows.linear(tape.var(self.weight), tape.var(b)),
            None => rows.matmul_t(tape.var(self.weight)),
        };
        from_rows(y, shape)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = vec![("weight".into(), self.weight)];
        out.extend(self.bias.map(|b| ("bias".into(), b)));
        out
    }

    #[track_caller]
    fn forward_relu<'t>(&self, x: Var<'t, T>) -> Option<Var<'t, T>> {
        let tape = x.tape();
        // not Option::map: a closure would hide the caller's line
        let b = self.bias?;
        let (rows, shape) = as_rows(x, self.out_features);
        Some(from_rows(rows.linear_relu(tape.var(self.weight), tape.var(b)), shape))
    }
}

/// `x` `[..., in]` as a matrix of rows `[n, in]` (as `nn.Linear` takes any leading
/// dimensions), with the result's shape `[..., out]` when `x` had more than two dimensions.
#[track_caller]
fn as_rows<T: Float>(x: Var<'_, T>, out: usize) -> (Var<'_, T>, Option<tapegrad::Shape>) {
    let mut shape = x.shape();
    if shape.len() <= 2 {
        return (x, None);
    }
    let cols = shape[shape.len() - 1];
    let rows = x.reshape(&[shape.iter().product::<usize>() / cols.max(1), cols]);
    *shape.last_mut().expect("more than two dimensions") = out;
    (rows, Some(shape))
}

/// The rows `y` back in the shape [`as_rows`] gave (unchanged without one).
#[track_caller]
fn from_rows<T: Float>(y: Var<'_, T>, shape: Option<tapegrad::Shape>) -> Var<'_, T> {
    shape.map_or(y, |s| y.reshape(&s))
}

/// `max(x, 0)` elementwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReLU;

impl fmt::Display for ReLU {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReLU()")
    }
}

impl<T: Float> Module<T> for ReLU {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.relu()
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }

    fn is_relu(&self) -> bool {
        true
    }
}

/// `tanh(x)` elementwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tanh;

impl fmt::Display for Tanh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tanh()")
    }
}

impl<T: Float> Module<T> for Tanh {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.tanh()
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }
}

/// `1 / (1 + e^-x)` elementwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigmoid;

impl fmt::Display for Sigmoid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sigmoid()")
    }
}

impl<T: Float> Module<T> for Sigmoid {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.sigmoid()
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }
}

/// The activation between the layers of [`Sequential::mlp_with`](crate::Sequential::mlp_with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// [`ReLU`] (fused with the layer before it).
    #[default]
    ReLU,
    /// [`Tanh`].
    Tanh,
    /// [`Sigmoid`].
    Sigmoid,
}
