//! `tapegrad-demo tokens`: its options (those of `make_tokens_reference.py`, same names and
//! defaults), their checks and the run. Every bad input becomes one line on stderr and exit
//! status 2 before any work, never a panic.

use std::process::ExitCode;

use clap::Args;

use super::{empty_steps, make_data, render_one, render_table, run_table, run_tokens, TokensConfig};
use crate::args::{check_outputs, spec_error, JsonArg, MemoryArg, OptimizerArgs, PlotArg, SeedArgs};
use crate::budget::Bytes;
use crate::fixes::{default_optimizer, table_optimizers};
use crate::output::{self, fail, say};

/// The options of `tokens` (its description is the doc of [`crate::cli::Command::Tokens`]).
#[derive(Args, Debug)]
#[command(
    after_help = crate::fixes::cmd::DEFAULTS,
    mut_arg("plot", |a| a.help("Draw each fix's distance from the large-batch run per step (log scale) as an SVG file")),
    mut_arg("json", |a| a.help("Print the six runs of one optimizer as JSON in the layout of make_tokens_reference.py"))
)]
pub struct TokensArgs {
    /// The optimizer.
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Vocabulary size (at least 2).
    #[arg(long, default_value_t = 8, value_name = "V", allow_negative_numbers = true)]
    pub vocab: usize,
    /// Embedding size.
    #[arg(long, default_value_t = 4, value_name = "D", allow_negative_numbers = true)]
    pub embed: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 8, value_name = "H", allow_negative_numbers = true)]
    pub hidden: usize,
    /// Sequences per optimizer step.
    #[arg(long, default_value_t = 4, value_name = "B", allow_negative_numbers = true)]
    pub batch: usize,
    /// Micro-batches per step (1..=B).
    #[arg(long, default_value_t = 2, value_name = "K", allow_negative_numbers = true)]
    pub micro_batches: usize,
    /// Sequence length, padding included.
    #[arg(long, default_value_t = 6, value_name = "T", allow_negative_numbers = true)]
    pub max_len: usize,
    /// Shortest real length (0 allowed: sequences of padding only).
    #[arg(long, default_value_t = 1, value_name = "N", allow_negative_numbers = true)]
    pub min_len: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 5, value_name = "N", allow_negative_numbers = true)]
    pub steps: usize,
    /// The seeds.
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// `--json`: the six runs of one optimizer in the layout of make_tokens_reference.py.
    #[command(flatten)]
    pub json: JsonArg,
    /// `--plot`: each fix's distance from the large-batch run per step (log scale).
    #[command(flatten)]
    pub plot: PlotArg,
    /// `--max-memory`.
    #[command(flatten)]
    pub memory: MemoryArg,
}

/// The memory of the sizes, as `(argument, bytes)` parts: the parameters and their
/// optimizer state and records in every run and report, the activations of a whole batch
/// in every run, and the data and records of every step.
pub fn tokens_needs(c: &TokensConfig, reports: usize, json: bool, plot: bool) -> [(String, Bytes); 3] {
    let n = |x: u64| Bytes(Some(x));
    let u = Bytes::count;
    let params = u(c.vocab) * u(c.embed) + (u(c.embed) + n(1)) * u(c.hidden) + (u(c.hidden) + n(1)) * u(c.vocab);
    let (runs, reports) = (n(6), u(reports));
    let text = if json { n(112) } else { Bytes::ZERO };
    let per_param = (runs * n(9) + n(2) + reports * n(6)) * Bytes::F32 + n(6) * text;
    let width = u(c.embed) * n(3) + u(c.hidden) * n(4) + u(c.vocab) * n(6) + n(8);
    let tokens = u(c.batch) * u(c.max_len);
    let per_batch = runs * (tokens * width * Bytes::F32 + u(c.micro_batches) * n(64));
    let svg = if plot { n(256) } else { Bytes::ZERO };
    let record = u(c.micro_batches) * (Bytes::F32 + text + n(16)) + n(8 + 64) + svg;
    let per_step = tokens * n(2) * Bytes::F32 + n(8) + reports * runs * record;
    [
        (format!("--vocab {} --embed {} --hidden {}", c.vocab, c.embed, c.hidden), params * per_param),
        (format!("--batch {} --max-len {}", c.batch, c.max_len), per_batch),
        (format!("--steps {}", c.steps), u(c.steps) * per_step),
    ]
}

