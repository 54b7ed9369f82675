//! lse: `y(x) = log Σ_i e^(x_i)`, computed as `max x + log Σ e^(x - max x)` by the
//! `logsumexp` op; `gradient` is `∇y = softmax(x)`, by reverse mode.

use serde_json::Value;
use tapegrad::Tape;

use crate::input::{to_json, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// `primal` (the log-sum-exp) or `gradient` (its gradient).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let x0 = vector_field(input, "x")?;
    if x0.is_empty() {
        return Err("x: the log-sum-exp of no numbers is not defined".into());
    }
    let n = x0.len();
    let mut tape = Tape::<f64>::new();
    match function {
        "primal" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let x = tape.leaf_from_slice(&x0, &[n], false);
                x.logsumexp(0, false).item()
            },
            Value::from,
        )),
        "gradient" => Ok(measure(
            runs,
            || {
                tape.reset();
                let tape = &tape;
                let x = tape.leaf_from_slice(&x0, &[n], true);
                x.logsumexp(0, false).backward();
                x.grad().expect("x leads to y").into_vec()
            },
            |g| to_json(&g),
        )),
        _ => Err(unknown_function(function, &["primal", "gradient"])),
    }
}
