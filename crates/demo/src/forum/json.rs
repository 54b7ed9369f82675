//! The forum experiment's `--json`: exactly the layout of the PyTorch reference files
//! (same keys, same order, numbers as Python's `repr` of the float32 values), so a script
//! can compare any run with PyTorch's. NaN and infinities are written as `null` (the
//! binary says so on stderr, see [`Report::non_finite`]).

use tapegrad_nn::{LossScale, Reduction};

use super::{Experiment, Report};
use crate::json::{floats, ints, num, rows, string, to_text, Layout, J};

fn experiment(e: &Experiment) -> J {
    J::Obj(vec![
        ("name", string(e.name)),
        ("reduction", string(if e.reduction == Reduction::Sum { "sum" } else { "mean" })),
        ("lr_batched", num(e.lr_batched)),
        ("lr_accumulated", num(e.lr_accumulated)),
        ("loss_scale", string(if e.loss_scale == LossScale::SizeOverBatch { "size/batch" } else { "none" })),
        (
            "batched",
            J::Obj(vec![
                ("loss", num(e.batched.losses[0] as f64)),
                ("grads", floats(&e.batched.grads)),
                ("params", floats(&e.batched.params)),
            ]),
        ),
        (
            "accumulated",
            J::Obj(vec![
                ("losses", floats(&e.accumulated.losses)),
                ("grads", floats(&e.accumulated.grads)),
                ("params", floats(&e.accumulated.params)),
            ]),
        ),
        ("grads_equal", J::Bool(e.grads_equal())),
        ("params_equal", J::Bool(e.params_equal())),
    ])
}

/// The report as JSON text (with a trailing newline).
pub fn render_json(r: &Report) -> String {
    let c = &r.config;
    let doc = J::Obj(vec![
        ("data_seed", J::Num(c.data_seed.to_string())),
        ("model_seed", J::Num(c.model_seed.to_string())),
        ("layers", ints(&c.layers)),
        ("batch", J::Num(c.batch.to_string())),
        ("micro_batches", J::Num(c.micro_batches.to_string())),
        ("micro_batch_sizes", ints(&r.micro_batch_sizes)),
        ("input", rows(&r.input)),
        ("target", rows(&r.target)),
        ("initial_params", floats(&r.initial_params)),
        ("experiments", J::List(r.experiments.iter().map(experiment).collect())),
    ]);
    to_text(&doc, Layout::Nested)
}
