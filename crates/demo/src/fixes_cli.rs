//! Options of `tapegrad-demo fixes`. Every bad input becomes one line on stderr and exit
//! status 2, never a panic.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::budget::{fixes_needs, parse_size, Budget, Bytes};
use crate::cli::{check_f32, clap_exit, parse_layers, seed_notes, Layers};
use crate::fixes::{
    render_one, render_table, run_fixes, run_table, table_optimizers, FixesConfig, LossKind, OptimizerKind,
    OptimizerSpec,
};
use crate::output::{self, fail, say};
use tapegrad_nn::files::escaped;

/// Which fix makes k accumulated micro-batches equal one large batch, for SGD, SGD with
/// momentum or weight decay, Adam and AdamW, over several steps. With no optimizer option
/// it prints the table for all five; with --optimizer (or any of its hyper-parameters, or
/// --json) the five runs of that one optimizer (default sgd).
#[derive(Parser, Debug)]
#[command(name = "tapegrad-demo fixes", about, long_about = None)]
pub struct FixesCli {
    /// Optimizer: sgd, adam or adamw.
    #[arg(long, value_name = "NAME", value_parser = parse_optimizer)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: 0.1 for sgd, 0.01 for adam and adamw].
    #[arg(long, value_name = "LR", allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// SGD momentum [default: 0].
    #[arg(long, value_name = "M", allow_hyphen_values = true)]
    pub momentum: Option<f64>,
    /// Adam(W) betas, each in [0, 1) [default: 0.9,0.999].
    #[arg(long, value_name = "B1,B2", value_parser = parse_betas, allow_hyphen_values = true)]
    pub betas: Option<Betas>,
    /// Adam(W) eps [default: 1e-8].
    #[arg(long, value_name = "EPS", allow_hyphen_values = true)]
    pub eps: Option<f64>,
    /// Weight decay: L2 for sgd and adam, decoupled for adamw [default: 0, or 0.01 for adamw].
    #[arg(long, value_name = "WD", allow_hyphen_values = true)]
    pub weight_decay: Option<f64>,
    /// Loss: l1 (mean |y - t|) or mse (mean (y - t)^2).
    #[arg(long, value_name = "NAME", default_value = "l1", value_parser = parse_loss)]
    pub loss: LossKind,
    /// Layer sizes, comma-separated (at least two), e.g. 4,8,2.
    #[arg(long, default_value = "4,8,2", value_parser = parse_layers)]
    pub layers: Layers,
    /// Batch size B of one step.
    #[arg(long, default_value_t = 2, value_name = "B", allow_negative_numbers = true)]
    pub batch: usize,
    /// Micro-batches K per step (1..=B); consecutive chunks like torch.tensor_split.
    #[arg(long, default_value_t = 2, value_name = "K", allow_negative_numbers = true)]
    pub micro_batches: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 5, value_name = "N", allow_negative_numbers = true)]
    pub steps: usize,
    /// Seed for the data (torch.manual_seed before torch.rand). PyTorch's generator uses
    /// the low 32 bits of a seed: seeds of 2^32 and above give the numbers of the seed
    /// modulo 2^32 (a note says so).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub data_seed: u64,
    /// Seed for the model's initial weights (low 32 bits used, as for --data-seed).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub model_seed: u64,
    /// Print the five runs of one optimizer as JSON in the layout of the PyTorch reference
    /// (make_fixes_reference.py).
    #[arg(long)]
    pub json: bool,
    /// Draw each fix's distance from the large-batch run per step (log scale) as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Memory the run may use, e.g. 512M or 2GiB (default: the memory available, from
    /// /proc/meminfo). Sizes that need more are refused before anything is allocated.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// Parsed `--betas`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Betas(pub f64, pub f64);

fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    match s {
        "sgd" => Ok(OptimizerKind::Sgd),
        "adam" => Ok(OptimizerKind::Adam),
        "adamw" => Ok(OptimizerKind::AdamW),
        _ => Err("the optimizer must be sgd, adam or adamw".into()),
    }
}

fn parse_loss(s: &str) -> Result<LossKind, String> {
    match s {
        "l1" => Ok(LossKind::L1),
        "mse" => Ok(LossKind::Mse),
        _ => Err("the loss must be l1 or mse".into()),
    }
}

fn parse_betas(s: &str) -> Result<Betas, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [b1, b2] = parts.as_slice() else {
        return Err(format!("need two comma-separated numbers B1,B2, got {}", parts.len()));
    };
    let num = |p: &str| p.parse::<f64>().map_err(|_| format!("'{p}' is not a number"));
    Ok(Betas(num(b1)?, num(b2)?))
}

