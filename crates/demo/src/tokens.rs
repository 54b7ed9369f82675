//! `tapegrad-demo tokens`: the token-level version of the question, the 2024
//! gradient-accumulation bug. Sequences of different lengths are padded with
//! `ignore_index` (-100) and the loss is the mean over the batch's non-padding tokens; with k
//! micro-batches, averaging their token means (`loss/k`) or weighting them by sequences
//! (`size/batch`) over-weights the tokens of short micro-batches, and the fix
//! (`tokens/total`, [`LossScale::PerLossTerm`]) divides each micro-batch's summed loss by
//! the loss tokens of the whole batch, counted before the first backward.
//!
//! Exactly the experiment of the PyTorch reference generator `make_tokens_reference.py`
//! (kept beside this crate's test fixtures):
//!
//! - data: `torch.manual_seed(data_seed)`, then `lengths = randint(min_len, max_len + 1,
//!   (steps * B,))`, `tokens = randint(0, V, (steps * B, T))`, `targets = randint(0, V,
//!   (steps * B, T))`, `T = max_len`; positions at or after a sequence's length are padding
//!   (token 0, target -100); step `s` uses sequences `s*B .. (s+1)*B`;
//! - model: `torch.manual_seed(model_seed)`, `Embedding(V, D), Linear(D, H), Tanh,
//!   Linear(H, V)` per token, rebuilt for every run;
//! - loss: cross-entropy over the vocabulary, padding ignored, the mean over the tokens;
//! - six runs of `steps` optimizer steps: `batched`, `none`, `lr/k`, `loss/k`, `size/batch`
//!   (as in `fixes`) and `tokens/total`.

use tapegrad::{Tape, Tensor, TorchRng, DEFAULT_IGNORE_INDEX};
use tapegrad_nn::{
    split_sizes, Accumulation, CrossEntropyLoss, Embedding, Linear, LossScale, Optimizer, Reduction, Sequential, Tanh,
};

use crate::fixes::{rel_distance, OptimizerSpec};
use crate::{allclose, flatten};

/// One experiment's settings (validated command-line options).
#[derive(Clone, Debug, PartialEq)]
pub struct TokensConfig {
    /// The optimizer of every run.
    pub optimizer: OptimizerSpec,
    /// Vocabulary size V (at least 2).
    pub vocab: usize,
    /// Embedding size D.
    pub embed: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Sequences B per optimizer step.
    pub batch: usize,
    /// Micro-batches k per step (1..=B).
    pub micro_batches: usize,
    /// Sequence length T, padding included (at least 1).
    pub max_len: usize,
    /// Shortest real length (0..=T; 0 allows sequences of padding only).
    pub min_len: usize,
    /// Optimizer steps (at least 1).
    pub steps: usize,
    /// `torch.manual_seed` before drawing the data.
    pub data_seed: u64,
    /// `torch.manual_seed` before building the model.
    pub model_seed: u64,
}

impl Default for TokensConfig {
    /// The reference script's defaults: V 8, D 4, H 8, batch 4 in 2 micro-batches,
    /// lengths 1..=6, 5 steps, data seed 1, model seed 2, plain SGD with lr 0.1.
    fn default() -> Self {
        TokensConfig {
            optimizer: OptimizerSpec::defaults(crate::fixes::OptimizerKind::Sgd),
            vocab: 8,
            embed: 4,
            hidden: 8,
            batch: 4,
            micro_batches: 2,
            max_len: 6,
            min_len: 1,
            steps: 5,
            data_seed: 1,
            model_seed: 2,
        }
    }
}

/// The six runs, in the reference's order.
pub const RUNS: [&str; 6] = ["batched", "none", "lr/k", "loss/k", "size/batch", "tokens/total"];

/// The data of a configuration: every step's sequences, padded.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenData {
    /// Real lengths, `steps * B`.
    pub lengths: Vec<usize>,
    /// Tokens `[steps * B, T]` (padding 0).
    pub tokens: Tensor<f32>,
    /// Targets `[steps * B, T]` (padding -100).
    pub targets: Tensor<f32>,
}

