//! Experiment 1, the forum post's (`tapegrad-demo` without a subcommand): one optimizer
//! step, batched against accumulated.
//!
//! Three experiments, each comparing one step on the whole batch ("batched") with k
//! micro-batches whose gradients accumulate before one step ("accumulated"), all from
//! the same initial parameters:
//!
//! | experiment | loss | lr batched | lr accumulated | expect |
//! | --- | --- | --- | --- | --- |
//! | `sum` | sum | lr-sum | lr-sum | gradients and parameters equal |
//! | `mean` | mean | lr-mean | lr-mean / k | gradients k times larger, parameters equal |
//! | `mean-weighted` | mean × size/batch | lr-mean | lr-mean | equal, even for uneven splits |

pub mod cmd;
pub mod json;
pub mod text;

use std::path::Path;

use tapegrad::{Profile, Tape, Tensor};
use tapegrad_nn::{
    split_sizes, Accumulation, L1Loss, LossScale, Module, Optimizer, Reduction, Sequential, Sgd, StateDictError,
};

use crate::model::{self, allclose, flatten};
pub use text::render_text;

/// What to run (validated command-line options).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `torch.manual_seed` before drawing the data.
    pub data_seed: u64,
    /// `torch.manual_seed` before building the model.
    pub model_seed: u64,
    /// Layer sizes, e.g. `[4, 8, 2]`.
    pub layers: Vec<usize>,
    /// Batch size B.
    pub batch: usize,
    /// Number of micro-batches k (1..=B).
    pub micro_batches: usize,
    /// Learning rate of both runs of the sum experiment.
    pub lr_sum: f64,
    /// Learning rate of the batched mean runs (the accumulated mean run uses lr / k).
    pub lr_mean: f64,
    /// Initial parameters of every run, flat in `parameters()` order, instead of the
    /// `model_seed` init (`--load`, see [`load_initial_params`]).
    pub initial_params: Option<Vec<f32>>,
}

impl Default for Config {
    /// The forum post's setting.
    fn default() -> Self {
        Config {
            data_seed: 1,
            model_seed: 2,
            layers: vec![4, 8, 2],
            batch: 2,
            micro_batches: 2,
            lr_sum: 0.1,
            lr_mean: 1.0,
            initial_params: None,
        }
    }
}

/// One run's result.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Loss of each micro-batch before scaling (one for the batched run).
    pub losses: Vec<f32>,
    /// All gradients after the backward passes, flat in `parameters()` order.
    pub grads: Vec<f32>,
    /// All parameters after the step, flat.
    pub params: Vec<f32>,
}

/// One experiment: batched vs accumulated.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    /// `sum`, `mean` or `mean-weighted`.
    pub name: &'static str,
    /// The loss reduction.
    pub reduction: Reduction,
    /// Learning rate of the batched run.
    pub lr_batched: f64,
    /// Learning rate of the accumulated run.
    pub lr_accumulated: f64,
    /// Loss scaling of the accumulated run.
    pub loss_scale: LossScale,
    /// One step on the whole batch.
    pub batched: RunResult,
    /// k micro-batches, then one step.
    pub accumulated: RunResult,
}

impl Experiment {
    /// `torch.allclose(batched grads, accumulated grads)`.
    pub fn grads_equal(&self) -> bool {
        allclose(&self.batched.grads, &self.accumulated.grads)
    }
    /// `torch.allclose(batched params, accumulated params)`.
    pub fn params_equal(&self) -> bool {
        allclose(&self.batched.params, &self.accumulated.params)
    }
    /// Largest |batched - accumulated| gradient.
    pub fn max_grad_diff(&self) -> f64 {
        max_diff(&self.batched.grads, &self.accumulated.grads)
    }
    /// Largest |batched - accumulated| parameter.
    pub fn max_param_diff(&self) -> f64 {
        max_diff(&self.batched.params, &self.accumulated.params)
    }
    /// The factor `r` that best explains accumulated = r × batched gradient (least squares:
    /// `<a, b> / <b, b>`); exactly k when the accumulated gradient is k times the batch one.
    pub fn grad_ratio(&self) -> f64 {
        let (mut ab, mut bb) = (0.0, 0.0);
        for (&b, &a) in self.batched.grads.iter().zip(&self.accumulated.grads) {
            ab += a as f64 * b as f64;
            bb += b as f64 * b as f64;
        }
        if bb == 0.0 {
            1.0
        } else {
            ab / bb
        }
    }
}

