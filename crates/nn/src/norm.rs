//! Normalisation layers: [`BatchNorm1d`] (statistics over the batch, running statistics
//! kept as [`Buffer`]s) and [`LayerNorm`] (statistics over each sample's features).
//!
//! Both are compositions of the tape's differentiable ops (mean, subtraction, square root,
//! division, broadcasting), so their gradients are differentiable again (gradgradcheck)
//! without a backward rule of their own.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;

use tapegrad::{Float, Param, Tape, Tensor, Var};

use crate::module::{Buffer, Module};
use crate::repr::py_float;

/// The affine parameters of a normalisation layer: weight 1, bias 0 (PyTorch's init; no
/// random numbers drawn).
fn affine<T: Float>(tape: &Tape<T>, n: usize) -> (Param, Param) {
    (tape.parameter(Tensor::ones(&[n])), tape.parameter(Tensor::zeros(&[n])))
}

/// `(xc / sqrt(var + eps)) * weight + bias`, the normalisation shared by both layers
/// (`xc` the centred input, `var` broadcast against it).
#[track_caller]
fn scale_shift<'t, T: Float>(
    xc: Var<'t, T>,
    var: Var<'t, T>,
    eps: f64,
    weight: Var<'t, T>,
    bias: Var<'t, T>,
) -> Var<'t, T> {
    // d/dxc (xc / s) = 1 / s ; d/ds = -xc / s^2 ; s = sqrt(var + eps)
    let y = xc / var.add_scalar(T::from_f64(eps)).sqrt();
    y * weight + bias
}

/// Batch normalisation of `x` `[N, C]` with its own statistics (training mode, no running
/// statistics): `(x - mean) / sqrt(var + eps) * weight + bias`, mean and biased variance
/// over the rows, `weight` and `bias` `[C]` (`torch.nn.functional.batch_norm(x, None, None,
/// weight, bias, training=True, eps=eps)`). Differentiable twice.
///
/// # Panics
/// If the shapes do not fit (the message names the op that rejects them).
#[track_caller]
pub fn batch_norm<'t, T: Float>(x: Var<'t, T>, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> Var<'t, T> {
    let xc = x - x.mean_axis(0, true);
    let var = (xc * xc).mean_axis(0, true);
    scale_shift(xc, var, eps, weight, bias)
}

/// Layer normalisation of `x` over its last dimension D: `(x - mean) / sqrt(var + eps) *
/// weight + bias`, mean and biased variance over each row's D features, `weight` and `bias`
/// `[D]` (`torch.nn.functional.layer_norm(x, (D,), weight, bias, eps)`). Differentiable
/// twice.
///
/// # Panics
/// If `x` is 0-d or the shapes do not fit.
#[track_caller]
pub fn layer_norm<'t, T: Float>(x: Var<'t, T>, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> Var<'t, T> {
    let last =
        x.shape().len().checked_sub(1).unwrap_or_else(|| panic!("layer_norm: a 0-d input (at {})", Location::caller()));
    let xc = x - x.mean_axis(last, true);
    let var = (xc * xc).mean_axis(last, true);
    scale_shift(xc, var, eps, weight, bias)
}

