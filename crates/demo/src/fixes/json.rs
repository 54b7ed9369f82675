//! `fixes --json`: the layout of the PyTorch reference `make_fixes_reference.py` (same keys
//! in the same order, one key per line, lists of numbers on one line, numbers as Python's
//! `repr`), so a script can compare any run with PyTorch's. The writer is
//! [`crate::json`]'s; NaN and infinities are written as `null` (the binary says so on
//! stderr, see [`FixesReport::non_finite`]).

use tapegrad_nn::{Norm, OptimizerKind, OptimizerSpec};

use super::{FixesReport, FixesRun};
use crate::json::{floats, ints, null, num, string, to_text, Layout, J};

/// A whole number.
pub(crate) fn int(n: impl ToString) -> J {
    J::Num(n.to_string())
}

/// One run as the reference writes it (`tokens --json` writes its runs the same way);
/// `clip`: the experiment clips (the run then records its gradient norms).
pub(crate) fn run(r: &FixesRun, clip: bool) -> J {
    let losses = if r.name == "batched" {
        floats(&r.losses.iter().flatten().copied().collect::<Vec<f32>>())
    } else {
        J::List(r.losses.iter().map(|l| floats(l)).collect())
    };
    let mut fields =
        vec![("name", string(r.name)), ("lr", num(r.lr)), ("params", floats(&r.params)), ("losses", losses)];
    if clip {
        fields.push(("grad_norms", floats(&r.grad_norms)));
    }
    if let Some(b) = &r.buffers {
        fields.push(("buffers", floats(b)));
    }
    fields.push(("max_rel_diff", num(r.max_rel_diff)));
    fields.push(("equal", J::Bool(r.equal)));
    J::Obj(fields)
}

/// The report as JSON text in the reference's layout (with a trailing newline).
pub fn render_fixes_json(r: &FixesReport) -> String {
    let c = &r.config;
    let mut fields = head("fixes", &c.optimizer);
    // the keys of clipping and normalisation are absent without them, as in the reference
    if let Some(clip) = c.clip_grad_norm {
        fields.push(("clip_grad_norm", num(clip)));
    }
    fields.push(("loss", string(c.loss.name())));
    if c.norm != Norm::None {
        fields.push(("norm", string(c.norm.name())));
    }
    fields.extend([
        ("data_seed", int(c.data_seed)),
        ("model_seed", int(c.model_seed)),
        ("layers", ints(&c.layers)),
        ("batch", int(c.batch)),
        ("micro_batches", int(c.micro_batches)),
        ("micro_batch_sizes", ints(&r.micro_batch_sizes)),
        ("steps", int(c.steps)),
        ("initial_params", floats(&r.initial_params)),
        ("runs", J::List(r.runs.iter().map(|x| run(x, c.clip_grad_norm.is_some())).collect())),
    ]);
    to_text(&J::Obj(fields), Layout::Objects)
}

/// The first keys of the reference files: the experiment and the optimizer's settings
/// (`null` where they do not apply).
pub(crate) fn head(experiment: &str, o: &OptimizerSpec) -> Vec<(&'static str, J)> {
    let sgd = o.kind == OptimizerKind::Sgd;
    vec![
        ("experiment", string(experiment)),
        ("optimizer", string(o.kind.name())),
        ("lr", num(o.lr)),
        ("momentum", if sgd { num(o.momentum) } else { null() }),
        ("betas", if sgd { null() } else { floats(&[o.betas.0, o.betas.1]) }),
        ("eps", if sgd { null() } else { num(o.eps) }),
        ("weight_decay", num(o.weight_decay)),
    ]
}