/// The experiment settings of `a`, and whether it asks for the table of five optimizers;
/// the sizes' memory, the data (every step must hold a loss token) and the plot path
/// checked too.
///
/// # Errors
/// An invalid option or combination; the message names the option.
pub fn validate(a: &TokensArgs) -> Result<(TokensConfig, bool), String> {
    if a.vocab < 2 {
        return Err(format!("--vocab must be at least 2 (got {}): one token leaves nothing to predict", a.vocab));
    }
    for (name, v) in [("--embed", a.embed), ("--hidden", a.hidden), ("--max-len", a.max_len), ("--batch", a.batch)] {
        if v == 0 {
            return Err(format!("{name} must be at least 1"));
        }
    }
    if a.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if a.micro_batches == 0 || a.micro_batches > a.batch {
        return Err(format!("--micro-batches must be 1..={} (--batch), got {}", a.batch, a.micro_batches));
    }
    if a.min_len > a.max_len {
        return Err(format!("--min-len must be 0..={} (--max-len), got {}", a.max_len, a.min_len));
    }
    let optimizer = a.optimizer.spec(default_optimizer)?;
    let k = a.micro_batches;
    optimizer.with_lr(optimizer.lr / k as f64).validate::<f32>().map_err(|e| {
        format!("{} (as lr / k with --micro-batches {k}, the learning rate of the lr/k run)", spec_error(&e))
    })?;
    let config = TokensConfig {
        optimizer,
        vocab: a.vocab,
        embed: a.embed,
        hidden: a.hidden,
        batch: a.batch,
        micro_batches: k,
        max_len: a.max_len,
        min_len: a.min_len,
        steps: a.steps,
        data_seed: a.seeds.data_seed,
        model_seed: a.seeds.model_seed,
    };
    let table = !a.optimizer.given() && !a.json.json;
    let reports = if table { table_optimizers().len() } else { 1 };
    a.memory.check(&tokens_needs(&config, reports, a.json.json, a.plot.plot.is_some()))?;
    check_outputs(&[("--plot", a.plot.plot.as_deref())])?;
    let empty = empty_steps(&config, &make_data(&config));
    if !empty.is_empty() {
        let steps: Vec<String> = empty.iter().map(|s| (s + 1).to_string()).collect();
        let (what, has) = if empty.len() == 1 { ("step", "has") } else { ("steps", "have") };
        return Err(format!(
            "{what} {} {has} no loss token (every sequence of the batch has length 0): the batched mean would be \
             NaN and tokens/total would divide by 0; change --data-seed or --min-len",
            steps.join(", ")
        ));
    }
    Ok((config, table))
}

/// Runs `tapegrad-demo tokens` as `a` asks: prints the table or one optimizer's runs (text
/// or JSON) and writes the plot, saying where it went.
pub fn run(a: &TokensArgs) -> ExitCode {
    let (config, table) = match crate::args::begin(validate(a), &a.seeds) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let reports = if table { run_table(&config) } else { vec![run_tokens(&config)] };
    let json = a.json.json;
    let mut written = String::new();
    if let Some(path) = &a.plot.plot {
        let panels: Vec<_> = reports.iter().map(|r| r.panel()).collect();
        if let Err(e) = crate::fixes::plot::write_panels(&panels, path) {
            return fail(&format!("--plot: {}: {e}", tapegrad_nn::files::escaped(path)));
        }
        written = format!("plot written to {}", path.display());
    }
    let nan = reports.iter().map(|r| r.nan_losses()).sum::<usize>();
    if nan > 0 {
        let whereto = if json { " (null in the JSON)" } else { "" };
        say(&format!(
            "{nan} micro-batch losses are NaN{whereto}: those micro-batches hold padding only (a mean over 0 tokens); \
             their gradients are 0 and training goes on"
        ));
    }
    let non_finite = reports.iter().map(|r| r.non_finite()).sum();
    output::non_finite_note(non_finite, "a step overflows float32, or eps 0 divides 0 by 0", json);
    let mut text = if json {
        super::json::render_tokens_json(&reports[0])
    } else if table {
        render_table(&reports)
    } else {
        render_one(&reports[0])
    };
    if !written.is_empty() {
        // with --json the line goes to stderr, so stdout stays JSON
        if json {
            say(&written);
        } else {
            text += &format!("\n{written}\n");
        }
    }
    output::print(&text)
}