impl Report {
    /// How many of the report's numbers are NaN or infinite (a learning rate too large for
    /// float32 makes the step overflow); JSON writes them as `null`.
    pub fn non_finite(&self) -> usize {
        let runs = self.experiments.iter().flat_map(|e| [&e.batched, &e.accumulated]);
        let values = runs.flat_map(|r| r.losses.iter().chain(&r.grads).chain(&r.params));
        let data = self.input.data().iter().chain(self.target.data()).chain(&self.initial_params);
        values.chain(data).filter(|v| !v.is_finite()).count()
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The configuration.
    pub config: Config,
    /// Micro-batch sizes (`torch.tensor_split`).
    pub micro_batch_sizes: Vec<usize>,
    /// Inputs `[B, layers[0]]`.
    pub input: Tensor<f32>,
    /// Targets `[B, layers[-1]]`.
    pub target: Tensor<f32>,
    /// Initial parameters, flat.
    pub initial_params: Vec<f32>,
    /// `sum`, `mean`, `mean-weighted`.
    pub experiments: Vec<Experiment>,
}

/// The largest |x - y| (0 for equal values, infinities included); NaN if any pair has a NaN.
fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| if x == y { 0.0 } else { ((x as f64) - (y as f64)).abs() }).fold(0.0, |m, d| {
        if m.is_nan() || d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    })
}

/// The model of `config` on a fresh tape (after `torch.manual_seed(model_seed)`), with
/// `config.initial_params` instead of that init when given.
///
/// # Panics
/// If `initial_params` does not hold exactly the model's number of parameters.
pub fn build_model(config: &Config) -> (Tape<f32>, Sequential<f32>) {
    model::build_model(&config.layers, config.model_seed, config.initial_params.as_deref())
}

/// The parameters in a safetensors file (PyTorch state-dict names, float32), checked
/// against the model of `config`, flat in `parameters()` order: the value of
/// [`Config::initial_params`] for `--load`.
///
/// # Errors
/// The file cannot be read, is not a valid safetensors file, does not fit the model
/// (names, shapes, dtype) or holds NaN or infinite weights; the message names the file and
/// the problem.
pub fn load_initial_params(config: &Config, path: &Path) -> Result<Vec<f32>, StateDictError> {
    let (mut tape, model) = build_model(&Config { initial_params: None, ..config.clone() });
    tapegrad_nn::load(&mut tape, &model, path)?;
    tapegrad_nn::check_finite(&tape, &model).map_err(|e| e.at(path))?;
    Ok(flatten(&tape, &model, false))
}

/// Saves the parameters after the batched step of the sum experiment (`--save`) as a
/// safetensors file with PyTorch's state-dict names.
///
/// # Errors
/// The file cannot be written; the message names it.
pub fn save_sum_step(report: &Report, path: &Path) -> Result<(), StateDictError> {
    tapegrad_nn::files::write_atomic(path, &sum_step_bytes(report)?).map_err(|source| {
        StateDictError::from(tapegrad_nn::StateDictErrorKind::Io { action: "cannot save", source }).at(path)
    })
}

/// The bytes [`save_sum_step`] writes: the safetensors file of the parameters after the
/// batched step of the sum experiment.
///
/// # Errors
/// The safetensors writer refuses the tensors.
pub fn sum_step_bytes(report: &Report) -> Result<Vec<u8>, StateDictError> {
    let sum = report.experiments.iter().find(|e| e.name == "sum").expect("run() always runs the sum experiment");
    let (tape, model) =
        build_model(&Config { initial_params: Some(sum.batched.params.clone()), ..report.config.clone() });
    tapegrad_nn::save_to_bytes(&tape, &model)
}

