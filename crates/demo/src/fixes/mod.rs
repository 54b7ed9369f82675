//! `tapegrad-demo fixes`: which fix makes k accumulated micro-batches reproduce large-batch
//! training, for SGD (with momentum or weight decay), Adam and AdamW, over several steps.
//!
//! Exactly the experiment of the PyTorch reference generator `make_fixes_reference.py`
//! (kept beside this crate's test fixtures):
//!
//! - data: `torch.manual_seed(data_seed)`, then `torch.rand(steps * B, layers[0])` and
//!   `torch.rand(steps * B, layers[-1])`; step `s` uses rows `s*B .. (s+1)*B`;
//! - model: `torch.manual_seed(model_seed)`, `Linear, ReLU, ..., Linear`, rebuilt for every
//!   run so all start from the same parameters; with `--norm batch|layer` a `BatchNorm1d` /
//!   `LayerNorm` after every hidden Linear, before its ReLU (with batch norm those Linears
//!   have no bias), the model in training mode throughout;
//! - loss: mean L1 or mean squared error over the (micro-)batch;
//! - five runs of `steps` optimizer steps each: `batched` (the whole batch per step, lr),
//!   `none` (k micro-batches as `torch.tensor_split`, gradients accumulated, lr), `lr/k`
//!   (the same with lr / k), `loss/k` (each micro-batch loss times 1/k, lr: PyTorch
//!   Lightning's way) and `size/batch` (each micro-batch loss times its size / B, lr);
//! - with `--clip-grad-norm C`, every run clips its gradient once per step, after the last
//!   backward and before the optimizer step (`clip_grad_norm_(parameters, C)`).

pub mod answer;
pub mod cmd;
pub mod json;
pub mod plot;

use tapegrad::{Tape, Tensor};
use tapegrad_nn::{
    clip_grad_norm, split_sizes, Accumulation, Buffer, L1Loss, Loss, LossScale, MSELoss, Module, Norm, NormType,
    Optimizer, OptimizerKind, OptimizerSpec, Reduction, Sequential,
};

use crate::args::describe_optimizer;
use crate::json::py_float;
use crate::model::{self, allclose, flatten};

/// The demo's optimizer for `kind`: PyTorch's defaults (see [`OptimizerSpec::new`]) with
/// learning rate 0.1 for SGD, 0.01 for Adam and AdamW.
pub fn default_optimizer(kind: OptimizerKind) -> OptimizerSpec {
    OptimizerSpec::new(kind, if kind == OptimizerKind::Sgd { 0.1 } else { 0.01 })
}

/// Which loss (mean over all elements of the micro-batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// `nn.L1Loss()`: mean |y - t|.
    L1,
    /// `nn.MSELoss()`: mean (y - t)².
    Mse,
}

impl LossKind {
    /// The command-line name: `l1` or `mse`.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::L1 => "l1",
            LossKind::Mse => "mse",
        }
    }
}

/// One experiment's settings (validated command-line options).
#[derive(Clone, Debug, PartialEq)]
pub struct FixesConfig {
    /// The optimizer of every run.
    pub optimizer: OptimizerSpec,
    /// The loss.
    pub loss: LossKind,
    /// Layer sizes, e.g. `[4, 8, 2]`.
    pub layers: Vec<usize>,
    /// Batch size B of one step.
    pub batch: usize,
    /// Micro-batches k per step (1..=B).
    pub micro_batches: usize,
    /// Optimizer steps (at least 1).
    pub steps: usize,
    /// `torch.manual_seed` before drawing the data.
    pub data_seed: u64,
    /// `torch.manual_seed` before building the model.
    pub model_seed: u64,
    /// `clip_grad_norm_(parameters, C)` before every optimizer step, if given.
    pub clip_grad_norm: Option<f64>,
    /// The normalisation layer after every hidden Linear.
    pub norm: Norm,
}

impl Default for FixesConfig {
    /// The setting: the forum's 4-8-2 network, batch 2 in 2 micro-batches, 5 steps,
    /// mean L1 loss, data seed 1, model seed 2, plain SGD with lr 0.1.
    fn default() -> Self {
        FixesConfig {
            optimizer: default_optimizer(OptimizerKind::Sgd),
            loss: LossKind::L1,
            layers: vec![4, 8, 2],
            batch: 2,
            micro_batches: 2,
            steps: 5,
            data_seed: 1,
            model_seed: 2,
            clip_grad_norm: None,
            norm: Norm::None,
        }
    }
}

