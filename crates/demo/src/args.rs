//! The options the subcommands share, each declared once in a small `#[derive(Args)]`
//! struct that a subcommand flattens into its own (`#[command(flatten)]`), with its one
//! validation beside it. Every check returns one line naming the option (the binary prints
//! it and exits with status 2, see [`crate::output`]).
//!
//! | struct | options |
//! | --- | --- |
//! | [`SeedArgs`] | `--data-seed`, `--model-seed` |
//! | [`ShapeArgs`] | `--layers`, `--batch`, `--micro-batches` |
//! | [`OptimizerArgs`] | `--optimizer`, `--lr`, `--momentum`, `--betas`, `--eps`, `--weight-decay` |
//! | [`JsonArg`] | `--json` |
//! | [`PlotArg`] | `--plot FILE.svg` |
//! | [`MemoryArg`] | `--max-memory` |
//!
//! An option one subcommand alone takes belongs in that subcommand's struct (e.g.
//! `--steps` in [`crate::fixes::cmd::FixesArgs`]); once a second subcommand takes it, it
//! moves here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::Args;

use crate::budget::{parse_size, Budget, Bytes};
use tapegrad_nn::files::escaped;
use tapegrad_nn::{OptimizerKind, OptimizerSpec, SpecError};

use crate::json::py_float;

/// `--data-seed` and `--model-seed`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SeedArgs {
    /// Seed for the data (torch.manual_seed before torch.rand). PyTorch's generator uses
    /// the low 32 bits of a seed: seeds of 2^32 and above give the numbers of the seed
    /// modulo 2^32 (a note says so).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub data_seed: u64,
    /// Seed for the model's initial weights (low 32 bits used, as for --data-seed).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub model_seed: u64,
}

impl SeedArgs {
    /// Notes for stderr that do not stop the run: a seed of 2^32 or more reaches PyTorch's
    /// generator by its low 32 bits only, so the run is the one of the lower seed.
    pub fn notes(&self) -> Vec<String> {
        [("--data-seed", self.data_seed), ("--model-seed", self.model_seed)]
            .into_iter()
            .filter(|&(_, seed)| seed > u32::MAX as u64)
            .map(|(name, seed)| {
                format!(
                    "note: {name} {seed} is 2^32 or more; PyTorch's generator uses its low 32 bits, so this run is seed {}",
                    seed as u32
                )
            })
            .collect()
    }
}

/// `--layers`, `--batch` and `--micro-batches`: the model's sizes and how a batch splits.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ShapeArgs {
    /// Layer sizes, comma-separated (at least two), e.g. 4,8,2.
    #[arg(long, default_value = "4,8,2", value_parser = parse_layers)]
    pub layers: Layers,
    /// Batch size B (the rows of one optimizer step).
    #[arg(long, default_value_t = 2, value_name = "B", allow_negative_numbers = true)]
    pub batch: usize,
    /// Micro-batches K per batch (1..=B), whose gradients accumulate before the step;
    /// consecutive chunks like torch.tensor_split.
    #[arg(long, default_value_t = 2, value_name = "K", allow_negative_numbers = true)]
    pub micro_batches: usize,
}

impl ShapeArgs {
    /// `Ok` if the batch has a row and splits into `--micro-batches` non-empty parts.
    ///
    /// # Errors
    /// One line naming the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return Err("--batch must be at least 1".into());
        }
        if self.micro_batches == 0 || self.micro_batches > self.batch {
            return Err(format!(
                "--micro-batches must be between 1 and --batch ({}), got {} (an empty micro-batch has no mean)",
                self.batch, self.micro_batches
            ));
        }
        Ok(())
    }

    /// `--layers 4,8,2`, as memory messages name it.
    pub fn layers_arg(&self) -> String {
        let sizes = self.layers.0.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        format!("--layers {}", sizes.join(","))
    }

    /// `--batch 2`, as memory messages name it.
    pub fn batch_arg(&self) -> String {
        format!("--batch {}", self.batch)
    }
}

/// Parsed `--layers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layers(pub Vec<usize>);

