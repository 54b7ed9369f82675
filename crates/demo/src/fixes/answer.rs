//! The answer to "which fix makes gradient accumulation equal one large batch?" as one
//! table: a row per setup (plain SGD, momentum, weight decay, Adam, AdamW, clipping,
//! BatchNorm, LayerNorm, token-mean losses), a column per fix, every cell measured by
//! running that setup's runs (nothing in the table is written by hand), and the token
//! row's own fix under it. `tapegrad-demo fixes` ends with it.

use tapegrad_nn::{Norm, OptimizerKind, OptimizerSpec};

use super::{default_optimizer, run_fixes, table_optimizers, verdict, FixesConfig, FixesReport, RUNS};
use crate::tokens::{run_tokens, TokensConfig, TokensReport};

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

/// The label of the token row.
pub const TOKEN_ROW: &str = "SGD, token-mean loss";

/// Every setup of [`setups`], measured, and the token row: `tapegrad-demo tokens`'s default
/// experiment (plain SGD, sequences of 1 to 6 tokens padded to 6, a mean over the loss
/// tokens), whose runs carry the same names as `fixes`' plus `tokens/total`.
pub struct Answer {
    /// The setups of [`setups`] with their reports.
    pub rows: Vec<(String, FixesReport)>,
    /// The token-mean row's report.
    pub tokens: TokensReport,
}

/// Runs every setup of [`setups`] and the token row.
pub fn run_answer() -> Answer {
    Answer {
        rows: setups().into_iter().map(|(label, config)| (label, run_fixes(&config))).collect(),
        tokens: run_tokens(&TokensConfig::default()),
    }
}

/// The answer table (as [`run_answer`] measures it), with its heading and the token row's
/// own fix.
pub fn render_answer(answer: &Answer) -> String {
    let rows = &answer.rows;
    let (k, steps) = rows.first().map_or((2, 5), |(_, r)| (r.config.micro_batches, r.config.steps));
    let mut s = format!(
        "The answer: do k = {k} accumulated micro-batches equal one large batch after {steps} steps, by setup and fix?\n\
         (measured as above: rows 1-5 are the table above, clipping runs on the same model, the norm rows on a\n\
         4-8-8-2 model with a batch of 8, model seed 3, the token row as `tapegrad-demo tokens`)\n\n"
    );
    s += "| setup | no fix | lr / k | loss / k | loss x size / batch |\n| --- | --- | --- | --- | --- |\n";
    for (label, report) in rows {
        let cells: Vec<String> = RUNS[1..].iter().map(|name| verdict(report.run(name))).collect();
        s += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    let cells: Vec<String> = RUNS[1..].iter().map(|name| verdict(answer.tokens.run(name))).collect();
    s += &format!("| {TOKEN_ROW} | {} |\n", cells.join(" | "));
    s += &format!(
        "\nToken-mean losses (sequences of different lengths, the `tokens` experiment) need their own fix:\n\
         each micro-batch's summed loss divided by the loss tokens of the whole batch (tokens/total): {}.\n",
        verdict(answer.tokens.run("tokens/total"))
    );
    s
}