impl FixesConfig {
    /// The normalisation and clipping of the setup as a title's tail: `, BatchNorm, clip
    /// 0.63`, or nothing without them.
    pub fn setup_suffix(&self) -> String {
        let mut s = match self.norm {
            Norm::None => String::new(),
            Norm::Batch => ", BatchNorm".into(),
            Norm::Layer => ", LayerNorm".into(),
        };
        if let Some(c) = self.clip_grad_norm {
            s += &format!(", clip {}", py_float(c));
        }
        s
    }
}

/// The five runs, in the reference's order.
pub const RUNS: [&str; 5] = ["batched", "none", "lr/k", "loss/k", "size/batch"];

/// One run's result.
#[derive(Clone, Debug, PartialEq)]
pub struct FixesRun {
    /// `batched`, `none`, `lr/k`, `loss/k` or `size/batch`.
    pub name: &'static str,
    /// Its learning rate.
    pub lr: f64,
    /// All parameters after the last step, flat in `parameters()` order.
    pub params: Vec<f32>,
    /// Per step: the batch loss (one value) for `batched`, else the k micro-batch losses
    /// before scaling.
    pub losses: Vec<Vec<f32>>,
    /// Per step: the total gradient norm before clipping (with `clip_grad_norm` only).
    pub grad_norms: Vec<f32>,
    /// With batch norm: `running_mean` then `running_var` of each BatchNorm1d, flat, after
    /// the last step.
    pub buffers: Option<Vec<f32>>,
    /// Per step: `max|p - p_batched| / max|p_batched|` after that step.
    pub distances: Vec<f64>,
    /// The distance after the last step.
    pub max_rel_diff: f64,
    /// `torch.allclose(params, batched params)` after the last step.
    pub equal: bool,
}

impl FixesRun {
    /// A finished run (no clipping, no buffers): its final `params` compared with the batched
    /// run's.
    pub(crate) fn new(
        name: &'static str,
        lr: f64,
        params: Vec<f32>,
        batched: &[f32],
        losses: Vec<Vec<f32>>,
        distances: Vec<f64>,
    ) -> Self {
        FixesRun {
            name,
            lr,
            max_rel_diff: rel_distance(&params, batched),
            equal: allclose(&params, batched),
            params,
            losses,
            grad_norms: Vec::new(),
            buffers: None,
            distances,
        }
    }
}

/// After a step of run `i`, records its distance from the batched run (run 0, whose
/// parameters `params` then become `batched`).
pub(crate) fn track_distance(i: usize, params: Vec<f32>, batched: &mut Vec<f32>, distances: &mut Vec<f64>) {
    if i == 0 {
        *batched = params;
        distances.push(0.0);
    } else {
        distances.push(rel_distance(&params, batched));
    }
}

/// One experiment's result.
#[derive(Clone, Debug, PartialEq)]
pub struct FixesReport {
    /// The settings.
    pub config: FixesConfig,
    /// Micro-batch sizes (`torch.tensor_split`).
    pub micro_batch_sizes: Vec<usize>,
    /// The parameters every run starts from, flat.
    pub initial_params: Vec<f32>,
    /// The five runs, in [`RUNS`] order.
    pub runs: Vec<FixesRun>,
}

impl FixesReport {
    /// The run named `name`.
    ///
    /// # Panics
    /// If there is no such run.
    pub fn run(&self, name: &str) -> &FixesRun {
        self.runs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no run named {name}"))
    }

    /// How many of the numbers `--json` writes are NaN or infinite (a learning rate or
    /// weight decay too large for float32 makes a step overflow; `eps` 0 with a zero
    /// gradient divides 0 by 0); JSON writes them as `null`.
    pub fn non_finite(&self) -> usize {
        let runs = self.runs.iter().flat_map(|r| {
            let recorded = r.params.iter().chain(r.losses.iter().flatten()).chain(&r.grad_norms);
            let floats = recorded.chain(r.buffers.iter().flatten()).map(|&x| x as f64);
            floats.chain([r.lr, r.max_rel_diff])
        });
        self.initial_params.iter().map(|&x| x as f64).chain(runs).filter(|v| !v.is_finite()).count()
    }
}

