//! Trains a 64-64-10 MLP on the 8x8 handwritten digits bundled with tapegrad-nn, with
//! cross-entropy, batches of 64 and SGD with momentum (or Adam, AdamW), and reports the
//! training loss and the test accuracy after every epoch.
//!
//! ```text
//! cargo run --release --example train_digits -- [--epochs N] [--micro-batches K]
//!     [--optimizer sgd|adam|adamw] [--lr LR] [--momentum M] [--betas B1,B2] [--eps EPS]
//!     [--weight-decay WD] [--seed S] [--plot FILE.svg]
//! ```
//!
//! - The data: `Dataset::digits()` (1,797 images), split by
//!   `random_split([1437, 360], seed 0)` — the split is fixed; `--seed` sets the model's
//!   initialisation and the shuffling, as `torch.manual_seed(seed)` and
//!   `DataLoader(..., shuffle=True, generator=torch.Generator().manual_seed(seed))` would.
//! - `--micro-batches K` trains the same way with each batch of 64 split into K
//!   micro-batches whose gradients accumulate before one step, each micro-batch's mean loss
//!   scaled by its size / the batch size (exact for a mean loss). Then the full-batch run is
//!   made too, and a closing note compares the two: test accuracy and the distance between
//!   their final weights. A batch shorter than K (the epoch's last holds 29 rows) splits
//!   into one micro-batch a row.
//! - `--plot FILE.svg` draws the training loss and the test accuracy per epoch of the
//!   full-batch run and the accumulated one (K micro-batches, 4 when K is 1).
//! - `--optimizer sgd` (the default: lr 0.05, momentum 0.9), `adam` or `adamw` (lr 0.01,
//!   PyTorch's other defaults); `--lr`, `--momentum`, `--betas`, `--eps` and
//!   `--weight-decay` override them (the demo's options, `tapegrad_demo::args`).
//! - A progress bar shows each epoch's batches when stdout is a terminal.
//! - The last line is `test accuracy: 0.972` (the run asked for).
//!
//! Bad arguments (a plot path that cannot be written included), write errors and a full
//! disk give one line on stderr and exit status 2, before any training where they can be
//! known; a closed stdout pipe ends the run quietly (the rules of
//! `tapegrad_demo::output`, shared with the demo).

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapegrad::{Tape, TorchRng};
use tapegrad_demo::args::{check_outputs, describe_optimizer, OptimizerArgs, PlotArg};
use tapegrad_demo::output::{self, fail};
use tapegrad_nn::{CrossEntropyLoss, DataLoader, Dataset, Module, OptimizerKind, OptimizerSpec, Reduction, Sequential};

/// The split seed: one fixed split, whatever `--seed` is.
const SPLIT_SEED: u64 = 0;
const BATCH: usize = 64;
const HIDDEN: usize = 64;

/// Trains a 64-64-10 MLP on the 8x8 handwritten digits bundled with tapegrad-nn
/// (cross-entropy, batches of 64) and reports the training loss and the test accuracy after
/// every epoch.
#[derive(Parser, Debug)]
#[command(
    name = "train_digits",
    long_about = None,
    after_help = DEFAULTS,
    mut_arg("plot", |a| a.help("Draw the training loss and test accuracy per epoch of the full-batch and the \
        accumulated run (K micro-batches, 4 when K is 1) as an SVG file"))
)]
struct Cli {
    /// Epochs, 1 to 10000.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    epochs: u64,
    /// Micro-batches K per batch of 64 (1 to 64), gradients accumulated before each step;
    /// with K > 1 the full-batch run is made too and compared.
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=BATCH as u64))]
    micro_batches: u64,
    /// The optimizer.
    #[command(flatten)]
    optimizer: OptimizerArgs,
    /// Seed of the initialisation and the shuffling (the split is fixed).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    seed: u64,
    /// `--plot`: the loss and accuracy curves of both runs.
    #[command(flatten)]
    plot: PlotArg,
}

/// The optimizers' defaults, after the options in `--help`.
const DEFAULTS: &str = "Defaults: sgd lr 0.05, momentum 0.9; adam lr 0.01; adamw lr 0.01, weight decay 0.01; \
                        betas 0.9,0.999 and eps 1e-8.";

/// This example's optimizer for `kind`: SGD with momentum 0.9 and lr 0.05, or Adam(W)
/// with lr 0.01 and PyTorch's other defaults.
fn default_optimizer(kind: OptimizerKind) -> OptimizerSpec {
    match kind {
        OptimizerKind::Sgd => OptimizerSpec { momentum: 0.9, ..OptimizerSpec::new(kind, 0.05) },
        _ => OptimizerSpec::new(kind, 0.01),
    }
}

/// What to run (the checked command line).
struct Options {
    epochs: usize,
    micro_batches: usize,
    optimizer: OptimizerSpec,
    seed: u64,
}

