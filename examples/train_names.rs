//! A character-level language model on the 1990 US Census surnames (88,799 names bundled
//! with tapegrad-nn), trained three ways from the same initialisation and the same batches,
//! to show gradient accumulation where it goes wrong in practice: token losses over names of
//! different lengths.
//!
//! ```text
//! cargo run --release --example train_names -- [--epochs N] [--optimizer sgd|adam]
//!     [--lr LR] [--seed S] [--plot FILE.svg] [--batches N]   (--help lists them all)
//! ```
//!
//! - Model (the makemore tutorial's MLP): the previous 3 characters -> embeddings of 10 ->
//!   200 hidden units (tanh) -> logits over `.` (the end mark) and `a`-`z`; PyTorch's default
//!   initialisation (`nn.Embedding`, `nn.Linear`) after `torch.manual_seed(seed)`.
//! - Data: the names split 80/10/10 by `random_split` (seed 0, fixed); a batch is 32
//!   training names padded to the longest, one loss token per character plus the end mark,
//!   padding ignored; the batches' order is reshuffled every epoch from `--seed`.
//! - Runs: (1) `full-batch`, the token mean of the whole batch; (2) `loss/k`, 32
//!   micro-batches of one name, each one's token mean times 1/32 (what trainers did before
//!   the 2024 fix, and what PyTorch Lightning's `accumulate_grad_batches` does); (3)
//!   `tokens/total`, the same micro-batches with `LossScale::PerLossTerm` (each one's summed
//!   loss over the batch's token count, counted first).
//! - After each epoch: validation loss per character of the three runs and the runs'
//!   weight distances from run 1; the count-based bigram model is the baseline to beat. At
//!   the end, 10 names sampled from run 1, then the two summary lines.
//!
//! Bad arguments print one line on stderr and exit with status 2, before any training (the
//! demo's rules, `tapegrad_demo::output`).

use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapegrad::{Tape, TorchRng};
use tapegrad_demo::args::{check_outputs, describe_optimizer, OptimizerArgs, PlotArg};
use tapegrad_demo::output::{self, fail};
use tapegrad_nn::names::{self, NameBatch, ALPHABET};
use tapegrad_nn::{
    Accumulation, CrossEntropyLoss, Loss, LossScale, Module, Optimizer, OptimizerKind, OptimizerSpec, Reduction,
    Sequential,
};

const SPLIT_SEED: u64 = 0;
const BATCH: usize = 32;
const CONTEXT: usize = 3;
const EMBED: usize = 10;
const HIDDEN: usize = 200;
const RUNS: [&str; 3] = ["full-batch", "loss/k", "tokens/total"];

/// A character-level MLP language model on US surnames, trained full-batch, with loss/k
/// accumulation and with token-count accumulation.
#[derive(Parser, Debug)]
#[command(
    name = "train_names",
    long_about = None,
    after_help = DEFAULTS,
    mut_arg("plot", |a| a.help("Draw the three runs' validation loss per epoch and the bigram baseline as an SVG file"))
)]
struct Cli {
    /// Epochs, 1 to 1000.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    epochs: u64,
    /// Train on the first N batches of each epoch only (default: all; for quick runs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batches: Option<u64>,
    /// The optimizer of the three runs.
    #[command(flatten)]
    optimizer: OptimizerArgs,
    /// Seed of the initialisation, the batches' order and the samples (the split is fixed).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    seed: u64,
    /// `--plot`: the validation curves.
    #[command(flatten)]
    plot: PlotArg,
}

/// The optimizers' defaults, after the options in `--help`.
const DEFAULTS: &str = "Defaults: sgd lr 0.1; adam lr 0.01; adamw lr 0.01, weight decay 0.01; betas 0.9,0.999 \
                        and eps 1e-8.";

/// This example's optimizer for `kind`: plain SGD with lr 0.1 (makemore's), or Adam(W) with
/// lr 0.01 and PyTorch's other defaults.
fn default_optimizer(kind: OptimizerKind) -> OptimizerSpec {
    OptimizerSpec::new(kind, if kind == OptimizerKind::Sgd { 0.1 } else { 0.01 })
}

/// One of the three runs.
struct Run {
    tape: Tape<f32>,
    model: Sequential<f32>,
    optimizer: Box<dyn Optimizer<f32>>,
    accumulation: Accumulation,
    losses: Vec<f32>,
    validation: Vec<f64>,
}

impl Run {
    fn new(spec: &OptimizerSpec, seed: u64, accumulation: Accumulation) -> Result<Self, ExitCode> {
        let tape = Tape::new();
        let model = names::char_mlp(&tape, CONTEXT, EMBED, HIDDEN, &mut TorchRng::manual_seed(seed));
        let optimizer: Box<dyn Optimizer<f32>> = spec.build::<f32>().map_err(|e| fail(&e.to_string()))?;
        Ok(Run { tape, model, optimizer, accumulation, losses: Vec::with_capacity(BATCH), validation: Vec::new() })
    }

