//! `tokens --json`: the layout of the PyTorch reference `make_tokens_reference.py` (same
//! keys in the same order, its writer's line breaks, numbers as Python's `repr`), so a
//! script can compare any run with PyTorch's. The NaN mean loss of a micro-batch of
//! padding only is written as `null`, as the reference writes it.

use crate::fixes::OptimizerKind;
use crate::json::{floats, ints, null, num, string, to_text, Layout, J};
use crate::tokens::{TokensReport, TokensRun};

fn int(n: impl ToString) -> J {
    J::Num(n.to_string())
}

fn run(r: &TokensRun) -> J {
    let losses = if r.name == "batched" {
        floats(&r.losses.iter().flatten().copied().collect::<Vec<f32>>())
    } else {
        J::List(r.losses.iter().map(|l| floats(l)).collect())
    };
    J::Obj(vec![
        ("name", string(r.name)),
        ("lr", num(r.lr)),
        ("params", floats(&r.params)),
        ("losses", losses),
        ("max_rel_diff", num(r.max_rel_diff)),
        ("equal", J::Bool(r.equal)),
    ])
}

/// The report as JSON text in the reference's layout (with a trailing newline).
pub fn render_tokens_json(r: &TokensReport) -> String {
    let c = &r.config;
    let o = &c.optimizer;
    let sgd = o.kind == OptimizerKind::Sgd;
    let doc = J::Obj(vec![
        ("experiment", string("tokens")),
        ("optimizer", string(o.kind.name())),
        ("lr", num(o.lr)),
        ("momentum", if sgd { num(o.momentum) } else { null() }),
        ("betas", if sgd { null() } else { floats(&[o.betas.0, o.betas.1]) }),
        ("eps", if sgd { null() } else { num(o.eps) }),
        ("weight_decay", num(o.weight_decay)),
        ("vocab", int(c.vocab)),
        ("embed", int(c.embed)),
        ("hidden", int(c.hidden)),
        ("batch", int(c.batch)),
        ("micro_batches", int(c.micro_batches)),
        ("micro_batch_sizes", ints(&r.micro_batch_sizes)),
        ("max_len", int(c.max_len)),
        ("min_len", int(c.min_len)),
        ("steps", int(c.steps)),
        ("data_seed", int(c.data_seed)),
        ("model_seed", int(c.model_seed)),
        ("lengths", ints(&r.lengths)),
        ("step_tokens", ints(&r.step_tokens)),
        ("micro_batch_tokens", J::List(r.micro_batch_tokens.iter().map(|t| ints(t)).collect())),
        ("initial_params", floats(&r.initial_params)),
        ("runs", J::List(r.runs.iter().map(run).collect())),
    ]);
    to_text(&doc, Layout::Objects)
}