impl TokenData {
    /// The loss tokens (targets that are not padding) of sequences `start..start + n`.
    pub fn count(&self, start: usize, n: usize) -> usize {
        let t = self.tokens.shape()[1];
        self.targets.data()[start * t..(start + n) * t].iter().filter(|&&v| v != DEFAULT_IGNORE_INDEX as f32).count()
    }
}

/// The data of `config`, drawn as the reference draws it.
pub fn make_data(config: &TokensConfig) -> TokenData {
    let (n, t, v) = (config.steps * config.batch, config.max_len, config.vocab as i64);
    let mut rng = TorchRng::manual_seed(config.data_seed);
    let lengths: Vec<usize> =
        (0..n).map(|_| rng.randint(config.min_len as i64, config.max_len as i64 + 1) as usize).collect();
    let mut draw = |pad: f32| {
        let mut m = Tensor::zeros(&[n, t]);
        for (i, x) in m.data_mut().iter_mut().enumerate() {
            let value = rng.randint(0, v) as f32;
            *x = if i % t < lengths[i / t] { value } else { pad };
        }
        m
    };
    let tokens = draw(0.0);
    let targets = draw(DEFAULT_IGNORE_INDEX as f32);
    TokenData { lengths, tokens, targets }
}

/// The steps (0-based) whose whole batch holds no loss token: the batched mean would be
/// NaN and `tokens/total` would divide by 0, so such data is refused.
pub fn empty_steps(config: &TokensConfig, data: &TokenData) -> Vec<usize> {
    (0..config.steps).filter(|&s| data.count(s * config.batch, config.batch) == 0).collect()
}

/// The model of `config` on a fresh tape, after `torch.manual_seed(model_seed)`.
pub fn build_model(config: &TokensConfig) -> (Tape<f32>, Sequential<f32>) {
    let tape = Tape::new();
    let mut rng = TorchRng::manual_seed(config.model_seed);
    let model = Sequential::new(vec![
        Box::new(Embedding::new(&tape, config.vocab, config.embed, &mut rng)),
        Box::new(Linear::new(&tape, config.embed, config.hidden, &mut rng)),
        Box::new(Tanh),
        Box::new(Linear::new(&tape, config.hidden, config.vocab, &mut rng)),
    ]);
    (tape, model)
}

/// The number of parameters of the model of `config`.
pub fn num_params(c: &TokensConfig) -> usize {
    c.vocab * c.embed + (c.embed + 1) * c.hidden + (c.hidden + 1) * c.vocab
}

/// One run's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TokensRun {
    /// One of [`RUNS`].
    pub name: &'static str,
    /// Its learning rate.
    pub lr: f64,
    /// All parameters after the last step, flat in `parameters()` order.
    pub params: Vec<f32>,
    /// Per step: the batch's token-mean loss (one value) for `batched`, else the k
    /// micro-batches' token means before scaling (NaN for a micro-batch of padding only).
    pub losses: Vec<Vec<f32>>,
    /// Per step: `max|p - p_batched| / max|p_batched|` after that step.
    pub distances: Vec<f64>,
    /// The distance after the last step.
    pub max_rel_diff: f64,
    /// `torch.allclose(params, batched params)` after the last step.
    pub equal: bool,
}

/// One experiment's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TokensReport {
    /// The settings.
    pub config: TokensConfig,
    /// Micro-batch sizes in sequences (`torch.tensor_split`).
    pub micro_batch_sizes: Vec<usize>,
    /// Real lengths of all sequences.
    pub lengths: Vec<usize>,
    /// Loss tokens N of each step.
    pub step_tokens: Vec<usize>,
    /// Per step, the loss tokens of each micro-batch.
    pub micro_batch_tokens: Vec<Vec<usize>>,
    /// The parameters every run starts from, flat.
    pub initial_params: Vec<f32>,
    /// The six runs, in [`RUNS`] order.
    pub runs: Vec<TokensRun>,
}

impl TokensReport {
    /// The run named `name`.
    ///
    /// # Panics
    /// If there is no such run.
    pub fn run(&self, name: &str) -> &TokensRun {
        self.runs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no run named {name}"))
    }