    fn step(&mut self, batch: &NameBatch<f32>) {
        let ce = CrossEntropyLoss::new(Reduction::Mean);
        let (x, t) = (&batch.contexts, &batch.targets);
        let (tape, losses) = (&mut self.tape, &mut self.losses);
        self.accumulation.run_into((tape, &self.model, &ce), (x, t), Some(self.optimizer.as_mut()), losses);
    }

    /// Mean loss per character (end marks included) of `names`.
    fn loss(&mut self, names: &[&str]) -> f64 {
        let ce = CrossEntropyLoss::new(Reduction::Sum);
        let (mut sum, mut tokens) = (0.0, 0);
        let mut batch = NameBatch::default();
        for chunk in names.chunks(1024) {
            batch.fill(chunk.iter().copied(), CONTEXT);
            self.tape.reset();
            let _no_grad = self.tape.no_grad();
            let x = self.tape.leaf_from_slice(batch.contexts.data(), batch.contexts.shape(), false);
            let t = self.tape.leaf_from_slice(batch.targets.data(), batch.targets.shape(), false);
            sum += f64::from(ce.forward_sum(self.model.forward(x), t).item());
            tokens += batch.tokens;
        }
        self.tape.reset();
        sum / tokens as f64
    }

    fn weights(&self) -> Vec<f64> {
        let params = self.model.parameters();
        params.iter().flat_map(|&p| self.tape.param_value(p).into_vec()).map(f64::from).collect()
    }

    /// A name drawn letter by letter from the model's softmax.
    fn sample(&mut self, rng: &mut TorchRng) -> String {
        let mut name = String::new();
        let mut ctx = [0f32; CONTEXT];
        while name.len() < 30 {
            self.tape.reset();
            let _no_grad = self.tape.no_grad();
            let x = self.tape.leaf_from_slice(&ctx, &[1, 1, CONTEXT], false);
            let p = self.model.forward(x).reshape(&[ALPHABET]).softmax(0).value();
            let u = rng.uniform_f64_unit();
            let mut acc = 0.0;
            let next = p.data().iter().position(|&q| {
                acc += f64::from(q);
                u < acc
            });
            let c = next.unwrap_or(ALPHABET - 1);
            if c == 0 {
                break;
            }
            name.push(names::index_char(c));
            ctx.rotate_left(1);
            ctx[CONTEXT - 1] = c as f32;
        }
        self.tape.reset();
        name
    }
}

/// The count-based bigram model (counts + 1) of `train`: mean loss per character of `val`.
fn bigram_loss(train: &[&str], val: &[&str]) -> f64 {
    let pairs = |n: &str| {
        let ids: Vec<usize> = std::iter::once(0).chain(n.bytes().map(names::char_index)).chain([0]).collect();
        (0..ids.len() - 1).map(move |i| (ids[i], ids[i + 1]))
    };
    let mut counts = vec![[1.0f64; ALPHABET]; ALPHABET];
    for (a, b) in train.iter().flat_map(|n| pairs(n)) {
        counts[a][b] += 1.0;
    }
    let (mut sum, mut n) = (0.0, 0);
    for (a, b) in val.iter().flat_map(|n| pairs(n)) {
        sum -= (counts[a][b] / counts[a].iter().sum::<f64>()).ln();
        n += 1;
    }
    sum / n as f64
}

/// `||a - b|| / ||b||`.
fn distance(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (d / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(end) => end,
    }
}