/// The data of `config`: `torch.rand(B, in)` then `torch.rand(B, out)` after
/// `torch.manual_seed(data_seed)`.
pub fn make_data(config: &Config) -> (Tensor<f32>, Tensor<f32>) {
    model::make_data(&config.layers, config.data_seed, config.batch)
}

/// Builds the model, accumulates over `k` micro-batches with `scale`, records the
/// gradients, steps with `lr`. With `profile`, the tape's profiler is on and its times are
/// added to it.
fn train_step(
    config: &Config,
    data: &(Tensor<f32>, Tensor<f32>),
    reduction: Reduction,
    k: usize,
    scale: LossScale,
    lr: f64,
    profile: Option<&mut Profile>,
) -> RunResult {
    let (mut tape, model) = build_model(config);
    tape.set_profiling(profile.is_some());
    let acc = Accumulation::new(k, scale);
    let losses = acc.run(&mut tape, &model, &L1Loss::new(reduction), &data.0, &data.1, None);
    let grads = flatten(&tape, &model, true);
    Sgd::new(lr).step(&mut tape);
    if let Some(p) = profile {
        p.merge(&tape.profile());
    }
    RunResult { losses, grads, params: flatten(&tape, &model, false) }
}

/// The three experiments: name, reduction, lr batched, lr accumulated, loss scale.
fn specs(config: &Config) -> [(&'static str, Reduction, f64, f64, LossScale); 3] {
    let k = config.micro_batches as f64;
    [
        ("sum", Reduction::Sum, config.lr_sum, config.lr_sum, LossScale::None),
        ("mean", Reduction::Mean, config.lr_mean, config.lr_mean / k, LossScale::None),
        ("mean-weighted", Reduction::Mean, config.lr_mean, config.lr_mean, LossScale::SizeOverBatch),
    ]
}

/// Per-op forward and backward times of every run of the three experiments, repeated
/// `repeats` times (`--profile`).
pub fn profile(config: &Config, repeats: usize) -> Profile {
    let data = make_data(config);
    let mut total = Profile::default();
    for _ in 0..repeats {
        for (_, reduction, lr_b, lr_a, scale) in specs(config) {
            train_step(config, &data, reduction, 1, LossScale::None, lr_b, Some(&mut total));
            train_step(config, &data, reduction, config.micro_batches, scale, lr_a, Some(&mut total));
        }
    }
    total
}

/// The graph of one batched step of the sum experiment (forward, loss, backward) as
/// Graphviz DOT, parameters named as in PyTorch (`--dot`).
pub fn step_dot(config: &Config) -> String {
    let (input, target) = make_data(config);
    let (tape, model) = build_model(config);
    let loss = L1Loss::new(Reduction::Sum).forward(model.forward(tape.input(input)), tape.input(target));
    loss.backward();
    tape.to_dot(&model.named_parameters())
}

/// Runs the three experiments.
///
/// # Panics
/// If the configuration is invalid (see [`cmd::validate`]).
pub fn run(config: &Config) -> Report {
    let data = make_data(config);
    let k = config.micro_batches;
    let initial_params = {
        let (tape, model) = build_model(config);
        flatten(&tape, &model, false)
    };
    let experiments = specs(config)
        .into_iter()
        .map(|(name, reduction, lr_b, lr_a, scale)| Experiment {
            name,
            reduction,
            lr_batched: lr_b,
            lr_accumulated: lr_a,
            loss_scale: scale,
            batched: train_step(config, &data, reduction, 1, LossScale::None, lr_b, None),
            accumulated: train_step(config, &data, reduction, k, scale, lr_a, None),
        })
        .collect();
    Report {
        config: config.clone(),
        micro_batch_sizes: split_sizes(config.batch, k),
        input: data.0,
        target: data.1,
        initial_params,
        experiments,
    }
}