    /// How many micro-batch losses are NaN because the micro-batch holds padding only
    /// (its gradients are zero; JSON writes `null`).
    pub fn nan_losses(&self) -> usize {
        self.runs.iter().flat_map(|r| r.losses.iter().flatten()).filter(|x| x.is_nan()).count()
    }

    /// How many parameters or distances are NaN or infinite (a learning rate too large for
    /// float32); JSON writes them as `null`.
    pub fn non_finite(&self) -> usize {
        let runs = self.runs.iter().flat_map(|r| r.params.iter().map(|&x| x as f64).chain([r.lr, r.max_rel_diff]));
        self.initial_params.iter().map(|&x| x as f64).chain(runs).filter(|v| !v.is_finite()).count()
    }
}

/// Runs the six runs of `config` side by side, step by step.
///
/// # Panics
/// If the configuration is invalid or a step holds no loss token (the command line checks
/// both first).
pub fn run_tokens(config: &TokensConfig) -> TokensReport {
    let data = make_data(config);
    assert!(empty_steps(config, &data).is_empty(), "tokens: a step has no loss token");
    let (b, k) = (config.batch, config.micro_batches);
    let loss = CrossEntropyLoss::new(Reduction::Mean);
    let lr = config.optimizer.lr;
    struct Runner {
        name: &'static str,
        lr: f64,
        accumulation: Accumulation,
        tape: Tape<f32>,
        model: Sequential<f32>,
        optimizer: Box<dyn Optimizer<f32>>,
        losses: Vec<Vec<f32>>,
        distances: Vec<f64>,
    }
    let mut runners: Vec<Runner> = RUNS
        .iter()
        .map(|&name| {
            let (micro, scale, run_lr) = match name {
                "batched" => (1, LossScale::None, lr),
                "none" => (k, LossScale::None, lr),
                "lr/k" => (k, LossScale::None, lr / k as f64),
                "loss/k" => (k, LossScale::DivideByK, lr),
                "size/batch" => (k, LossScale::SizeOverBatch, lr),
                _ => (k, LossScale::PerLossTerm, lr),
            };
            let (tape, model) = build_model(config);
            let optimizer = config.optimizer.build(run_lr);
            let (losses, distances) = (Vec::with_capacity(config.steps), Vec::with_capacity(config.steps));
            Runner {
                name,
                lr: run_lr,
                accumulation: Accumulation::new(micro, scale),
                tape,
                model,
                optimizer,
                losses,
                distances,
            }
        })
        .collect();
    let initial_params = flatten(&runners[0].tape, &runners[0].model, false);
    let mut batched = Vec::new();
    for s in 0..config.steps {
        let (x, t) = (data.tokens.rows(s * b, b), data.targets.rows(s * b, b));
        for (i, r) in runners.iter_mut().enumerate() {
            let losses = r.accumulation.run(&mut r.tape, &r.model, &loss, &x, &t, Some(r.optimizer.as_mut()));
            r.losses.push(losses);
            let params = flatten(&r.tape, &r.model, false);
            if i == 0 {
                batched = params;
                r.distances.push(0.0);
            } else {
                r.distances.push(rel_distance(&params, &batched));
            }
        }
    }
    let runs = runners
        .into_iter()
        .map(|r| {
            let params = flatten(&r.tape, &r.model, false);
            TokensRun {
                name: r.name,
                lr: r.lr,
                max_rel_diff: rel_distance(&params, &batched),
                equal: allclose(&params, &batched),
                params,
                losses: r.losses,
                distances: r.distances,
            }
        })
        .collect();
    let sizes = split_sizes(b, k);
    let micro_batch_tokens = (0..config.steps)
        .map(|s| {
            let mut start = s * b;
            sizes
                .iter()
                .map(|&m| {
                    start += m;
                    data.count(start - m, m)
                })
                .collect()
        })
        .collect();
    TokensReport {
        config: config.clone(),
        micro_batch_sizes: sizes,
        step_tokens: (0..config.steps).map(|s| data.count(s * b, b)).collect(),
        micro_batch_tokens,
        lengths: data.lengths,
        initial_params,
        runs,
    }
}