/// One training run's curves and result.
struct Run {
    micro_batches: usize,
    losses: Vec<f64>,
    accuracies: Vec<f64>,
    weights: Vec<f32>,
}

/// Trains from the seed's initialisation with `k` micro-batches per batch, printing one
/// line per epoch. `Err` is the program's end when stdout fails.
fn train(o: &Options, k: usize, train: &Dataset<f32>, test: &Dataset<f32>) -> Result<Run, ExitCode> {
    let mut tape = Tape::<f32>::new();
    let model =
        Sequential::mlp(&tape, &[train.num_features(), HIDDEN, train.classes()], &mut TorchRng::manual_seed(o.seed));
    let mut opt = o.optimizer.build::<f32>().map_err(|e| fail(&e.to_string()))?;
    let loss_fn = CrossEntropyLoss::new(Reduction::Mean);
    let mut loader = DataLoader::new(BATCH).shuffle(o.seed);
    let style = ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} batches  loss {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut run = Run { micro_batches: k, losses: Vec::new(), accuracies: Vec::new(), weights: Vec::new() };
    for epoch in 1..=o.epochs {
        let bar = ProgressBar::with_draw_target(
            Some(loader.batches_per_epoch(train.len()) as u64),
            ProgressDrawTarget::stdout(),
        )
        .with_style(style.clone())
        .with_prefix(epoch.to_string());
        let mut total = 0.0;
        for batch in loader.epoch(train) {
            opt.zero_grad(&tape);
            let mut batch_loss = 0.0;
            // a batch shorter than k (the epoch's last: 1,437 = 22 x 64 + 29) splits into one
            // micro-batch a row, as `torch.chunk` would; no row is dropped, and the size /
            // batch scaling keeps the step the batch's mean-loss step
            for mb in batch.micro_batches(k.min(batch.len())) {
                tape.reset();
                let logits = model.forward(tape.input(mb.inputs.clone()));
                let loss = loss_fn.forward(logits, tape.input(mb.targets()));
                batch_loss += f64::from(loss.item()) * mb.len() as f64;
                // a mean over the micro-batch, weighted by its share of the batch: the sum
                // of the k gradients is the gradient of the batch's mean loss
                loss.mul_scalar(mb.len() as f32 / batch.len() as f32).backward();
            }
            tape.reset();
            opt.step(&mut tape);
            total += batch_loss;
            bar.set_message(format!("{:.4}", batch_loss / batch.len() as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let loss = total / train.len() as f64;
        let acc = accuracy(&tape, &model, test);
        output::write(&format!("epoch {epoch:>3}  loss {loss:.4}  test accuracy {acc:.3}\n"))?;
        run.losses.push(loss);
        run.accuracies.push(acc);
    }
    for p in model.parameters() {
        run.weights.extend_from_slice(tape.param_value(p).data());
    }
    Ok(run)
}

/// The share of `test` the model classifies right.
fn accuracy(tape: &Tape<f32>, model: &Sequential<f32>, test: &Dataset<f32>) -> f64 {
    let _no_grad = tape.no_grad();
    let predicted = model.forward(tape.input(test.features().clone())).argmax(1).value();
    let right = predicted.data().iter().zip(test.labels()).filter(|(&p, &l)| p as usize == l).count();
    right as f64 / test.len() as f64
}

/// The L2 norm of the difference of two runs' final weights, and of the first's weights.
fn distance(a: &Run, b: &Run) -> (f64, f64) {
    let d = a.weights.iter().zip(&b.weights).map(|(&x, &y)| f64::from(x - y).powi(2)).sum::<f64>();
    let n = a.weights.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
    (d.sqrt(), n.sqrt())
}

fn describe(k: usize) -> String {
    if k == 1 {
        format!("full batch ({BATCH})")
    } else {
        format!("{k} micro-batches per batch of {BATCH}, gradients accumulated (loss x size/batch)")
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(end) => end,
    }
}

/// The checked options of `cli` and the plot's path, checked before any training.
fn options(cli: &Cli) -> Result<Options, String> {
    let optimizer = cli.optimizer.spec(default_optimizer)?;
    check_outputs(&[("--plot", cli.plot.plot.as_deref())])?;
    Ok(Options { epochs: cli.epochs as usize, micro_batches: cli.micro_batches as usize, optimizer, seed: cli.seed })
}

/// The whole program; `Err` is its end (status 2 after one line, or 0 for a closed pipe).
fn run() -> Result<(), ExitCode> {
    let cli: Cli = output::parse("train_digits")?;
    let o = options(&cli).map_err(|e| fail(&e))?;
    let digits = Dataset::<f32>::digits().map_err(|e| fail(&format!("cannot read the digits: {e}")))?;
    let (train_set, test_set) = digits.train_test_split(0.2, SPLIT_SEED);
    output::write(&format!(
        "8x8 digits: {} training and {} test images, {} classes (random_split seed {SPLIT_SEED})\n",
        train_set.len(),
        test_set.len(),
        digits.classes()
    ))?;
    output::write(&format!(
        "MLP 64-{HIDDEN}-10 (ReLU), cross-entropy (mean), {}, batch {BATCH}, {} epochs, seed {}\n",
        describe_optimizer(&o.optimizer),
        o.epochs,
        o.seed
    ))?;
    let start = Instant::now();
    // the run asked for, and the other of the pair when comparing or plotting
    let k = o.micro_batches;
    let plot = cli.plot.plot.as_deref();
    let other = if k > 1 { Some(1) } else { plot.map(|_| 4) };
    let mut runs = Vec::new();
    for kk in std::iter::once(k).chain(other) {
        output::write(&format!("\n{}\n", describe(kk)))?;
        runs.push(train(&o, kk, &train_set, &test_set)?);
    }
    let seconds = start.elapsed().as_secs_f64();
    if let [main_run, other_run] = &runs[..] {
        let (full, acc) = if main_run.micro_batches == 1 { (main_run, other_run) } else { (other_run, main_run) };
        let (d, n) = distance(full, acc);
        let (fa, aa) = (full.accuracies[full.accuracies.len() - 1], acc.accuracies[acc.accuracies.len() - 1]);
        output::write(&format!(
            "\n{} micro-batches vs full batch: test accuracy {aa:.3} vs {fa:.3} ({:.2} points apart); \
             final weights {d:.2e} apart (L2 norm of the difference; the weights' norm is {n:.2})\n",
            acc.micro_batches,
            100.0 * (aa - fa).abs()
        ))?;
        if let Some(path) = plot {
            plot::draw(path, full, acc).map_err(|e| fail(&format!("--plot: {}: {e}", path.display())))?;
            output::write(&format!("plot written to {}\n", path.display()))?;
        }
    }
    output::write(&format!("{} run(s) of {} epochs in {seconds:.2} s\n", runs.len(), o.epochs))?;
    output::write(&format!("test accuracy: {:.3}\n", runs[0].accuracies[runs[0].accuracies.len() - 1]))
}

/// The SVG chart: training loss (left) and test accuracy (right) per epoch, the full-batch
/// run as a line and the accumulated run as marks on it.
mod plot {
    use std::path::Path;

    use plotters::prelude::*;

    use super::Run;

    /// Draws the chart and writes it all or nothing (`tapegrad_nn::files::write_atomic`).
    pub fn draw(path: &Path, full: &Run, acc: &Run) -> Result<(), Box<dyn std::error::Error>> {
        let mut svg = String::new();
        render(&mut svg, full, acc)?;
        tapegrad_nn::files::write_atomic(path, svg.as_bytes())?;
        Ok(())
    }

    /// `(epoch, value)` pairs, epochs from 1.
    fn points(v: &[f64]) -> Vec<(f64, f64)> {
        v.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y)).collect()
    }

    /// One panel's two runs: the full-batch run as a line, the accumulated run as crosses,
    /// and the legend at `legend`.
    fn runs<'a, CT: CoordTranslate<From = (f64, f64)>>(
        chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
        full: &[f64],
        acc: &[f64],
        label: &str,
        legend: SeriesLabelPosition,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        chart
            .draw_series(LineSeries::new(points(full), blue.stroke_width(2)))?
            .label("full batch")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2)));
        chart
            .draw_series(points(acc).into_iter().map(|p| Cross::new(p, 4, orange.stroke_width(2))))?
            .label(label)
            .legend(move |(x, y)| Cross::new((x + 9, y), 4, orange.stroke_width(2)));
        chart.configure_series_labels().position(legend).border_style(BLACK).background_style(WHITE).draw()?;
        Ok(())
    }

    fn render(svg: &mut String, full: &Run, acc: &Run) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(svg, (900, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(450);
        let epochs = full.losses.len() as f64;
        let label = format!("{} micro-batches", acc.micro_batches);
        // training loss, log scale
        let lo = full.losses.iter().chain(&acc.losses).cloned().fold(f64::INFINITY, f64::min);
        let hi = full.losses.iter().chain(&acc.losses).cloned().fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&left)
            .caption("training loss (cross-entropy)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(1f64..epochs.max(2.0), (lo * 0.8..hi * 1.25).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .max_light_lines(0)
            .draw()?;
        runs(&mut chart, &full.losses, &acc.losses, &label, SeriesLabelPosition::MiddleRight)?;
        // test accuracy
        let lo = full.accuracies.iter().chain(&acc.accuracies).cloned().fold(1.0, f64::min);
        let mut chart = ChartBuilder::on(&right)
            .caption("test accuracy", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(1f64..epochs.max(2.0), (lo - 0.02).max(0.0)..1.0)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .max_light_lines(0)
            .draw()?;
        runs(&mut chart, &full.accuracies, &acc.accuracies, &label, SeriesLabelPosition::LowerRight)?;
        root.present()?;
        Ok(())
    }
}