/// `max|a - b| / max|b|` with the differences rounded to f32 first, as the reference
/// computes `(p - base).abs().max().item() / scale` on float32 tensors: NaN when a value is
/// NaN (torch's `max` propagates it, `f32::max` would skip it) or when infinities meet.
pub fn rel_distance(a: &[f32], b: &[f32]) -> f64 {
    let nan_max = |m: f32, x: f32| if m.is_nan() || x.is_nan() { f32::NAN } else { m.max(x) };
    let diff = a.iter().zip(b).map(|(&x, &y)| (x - y).abs()).fold(0.0, nan_max) as f64;
    let scale = b.iter().map(|y| y.abs()).fold(0.0, nan_max) as f64;
    if diff == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

/// One run in progress: its model, optimizer and records.
struct Runner {
    name: &'static str,
    lr: f64,
    accumulation: Accumulation,
    tape: Tape<f32>,
    model: Sequential<f32>,
    optimizer: Box<dyn Optimizer<f32>>,
    losses: Vec<Vec<f32>>,
    grad_norms: Vec<f32>,
    distances: Vec<f64>,
}

/// `running_mean` then `running_var` of each BatchNorm1d in module order (the float
/// buffers; `num_batches_tracked` left out), or `None` without batch norm.
pub fn flat_buffers(model: &dyn Module<f32>) -> Option<Vec<f32>> {
    let mut out = Vec::new();
    for (_, b) in model.named_buffers() {
        if let Buffer::Float(t) = b {
            out.extend_from_slice(t.borrow().data());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The data of `config`: inputs `[steps * B, in]` and targets `[steps * B, out]`.
pub fn make_data(config: &FixesConfig) -> (Tensor<f32>, Tensor<f32>) {
    model::make_data(&config.layers, config.data_seed, config.steps * config.batch)
}

/// Runs the five runs of `config` side by side, step by step.
///
/// # Panics
/// If the configuration is invalid (see [`cmd::validate`], which checks it).
pub fn run_fixes(config: &FixesConfig) -> FixesReport {
    let (input, target) = make_data(config);
    let (b, k) = (config.batch, config.micro_batches);
    let loss: Box<dyn Loss<f32>> = match config.loss {
        LossKind::L1 => Box::new(L1Loss::new(Reduction::Mean)),
        LossKind::Mse => Box::new(MSELoss::new(Reduction::Mean)),
    };
    let lr = config.optimizer.lr;
    let mut runners: Vec<Runner> = RUNS
        .iter()
        .map(|&name| {
            let (micro, scale, run_lr) = match name {
                "batched" => (1, LossScale::None, lr),
                "none" => (k, LossScale::None, lr),
                "lr/k" => (k, LossScale::None, lr / k as f64),
                "loss/k" => (k, LossScale::DivideByK, lr),
                _ => (k, LossScale::SizeOverBatch, lr),
            };
            let (tape, model) = model::build_norm_model(&config.layers, config.model_seed, config.norm);
            Runner {
                name,
                lr: run_lr,
                accumulation: Accumulation::new(micro, scale),
                tape,
                model,
                optimizer: config
                    .optimizer
                    .with_lr(run_lr)
                    .build()
                    .expect("cmd::validate checks the spec with lr and lr / k"),
                losses: Vec::with_capacity(config.steps),
                grad_norms: Vec::with_capacity(config.steps),
                distances: Vec::with_capacity(config.steps),
            }
        })
        .collect();
    let initial_params = flatten(&runners[0].tape, &runners[0].model, false);
    let mut batched = Vec::new();
    for s in 0..config.steps {
        let (x, t) = (input.rows(s * b, b), target.rows(s * b, b));
        for (i, r) in runners.iter_mut().enumerate() {
            let losses = r.accumulation.run(&mut r.tape, &r.model, loss.as_ref(), &x, &t, None);
            r.losses.push(losses);
            // clipping sees the accumulated gradient, once per step, before the step
            if let Some(c) = config.clip_grad_norm {
                r.grad_norms.push(clip_grad_norm(&mut r.tape, c, NormType::L2));
            }
            r.optimizer.step(&mut r.tape);
            track_distance(i, flatten(&r.tape, &r.model, false), &mut batched, &mut r.distances);
        }
    }
    let runs = runners
        .into_iter()
        .map(|r| {
            let params = flatten(&r.tape, &r.model, false);
            let buffers = flat_buffers(&r.model);
            FixesRun {
                grad_norms: r.grad_norms,
                buffers,
                ..FixesRun::new(r.name, r.lr, params, &batched, r.losses, r.distances)
            }
        })
        .collect();
    FixesReport { config: config.clone(), micro_batch_sizes: split_sizes(b, k), initial_params, runs }
}

/// The five optimizers of the summary table: SGD; SGD with momentum 0.9; SGD with weight
/// decay 0.1; Adam; AdamW with weight decay 0.1 (learning rates 0.1 for SGD, 0.01 for Adam).
pub fn table_optimizers() -> [OptimizerSpec; 5] {
    let sgd = default_optimizer(OptimizerKind::Sgd);
    [
        sgd,
        OptimizerSpec { momentum: 0.9, ..sgd },
        OptimizerSpec { weight_decay: 0.1, ..sgd },
        default_optimizer(OptimizerKind::Adam),
        OptimizerSpec { weight_decay: 0.1, ..default_optimizer(OptimizerKind::AdamW) },
    ]
}

/// The experiment of `base` (data, model, loss, split) for each optimizer of the table.
pub fn run_table(base: &FixesConfig) -> Vec<FixesReport> {
    table_optimizers().iter().map(|&optimizer| run_fixes(&FixesConfig { optimizer, ..base.clone() })).collect()
}

/// A table cell: `yes`, `yes (2.8e-07)` or `NO (3.0e-01)`.
pub fn verdict(run: &FixesRun) -> String {
    match (run.equal, run.max_rel_diff == 0.0) {
        (true, true) => "yes".into(),
        (true, false) => format!("yes ({:.1e})", run.max_rel_diff),
        (false, _) => format!("NO ({:.1e})", run.max_rel_diff),
    }
}

fn setting(c: &FixesConfig, sizes: &[usize], n_params: usize) -> String {
    let arch = c.layers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("-");
    let loss = match c.loss {
        LossKind::L1 => "mean L1 loss |y - t|",
        LossKind::Mse => "mean squared error (y - t)^2",
    };
    let layers = match c.norm {
        Norm::None => "Linear, ReLU, ..., Linear",
        Norm::Batch => "Linear without bias, BatchNorm1d, ReLU, ..., Linear; training mode",
        Norm::Layer => "Linear, LayerNorm, ReLU, ..., Linear",
    };
    let mut s = format!(
        "model   {arch} MLP ({layers}), {n_params} parameters, model seed {}\n\
         data    {} steps of a batch of {} (data seed {}), {loss}\n\
         split   {} micro-batches of sizes {sizes:?} per step\n",
        c.model_seed, c.steps, c.batch, c.data_seed, c.micro_batches
    );
    if let Some(clip) = c.clip_grad_norm {
        s += &format!(
            "clip    clip_grad_norm_(parameters, {}) once per step, after the last micro-batch\n",
            py_float(clip)
        );
    }
    s
}

/// In how many steps a run's gradient was clipped (its norm above the threshold).
pub fn clipped_steps(run: &FixesRun, threshold: f64) -> usize {
    run.grad_norms.iter().filter(|&&n| n as f64 > threshold).count()
}

/// Why clipping and the normalisation layer change the answer (empty without them).
fn why_setup(r: &FixesReport) -> String {
    let c = &r.config;
    let mut s = String::new();
    if let Some(clip) = c.clip_grad_norm {
        let counts: Vec<String> =
            r.runs.iter().map(|run| format!("{} {}", run.name, clipped_steps(run, clip))).collect();
        s += &format!(
            "- Clipping runs once per step on the accumulated gradient: with no fix (and with lr / k) it is about k\n  \
               times the batch gradient, so it is clipped in steps where the large batch is not, by a factor that\n  \
               changes from step to step; even Adam, which ignores a constant scale, then leaves the large batch.\n  \
               loss / k and size / batch accumulate the batch gradient itself and clip exactly where it does.\n  \
               Steps clipped of {} with {}: {}.\n",
            c.steps,
            describe_optimizer(&c.optimizer),
            counts.join(", ")
        );
    }
    match c.norm {
        Norm::None => {}
        Norm::Batch => {
            s += "- BatchNorm normalises each micro-batch with its own mean and variance, so the forward pass itself\n  \
                  differs from the large batch's (and the running statistics move k times per step): no scaling of the\n  \
                  loss or the learning rate repairs that, so no fix is equal.\n"
        }
        Norm::Layer => {
            s += "- LayerNorm normalises each sample over its own features, so a sample's output does not depend on the\n  \
                  micro-batch it is in: the fixes behave as without normalisation.\n"
        }
    }
    s
}

const CELL_NOTE: &str = "Each cell: equal to the large-batch run after the last step (torch.allclose, rtol 1e-5),\n\
     and in brackets the largest parameter difference relative to the largest parameter.\n";

/// The summary table for the optimizers of [`table_optimizers`] (one report each, as
/// [`run_table`] makes them), then why each fix holds or fails.
pub fn render_table(reports: &[FixesReport]) -> String {
    let first = &reports[0];
    let c = &first.config;
    let k = c.micro_batches;
    let mut s = String::from(
        "Which fix makes gradient accumulation equal one large batch? (tapegrad, after the forum post)\n\n",
    );
    s += &setting(c, &first.micro_batch_sizes, first.initial_params.len());
    s += "\n";
    s += CELL_NOTE;
    s += "\n| optimizer | no fix | lr / k | loss / k (Lightning) | loss x size / batch |\n";
    s += "| --- | --- | --- | --- | --- |\n";
    for r in reports {
        let cells: Vec<String> = RUNS[1..].iter().map(|name| verdict(r.run(name))).collect();
        s += &format!("| {} | {} |\n", describe_optimizer(&r.config.optimizer), cells.join(" | "));
    }
    let even = first.micro_batch_sizes.iter().all(|&m| m == first.micro_batch_sizes[0]);
    s += &format!(
        "\nWhy (k = {k}): accumulating k mean losses sums k micro-batch means, about k times the batch gradient.\n\
         - SGD: the step is lr x gradient, so dividing the lr or each loss by k is the same fix; momentum only\n  \
           sums past steps, so it keeps the equality.\n\
         - Weight decay is added to the gradient (SGD, Adam) or applied as p *= 1 - lr x wd (AdamW): dividing\n  \
           the lr by k divides the decay too, dividing the loss does not.\n\
         - Adam divides by the root of the squared-gradient average: a gradient k times larger gives almost the\n  \
           same step (only eps sees the scale), so no fix is needed and lr / k halves every step.\n\
         - Scaling each micro-batch's mean loss (by 1/k, or by its size / batch) gives the batch gradient itself,\n  \
           so every optimizer takes the large-batch step.{}\n",
        if even { "" } else { " Here the micro-batches differ in size: only size / batch is exact." }
    );
    s += &why_setup(first);
    s
}

/// One experiment's five runs as text.
pub fn render_one(r: &FixesReport) -> String {
    let c = &r.config;
    let mut s = String::from(
        "Which fix makes gradient accumulation equal one large batch? (tapegrad, after the forum post)\n\n",
    );
    s += &setting(c, &r.micro_batch_sizes, r.initial_params.len());
    s += &format!("optim   {}\n\n", describe_optimizer(&c.optimizer));
    s += CELL_NOTE;
    s += "\n| run | lr | last loss | equal to batched |\n| --- | --- | --- | --- |\n";
    for run in &r.runs {
        let last = run.losses.last().map(|l| l.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(", "));
        let verdict = if run.name == "batched" { "(reference)".into() } else { verdict(run) };
        s += &format!("| {} | {} | {} | {verdict} |\n", run.name, py_float(run.lr), last.unwrap_or_default());
    }
    let why = why_setup(r);
    if !why.is_empty() {
        s += &format!("\nWhy (k = {}):\n{why}", c.micro_batches);
    }
    s
}