/// `torch.nn.BatchNorm1d(num_features)` on inputs `[N, C]`, with PyTorch's defaults: eps
/// 1e-5, momentum 0.1, affine (weight 1, bias 0), running statistics tracked.
///
/// In training mode (the default) each forward normalises every feature with the mean
/// and the biased variance of its batch, and updates `running_mean` and `running_var`
/// (with the unbiased variance) by `r = (1 - momentum) r + momentum x`, and counts the
/// call in `num_batches_tracked`. The running statistics are computed as PyTorch's CPU
/// kernel computes them on one thread (a float sum per feature, divided in double; squared
/// deviations added with fused multiply-adds; the unbiased variance's update summed in
/// double), so they match it bit for bit. In evaluation mode
/// ([`Module::set_training`]`(false)`) forward normalises with the running statistics and
/// updates nothing.
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// use tapegrad_nn::{BatchNorm1d, Module};
///
/// let tape = Tape::<f32>::new();
/// let bn = BatchNorm1d::new(&tape, 2);
/// let x = tape.input(Tensor::new(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]));
/// let y = bn.forward(x).value();
/// assert!((y.data()[0] + 1.0).abs() < 1e-4 && (y.data()[3] - 1.0).abs() < 1e-4);
/// assert_eq!(bn.running_mean().data(), &[0.2, 2.0]);
/// assert_eq!(bn.num_batches_tracked(), 1);
/// ```
#[derive(Debug)]
pub struct BatchNorm1d<T: Float> {
    /// Weight (scale) `[C]`.
    pub weight: Param,
    /// Bias (shift) `[C]`.
    pub bias: Param,
    /// Features C.
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the new batch in the running statistics.
    pub momentum: f64,
    running_mean: Buffer<T>,
    running_var: Buffer<T>,
    num_batches_tracked: Buffer<T>,
    training: bool,
}

impl<T: Float> BatchNorm1d<T> {
    /// A layer over `num_features` features, in training mode, with running mean 0 and
    /// running variance 1.
    ///
    /// # Panics
    /// If `num_features` is 0.
    pub fn new(tape: &Tape<T>, num_features: usize) -> Self {
        assert!(num_features > 0, "BatchNorm1d: num_features must be positive");
        let (weight, bias) = affine(tape, num_features);
        BatchNorm1d {
            weight,
            bias,
            num_features,
            eps: 1e-5,
            momentum: 0.1,
            running_mean: Buffer::Float(RefCell::new(Tensor::zeros(&[num_features]))),
            running_var: Buffer::Float(RefCell::new(Tensor::ones(&[num_features]))),
            num_batches_tracked: Buffer::Int64(Cell::new(0)),
            training: true,
        }
    }

    /// A copy of the running mean.
    pub fn running_mean(&self) -> Tensor<T> {
        float(&self.running_mean).borrow().clone()
    }

    /// A copy of the running variance.
    pub fn running_var(&self) -> Tensor<T> {
        float(&self.running_var).borrow().clone()
    }

    /// The number of training-mode forward calls (or the loaded value).
    pub fn num_batches_tracked(&self) -> i64 {
        match &self.num_batches_tracked {
            Buffer::Int64(c) => c.get(),
            Buffer::Float(_) => unreachable!("num_batches_tracked is an integer"),
        }
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The running statistics' update from the batch `x` (`[N, C]`, row-major), in
    /// PyTorch's roundings (see the type's documentation).
    fn update_running_stats(&self, x: &[T], n: usize) {
        let c = self.num_features;
        let m = T::from_f64(self.momentum);
        let keep = T::ONE - m;
        let (mut rm, mut rv) = (float(&self.running_mean).borrow_mut(), float(&self.running_var).borrow_mut());
        for (f, (rm, rv)) in rm.data_mut().iter_mut().zip(rv.data_mut()).enumerate() {
            let column = || x[f..].iter().step_by(c).take(n);
            // mean = (sum in T) / n, divided in double; var_sum = sum of (x - mean)^2 by FMAs
            let sum = column().fold(T::ZERO, |s, &v| s + v);
            let mean = T::from_f64(sum.to_f64() / n as f64);
            let var_sum = column().fold(T::ZERO, |s, &v| (v - mean).mul_add(v - mean, s));
            let unbiased = var_sum / T::from_usize(n - 1);
            // r_mean = m mean + (1 - m) r_mean, each operation rounded to T
            *rm = m * mean + keep * *rm;
            // r_var = m unbiased + (1 - m) r_var, the sum taken in double (PyTorch's double
            // accumulator type holds the unbiased variance)
            *rv = T::from_f64(m.to_f64() * unbiased.to_f64() + (keep * *rv).to_f64());
        }
        if let Buffer::Int64(count) = &self.num_batches_tracked {
            count.set(count.get() + 1);
        }
    }
}

/// The tensor of a float buffer.
fn float<T: Float>(b: &Buffer<T>) -> &RefCell<Tensor<T>> {
    match b {
        Buffer::Float(t) => t,
        Buffer::Int64(_) => unreachable!("running statistics are float buffers"),
    }
}

impl<T: Float> fmt::Display for BatchNorm1d<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BatchNorm1d({}, eps={}, momentum={}, affine=True, track_running_stats=True)",
            self.num_features,
            py_float(self.eps),
            py_float(self.momentum)
        )
    }
}

