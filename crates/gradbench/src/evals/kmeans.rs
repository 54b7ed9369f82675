//! kmeans: the k-means cost of `n` points `P_i` and `k` centroids `C_j` in `d` dimensions,
//!
//! `cost(C) = Σ_i min_j |C_j - P_i|²`,
//!
//! and `dir = J ⊘ H`, one Newton step: `J = ∂cost/∂C` and `H` the diagonal of the Hessian
//! (the Hessian is diagonal, so `H = ∇(1 · J)`, a Hessian-vector product with ones:
//! reverse over reverse). A centroid that no point is closest to has `J = H = 0`; its
//! direction is 0 (it does not move), not `0/0`.
//!
//! The squared distances of all pairs are `|P_i|² + |C_j|² - 2 P_i·C_j`, one matrix product.

use serde_json::Value;
use tapegrad::{Tape, Var};

use crate::input::{field, matrix, to_json_rows};
use crate::{measure, unknown_function, Measured, Runs};

/// `cost(C)` on the tape.
fn cost<'t>(p: Var<'t, f64>, c: Var<'t, f64>) -> Var<'t, f64> {
    let p2 = (p * p).sum_axis(1, true); // [n, 1]
    let c2 = (c * c).sum_axis(1, false); // [k]
    let dist = (p2 + c2) - p.matmul_t(c) * 2.0; // [n, k]
    dist.min_axis(1).sum()
}

/// `cost` or `dir`.
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let (points, d) = matrix(field(input, "points")?, "points")?;
    let (centroids, dc) = matrix(field(input, "centroids")?, "centroids")?;
    if d != dc || d == 0 || centroids.is_empty() {
        return Err(format!(
            "points have {d} coordinates, centroids {dc}: expected equal and at least 1, with a centroid"
        ));
    }
    let (n, k) = (points.len() / d, centroids.len() / d);
    let mut tape = Tape::<f64>::new();
    match function {
        "cost" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let p = tape.leaf_from_slice(&points, &[n, d], false);
                let c = tape.leaf_from_slice(&centroids, &[k, d], false);
                cost(p, c).item()
            },
            Value::from,
        )),
        "dir" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let p = tape.leaf_from_slice(&points, &[n, d], false);
                let c = tape.leaf_from_slice(&centroids, &[k, d], true);
                let j = tape.grad(cost(p, c), &[c])[0];
                let h = tape.grad(j.sum(), &[c])[0];
                let (j, h) = (j.value(), h.value());
                j.data().iter().zip(h.data()).map(|(&j, &h)| if h == 0.0 { 0.0 } else { j / h }).collect::<Vec<f64>>()
            },
            |dir| to_json_rows(&dir, k, d),
        )),
        _ => Err(unknown_function(function, &["cost", "dir"])),
    }
}
