//! Finite-difference gradient checking, with PyTorch's defaults.
//!
//! [`gradcheck`] compares every entry of the Jacobian computed by the backward pass with
//! central differences `(f(x + eps) - f(x - eps)) / 2 eps`, in `f64`, and fails when
//! `|analytic - numeric| > atol + rtol * |numeric|` anywhere, reporting the worst entry.
//! [`scalar_gradcheck`] does the same for the scalar engine, and [`gradgradcheck`] checks
//! second derivatives: the gradient recorded on the tape ([`Tape::grad`]) differentiated
//! again, against finite differences of the first gradient.

use std::fmt;

use crate::scalar::{Scalar, ScalarTape};
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::var::Var;

/// Tolerances of a gradient check (defaults as `torch.autograd.gradcheck`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// A passed check: how many Jacobian entries were compared, and the largest error seen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Jacobian entries compared.
    pub entries: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_err: f64,
}

/// The worst Jacobian entry of a failed check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckFailure {
    /// Which input.
    pub input: usize,
    /// Flat index of the element of that input.
    pub element: usize,
    /// Flat index of the output element.
    pub output: usize,
    /// From the backward pass.
    pub analytic: f64,
    /// From central differences.
    pub numeric: f64,
    /// Tolerance used for this entry (`atol + rtol * |numeric|`).
    pub tolerance: f64,
}

impl fmt::Display for GradcheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck failed: d output[{}] / d input {}[{}]: analytic {:e}, numeric {:e}, |diff| {:e} > tolerance {:e}",
            self.output,
            self.input,
            self.element,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs(),
            self.tolerance
        )
    }
}

impl std::error::Error for GradcheckFailure {}

/// Keeps the worst Jacobian entry of a check (largest error relative to its tolerance).
#[derive(Default)]
struct Tally {
    worst: Option<(f64, GradcheckFailure)>,
    entries: usize,
    max_abs_err: f64,
}

impl Tally {
    /// Compares one entry; `at` is (input, element, output).
    fn compare(&mut self, at: (usize, usize, usize), analytic: f64, numeric: f64, opts: &GradcheckOptions) {
        let tolerance = opts.atol + opts.rtol * numeric.abs();
        let err = (analytic - numeric).abs();
        self.entries += 1;
        self.max_abs_err = self.max_abs_err.max(err);
        let excess = if err.is_nan() { f64::INFINITY } else { err / tolerance };
        if excess > 1.0 && self.worst.as_ref().is_none_or(|(w, _)| excess > *w) {
            let (input, element, output) = at;
            self.worst = Some((excess, GradcheckFailure { input, element, output, analytic, numeric, tolerance }));
        }
    }

    fn finish(self) -> Result<GradcheckReport, GradcheckFailure> {
        match self.worst {
            Some((_, fail)) => Err(fail),
            None => Ok(GradcheckReport { entries: self.entries, max_abs_err: self.max_abs_err }),
        }
    }
}

/// Compares the Jacobian from the backward pass of `f` with central differences, at
/// `inputs`, with default tolerances. `f` gets a tape and one leaf per input (requiring
/// grad) and returns the output.
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with given tolerances.
pub fn gradcheck_with<F>(
    f: F,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let mut tape = Tape::<f64>::new();
    // forward at the point, to learn the output size
    let n_out = {
        let xs: Vec<_> = inputs.iter().map(|t| tape.leaf(t, true)).collect();
        f(&tape, &xs).value().numel()
    };
    // analytic Jacobian, one backward pass per output element (rows)
    let mut analytic: Vec<Vec<Tensor<f64>>> = Vec::with_capacity(n_out);
    for j in 0..n_out {
        tape.reset();
        let xs: Vec<_> = inputs.iter().map(|t| tape.leaf(t, true)).collect();
        let y = f(&tape, &xs);
        let mut seed = Tensor::zeros(&y.shape());
        seed.data_mut()[j] = 1.0;
        if y.requires_grad() {
            y.backward_with(&seed);
        }
        analytic
            .push(xs.iter().zip(inputs).map(|(x, t)| x.grad().unwrap_or_else(|| Tensor::zeros(t.shape()))).collect());
    }
    // numeric Jacobian, one pair of evaluations per input element (columns)
    let mut eval = |xs: &[Tensor<f64>]| -> Vec<f64> {
        tape.reset();
        let _ng = tape.no_grad();
        let vs: Vec<_> = xs.iter().map(|t| tape.leaf(t, false)).collect();
        f(&tape, &vs).value().into_vec()
    };
    let mut tally = Tally::default();
    central_differences(inputs, opts.eps, &mut eval, |i, e, plus, minus| {
        for j in 0..n_out {
            let numeric = (plus[j] - minus[j]) / (2.0 * opts.eps);
            tally.compare((i, e, j), analytic[j][i].data()[e], numeric, &opts);
        }
    });
    tally.finish()
}