impl<T: Float> Module<T> for BatchNorm1d<T> {
    /// # Panics
    /// If `x` is not `[N, C]`, or (in training mode) `N` is 1: a single sample has no
    /// variance (PyTorch raises "Expected more than 1 value per channel when training").
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let shape = x.shape();
        let c = self.num_features;
        assert!(
            shape.len() == 2 && shape[1] == c,
            "BatchNorm1d({c}): expected an input of shape [N, {c}], got {:?} (at {})",
            shape.as_slice(),
            Location::caller()
        );
        if !self.training {
            let (rm, rv) = (float(&self.running_mean).borrow(), float(&self.running_var).borrow());
            let mean = tape.leaf_from_slice(rm.data(), &[c], false);
            let var = tape.leaf_from_slice(rv.data(), &[c], false);
            return scale_shift(x - mean, var, self.eps, tape.var(self.weight), tape.var(self.bias));
        }
        assert!(
            shape[0] > 1,
            "BatchNorm1d({c}): expected more than 1 value per channel when training, got input of shape {:?} (at {})",
            shape.as_slice(),
            Location::caller()
        );
        x.with_value(|data| self.update_running_stats(data, shape[0]));
        batch_norm(x, tape.var(self.weight), tape.var(self.bias), self.eps)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        vec![("weight".into(), self.weight), ("bias".into(), self.bias)]
    }

    fn named_buffers(&self) -> Vec<(String, &Buffer<T>)> {
        vec![
            ("running_mean".into(), &self.running_mean),
            ("running_var".into(), &self.running_var),
            ("num_batches_tracked".into(), &self.num_batches_tracked),
        ]
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// `torch.nn.LayerNorm(normalized_shape)` over the last dimension, with PyTorch's defaults:
/// eps 1e-5, elementwise affine (weight 1, bias 0). Each sample is normalised with the mean
/// and biased variance of its own features, in training and evaluation mode alike.
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    /// Weight (scale) `[D]`.
    pub weight: Param,
    /// Bias (shift) `[D]`.
    pub bias: Param,
    /// Features D of the last dimension.
    pub normalized_shape: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl LayerNorm {
    /// A layer over a last dimension of `normalized_shape` features.
    ///
    /// # Panics
    /// If `normalized_shape` is 0.
    pub fn new<T: Float>(tape: &Tape<T>, normalized_shape: usize) -> Self {
        assert!(normalized_shape > 0, "LayerNorm: normalized_shape must be positive");
        let (weight, bias) = affine(tape, normalized_shape);
        LayerNorm { weight, bias, normalized_shape, eps: 1e-5 }
    }
}

impl fmt::Display for LayerNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerNorm(({},), eps={}, elementwise_affine=True)", self.normalized_shape, py_float(self.eps))
    }
}

impl<T: Float> Module<T> for LayerNorm {
    /// # Panics
    /// If the last dimension of `x` is not `normalized_shape`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        let d = self.normalized_shape;
        assert!(
            shape.last() == Some(&d),
            "LayerNorm(({d},)): expected an input whose last dimension is {d}, got {:?} (at {})",
            shape.as_slice(),
            Location::caller()
        );
        let tape = x.tape();
        layer_norm(x, tape.var(self.weight), tape.var(self.bias), self.eps)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        vec![("weight".into(), self.weight), ("bias".into(), self.bias)]
    }
}
