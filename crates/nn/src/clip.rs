//! Gradient clipping: [`clip_grad_norm`] and [`clip_grad_value`], as
//! `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` (with `foreach=False`) compute them.
//!
//! Both act on every parameter of a tape that has a gradient (buffers and parameters that
//! do not require grad have none). With gradient accumulation they belong after the last
//! micro-batch's backward pass and before the optimizer step: they then see the
//! accumulated gradient, whose scale depends on how the micro-batch losses were scaled.

use std::fmt;

use tapegrad::{Float, Tape};

/// Which norm [`clip_grad_norm`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NormType {
    /// The Euclidean norm (`norm_type=2.0`, PyTorch's default).
    #[default]
    L2,
    /// The largest absolute value (`norm_type=inf`).
    Inf,
}

/// The error of [`ClipGradNorm::apply`] with `error_if_nonfinite`: the total norm is NaN or
/// infinite, so the gradients are left as they are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFiniteNorm {
    /// The norm that was measured.
    pub total_norm: f64,
    /// Which norm.
    pub norm_type: NormType,
}

impl fmt::Display for NonFiniteNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = match self.norm_type {
            NormType::L2 => "2",
            NormType::Inf => "inf",
        };
        write!(
            f,
            "the total norm of order {order} of the gradients is {}, so they cannot be clipped \
             (without error_if_nonfinite they are scaled by the non-finite norm anyway)",
            self.total_norm
        )
    }
}

impl std::error::Error for NonFiniteNorm {}

/// `clip_grad_norm_` with all its options; [`clip_grad_norm`] is the common case.
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// use tapegrad_nn::{ClipGradNorm, NormType};
///
/// let mut tape = Tape::<f32>::new();
/// let p = tape.parameter(Tensor::new(vec![3.0, 4.0], &[2]));
/// let w = tape.var(p);
/// (w * w).sum().mul_scalar(0.5).backward(); // gradient (3, 4), norm 5
/// tape.reset();
/// let clip = ClipGradNorm::new(1.0).norm_type(NormType::L2).error_if_nonfinite(true);
/// assert_eq!(clip.apply(&mut tape), Ok(5.0));
/// let g = tape.param_grad(p).unwrap();
/// assert!((g.data()[0] - 0.6).abs() < 1e-6 && (g.data()[1] - 0.8).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipGradNorm {
    /// The largest norm the gradients keep.
    pub max_norm: f64,
    /// Which norm.
    pub norm_type: NormType,
    /// Return an error (and leave the gradients alone) when the total norm is NaN or
    /// infinite, instead of scaling by it.
    pub error_if_nonfinite: bool,
}

impl ClipGradNorm {
    /// Clipping to `max_norm` in the 2-norm, without the non-finite check (PyTorch's
    /// defaults).
    ///
    /// # Panics
    /// If `max_norm` is negative or NaN (PyTorch would flip or poison every gradient).
    #[track_caller]
    pub fn new(max_norm: f64) -> Self {
        assert!(max_norm >= 0.0, "clip_grad_norm: max_norm {max_norm} must be >= 0");
        ClipGradNorm { max_norm, norm_type: NormType::L2, error_if_nonfinite: false }
    }

    /// Sets the norm.
    pub fn norm_type(mut self, norm_type: NormType) -> Self {
        self.norm_type = norm_type;
        self
    }

    /// Sets the non-finite check.
    pub fn error_if_nonfinite(mut self, on: bool) -> Self {
        self.error_if_nonfinite = on;
        self
    }

    /// Measures the total norm of the tape's gradients and scales every gradient by
    /// `min(max_norm / (total + 1e-6), 1)`; returns the total norm (before clipping).
    ///
    /// The total norm is the norm of the vector of each parameter's gradient norm (in
    /// parameter order). Every operation is rounded to the element type as PyTorch's CPU
    /// kernels round it: a 2-norm sums squares in 8 lanes, adds the lanes in order, then
    /// the tail with fused multiply-adds; the coefficient is `f(C) * (1 / (total + f(1e-6)))`
    /// with each operation rounded (`f` = to the element type), clamped to 1, and applied
    /// always, also when it is 1. With no gradient at all the norm is 0 and nothing changes.
    ///
    /// # Errors
    /// [`NonFiniteNorm`] when `error_if_nonfinite` is set and the total norm is NaN or
    /// infinite; the gradients are then unchanged.
    pub fn apply<T: Float>(&self, tape: &mut Tape<T>) -> Result<T, NonFiniteNorm> {
        let norm_type = self.norm_type;
        let mut total = Norm::new(norm_type);
        let mut any = false;
        tape.for_each_grad_mut(|_, g| {
            any = true;
            total.push(vector_norm(norm_type, g));
        });
        if !any {
            return Ok(T::ZERO);
        }
        let total = total.finish();
        if self.error_if_nonfinite && !total.is_finite() {
            return Err(NonFiniteNorm { total_norm: total.to_f64(), norm_type });
        }
        let coef = T::from_f64(self.max_norm) * (T::ONE / (total + T::from_f64(1e-6)));
        // torch.clamp(coef, max=1.0): NaN stays NaN
        let coef = if coef > T::ONE { T::ONE } else { coef };
        tape.for_each_grad_mut(|_, g| g.iter_mut().for_each(|v| *v *= coef));
        Ok(total)
    }
}

