//! `fixes --json`: the layout of the PyTorch reference `make_fixes_reference.py` (same keys
//! in the same order, one key per line, lists of numbers on one line, numbers as Python's
//! `repr`), so a script can compare any run with PyTorch's.

use crate::fixes::{FixesReport, FixesRun, OptimizerKind};
use crate::json::py_float;

/// A JSON value, written as the reference generator's `dumps` writes it.
enum J {
    /// A number or `null`, already formatted.
    Raw(String),
    Str(&'static str),
    Bool(bool),
    List(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

fn floats<T: Copy + Into<f64>>(v: &[T]) -> J {
    J::List(v.iter().map(|&x| J::Raw(py_float(x.into()))).collect())
}

fn ints(v: &[usize]) -> J {
    J::List(v.iter().map(|x| J::Raw(x.to_string())).collect())
}

fn write(out: &mut String, v: &J, indent: usize) {
    let (pad, inner) = (" ".repeat(indent), " ".repeat(indent + 1));
    match v {
        J::Raw(s) => out.push_str(s),
        J::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Obj(items) => {
            out.push_str("{\n");
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&format!("{inner}\"{k}\": "));
                write(out, v, indent + 1);
            }
            out.push_str(&format!("\n{pad}}}"));
        }
        // a list holding objects: one element per line; any other list on one line
        J::List(items) if items.iter().any(|v| matches!(v, J::Obj(_))) => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&inner);
                write(out, v, indent + 1);
            }
            out.push_str(&format!("\n{pad}]"));
        }
        J::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, v, indent + 1);
            }
            out.push(']');
        }
    }
}

fn run(r: &FixesRun) -> J {
    let losses = if r.name == "batched" {
        floats(&r.losses.iter().flatten().copied().collect::<Vec<f32>>())
    } else {
        J::List(r.losses.iter().map(|l| floats(l)).collect())
    };
    J::Obj(vec![
        ("name", J::Str(r.name)),
        ("lr", J::Raw(py_float(r.lr))),
        ("params", floats(&r.params)),
        ("losses", losses),
        ("max_rel_diff", J::Raw(py_float(r.max_rel_diff))),
        ("equal", J::Bool(r.equal)),
    ])
}

/// The report as JSON text in the reference's layout (with a trailing newline).
pub fn render_fixes_json(r: &FixesReport) -> String {
    let c = &r.config;
    let o = &c.optimizer;
    let null = || J::Raw("null".into());
    let sgd = o.kind == OptimizerKind::Sgd;
    let doc = J::Obj(vec![
        ("experiment", J::Str("fixes")),
        ("optimizer", J::Str(o.kind.name())),
        ("lr", J::Raw(py_float(o.lr))),
        ("momentum", if sgd { J::Raw(py_float(o.momentum)) } else { null() }),
        ("betas", if sgd { null() } else { floats(&[o.betas.0, o.betas.1]) }),
        ("eps", if sgd { null() } else { J::Raw(py_float(o.eps)) }),
        ("weight_decay", J::Raw(py_float(o.weight_decay))),
        ("loss", J::Str(c.loss.name())),
        ("data_seed", J::Raw(c.data_seed.to_string())),
        ("model_seed", J::Raw(c.model_seed.to_string())),
        ("layers", ints(&c.layers)),
        ("batch", J::Raw(c.batch.to_string())),
        ("micro_batches", J::Raw(c.micro_batches.to_string())),
        ("micro_batch_sizes", ints(&r.micro_batch_sizes)),
        ("steps", J::Raw(c.steps.to_string())),
        ("initial_params", floats(&r.initial_params)),
        ("runs", J::List(r.runs.iter().map(run).collect())),
    ]);
    let mut out = String::new();
    write(&mut out, &doc, 0);
    out.push('\n');
    out
}