/// Evaluates `eval` at `inputs` with each element moved by `+eps` and by `-eps` in turn,
/// calling `visit(input, element, f(x + eps), f(x - eps))`.
fn central_differences<R>(
    inputs: &[Tensor<f64>],
    eps: f64,
    mut eval: impl FnMut(&[Tensor<f64>]) -> R,
    mut visit: impl FnMut(usize, usize, R, R),
) {
    let mut point: Vec<Tensor<f64>> = inputs.to_vec();
    for (i, t) in inputs.iter().enumerate() {
        for e in 0..t.numel() {
            let x0 = t.data()[e];
            point[i].data_mut()[e] = x0 + eps;
            let plus = eval(&point);
            point[i].data_mut()[e] = x0 - eps;
            let minus = eval(&point);
            point[i].data_mut()[e] = x0;
            visit(i, e, plus, minus);
        }
    }
}

/// [`gradcheck`] for the scalar engine: `f` gets a tape and one leaf per input.
pub fn scalar_gradcheck<F>(f: F, inputs: &[f64]) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'t> Fn(&'t ScalarTape, &[Scalar<'t>]) -> Scalar<'t>,
{
    let opts = GradcheckOptions::default();
    let tape = ScalarTape::new();
    let xs: Vec<_> = inputs.iter().map(|&v| tape.leaf(v)).collect();
    f(&tape, &xs).backward();
    let analytic: Vec<f64> = xs.iter().map(|x| x.grad()).collect();
    let eval = |point: &[f64]| {
        let t = ScalarTape::new();
        let xs: Vec<_> = point.iter().map(|&v| t.leaf(v)).collect();
        f(&t, &xs).value()
    };
    let mut tally = Tally::default();
    let mut point = inputs.to_vec();
    for i in 0..inputs.len() {
        point[i] = inputs[i] + opts.eps;
        let plus = eval(&point);
        point[i] = inputs[i] - opts.eps;
        let minus = eval(&point);
        point[i] = inputs[i];
        tally.compare((i, 0, 0), analytic[i], (plus - minus) / (2.0 * opts.eps), &opts);
    }
    tally.finish()
}

/// Checks second derivatives of `f` at `inputs` (default tolerances).
///
/// With fixed random weights `u` (upstream gradient of the output) and `w_i` (one per
/// input), let `s(x) = Σ_i <∂(u·f)/∂x_i, w_i>`. The analytic `∂s/∂x` comes from
/// differentiating the recorded first gradient ([`Tape::grad`], create-graph); the numeric
/// one from central differences of `s`, whose first gradients are computed by the plain
/// backward pass. So this checks every op's rule as a differentiable function, and the two
/// backward paths against each other.
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let opts = GradcheckOptions::default();
    let mut rng = crate::rng::TorchRng::manual_seed(0x5eed);
    let out_shape = {
        let tape = Tape::<f64>::new();
        let xs: Vec<_> = inputs.iter().map(|t| tape.leaf(t, true)).collect();
        f(&tape, &xs).shape()
    };
    let u = Tensor::<f64>::uniform(&out_shape, -1.0, 1.0, &mut rng);
    let ws: Vec<Tensor<f64>> = inputs.iter().map(|t| Tensor::uniform(t.shape(), -1.0, 1.0, &mut rng)).collect();
    let dot = |a: &Tensor<f64>, b: &Tensor<f64>| a.data().iter().zip(b.data()).map(|(x, y)| x * y).sum::<f64>();

    // analytic: differentiate the recorded first gradient
    let analytic: Vec<Tensor<f64>> = {
        let tape = Tape::<f64>::new();
        let xs: Vec<_> = inputs.iter().map(|t| tape.leaf(t, true)).collect();
        let y = f(&tape, &xs);
        let grads = tape.grad_with(y, tape.input(u.clone()), &xs);
        let mut s = tape.input(Tensor::scalar(0.0));
        for (g, w) in grads.iter().zip(&ws) {
            s = s + (*g * tape.input(w.clone())).sum();
        }
        if s.requires_grad() {
            s.backward();
        }
        xs.iter().zip(inputs).map(|(x, t)| x.grad().unwrap_or_else(|| Tensor::zeros(t.shape()))).collect()
    };
    // numeric: central differences of s, with first gradients from the plain backward pass
    let s_at = |point: &[Tensor<f64>]| -> f64 {
        let tape = Tape::<f64>::new();
        let xs: Vec<_> = point.iter().map(|t| tape.leaf(t, true)).collect();
        let y = f(&tape, &xs);
        if y.requires_grad() {
            y.backward_with(&u);
        }
        xs.iter().zip(&ws).map(|(x, w)| x.grad().map_or(0.0, |g| dot(&g, w))).sum()
    };
    let mut tally = Tally::default();
    central_differences(inputs, opts.eps, s_at, |i, e, plus, minus| {
        tally.compare((i, e, 0), analytic[i].data()[e], (plus - minus) / (2.0 * opts.eps), &opts);
    });
    tally.finish()
}
