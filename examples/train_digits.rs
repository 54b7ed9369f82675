//! Trains a 64-64-10 MLP on the 8x8 handwritten digits bundled with tapegrad-nn, with
//! cross-entropy, batches of 64 and SGD with momentum (or Adam), and reports the training
//! loss and the test accuracy after every epoch.
//!
//! ```text
//! cargo run --release --example train_digits -- [--epochs N] [--micro-batches K]
//!     [--optimizer sgd|adam] [--lr LR] [--seed S] [--plot FILE.svg]
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
//!   their final weights.
//! - `--plot FILE.svg` draws the training loss and the test accuracy per epoch of the
//!   full-batch run and the accumulated one (K micro-batches, 4 when K is 1).
//! - `--optimizer sgd` (the default: lr 0.05, momentum 0.9) or `adam` (lr 0.01, PyTorch's
//!   default betas and eps); `--lr` overrides the learning rate.
//! - A progress bar shows each epoch's batches when stdout is a terminal.
//! - The last line is `test accuracy: 0.972` (the run asked for).
//!
//! Bad arguments (a plot path that cannot be written included) print one line on stderr
//! and exit with status 2, before any training.

use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tapegrad::{Tape, TorchRng};
use tapegrad_nn::{Adam, CrossEntropyLoss, DataLoader, Dataset, Module, Optimizer, Reduction, Sequential, Sgd};

/// The split seed: one fixed split, whatever `--seed` is.
const SPLIT_SEED: u64 = 0;
const BATCH: usize = 64;
const HIDDEN: usize = 64;

const USAGE: &str = "usage: train_digits [--epochs N] [--micro-batches K] [--optimizer sgd|adam] [--lr LR] \
                     [--seed S] [--plot FILE.svg]";

/// The optimizers on offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OptimizerKind {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam with PyTorch's default betas and eps.
    Adam,
}

/// The command line.
#[derive(Clone, Debug)]
struct Options {
    epochs: usize,
    micro_batches: usize,
    optimizer: OptimizerKind,
    lr: Option<f64>,
    seed: u64,
    plot: Option<String>,
}

impl Options {
    /// The learning rate: given, or the optimizer's default here.
    fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Sgd => 0.05,
            OptimizerKind::Adam => 0.01,
        })
    }
}

/// Parses the arguments (without the program name): `Ok(None)` for `--help`.
fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options { epochs: 20, micro_batches: 1, optimizer: OptimizerKind::Sgd, lr: None, seed: 0, plot: None };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (flag.as_str(), None),
        };
        let known = ["--epochs", "--micro-batches", "--optimizer", "--lr", "--seed", "--plot"];
        if !known.contains(&name) {
            return Err(format!("unknown argument '{flag}'"));
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let bad = |what: &str| format!("{name} '{value}': {what}");
        match name {
            "--epochs" => {
                o.epochs = value.parse().map_err(|_| bad("not a whole number"))?;
                if !(1..=10_000).contains(&o.epochs) {
                    return Err(bad("need 1 to 10000 epochs"));
                }
            }
            "--micro-batches" => {
                o.micro_batches = value.parse().map_err(|_| bad("not a whole number"))?;
                if !(1..=BATCH).contains(&o.micro_batches) {
                    return Err(bad(&format!("need 1 to {BATCH} micro-batches (the batch size)")));
                }
            }
            "--optimizer" => {
                o.optimizer = match value.as_str() {
                    "sgd" => OptimizerKind::Sgd,
                    "adam" => OptimizerKind::Adam,
                    _ => return Err(bad("unknown optimizer (sgd or adam)")),
                }
            }
            "--lr" => {
                let lr: f64 = value.parse().map_err(|_| bad("not a number"))?;
                if !(lr.is_finite() && lr > 0.0) {
                    return Err(bad("need a positive learning rate"));
                }
                o.lr = Some(lr);
            }
            "--seed" => o.seed = value.parse().map_err(|_| bad("not a whole number (0 to 2^64 - 1)"))?,
            "--plot" => {
                if !value.ends_with(".svg") {
                    return Err(bad("the plot is an SVG file: give a name ending in .svg"));
                }
                o.plot = Some(value);
            }
            _ => unreachable!("checked against the known flags"),
        }
    }
    Ok(Some(o))
}

/// One training run's curves and result.
struct Run {
    micro_batches: usize,
    losses: Vec<f64>,
    accuracies: Vec<f64>,
    weights: Vec<f32>,
}

