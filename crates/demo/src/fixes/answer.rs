//! The answer to "which fix makes gradient accumulation equal one large batch?" as one
//! table: a row per setup (plain SGD, momentum, weight decay, Adam, AdamW, clipping,
//! BatchNorm, LayerNorm), a column per fix, every cell measured by running that setup's
//! five runs (nothing in the table is written by hand). `tapegrad-demo fixes` ends with it.

use tapegrad_nn::{Norm, OptimizerKind, OptimizerSpec};

use super::{default_optimizer, run_fixes, table_optimizers, verdict, FixesConfig, FixesReport, RUNS};

/// The threshold of the clipping row: below the large batch's gradient norm in most of its
/// steps and above it in one, on the default model (the setting, 0.63).
pub const CLIP: f64 = 0.63;

/// The rows: a label and the experiment measured for it. The first five are the default
/// experiment with each optimizer of [`table_optimizers`]; clipping is Adam's (the
/// optimizer that needs no fix without it) with threshold [`CLIP`]; the two
/// normalisation rows use SGD on a 4-8-8-2 model and a batch of 8 (micro-batches of 4
/// rows: BatchNorm needs more than one), model seed 3.
pub fn setups() -> Vec<(String, FixesConfig)> {
    let base = FixesConfig::default();
    let [sgd, momentum, decay, adam, adamw] = table_optimizers();
    let with = |optimizer: OptimizerSpec| FixesConfig { optimizer, ..base.clone() };
    let norm = |norm: Norm| FixesConfig {
        norm,
        layers: vec![4, 8, 8, 2],
        batch: 8,
        model_seed: 3,
        optimizer: default_optimizer(OptimizerKind::Sgd),
        ..base.clone()
    };
    vec![
        ("plain SGD".into(), with(sgd)),
        (format!("SGD, momentum {}", momentum.momentum), with(momentum)),
        (format!("SGD, weight decay {}", decay.weight_decay), with(decay)),
        ("Adam".into(), with(adam)),
        (format!("AdamW, weight decay {}", adamw.weight_decay), with(adamw)),
        (format!("Adam, clip_grad_norm {CLIP}"), FixesConfig { clip_grad_norm: Some(CLIP), ..with(adam) }),
        ("SGD, BatchNorm1d".into(), norm(Norm::Batch)),
        ("SGD, LayerNorm".into(), norm(Norm::Layer)),
    ]
}

/// Runs every setup of [`setups`].
pub fn run_answer() -> Vec<(String, FixesReport)> {
    setups().into_iter().map(|(label, config)| (label, run_fixes(&config))).collect()
}

/// The answer table of `rows` (as [`run_answer`] makes them), with its heading.
pub fn render_answer(rows: &[(String, FixesReport)]) -> String {
    let (k, steps) = rows.first().map_or((2, 5), |(_, r)| (r.config.micro_batches, r.config.steps));
    let mut s = format!(
        "The answer: do k = {k} accumulated micro-batches equal one large batch after {steps} steps, by setup and fix?\n\
         (measured as above: rows 1-5 are the table above, clipping runs on the same model, the norm rows on a\n\
         4-8-8-2 model with a batch of 8, model seed 3)\n\n"
    );
    s += "| setup | no fix | lr / k | loss / k | loss x size / batch |\n| --- | --- | --- | --- | --- |\n";
    for (label, report) in rows {
        let cells: Vec<String> = RUNS[1..].iter().map(|name| verdict(report.run(name))).collect();
        s += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    s
}
