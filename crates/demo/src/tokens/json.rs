//! `tokens --json`: the layout of the PyTorch reference `make_tokens_reference.py` (same
//! keys in the same order, its writer's line breaks, numbers as Python's `repr`), so a
//! script can compare any run with PyTorch's. The NaN mean loss of a micro-batch of
//! padding only is written as `null`, as the reference writes it.

use super::TokensReport;
use crate::fixes::json::{head, int, run};
use crate::json::{floats, ints, to_text, Layout, J};

/// The report as JSON text in the reference's layout (with a trailing newline).
pub fn render_tokens_json(r: &TokensReport) -> String {
    let c = &r.config;
    let mut fields = head("tokens", &c.optimizer);
    fields.extend([
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
        ("runs", J::List(r.runs.iter().map(|x| run(x, false)).collect())),
    ]);
    to_text(&J::Obj(fields), Layout::Objects)
}
