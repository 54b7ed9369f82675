//! llsq: linear least squares, fitting a polynomial of degree `m - 1` to `sign(t)` on `n`
//! points `t_i = -1 + 2i / (n - 1)`:
//!
//! `y(x) = ½ Σ_i (s_i - Σ_j x_j t_i^j)²`, `s_i = sign(t_i)`,
//!
//! i.e. `½ |s - T x|²` with the Vandermonde matrix `T_ij = t_i^j`; `gradient` is `∇y`.

use serde_json::Value;
use tapegrad::{Tape, Tensor};

use crate::input::{count, to_json, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// The points `t_i`, the targets `s_i = sign(t_i)` and `T_ij = t_i^j` (powers by repeated
/// multiplication, as the reference computes them).
fn problem(n: usize, m: usize) -> (Tensor<f64>, Tensor<f64>) {
    let t = |i: usize| if n == 1 { -1.0 } else { -1.0 + i as f64 * 2.0 / (n as f64 - 1.0) };
    let s = Tensor::from_fn(&[n, 1], |i| {
        let ti = t(i);
        f64::from(i8::from(ti > 0.0) - i8::from(ti < 0.0))
    });
    let mut powers = Vec::with_capacity(n * m);
    for i in 0..n {
        let mut p = 1.0;
        for _ in 0..m {
            powers.push(p);
            p *= t(i);
        }
    }
    (Tensor::new(powers, &[n, m]), s)
}

/// `primal` (`y(x)`) or `gradient` (`∇y(x)`).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let x0 = vector_field(input, "x")?;
    let n = count(input, "n")?;
    let m = x0.len();
    let grad = match function {
        "primal" => false,
        "gradient" => true,
        _ => return Err(unknown_function(function, &["primal", "gradient"])),
    };
    let mut tape = Tape::<f64>::new();
    let run = || {
        tape.reset();
        let tape = &tape;
        let (t, s) = problem(n, m);
        let x = tape.leaf_from_slice(&x0, &[m, 1], grad);
        let (t, s) = (tape.input(t), tape.input(s));
        let r = s - t.matmul(x);
        let y = (r * r).sum() * 0.5;
        if grad {
            y.backward();
            x.grad().expect("x leads to y").into_vec()
        } else {
            vec![y.item()]
        }
    };
    Ok(if grad { measure(runs, run, |g| to_json(&g)) } else { measure(runs, run, |y| Value::from(y[0])) })
}
