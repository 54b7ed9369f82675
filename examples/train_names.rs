//! A character-level language model on the 1990 US Census surnames (88,799 names bundled
//! with tapegrad-nn), trained three ways from the same initialisation and the same batches,
//! to show gradient accumulation where it goes wrong in practice: token losses over names of
//! different lengths.
//!
//! ```text
//! cargo run --release --example train_names -- [--epochs N] [--optimizer sgd|adam]
//!     [--lr LR] [--seed S] [--plot FILE.svg] [--batches N]
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
//! Bad arguments print one line on stderr and exit with status 2, before any training.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapegrad::{Tape, TorchRng};
use tapegrad_nn::names::{self, NameBatch, ALPHABET};
use tapegrad_nn::{
    Accumulation, Adam, CrossEntropyLoss, Loss, LossScale, Module, Optimizer, Reduction, Sequential, Sgd,
};

const SPLIT_SEED: u64 = 0;
const BATCH: usize = 32;
const CONTEXT: usize = 3;
const EMBED: usize = 10;
const HIDDEN: usize = 200;
const RUNS: [&str; 3] = ["full-batch", "loss/k", "tokens/total"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Opt {
    /// Plain SGD (default lr 0.1).
    Sgd,
    /// Adam with PyTorch's betas and eps (default lr 0.001).
    Adam,
}

/// A character-level MLP language model on US surnames, trained full-batch, with loss/k
/// accumulation and with token-count accumulation.
#[derive(Parser, Debug)]
#[command(name = "train_names")]
struct Cli {
    /// Passes over the training names (1 or more).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    epochs: u32,
    /// Train on the first N batches of each epoch only (default: all; for quick runs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batches: Option<u64>,
    /// The optimizer of the three runs.
    #[arg(long, value_enum, default_value_t = Opt::Sgd)]
    optimizer: Opt,
    /// Learning rate (default: 0.1 for sgd, 0.001 for adam).
    #[arg(long, value_parser = positive)]
    lr: Option<f64>,
    /// `torch.manual_seed` of the initialisation, the batches' order and the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draw the three validation curves into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<String>,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && (v as f32).is_normal() => Ok(v),
        _ => Err(format!("{s:?} is not a positive float32 learning rate")),
    }
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
    fn new(cli: &Cli, lr: f64, accumulation: Accumulation) -> Self {
        let tape = Tape::new();
        let model = names::char_mlp(&tape, CONTEXT, EMBED, HIDDEN, &mut TorchRng::manual_seed(cli.seed));
        let optimizer: Box<dyn Optimizer<f32>> = match cli.optimizer {
            Opt::Sgd => Box::new(Sgd::new(lr)),
            Opt::Adam => Box::new(Adam::new(lr)),
        };
        Run { tape, model, optimizer, accumulation, losses: Vec::with_capacity(BATCH), validation: Vec::new() }
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            eprintln!("train_names: {first}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &cli.plot {
        let ok = if path.ends_with(".svg") {
            tapegrad_nn::files::check_output(path)
        } else {
            Err(std::io::Error::other("the plot is an SVG file: give a name ending in .svg"))
        };
        if let Err(e) = ok {
            eprintln!("train_names: --plot {path}: {e}");
            return ExitCode::from(2);
        }
    }
    let lr = cli.lr.unwrap_or(if cli.optimizer == Opt::Sgd { 0.1 } else { 0.001 });
    let all = names::surnames();
    let split = names::random_split(all.len(), &[0.8, 0.1, 0.1], SPLIT_SEED);
    let pick = |ix: &[usize]| ix.iter().map(|&i| all[i]).collect::<Vec<&str>>();
    let (train, val) = (pick(&split[0]), pick(&split[1]));
    println!(
        "US surnames (1990 Census): {} training, {} validation, {} test names (random_split 80/10/10, seed {SPLIT_SEED})",
        train.len(),
        val.len(),
        split[2].len()
    );
    let opt = if cli.optimizer == Opt::Sgd { "SGD" } else { "Adam" };
    println!(
        "MLP: {CONTEXT} characters -> embeddings of {EMBED} -> {HIDDEN} tanh -> {ALPHABET} logits; {opt} lr {lr}, \
         batches of {BATCH} names, {} epochs, seed {}",
        cli.epochs, cli.seed
    );
    let bigram = bigram_loss(&train, &val);
    println!("bigram baseline (counts + 1): validation {bigram:.4} nats/char");
    let mut runs = [
        Run::new(&cli, lr, Accumulation::new(1, LossScale::None)),
        Run::new(&cli, lr, Accumulation::new(BATCH, LossScale::DivideByK)),
        Run::new(&cli, lr, Accumulation::new(BATCH, LossScale::PerLossTerm)),
    ];
    let mut order_rng = TorchRng::manual_seed(cli.seed);
    let mut order = vec![0; train.len()];
    let mut batch = NameBatch::default();
    let steps = train.len().div_ceil(BATCH).min(cli.batches.map_or(usize::MAX, |b| b as usize));
    let style = ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} batches").expect("template");
    for epoch in 1..=cli.epochs {
        order_rng.randperm_into(&mut order);
        let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout());
        bar.set_style(style.clone());
        bar.set_prefix(epoch.to_string());
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
        let [x, y, z] = [0, 1, 2].map(|i| runs[i].validation[epoch as usize - 1]);
        println!(
            "epoch {epoch}: validation full-batch {x:.4}, loss/k {y:.4}, tokens/total {z:.4}; weight distance \
             loss/k {:.1e}, tokens/total {:.1e}",
            distance(&runs[1].weights(), &w),
            distance(&runs[2].weights(), &w)
        );
    }
    if let Some(path) = &cli.plot {
        let curves: Vec<(&str, &[f64])> = RUNS.iter().zip(&runs).map(|(n, r)| (*n, r.validation.as_slice())).collect();
        match plot::draw(path, &curves, bigram) {
            Ok(()) => println!("plot written to {path}"),
            Err(e) => {
                eprintln!("train_names: cannot write the plot {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut rng = TorchRng::manual_seed(cli.seed);
    let samples: Vec<String> = (0..10).map(|_| runs[0].sample(&mut rng)).collect();
    println!("10 names sampled from the full-batch model: {}", samples.join(", "));
    let w = runs[0].weights();
    let [x, y, z] = [0, 1, 2].map(|i| *runs[i].validation.last().expect("at least one epoch"));
    println!(
        "final validation loss (nats/char): full-batch {x:.4}, loss/k {y:.4}, tokens/total {z:.4}, bigram {bigram:.4}"
    );
    println!(
        "relative weight distance from full-batch: loss/k {:.1e}, tokens/total {:.1e}",
        distance(&runs[1].weights(), &w),
        distance(&runs[2].weights(), &w)
    );
    ExitCode::SUCCESS
}

mod plot {
    use plotters::prelude::*;

    /// The validation curves per epoch and the bigram baseline, as an SVG file written whole.
    pub fn draw(path: &str, curves: &[(&str, &[f64])], bigram: f64) -> Result<(), Box<dyn std::error::Error>> {
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
        tapegrad_nn::files::write_atomic(path, svg.as_bytes())?;
        Ok(())
    }
}