/// The whole program; `Err` is its end (status 2 after one line, or 0 for a closed pipe).
fn run() -> Result<(), ExitCode> {
    let cli: Cli = output::parse("train_names")?;
    let spec = cli.optimizer.spec(default_optimizer).map_err(|e| fail(&e))?;
    check_outputs(&[("--plot", cli.plot.plot.as_deref())]).map_err(|e| fail(&e))?;
    let all = names::surnames();
    let split = names::random_split(all.len(), &[0.8, 0.1, 0.1], SPLIT_SEED);
    let pick = |ix: &[usize]| ix.iter().map(|&i| all[i]).collect::<Vec<&str>>();
    let (train, val) = (pick(&split[0]), pick(&split[1]));
    output::write(&format!(
        "US surnames (1990 Census): {} training, {} validation, {} test names (random_split 80/10/10, seed \
         {SPLIT_SEED})\n",
        train.len(),
        val.len(),
        split[2].len()
    ))?;
    output::write(&format!(
        "MLP: {CONTEXT} characters -> embeddings of {EMBED} -> {HIDDEN} tanh -> {ALPHABET} logits; {}, batches of \
         {BATCH} names, {} epochs, seed {}\n",
        describe_optimizer(&spec),
        cli.epochs,
        cli.seed
    ))?;
    let bigram = bigram_loss(&train, &val);
    output::write(&format!("bigram baseline (counts + 1): validation {bigram:.4} nats/char\n"))?;
    let mut runs = [
        Run::new(&spec, cli.seed, Accumulation::new(1, LossScale::None))?,
        Run::new(&spec, cli.seed, Accumulation::new(BATCH, LossScale::DivideByK))?,
        Run::new(&spec, cli.seed, Accumulation::new(BATCH, LossScale::PerLossTerm))?,
    ];
    let mut order_rng = TorchRng::manual_seed(cli.seed);
    let mut order = vec![0; train.len()];
    let mut batch = NameBatch::default();
    let steps = train.len().div_ceil(BATCH).min(cli.batches.map_or(usize::MAX, |b| b as usize));
    let style = ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} batches").expect("template");
    for epoch in 1..=cli.epochs as usize {
        order_rng.randperm_into(&mut order);
        let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout())
            .with_style(style.clone())
            .with_prefix(epoch.to_string());
        for ix in order.chunks(BATCH).take(steps) {
            batch.fill(ix.iter().map(|&i| train[i]), CONTEXT);
            for r in runs[1..].iter_mut() {
                r.accumulation.micro_batches = ix.len(); // one name each, a last shorter batch too
            }
            for r in runs.iter_mut() {
                r.step(&batch);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        for r in runs.iter_mut() {
            let v = r.loss(&val);
            r.validation.push(v);
        }
        let w = runs[0].weights();
        let [x, y, z] = [0, 1, 2].map(|i| runs[i].validation[epoch - 1]);
        output::write(&format!(
            "epoch {epoch}: validation full-batch {x:.4}, loss/k {y:.4}, tokens/total {z:.4}; weight distance \
             loss/k {:.1e}, tokens/total {:.1e}\n",
            distance(&runs[1].weights(), &w),
            distance(&runs[2].weights(), &w)
        ))?;
    }
    if let Some(path) = &cli.plot.plot {
        let curves: Vec<(&str, &[f64])> = RUNS.iter().zip(&runs).map(|(n, r)| (*n, r.validation.as_slice())).collect();
        plot::draw(path, &curves, bigram)
            .map_err(|e| fail(&format!("cannot write the plot {}: {e}", path.display())))?;
        output::write(&format!("plot written to {}\n", path.display()))?;
    }
    let mut rng = TorchRng::manual_seed(cli.seed);
    let samples: Vec<String> = (0..10).map(|_| runs[0].sample(&mut rng)).collect();
    output::write(&format!("10 names sampled from the full-batch model: {}\n", samples.join(", ")))?;
    let w = runs[0].weights();
    let [x, y, z] = [0, 1, 2].map(|i| *runs[i].validation.last().expect("at least one epoch"));
    output::write(&format!(
        "final validation loss (nats/char): full-batch {x:.4}, loss/k {y:.4}, tokens/total {z:.4}, bigram {bigram:.4}\n\
         relative weight distance from full-batch: loss/k {:.1e}, tokens/total {:.1e}\n",
        distance(&runs[1].weights(), &w),
        distance(&runs[2].weights(), &w)
    ))
}

mod plot {
    use plotters::prelude::*;

    /// The validation curves per epoch and the bigram baseline, as an SVG file written whole.
    pub fn draw(
        path: &std::path::Path,
        curves: &[(&str, &[f64])],
        bigram: f64,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
            root.fill(&WHITE)?;
            let epochs = curves[0].1.len() as f64;
            let values = curves.iter().flat_map(|(_, v)| v.iter().copied()).chain([bigram]);
            let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
            let pad = (hi - lo).max(1e-3) * 0.1;
            let mut chart = ChartBuilder::on(&root)
                .caption("validation loss per character (US surnames)", ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.5..epochs + 0.5, lo - pad..hi + pad)?;
            chart.configure_mesh().x_desc("epoch").y_desc("nats / char").draw()?;
            let colors = [BLUE, RED, GREEN];
            for (i, (name, v)) in curves.iter().enumerate() {
                let color = colors[i % colors.len()];
                let points = v.iter().enumerate().map(|(e, &y)| (e as f64 + 1.0, y));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            chart
                .draw_series(LineSeries::new([(0.5, bigram), (epochs + 0.5, bigram)], BLACK.mix(0.5)))?
                .label("bigram")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.5)));
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            root.present()?;
        }
        tapegrad_nn::files::prepare_write(path, svg.as_bytes())?.commit()?;
        Ok(())
    }
}