/// Scales the gradients of every parameter of the tape so that their total norm is at most
/// `max_norm`, and returns the total norm before clipping: `torch.nn.utils.clip_grad_norm_(
/// parameters, max_norm, norm_type, foreach=False)`. See [`ClipGradNorm::apply`] for the
/// arithmetic, and [`ClipGradNorm`] for `error_if_nonfinite`.
///
/// # Panics
/// If `max_norm` is negative or NaN.
#[track_caller]
pub fn clip_grad_norm<T: Float>(tape: &mut Tape<T>, max_norm: f64, norm_type: NormType) -> T {
    match ClipGradNorm::new(max_norm).norm_type(norm_type).apply(tape) {
        Ok(total) => total,
        Err(_) => unreachable!("clip_grad_norm: no error without error_if_nonfinite"),
    }
}

/// Clamps every gradient element of the tape's parameters to `[-clip_value, clip_value]`
/// (`torch.nn.utils.clip_grad_value_`; the bound is rounded to the element type, NaN
/// gradients stay NaN).
///
/// # Panics
/// If `clip_value` is negative or NaN.
#[track_caller]
pub fn clip_grad_value<T: Float>(tape: &mut Tape<T>, clip_value: f64) {
    assert!(clip_value >= 0.0, "clip_grad_value: clip_value {clip_value} must be >= 0");
    let hi = T::from_f64(clip_value);
    let lo = -hi;
    tape.for_each_grad_mut(|_, g| {
        for v in g.iter_mut() {
            // clamp_(min=lo) then clamp_(max=hi), NaN passing through
            if *v < lo {
                *v = lo;
            } else if *v > hi {
                *v = hi;
            }
        }
    });
}

/// Lanes of PyTorch's vectorised 2-norm on this CPU family (`Vectorized<float>`, 8 lanes).
const LANES: usize = 8;

/// The norm of a stream of values (the `torch.stack(norms)` reduction), in the lane order
/// of [`vector_norm`], without storing the stream.
struct Norm<T: Float> {
    norm_type: NormType,
    lanes: [T; LANES],
    pending: [T; LANES],
    count: usize,
    max: T,
}

impl<T: Float> Norm<T> {
    fn new(norm_type: NormType) -> Self {
        Norm { norm_type, lanes: [T::ZERO; LANES], pending: [T::ZERO; LANES], count: 0, max: T::ZERO }
    }

    fn push(&mut self, v: T) {
        self.max = nan_max(self.max, v.abs());
        self.pending[self.count % LANES] = v;
        self.count += 1;
        if self.count.is_multiple_of(LANES) {
            add_squares(&mut self.lanes, &self.pending);
        }
    }

    fn finish(&self) -> T {
        match self.norm_type {
            NormType::Inf => self.max,
            NormType::L2 => finish_l2(&self.lanes, &self.pending[..self.count % LANES]),
        }
    }
}

/// `lanes[j] += x[j] * x[j]`, two roundings each (one vector multiply, one vector add).
fn add_squares<T: Float>(lanes: &mut [T; LANES], x: &[T]) {
    for (acc, &v) in lanes.iter_mut().zip(x) {
        *acc += v * v;
    }
}

/// The lanes added in order (PyTorch stores the vector and sums `buffer[0] + buffer[j]`),
/// then the tail's squares with fused multiply-adds, then the square root.
fn finish_l2<T: Float>(lanes: &[T; LANES], tail: &[T]) -> T {
    let start = lanes[1..].iter().fold(lanes[0], |acc, &x| acc + x);
    tail.iter().fold(start, |acc, &x| x.mul_add(x, acc)).sqrt()
}

/// `max` that propagates NaN, as torch's reductions do.
fn nan_max<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::from_f64(f64::NAN)
    } else if b > a {
        b
    } else {
        a
    }
}

/// `torch.linalg.vector_norm(g, norm_type)` of one gradient: for the 2-norm, squares summed
/// in [`LANES`] lanes, the lanes added in order, the remaining elements added with fused
/// multiply-adds, then the square root (as [`finish_l2`]).
fn vector_norm<T: Float>(norm_type: NormType, g: &[T]) -> T {
    match norm_type {
        NormType::Inf => g.iter().fold(T::ZERO, |m, &x| nan_max(m, x.abs())),
        NormType::L2 => {
            let full = g.len() - g.len() % LANES;
            let mut lanes = [T::ZERO; LANES];
            for chunk in g[..full].chunks_exact(LANES) {
                add_squares(&mut lanes, chunk);
            }
            finish_l2(&lanes, &g[full..])
        }
    }
}
