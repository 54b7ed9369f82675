//! `tapegrad-demo` without a subcommand: the forum experiment's options, their checks and
//! the run. Every bad argument or file ends the run before any work with one line on
//! stderr and exit status 2; the output files are written all or nothing (each atomically,
//! after every one of them has been prepared); a closed stdout pipe ends the run quietly.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tapegrad_nn::files::prepare_write;

use super::{
    json, load_initial_params, profile, render_text, run as run_experiments, step_dot, sum_step_bytes, Config,
};
use crate::args::{check_f32, check_outputs, JsonArg, MemoryArg, SeedArgs, ShapeArgs};
use crate::budget::demo_needs;
use crate::output::{self, fail, say};

/// The forum experiment's options (the top level of the command line).
#[derive(Args, Debug)]
pub struct ForumArgs {
    /// The seeds.
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// The model's sizes and the split.
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Learning rate of both runs of the sum experiment (finite in float32, at least 0).
    #[arg(long, default_value_t = 0.1, value_name = "LR", allow_negative_numbers = true)]
    pub lr_sum: f64,
    /// Learning rate of the batched mean runs (the accumulated mean run uses LR / K).
    #[arg(long, default_value_t = 1.0, value_name = "LR", allow_negative_numbers = true)]
    pub lr_mean: f64,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonArg,
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
    /// `--max-memory`.
    #[command(flatten)]
    pub memory: MemoryArg,
}

/// Checks the options' combinations, the memory the sizes need (against `--max-memory` or
/// the memory available) and the output paths, then reads the `--load` file: all before
/// any work, so a refused run has done nothing. The message names the option.
///
/// # Errors
/// The line.
pub fn validate(a: &ForumArgs) -> Result<Config, String> {
    a.shape.validate()?;
    for (name, lr) in [("--lr-sum", a.lr_sum), ("--lr-mean", a.lr_mean)] {
        check_f32(name, lr)?;
    }
    let (params, batch) = demo_needs(&a.shape.layers.0, a.shape.batch, a.shape.micro_batches, a.json.json);
    a.memory.check(&[(a.shape.layers_arg(), params), (a.shape.batch_arg(), batch)])?;
    check_outputs(&[("--save", a.save.as_deref()), ("--dot", a.dot.as_deref())])?;
    let mut config = Config {
        data_seed: a.seeds.data_seed,
        model_seed: a.seeds.model_seed,
        layers: a.shape.layers.0.clone(),
        batch: a.shape.batch,
        micro_batches: a.shape.micro_batches,
        lr_sum: a.lr_sum,
        lr_mean: a.lr_mean,
        initial_params: None,
    };
    if let Some(path) = &a.load {
        config.initial_params = Some(load_initial_params(&config, path).map_err(|e| format!("--load: {e}"))?);
    }
    Ok(config)
}

/// Runs the forum experiment as `a` asks: the report on stdout (text or JSON), the
/// `--save` and `--dot` files, the `--profile` table.
pub fn run(a: &ForumArgs) -> ExitCode {
    let config = match validate(a) {
        Ok(c) => c,
        Err(msg) => return fail(&msg),
    };
    for note in a.seeds.notes() {
        say(&note);
    }
    let report = run_experiments(&config);

    // every output prepared (written to its temporary file) before any replaces its target
    let mut files = Vec::new();
    if let Some(path) = &a.save {
        let prepared = sum_step_bytes(&report)
            .map_err(|e| e.to_string())
            .and_then(|bytes| prepare_write(path, &bytes).map_err(|e| e.to_string()));
        match prepared {
            Ok(p) => files.push(("--save", path, p)),
            Err(e) => return fail(&format!("--save: {}: {e}", path.display())),
        }
    }
    if let Some(path) = &a.dot {
        match prepare_write(path, step_dot(&config).as_bytes()) {
            Ok(p) => files.push(("--dot", path, p)),
            Err(e) => return fail(&format!("--dot: {}: {e}", path.display())),
        }
    }
    for (name, path, prepared) in files {
        if let Err(e) = prepared.commit() {
            return fail(&format!("{name}: {}: {e}", path.display()));
        }
    }

    let json = a.json.json;
    output::non_finite_note(report.non_finite(), "the step overflows float32: a smaller learning rate avoids it", json);
    let mut text = if json { json::render_json(&report) } else { render_text(&report) };
    if a.profile {
        let table = format!(
            "\nPer-op times of all runs, 1000 repetitions (forward = kernels, backward = rules):\n{}\n",
            profile(&config, 1000)
        );
        if json {
            output::stderr(&table);
        } else {
            text += &table;
        }
    }
    if !json {
        text +=
            "\nFor SGD with momentum or weight decay, Adam and AdamW over several steps, see `tapegrad-demo fixes`.\n";
    }
    output::print(&text)
}
