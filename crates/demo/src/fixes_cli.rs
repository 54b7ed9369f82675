//! Options of `tapegrad-demo fixes`. Every bad input becomes one line on stderr and exit
//! status 2, never a panic.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::fixes::{
    render_one, render_table, run_fixes, run_table, FixesConfig, LossKind, OptimizerKind, OptimizerSpec,
};

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
    /// Seed for the data (torch.manual_seed before torch.rand).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub data_seed: u64,
    /// Seed for the model's initial weights.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub model_seed: u64,
    /// Print the five runs of one optimizer as JSON in the layout of the PyTorch reference
    /// (make_fixes_reference.py).
    #[arg(long)]
    pub json: bool,
    /// Draw each fix's distance from the large-batch run per step (log scale) as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Parsed `--betas`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Betas(pub f64, pub f64);

/// Parsed `--layers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layers(pub Vec<usize>);

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

fn parse_layers(s: &str) -> Result<Layers, String> {
    let sizes = s
        .split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<usize>().map_err(|_| format!("'{p}' is not a layer size (a positive whole number)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.len() < 2 {
        return Err(format!("need at least two layer sizes (input and output), got {}", sizes.len()));
    }
    if sizes.contains(&0) {
        return Err("layer sizes must be positive, got a 0".into());
    }
    Ok(Layers(sizes))
}

/// The most memory one run of `fixes` may need (data, five models with their gradients,
/// optimizer state and activations, the records).
pub const MEMORY_BUDGET: u128 = 2 << 30;

/// Bytes `config` needs, roughly (an upper estimate); `None` when it overflows.
pub fn memory_needed(config: &FixesConfig) -> Option<u128> {
    let l: Vec<u128> = config.layers.iter().map(|&x| x as u128).collect();
    let (steps, b, k) = (config.steps as u128, config.batch as u128, config.micro_batches as u128);
    let params = l.windows(2).try_fold(0u128, |acc, w| acc.checked_add(w[0].checked_mul(w[1])?.checked_add(w[1])?))?;
    let widths = l.iter().try_fold(0u128, |acc, &x| acc.checked_add(x))?;
    let data = steps.checked_mul(b)?.checked_mul(l[0].checked_add(*l.last()?)?)?;
    // value, gradient, two state vectors, two flat copies; activations and their gradients
    let per_run = params.checked_mul(6)?.checked_add(b.checked_mul(widths)?.checked_mul(8)?)?;
    let records = steps.checked_mul(k.checked_add(2)?)?;
    let floats = data.checked_mul(2)?.checked_add(per_run.checked_add(records)?.checked_mul(5)?)?;
    floats.checked_mul(4)
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
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {}", crate::fmt_num(v)));
            }
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
    match memory_needed(&config) {
        Some(n) if n <= MEMORY_BUDGET => {}
        need => {
            let gib = |n: u128| n as f64 / (1u64 << 30) as f64;
            let need = need.map_or("more than can be counted".to_string(), |n| format!("about {:.1} GiB", gib(n)));
            return Err(format!(
                "--layers {}, --batch {}, --steps {} need {need} of memory, over the {:.0} GiB limit",
                config.layers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","),
                config.batch,
                config.steps,
                gib(MEMORY_BUDGET)
            ));
        }
    }
    let single = cli.optimizer.is_some()
        || cli.lr.is_some()
        || cli.momentum.is_some()
        || cli.betas.is_some()
        || cli.eps.is_some()
        || cli.weight_decay.is_some()
        || cli.json;
    Ok((config, !single))
}

/// Runs `tapegrad-demo fixes` with `args` (the arguments after `fixes`): prints the table
/// or one optimizer's runs (text or JSON), writes the plot; one line on stderr and exit
/// status 2 for bad arguments or an unwritable plot file.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("tapegrad-demo fixes")).chain(args);
    let cli = match FixesCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("tapegrad-demo fixes: {first} (see --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help
            print!("{e}");
            return ExitCode::SUCCESS;
        }
    };
    let (config, table) = match validate(&cli) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("tapegrad-demo fixes: {msg}");
            return ExitCode::from(2);
        }
    };
    let reports = if table { run_table(&config) } else { vec![run_fixes(&config)] };
    if let Some(path) = &cli.plot {
        if let Err(e) = crate::plot::write_plot(&reports, path) {
            eprintln!("tapegrad-demo fixes: --plot: {e}");
            return ExitCode::from(2);
        }
    }
    if cli.json {
        print!("{}", crate::fixes_json::render_fixes_json(&reports[0]));
    } else if table {
        print!("{}", render_table(&reports));
    } else {
        print!("{}", render_one(&reports[0]));
    }
    ExitCode::SUCCESS
}