/// `--layers`: comma-separated positive sizes, at least two.
///
/// # Errors
/// A part that is not a positive whole number, or fewer than two parts.
pub fn parse_layers(s: &str) -> Result<Layers, String> {
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

/// The optimizer and its hyper-parameters. Each program has its own defaults (see
/// [`OptimizerArgs::spec`]); an option not given takes the program's default for the
/// chosen optimizer.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct OptimizerArgs {
    /// Optimizer: sgd, adam or adamw [default: sgd].
    #[arg(long, value_name = "NAME", value_parser = |s: &str| s.parse::<OptimizerKind>())]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: the optimizer's, listed below].
    #[arg(long, value_name = "LR", allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// SGD momentum [default: listed below].
    #[arg(long, value_name = "M", allow_hyphen_values = true)]
    pub momentum: Option<f64>,
    /// Adam(W) betas, each in [0, 1) [default: 0.9,0.999].
    #[arg(long, value_name = "B1,B2", value_parser = parse_betas, allow_hyphen_values = true)]
    pub betas: Option<(f64, f64)>,
    /// Adam(W) eps [default: 1e-8].
    #[arg(long, value_name = "EPS", allow_hyphen_values = true)]
    pub eps: Option<f64>,
    /// Weight decay: L2 for sgd and adam, decoupled for adamw [default: listed below].
    #[arg(long, value_name = "WD", allow_hyphen_values = true)]
    pub weight_decay: Option<f64>,
}

impl OptimizerArgs {
    /// Whether any optimizer option is given.
    pub fn given(&self) -> bool {
        self.optimizer.is_some()
            || self.lr.is_some()
            || self.momentum.is_some()
            || self.betas.is_some()
            || self.eps.is_some()
            || self.weight_decay.is_some()
    }

    /// The optimizer asked for: `defaults(kind)` (the program's defaults for the chosen
    /// kind, SGD when none is chosen) with the options given.
    ///
    /// # Errors
    /// An option that does not apply to the kind, or a value out of range; the line names
    /// the option.
    pub fn spec(&self, defaults: impl Fn(OptimizerKind) -> OptimizerSpec) -> Result<OptimizerSpec, String> {
        let kind = self.optimizer.unwrap_or(OptimizerKind::Sgd);
        let sgd = kind == OptimizerKind::Sgd;
        if sgd && (self.betas.is_some() || self.eps.is_some()) {
            return Err("--betas and --eps apply to adam and adamw only (add --optimizer adam or adamw)".into());
        }
        if !sgd && self.momentum.is_some() {
            return Err(format!("--momentum applies to sgd only, not {}", kind.name()));
        }
        let mut spec = defaults(kind);
        let given = [
            (self.lr, &mut spec.lr),
            (self.momentum, &mut spec.momentum),
            (self.eps, &mut spec.eps),
            (self.weight_decay, &mut spec.weight_decay),
        ];
        for (value, slot) in given {
            if let Some(v) = value {
                *slot = v;
            }
        }
        spec.betas = self.betas.unwrap_or(spec.betas);
        spec.validate::<f32>().map_err(|e| spec_error(&e))?;
        Ok(spec)
    }
}

/// A spec's error as the command line names the hyper-parameter: `--weight-decay ...`.
pub fn spec_error(e: &SpecError) -> String {
    format!("--{} {}", e.param.replace('_', "-"), e.reason)
}

/// A short description of `spec`, numbers as Python prints them: `SGD (lr 0.1)`,
/// `SGD (lr 0.05, momentum 0.9)`, `Adam (lr 0.01, betas 0.9,0.999, eps 1e-08)`,
/// `AdamW (lr 0.01, betas 0.9,0.999, eps 1e-08, weight decay 0.01)`.
pub fn describe_optimizer(spec: &OptimizerSpec) -> String {
    let f = py_float;
    let mut parts = vec![format!("lr {}", f(spec.lr))];
    match spec.kind {
        OptimizerKind::Sgd if spec.momentum != 0.0 => parts.push(format!("momentum {}", f(spec.momentum))),
        OptimizerKind::Sgd => {}
        _ => {
            parts.push(format!("betas {},{}", f(spec.betas.0), f(spec.betas.1)));
            parts.push(format!("eps {}", f(spec.eps)));
        }
    }
    if spec.weight_decay != 0.0 {
        parts.push(format!("weight decay {}", f(spec.weight_decay)));
    }
    let name = match spec.kind {
        OptimizerKind::Sgd => "SGD",
        OptimizerKind::Adam => "Adam",
        OptimizerKind::AdamW => "AdamW",
    };
    format!("{name} ({})", parts.join(", "))
}

