//! The forum experiment's report as text.

use super::Report;
use crate::json::py_float;

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// The human-readable report.
pub fn render_text(r: &Report) -> String {
    use std::fmt::Write;
    let c = &r.config;
    let k = c.micro_batches;
    let n_params = r.initial_params.len();
    let arch = c.layers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("-");
    let mut s = String::new();
    let _ = writeln!(s, "Gradient accumulation vs one big batch (tapegrad, after the PyTorch forum post)");
    let _ = writeln!(s);
    let init = match c.initial_params {
        Some(_) => "weights loaded (--load)".to_string(),
        None => format!("model seed {}", c.model_seed),
    };
    let _ = writeln!(s, "model   {arch} MLP (Linear, ReLU, ..., Linear), {n_params} parameters, {init}");
    let _ = writeln!(s, "data    batch of {} (data seed {}), L1 loss |model(x) - t|", c.batch, c.data_seed);
    let _ =
        writeln!(s, "split   {k} micro-batches of sizes {:?}; allclose = rtol 1e-5, atol 1e-8", r.micro_batch_sizes);
    for (i, e) in r.experiments.iter().enumerate() {
        let what = match e.name {
            "sum" => "sum loss".to_string(),
            "mean" => "mean loss".to_string(),
            _ => "mean loss, each micro-batch loss x (its size / batch)".to_string(),
        };
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "[{}] {what}: lr {} batched, {} accumulated",
            i + 1,
            py_float(e.lr_batched),
            py_float(e.lr_accumulated)
        );
        let parts: Vec<String> = e.accumulated.losses.iter().map(|l| format!("{l:.6}")).collect();
        let _ = writeln!(s, "    loss        batched {:.6}   micro-batches {}", e.batched.losses[0], parts.join(", "));
        let _ = writeln!(
            s,
            "    gradients   equal: {:<3}  largest difference {:<9}  accumulated / batched = {:.4}{}",
            yes_no(e.grads_equal()),
            fmt_sci(e.max_grad_diff()),
            e.grad_ratio(),
            if !e.grads_equal() && (e.grad_ratio() - 1.0).abs() < 1e-4 {
                "  (float32 rounding only: the sums run in another order)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "    parameters  equal: {:<3}  largest difference {}",
            yes_no(e.params_equal()),
            fmt_sci(e.max_param_diff())
        );
    }
    let even = r.micro_batch_sizes.iter().all(|&m| m == r.micro_batch_sizes[0]);
    let _ = writeln!(s);
    let _ = writeln!(s, "Why: gradients add up across backward calls until they are zeroed.");
    let _ = writeln!(
        s,
        "- A sum loss adds up over samples, so the {k} micro-batch gradients add up to the batch gradient."
    );
    let _ = writeln!(
        s,
        "- A mean loss divides each micro-batch by its own size, so the accumulated gradient is about {k}x the"
    );
    let _ = writeln!(
        s,
        "  batch gradient: divide the learning rate (or each micro-batch loss) by k = {k} to take the same step."
    );
    if !even {
        let _ = writeln!(s, "  Here the micro-batches differ in size, so dividing by k is not exact.");
    }
    let _ = writeln!(
        s,
        "- Scaling each micro-batch's mean loss by size/batch makes accumulation exact for any split, with the same lr."
    );
    s
}

/// A difference in short scientific notation (`0`, `5.96e-8`).
fn fmt_sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.2e}")
    }
}
