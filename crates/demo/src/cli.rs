//! Command-line options. Every bad input becomes one clear line on stderr and a non-zero
//! exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::budget::{demo_needs, parse_size, Budget};
use crate::output;
use crate::{load_initial_params, Config};
use tapegrad_nn::files::escaped;

/// The subcommand the main parser does not know (the binary dispatches it first), listed
/// at the end of `--help`.
pub const SUBCOMMANDS: &str = "Subcommand:\n  \
    fixes  Which fix (lr / k, loss / k, loss x size / batch) makes accumulation equal one large batch\n         \
    for SGD with momentum or weight decay, Adam and AdamW over several steps\n         \
    (tapegrad-demo fixes --help lists its options)";

/// Reproduces the PyTorch forum experiments on gradient accumulation: accumulating over
/// micro-batches equals one big batch when the loss is a sum; with a mean the gradients are
/// k times larger and the learning rate (or the loss) must be scaled.
#[derive(Parser, Debug)]
#[command(name = "tapegrad-demo", version, about, long_about = None, after_help = SUBCOMMANDS)]
pub struct Cli {
    /// Seed for the data (torch.manual_seed before torch.rand). PyTorch's generator uses
    /// the low 32 bits of a seed: seeds of 2^32 and above give the numbers of the seed
    /// modulo 2^32 (a note says so).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub data_seed: u64,
    /// Seed for the model's initial weights (low 32 bits used, as for --data-seed).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub model_seed: u64,
    /// Layer sizes, comma-separated (at least two), e.g. 4,8,2.
    #[arg(long, default_value = "4,8,2", value_parser = parse_layers)]
    pub layers: Layers,
    /// Batch size B.
    #[arg(long, default_value_t = 2, value_name = "B", allow_negative_numbers = true)]
    pub batch: usize,
    /// Number of micro-batches K (1..=B); consecutive chunks like torch.tensor_split.
    #[arg(long, default_value_t = 2, value_name = "K", allow_negative_numbers = true)]
    pub micro_batches: usize,
    /// Learning rate of both runs of the sum experiment (finite in float32, at least 0).
    #[arg(long, default_value_t = 0.1, value_name = "LR", allow_negative_numbers = true)]
    pub lr_sum: f64,
    /// Learning rate of the batched mean runs (the accumulated mean run uses LR / K).
    #[arg(long, default_value_t = 1.0, value_name = "LR", allow_negative_numbers = true)]
    pub lr_mean: f64,
    /// Print the results as JSON in the layout of the PyTorch reference files.
    #[arg(long)]
    pub json: bool,
    /// Initial weights of every run from a safetensors file (PyTorch state-dict names
    /// 0.weight, 0.bias, ...; float32) instead of the --model-seed init.
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    /// Save the weights after the batched step of the sum experiment as a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Write the Graphviz DOT graph of one batched step of the sum experiment (forward,
    /// loss, backward) to FILE (render with `dot -Tsvg FILE`).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Also print per-op forward/backward times of all runs (1000 repetitions), sorted by
    /// time (to stderr with --json, so the JSON stays clean).
    #[arg(long)]
    pub profile: bool,
    /// Memory the run may use, e.g. 512M or 2GiB (default: the memory available, from
    /// /proc/meminfo). Sizes that need more are refused before anything is allocated.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, global = true)]
    pub max_memory: Option<u64>,
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

/// Checks the options' combinations, the memory the sizes need (against `--max-memory` or
/// the memory available) and the output paths, then reads the `--load` file: all before
/// any work, so a refused run has done nothing. The message names the option.
pub fn validate(cli: &Cli) -> Result<Config, String> {
    if cli.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if cli.micro_batches == 0 || cli.micro_batches > cli.batch {
        return Err(format!(
            "--micro-batches must be between 1 and --batch ({}), got {} (an empty micro-batch has no mean)",
            cli.batch, cli.micro_batches
        ));
    }
    for (name, lr) in [("--lr-sum", cli.lr_sum), ("--lr-mean", cli.lr_mean)] {
        check_f32(name, lr)?;
    }
    check_memory(cli)?;
    check_outputs(cli)?;
    let mut config = Config {
        data_seed: cli.data_seed,
        model_seed: cli.model_seed,
        layers: cli.layers.0.clone(),
        batch: cli.batch,
        micro_batches: cli.micro_batches,
        lr_sum: cli.lr_sum,
        lr_mean: cli.lr_mean,
        initial_params: None,
    };
    if let Some(path) = &cli.load {
        config.initial_params = Some(load_initial_params(&config, path).map_err(|e| format!("--load: {e}"))?);
    }
    Ok(config)
}

/// `Ok` if `value` (of option `name`) is at least 0 and finite in float32, the element
/// type it is used in; else one line naming the option.
///
/// # Errors
/// The line.
pub fn check_f32(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && (value as f32).is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(format!(
        "{name} must be a non-negative number that is finite in float32 (at most {:e}), got {}",
        f32::MAX,
        crate::json::py_float(value)
    ))
}

/// The sizes' memory against the budget: the parameters' share is charged to `--layers`,
/// the activations' to `--batch` (or `--micro-batches`), and the larger named first.
fn check_memory(cli: &Cli) -> Result<(), String> {
    let budget = Budget::detect(cli.max_memory);
    let (params, batch) = demo_needs(&cli.layers.0, cli.batch, cli.micro_batches, cli.json);
    let layers = cli.layers.0.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    let layers_arg = format!("--layers {layers}");
    let batch_arg = format!("--batch {}", cli.batch);
    budget.admit(&layers_arg, params)?;
    budget.admit(&batch_arg, batch)?;
    let both = if params.0 >= batch.0 {
        format!("{layers_arg} with {batch_arg}")
    } else {
        format!("{batch_arg} with {layers_arg}")
    };
    budget.admit(&both, params + batch)
}

/// The output files' folders exist and take new files, no output is a folder or a device,
/// and no output is the `--load` input or another output (by device and inode).
fn check_outputs(cli: &Cli) -> Result<(), String> {
    let outputs: Vec<(&str, &Path)> = [("--save", &cli.save), ("--dot", &cli.dot)]
        .into_iter()
        .filter_map(|(n, p)| Some((n, p.as_deref()?)))
        .collect();
    for (name, path) in &outputs {
        tapegrad_nn::files::check_output(path).map_err(|e| format!("{name}: {}: {e}", escaped(path)))?;
    }
    let inputs: Vec<(&str, &Path)> = cli.load.as_deref().map(|p| ("--load", p)).into_iter().collect();
    tapegrad_nn::files::check_distinct(&inputs, &outputs)
}

/// Notes for stderr that do not stop the run: seeds of 2^32 and above, whose low 32 bits
/// alone reach PyTorch's generator.
pub fn notes(cli: &Cli) -> Vec<String> {
    seed_notes(&[("--data-seed", cli.data_seed), ("--model-seed", cli.model_seed)])
}

/// A note for each `(option, seed)` of 2^32 or more: PyTorch's generator uses its low 32
/// bits, so the run is the one of the lower seed.
pub fn seed_notes(seeds: &[(&str, u64)]) -> Vec<String> {
    seeds
        .iter()
        .filter(|&&(_, seed)| seed > u32::MAX as u64)
        .map(|&(name, seed)| {
            format!(
                "note: {name} {seed} is 2^32 or more; PyTorch's generator uses its low 32 bits, so this run is seed {}",
                seed as u32
            )
        })
        .collect()
}

/// The end of a run whose arguments clap refused: its first line (naming the option and
/// what was wrong) on stderr and status 2; or, for `--help` and `--version`, their text on
/// stdout.
pub fn clap_exit(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
        return output::fail(&format!("{first} (see --help)"));
    }
    match output::stdout(&e.to_string()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::stdout_failed(&e),
    }
}
