//! `tapegrad-demo fixes`: its options, their checks and the run. Every bad input becomes
//! one line on stderr and exit status 2 before any work, never a panic.

use std::process::ExitCode;

use clap::Args;
use tapegrad_nn::Norm;

use super::default_optimizer;
use super::{render_one, render_table, run_fixes, run_table, table_optimizers, FixesConfig, LossKind};
use crate::args::{check_outputs, spec_error, JsonArg, MemoryArg, OptimizerArgs, PlotArg, SeedArgs, ShapeArgs};
use crate::budget::fixes_needs;
use crate::output::{self, fail, say};
use tapegrad_nn::files::escaped;

/// The options of `fixes` (its description is the doc of [`crate::cli::Command::Fixes`]).
#[derive(Args, Debug)]
#[command(
    after_help = DEFAULTS,
    mut_arg("plot", |a| a.help("Draw each fix's distance from the large-batch run per step (log scale) as an SVG file")),
    mut_arg("json", |a| a.help("Print the five runs of one optimizer as JSON in the layout of make_fixes_reference.py"))
)]
pub struct FixesArgs {
    /// The optimizer.
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// Loss: l1 (mean |y - t|) or mse (mean (y - t)^2).
    #[arg(long, value_name = "NAME", default_value = "l1", value_parser = parse_loss)]
    pub loss: LossKind,
    /// The model's sizes and the split.
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 5, value_name = "N", allow_negative_numbers = true)]
    pub steps: usize,
    /// Clip the accumulated gradient to this total 2-norm before every optimizer step
    /// (clip_grad_norm_; finite and > 0). Default: no clipping.
    #[arg(long, value_name = "C", allow_negative_numbers = true, value_parser = parse_clip)]
    pub clip_grad_norm: Option<f64>,
    /// Normalisation after every hidden Linear, before its ReLU: none, batch (BatchNorm1d;
    /// those Linears lose their bias) or layer (LayerNorm).
    #[arg(long, value_name = "NAME", default_value = "none", value_parser = parse_norm)]
    pub norm: Norm,
    /// The seeds.
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// `--json`: the five runs of one optimizer in the layout of make_fixes_reference.py.
    #[command(flatten)]
    pub json: JsonArg,
    /// `--plot`: each fix's distance from the large-batch run per step (log scale).
    #[command(flatten)]
    pub plot: PlotArg,
    /// `--max-memory`.
    #[command(flatten)]
    pub memory: MemoryArg,
}

/// The optimizers' defaults, after the options in `--help` (of `tokens` too).
pub(crate) const DEFAULTS: &str = "Defaults: sgd lr 0.1, momentum 0, weight decay 0; adam lr 0.01, weight decay 0; \
                        adamw lr 0.01, weight decay 0.01; betas 0.9,0.999 and eps 1e-8.";

fn parse_clip(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(c) if c.is_finite() && c > 0.0 => Ok(c),
        _ => Err("the clipping threshold must be a finite number > 0".into()),
    }
}

fn parse_norm(s: &str) -> Result<Norm, String> {
    Norm::from_name(s).ok_or_else(|| "the normalisation must be none, batch or layer".into())
}

fn parse_loss(s: &str) -> Result<LossKind, String> {
    match s {
        "l1" => Ok(LossKind::L1),
        "mse" => Ok(LossKind::Mse),
        _ => Err("the loss must be l1 or mse".into()),
    }
}

/// The experiment settings of `a`, and whether it asks for the table of five optimizers;
/// the sizes' memory and the plot path checked too.
///
/// # Errors
/// An invalid option or combination; the message names the option.
pub fn validate(a: &FixesArgs) -> Result<(FixesConfig, bool), String> {
    if a.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    a.shape.validate()?;
    let optimizer = a.optimizer.spec(default_optimizer)?;
    // the lr / k run's learning rate must hold in float32 too (a tiny lr rounds to 0)
    let k = a.shape.micro_batches;
    optimizer.with_lr(optimizer.lr / k as f64).validate::<f32>().map_err(|e| {
        format!("{} (as lr / k with --micro-batches {k}, the learning rate of the lr/k run)", spec_error(&e))
    })?;
    let config = FixesConfig {
        optimizer,
        loss: a.loss,
        layers: a.shape.layers.0.clone(),
        batch: a.shape.batch,
        micro_batches: a.shape.micro_batches,
        steps: a.steps,
        data_seed: a.seeds.data_seed,
        model_seed: a.seeds.model_seed,
        clip_grad_norm: a.clip_grad_norm,
        norm: a.norm,
    };
    let smallest = config.batch / config.micro_batches;
    if config.norm == Norm::Batch && smallest < 2 {
        return Err(format!(
            "--norm batch needs at least 2 rows in every micro-batch, but --batch {} split into {} gives a \
             micro-batch of {smallest} (BatchNorm1d has no variance over one row; PyTorch raises)",
            config.batch, config.micro_batches
        ));
    }
    let table = !a.optimizer.given() && !a.json.json;
    let reports = if table { table_optimizers().len() } else { 1 };
    let c = &config;
    let [params, batch, steps] = fixes_needs(
        &c.layers,
        c.batch,
        c.micro_batches,
        c.steps,
        reports,
        a.json.json,
        a.plot.plot.is_some(),
        c.norm != Norm::None,
    );
    let steps_arg = format!("--steps {}", c.steps);
    a.memory.check(&[(a.shape.layers_arg(), params), (a.shape.batch_arg(), batch), (steps_arg, steps)])?;
    check_outputs(&[("--plot", a.plot.plot.as_deref())])?;
    Ok((config, table))
}

/// Runs `tapegrad-demo fixes` as `a` asks: prints the table or one optimizer's runs (text
/// or JSON) and writes the plot, saying where it went.
pub fn run(a: &FixesArgs) -> ExitCode {
    let (config, table) = match crate::args::begin(validate(a), &a.seeds) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let reports = if table { run_table(&config) } else { vec![run_fixes(&config)] };
    let json = a.json.json;
    let mut written = String::new();
    if let Some(path) = &a.plot.plot {
        if let Err(e) = super::plot::write_plot(&reports, path) {
            return fail(&format!("--plot: {}: {e}", escaped(path)));
        }
        written = format!("plot written to {}", escaped(path));
    }
    let non_finite = reports.iter().map(|r| r.non_finite()).sum();
    output::non_finite_note(non_finite, "a step overflows float32, or eps 0 divides 0 by 0", json);
    let mut text = if json {
        super::json::render_fixes_json(&reports[0])
    } else if table && config == FixesConfig::default() {
        // with no options, the table ends with the answer over every setup
        format!("{}\n{}", render_table(&reports), super::answer::render_answer(&super::answer::run_answer()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tapegrad_nn::OptimizerKind;

    #[test]
    fn defaults_in_help_are_the_specs() {
        let f = crate::json::py_float;
        let [sgd, adam, adamw] = [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW].map(default_optimizer);
        let want = format!(
            "Defaults: sgd lr {}, momentum {}, weight decay {}; adam lr {}, weight decay {}; \
             adamw lr {}, weight decay {}; betas {},{} and eps {:e}.",
            f(sgd.lr),
            sgd.momentum,
            sgd.weight_decay,
            f(adam.lr),
            adam.weight_decay,
            f(adamw.lr),
            f(adamw.weight_decay),
            adam.betas.0,
            adam.betas.1,
            adam.eps
        );
        assert_eq!(DEFAULTS, want);
    }
}