/// Trains from the seed's initialisation with `k` micro-batches per batch, printing one
/// line per epoch.
fn train(o: &Options, k: usize, train: &Dataset<f32>, test: &Dataset<f32>) -> Run {
    let mut tape = Tape::<f32>::new();
    let model =
        Sequential::mlp(&tape, &[train.num_features(), HIDDEN, train.classes()], &mut TorchRng::manual_seed(o.seed));
    let mut opt: Box<dyn Optimizer<f32>> = match o.optimizer {
        OptimizerKind::Sgd => Box::new(Sgd::new(o.lr()).momentum(0.9)),
        OptimizerKind::Adam => Box::new(Adam::new(o.lr())),
    };
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
            for mb in batch.micro_batches(k) {
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
        println!("epoch {epoch:>3}  loss {loss:.4}  test accuracy {acc:.3}");
        run.losses.push(loss);
        run.accuracies.push(acc);
    }
    for p in model.parameters() {
        run.weights.extend_from_slice(tape.param_value(p).data());
    }
    run
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("train_digits: {e} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    let digits = match Dataset::<f32>::digits() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("train_digits: cannot read the digits: {e}");
            return ExitCode::FAILURE;
        }
    };
    // a plot that could not be written is refused before any work
    if let Some(path) = &o.plot {
        if let Err(e) = tapegrad_nn::files::check_output(path) {
            eprintln!("train_digits: --plot {path}: {e}");
            return ExitCode::from(2);
        }
    }
    let (train_set, test_set) = digits.train_test_split(0.2, SPLIT_SEED);
    println!(
        "8x8 digits: {} training and {} test images, {} classes (random_split seed {SPLIT_SEED})",
        train_set.len(),
        test_set.len(),
        digits.classes()
    );
    let optimizer = match o.optimizer {
        OptimizerKind::Sgd => format!("SGD lr {} momentum 0.9", o.lr()),
        OptimizerKind::Adam => format!("Adam lr {}", o.lr()),
    };
    println!(
        "MLP 64-{HIDDEN}-10 (ReLU), cross-entropy (mean), {optimizer}, batch {BATCH}, {} epochs, seed {}",
        o.epochs, o.seed
    );
    let start = Instant::now();
    // the run asked for, and the other of the pair when comparing or plotting
    let k = o.micro_batches;
    let other = if k > 1 { Some(1) } else { o.plot.as_ref().map(|_| 4) };
    let mut runs = Vec::new();
    for kk in std::iter::once(k).chain(other) {
        println!("\n{}", describe(kk));
        runs.push(train(&o, kk, &train_set, &test_set));
    }
    let seconds = start.elapsed().as_secs_f64();
    if let [main_run, other_run] = &runs[..] {
        let (full, acc) = if main_run.micro_batches == 1 { (main_run, other_run) } else { (other_run, main_run) };
        let (d, n) = distance(full, acc);
        let (fa, aa) = (full.accuracies[full.accuracies.len() - 1], acc.accuracies[acc.accuracies.len() - 1]);
        println!(
            "\n{} micro-batches vs full batch: test accuracy {aa:.3} vs {fa:.3} ({:.2} points apart); \
             final weights {d:.2e} apart (L2 norm of the difference; the weights' norm is {n:.2})",
            acc.micro_batches,
            100.0 * (aa - fa).abs()
        );
        if let Some(path) = &o.plot {
            if let Err(e) = plot::draw(path, full, acc) {
                eprintln!("train_digits: cannot write the plot {path}: {e}");
                return ExitCode::FAILURE;
            }
            println!("plot written to {path}");
        }
    }
    println!("{} run(s) of {} epochs in {seconds:.2} s", runs.len(), o.epochs);
    println!("test accuracy: {:.3}", runs[0].accuracies[runs[0].accuracies.len() - 1]);
    ExitCode::SUCCESS
}

/// The SVG chart: training loss (left) and test accuracy (right) per epoch, the full-batch
/// run as a line and the accumulated run as marks on it.
mod plot {
    use plotters::prelude::*;

    use super::Run;

    /// Draws the chart and writes it all or nothing (`tapegrad_nn::files::write_atomic`).
    pub fn draw(path: &str, full: &Run, acc: &Run) -> Result<(), Box<dyn std::error::Error>> {
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

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse(&args("--epochs 3 --micro-batches=4 --seed 7 --plot a.svg --lr 0.1")).unwrap().unwrap();
        assert_eq!((o.epochs, o.micro_batches, o.seed, o.plot.as_deref(), o.lr), (3, 4, 7, Some("a.svg"), Some(0.1)));
        assert_eq!((o.optimizer, o.lr()), (super::OptimizerKind::Sgd, 0.1));
        let o = parse(&args("--optimizer adam")).unwrap().unwrap();
        assert_eq!((o.optimizer, o.lr()), (super::OptimizerKind::Adam, 0.01));
        assert!(parse(&args("--help")).unwrap().is_none());
        for (bad, want) in [
            ("--epochs 0", "--epochs '0': need 1 to 10000 epochs"),
            ("--epochs x", "--epochs 'x': not a whole number"),
            ("--micro-batches 65", "--micro-batches '65': need 1 to 64 micro-batches"),
            ("--optimizer rmsprop", "--optimizer 'rmsprop': unknown optimizer"),
            ("--lr -1", "--lr '-1': need a positive learning rate"),
            ("--plot a.png", "--plot 'a.png': the plot is an SVG file"),
            ("--frobnicate", "unknown argument '--frobnicate'"),
            ("--seed", "--seed needs a value"),
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
    }
}