/// The sizes' memory against the budget (`--max-memory`, else the memory available):
/// each part charged to the argument that drives it, then all together, the largest
/// named first.
fn check_memory(cli: &FixesCli, c: &FixesConfig, table: bool) -> Result<(), String> {
    let budget = Budget::detect(cli.max_memory);
    let reports = if table { table_optimizers().len() } else { 1 };
    let parts = fixes_needs(&c.layers, c.batch, c.micro_batches, c.steps, reports, cli.json, cli.plot.is_some());
    let layers = c.layers.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    let args = [format!("--layers {layers}"), format!("--batch {}", c.batch), format!("--steps {}", c.steps)];
    for (arg, &need) in args.iter().zip(&parts) {
        budget.admit(arg, need)?;
    }
    let mut order: Vec<usize> = (0..args.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].0));
    let all = order.iter().map(|&i| args[i].as_str()).collect::<Vec<_>>().join(" with ");
    budget.admit(&all, parts.into_iter().fold(Bytes::ZERO, |a, b| a + b))
}

/// The experiment settings of `cli`, and whether it asks for the table of five optimizers.
///
/// # Errors
/// An invalid option or combination; the message names the option.
pub fn validate(cli: &FixesCli) -> Result<(FixesConfig, bool), String> {
    if cli.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if cli.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if cli.micro_batches == 0 || cli.micro_batches > cli.batch {
        return Err(format!(
            "--micro-batches must be between 1 and --batch ({}), got {} (an empty micro-batch has no mean)",
            cli.batch, cli.micro_batches
        ));
    }
    let kind = cli.optimizer.unwrap_or(OptimizerKind::Sgd);
    let sgd = kind == OptimizerKind::Sgd;
    if sgd && (cli.betas.is_some() || cli.eps.is_some()) {
        return Err("--betas and --eps apply to adam and adamw only (add --optimizer adam or adamw)".into());
    }
    if !sgd && cli.momentum.is_some() {
        return Err(format!("--momentum applies to sgd only, not {}", kind.name()));
    }
    let mut spec = OptimizerSpec::defaults(kind);
    for (name, value, slot) in [
        ("--lr", cli.lr, &mut spec.lr),
        ("--momentum", cli.momentum, &mut spec.momentum),
        ("--eps", cli.eps, &mut spec.eps),
        ("--weight-decay", cli.weight_decay, &mut spec.weight_decay),
    ] {
        if let Some(v) = value {
            check_f32(name, v)?;
            *slot = v;
        }
    }
    if let Some(Betas(b1, b2)) = cli.betas {
        for (i, b) in [(1, b1), (2, b2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(format!("--betas: beta{i} must be in [0, 1), got {}", crate::fmt_num(b)));
            }
        }
        spec.betas = (b1, b2);
    }
    let config = FixesConfig {
        optimizer: spec,
        loss: cli.loss,
        layers: cli.layers.0.clone(),
        batch: cli.batch,
        micro_batches: cli.micro_batches,
        steps: cli.steps,
        data_seed: cli.data_seed,
        model_seed: cli.model_seed,
    };
    let single = cli.optimizer.is_some()
        || cli.lr.is_some()
        || cli.momentum.is_some()
        || cli.betas.is_some()
        || cli.eps.is_some()
        || cli.weight_decay.is_some()
        || cli.json;
    check_memory(cli, &config, !single)?;
    if let Some(path) = &cli.plot {
        tapegrad_nn::files::check_output(path).map_err(|e| format!("--plot: {}: {e}", escaped(path)))?;
    }
    Ok((config, !single))
}

/// Runs `tapegrad-demo fixes` with `args` (the arguments after `fixes`): prints the table
/// or one optimizer's runs (text or JSON) and writes the plot. Bad arguments, sizes that do
/// not fit and unwritable plot files are refused before any work with one line on stderr
/// and exit status 2; a closed stdout pipe ends the run quietly.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("tapegrad-demo fixes")).chain(args);
    let cli = match FixesCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let (config, table) = match validate(&cli) {
        Ok(v) => v,
        Err(msg) => return fail(&msg),
    };
    for note in seed_notes(&[("--data-seed", cli.data_seed), ("--model-seed", cli.model_seed)]) {
        say(&note);
    }
    let reports = if table { run_table(&config) } else { vec![run_fixes(&config)] };
    if let Some(path) = &cli.plot {
        if let Err(e) = crate::plot::write_plot(&reports, path) {
            return fail(&format!("--plot: {}: {e}", escaped(path)));
        }
    }
    let non_finite: usize = reports.iter().map(|r| r.non_finite()).sum();
    if non_finite > 0 {
        say(&format!(
            "note: {non_finite} results are NaN or infinite (a step overflows float32, or eps 0 divides 0 by 0){}",
            if cli.json { "; JSON has no such numbers, so they are written as null" } else { "" }
        ));
    }
    let text = if cli.json {
        crate::fixes_json::render_fixes_json(&reports[0])
    } else if table {
        render_table(&reports)
    } else {
        render_one(&reports[0])
    };
    match output::stdout(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::stdout_failed(&e),
    }
}
