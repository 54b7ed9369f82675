//! hello: `square(x) = x²` and `double(x) = d/dx x² = 2x`, on the scalar engine.

use serde_json::Value;
use tapegrad::ScalarTape;

use crate::input::number;
use crate::{measure, unknown_function, Measured, Runs};

/// `square` or `double` of a bare number.
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let x0 = number(input, "input")?;
    let f = match function {
        "square" => |x0| {
            let tape = ScalarTape::new();
            let x = tape.leaf(x0);
            (x * x).value()
        },
        "double" => |x0| {
            let tape = ScalarTape::new();
            let x = tape.leaf(x0);
            (x * x).backward();
            x.grad()
        },
        _ => return Err(unknown_function(function, &["square", "double"])),
    };
    Ok(measure(runs, || f(x0), Value::from))
}
