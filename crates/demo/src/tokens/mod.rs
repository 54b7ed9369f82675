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

pub mod cmd;
pub mod json;

use tapegrad::{Tape, Tensor, TorchRng, DEFAULT_IGNORE_INDEX};
use tapegrad_nn::{
    split_sizes, Accumulation, CrossEntropyLoss, Embedding, Linear, LossScale, Optimizer, OptimizerKind, OptimizerSpec,
    Reduction, Sequential, Tanh,
};

use crate::args::describe_optimizer;
pub use crate::fixes::FixesRun as TokensRun;
use crate::fixes::{default_optimizer, track_distance, verdict};
use crate::json::py_float;
use crate::model::flatten;

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
            optimizer: default_optimizer(OptimizerKind::Sgd),
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

    /// This report's panel of `--plot`: its optimizer and k, its five fixes.
    pub fn panel(&self) -> crate::fixes::plot::Panel<'_> {
        let title = format!("{}, k = {}", describe_optimizer(&self.config.optimizer), self.config.micro_batches);
        crate::fixes::plot::Panel { title, steps: self.config.steps, fixes: &self.runs[1..] }
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
/// If the configuration is invalid or a step holds no loss token ([`cmd::validate`] checks
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
            let optimizer =
                config.optimizer.with_lr(run_lr).build().expect("cmd::validate checks the spec with lr and lr / k");
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
            track_distance(i, flatten(&r.tape, &r.model, false), &mut batched, &mut r.distances);
        }
    }
    let runs = runners
        .into_iter()
        .map(|r| {
            let params = flatten(&r.tape, &r.model, false);
            TokensRun::new(r.name, r.lr, params, &batched, r.losses, r.distances)
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

/// The experiment of `base` (data, model, split) for each optimizer of `fixes`' table.
pub fn run_table(base: &TokensConfig) -> Vec<TokensReport> {
    crate::fixes::table_optimizers()
        .iter()
        .map(|&optimizer| run_tokens(&TokensConfig { optimizer, ..base.clone() }))
        .collect()
}

fn setting(r: &TokensReport) -> String {
    let c = &r.config;
    let tokens: Vec<String> = r.micro_batch_tokens.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "model   Embedding({v}, {d}), Linear({d}, {h}), Tanh, Linear({h}, {v}) per token, {} parameters, model seed {}\n\
         data    {} steps of {} sequences of lengths {}..={} padded to {} (data seed {}), cross-entropy,\n        \
         mean over the non-padding tokens ({} per step)\n\
         split   {} micro-batches of {:?} sequences; their loss tokens per step: {}\n",
        r.initial_params.len(),
        c.model_seed,
        c.steps,
        c.batch,
        c.min_len,
        c.max_len,
        c.max_len,
        c.data_seed,
        r.step_tokens.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
        c.micro_batches,
        r.micro_batch_sizes,
        tokens.join(" "),
        v = c.vocab,
        d = c.embed,
        h = c.hidden,
    )
}

const TITLE: &str =
    "Which fix makes gradient accumulation equal one large batch when the loss is a mean over tokens?\n\
                     (tapegrad, sequences of different lengths with padding)\n\n";

const CELL_NOTE: &str = "Each cell: equal to the large-batch run after the last step (torch.allclose, rtol 1e-5),\n\
     and in brackets the largest parameter difference relative to the largest parameter.\n";

/// The table for the optimizers of `fixes` (one report each, as [`run_table`] makes them),
/// then why each fix holds or fails.
pub fn render_table(reports: &[TokensReport]) -> String {
    let first = &reports[0];
    let mut s = String::from(TITLE);
    s += &setting(first);
    s += "\n";
    s += CELL_NOTE;
    s += "\n| optimizer | no fix | lr / k | loss / k (Lightning) | loss x size / batch | sum / tokens of the batch |\n";
    s += "| --- | --- | --- | --- | --- | --- |\n";
    for r in reports {
        let cells: Vec<String> = RUNS[1..].iter().map(|name| verdict(r.run(name))).collect();
        s += &format!("| {} | {} |\n", describe_optimizer(&r.config.optimizer), cells.join(" | "));
    }
    s += &why(first);
    s
}

/// Why the fixes hold or fail, from the token counts of `r`.
fn why(r: &TokensReport) -> String {
    let k = r.config.micro_batches;
    let uneven = r.micro_batch_tokens.iter().position(|t| t.iter().any(|&n| n != t[0]));
    let example = match uneven {
        Some(s) => format!(
            "\nHere step {} splits its {2} tokens into micro-batches of {1:?}.",
            s + 1,
            r.micro_batch_tokens[s],
            r.step_tokens[s]
        ),
        None => String::new(),
    };
    format!(
        "\nWhy (k = {k}): the batch loss is the mean over its N loss tokens, so each token weighs 1/N. A micro-batch's\n\
         mean weighs each of its n_i tokens 1/n_i: scaled by 1/k (loss / k) a token weighs 1/(k n_i), scaled by its\n\
         share s_i / B of the sequences (size / batch) s_i / (B n_i). Both are 1/N only when the micro-batches'\n\
         token counts follow the split; otherwise the tokens of short micro-batches weigh more.{example}\n\
         - lr / k, no fix: as in `fixes` (about k times the gradient), on top of the wrong weights.\n\
         - sum / tokens of the batch (tokens/total, LossScale::PerLossTerm): each micro-batch's summed loss\n  \
           divided by N, counted before the first backward, gives every token 1/N: the batch gradient itself,\n  \
           so every optimizer takes the large-batch step. A micro-batch of padding only has a NaN mean\n  \
           (0/0) but zero gradients, and changes nothing.\n"
    )
}

/// One experiment's six runs as text.
pub fn render_one(r: &TokensReport) -> String {
    let mut s = String::from(TITLE);
    s += &setting(r);
    s += &format!("optim   {}\n\n", describe_optimizer(&r.config.optimizer));
    s += CELL_NOTE;
    s += "\n| run | lr | last losses | equal to batched |\n| --- | --- | --- | --- |\n";
    for run in &r.runs {
        let last = run.losses.last().map(|l| l.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(", "));
        let verdict = if run.name == "batched" { "(reference)".into() } else { verdict(run) };
        s += &format!("| {} | {} | {} | {verdict} |\n", run.name, py_float(run.lr), last.unwrap_or_default());
    }
    s += &why(r);
    s
}
