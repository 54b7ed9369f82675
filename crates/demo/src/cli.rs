//! Command-line options. Every bad input becomes one clear line on stderr and a non-zero
//! exit code, never a panic.

use std::path::PathBuf;

use clap::Parser;

use crate::{load_initial_params, Config};

/// Reproduces the PyTorch forum experiments on gradient accumulation: accumulating over
/// micro-batches equals one big batch when the loss is a sum; with a mean the gradients are
/// k times larger and the learning rate (or the loss) must be scaled.
#[derive(Parser, Debug)]
#[command(name = "tapegrad-demo", version, about, long_about = None)]
pub struct Cli {
    /// Seed for the data (torch.manual_seed before torch.rand).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub data_seed: u64,
    /// Seed for the model's initial weights.
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
    /// Learning rate of both runs of the sum experiment.
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
}

/// Parsed `--layers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layers(pub Vec<usize>);

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

/// Checks the options' combinations and reads the `--load` file; the message names the
/// option.
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
        if !lr.is_finite() || lr < 0.0 {
            return Err(format!("{name} must be a finite, non-negative number, got {lr}"));
        }
    }
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