fn parse_betas(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [b1, b2] = parts.as_slice() else {
        return Err(format!("need two comma-separated numbers B1,B2, got {}", parts.len()));
    };
    let num = |p: &str| p.parse::<f64>().map_err(|_| format!("'{p}' is not a number"));
    Ok((num(b1)?, num(b2)?))
}

/// `--json`.
#[derive(Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonArg {
    /// Print the results as JSON in the layout of the PyTorch reference files (NaN and
    /// infinities as null).
    #[arg(long)]
    pub json: bool,
}

/// `--plot FILE.svg`: a chart written as an SVG file.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct PlotArg {
    /// Draw the run's curves as an SVG file (the name must end in .svg).
    #[arg(long, value_name = "FILE.svg", value_parser = svg_path())]
    pub plot: Option<PathBuf>,
}

/// A path whose name ends in `.svg` (in any case; any bytes before it, so a non-UTF-8 name
/// works).
pub fn svg_path() -> impl TypedValueParser<Value = PathBuf> {
    OsStringValueParser::new().try_map(|s: OsString| {
        let path = PathBuf::from(s);
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
            Ok(path)
        } else {
            Err("the plot is an SVG file: give a name ending in .svg")
        }
    })
}

/// `--max-memory`.
#[derive(Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryArg {
    /// Memory the run may use, e.g. 512M or 2GiB (default: the memory available, from
    /// /proc/meminfo). Sizes that need more are refused before anything is allocated.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

impl MemoryArg {
    /// The run's memory check: each part `(argument, bytes)` alone, then all together
    /// (the largest named first), against `--max-memory` or else the memory available.
    ///
    /// # Errors
    /// One line naming the argument(s) that do not fit, the bytes and the budget.
    pub fn check(&self, parts: &[(String, Bytes)]) -> Result<(), String> {
        let budget = Budget::detect(self.max_memory);
        for (arg, need) in parts {
            budget.admit(arg, *need)?;
        }
        let mut order: Vec<&(String, Bytes)> = parts.iter().collect();
        order.sort_by_key(|(_, need)| std::cmp::Reverse(need.0));
        let all = order.iter().map(|(arg, _)| arg.as_str()).collect::<Vec<_>>().join(" with ");
        budget.admit(&all, parts.iter().fold(Bytes::ZERO, |a, (_, b)| a + *b))
    }
}

/// The start of a subcommand's run: its validated settings, or the one line and exit
/// status 2 of [`crate::output::fail`]; then the seed notes on stderr.
pub fn begin<C>(validated: Result<C, String>, seeds: &SeedArgs) -> Result<C, std::process::ExitCode> {
    let settings = validated.map_err(|msg| crate::output::fail(&msg))?;
    for note in seeds.notes() {
        crate::output::say(&note);
    }
    Ok(settings)
}

/// The output files `(option, path)` given: each one's folder exists and takes new files,
/// none is a folder or a device, and no two are the same file. Checked before any work.
///
/// # Errors
/// One line naming the option and the path.
pub fn check_outputs(outputs: &[(&str, Option<&Path>)]) -> Result<(), String> {
    check_files(&[], outputs)
}

/// [`check_outputs`], and no output is one of the input files `(option, path)` given (by
/// device and inode, so a symbolic or hard link to an input is refused too).
///
/// # Errors
/// One line naming the options and the path.
pub fn check_files(inputs: &[(&str, Option<&Path>)], outputs: &[(&str, Option<&Path>)]) -> Result<(), String> {
    fn given<'a>(files: &[(&'a str, Option<&'a Path>)]) -> Vec<(&'a str, &'a Path)> {
        files.iter().filter_map(|&(n, p)| Some((n, p?))).collect()
    }
    let (inputs, outputs) = (given(inputs), given(outputs));
    for (name, path) in &outputs {
        tapegrad_nn::files::check_output(path).map_err(|e| format!("{name}: {}: {e}", escaped(path)))?;
    }
    tapegrad_nn::files::check_distinct(&inputs, &outputs)
}
