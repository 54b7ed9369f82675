//! ode: `s` steps of the classic fourth-order Runge-Kutta method on `t ∈ [0, 2]` for
//!
//! `y_0' = x_0`, `y_i' = x_i y_(i-1)` (i ≥ 1), `y(0) = 0`,
//!
//! `primal` is `y(2)`; `gradient` is `∂y_(n-1)(2) / ∂x`, by reverse mode through every
//! step.

use serde_json::Value;
use tapegrad::{Tape, Tensor, Var};

use crate::input::{count, to_json, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// `y(2)` from `x`, on the tape.
fn solve<'t>(tape: &'t Tape<f64>, x: Var<'t, f64>, s: usize) -> Var<'t, f64> {
    // f(y) = x ⊙ (1, y_0, ..., y_(n-2)): y shifted one place, a 1 coming in at the front
    let f = |y: Var<'t, f64>| x * y.pad(0, 1, -1, 1.0);
    let h = 2.0 / s as f64;
    let mut y = tape.input(Tensor::zeros(&x.shape()));
    // y + c k as one op: `y.add_scaled(k, c)` (PyTorch's `torch.add(y, k, alpha=c)`)
    for _ in 0..s {
        let k1 = f(y);
        let k2 = f(y.add_scaled(k1, h / 2.0));
        let k3 = f(y.add_scaled(k2, h / 2.0));
        let k4 = f(y.add_scaled(k3, h));
        // y + h/6 (k1 + 2 (k2 + k3) + k4)
        y = y.add_scaled(k1.add_scaled(k2 + k3, 2.0) + k4, h / 6.0);
    }
    y
}

/// `primal` (`y(2)`) or `gradient` (`∂y_(n-1)(2) / ∂x`).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let x0 = vector_field(input, "x")?;
    let s = count(input, "s")?;
    let n = x0.len();
    if n == 0 || s == 0 {
        return Err("x must have an element and s must be at least 1".into());
    }
    let mut tape = Tape::<f64>::new();
    match function {
        "primal" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let x = tape.leaf_from_slice(&x0, &[n], false);
                solve(tape, x, s).value().into_vec()
            },
            |y| to_json(&y),
        )),
        "gradient" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let x = tape.leaf_from_slice(&x0, &[n], true);
                solve(tape, x, s).narrow(0, n - 1, 1).backward();
                x.grad().expect("x leads to y").into_vec()
            },
            |g| to_json(&g),
        )),
        _ => Err(unknown_function(function, &["primal", "gradient"])),
    }
}
