//! saddle: `min_x max_y f(x, y)` for `f(x, y) = (x₀² + x₁²) - (y₀² + y₁²)`, by gradient
//! descent inside gradient descent (Pearlmutter and Siskind), from the input point `s`:
//!
//! 1. `x* = argmin_x max_y f(x, y)`: the objective of the outer descent is itself the
//!    result of an inner ascent, `max_y f(x, y)`, recorded step by step so that its
//!    gradient with respect to `x` goes through every step of the inner ascent;
//! 2. `y* = argmax_y f(x*, y)`.
//!
//! The output is `(x*, y*)`. The two letters of the function are the modes of the outer
//! gradient (step 1's, and step 2's) and of the inner one (inside `max_y`).

use std::cell::RefCell;

use serde_json::Value;
use tapegrad::{Tape, Tensor, Var};

use super::descent::{argmax, argmin, gradient, Mode};
use crate::input::{field, to_json, vector};
use crate::{measure, unknown_function, Measured, Runs};

/// `f(x, y)`.
fn f<'t>(x: Var<'t, f64>, y: Var<'t, f64>) -> Var<'t, f64> {
    (x * x).sum() - (y * y).sum()
}

/// `max_y f(x, y)` by gradient ascent from `s`, every step recorded.
fn max_over_y<'t>(tape: &'t Tape<f64>, inner: Mode, x: Var<'t, f64>, s: &[f64]) -> Var<'t, f64> {
    let start = tape.input(Tensor::new(s.to_vec(), &[2]));
    let y = argmax(start, |y| f(x, *y).item(), |y| gradient(tape, inner, |y| f(x, y), *y));
    f(x, y)
}

/// One of `rr`, `rf`, `fr`, `ff`: `(x*, y*)`.
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let s = vector(field(input, "start")?, "start")?;
    if s.len() != 2 {
        return Err("start: expected 2 numbers".into());
    }
    let (outer, inner) = Mode::pair(function).ok_or_else(|| unknown_function(function, &["rr", "rf", "fr", "ff"]))?;
    // one tape for every evaluation (reset in between): its buffers are reused
    let tape = RefCell::new(Tape::<f64>::new());
    let run = || {
        let objective = |x: &Vec<f64>| {
            let mut guard = tape.borrow_mut();
            guard.reset();
            let tape = &*guard;
            max_over_y(tape, inner, tape.input(Tensor::new(x.clone(), &[2])), &s).item()
        };
        let grad = |x: &Vec<f64>| {
            let mut guard = tape.borrow_mut();
            guard.reset();
            let tape = &*guard;
            let x = tape.input(Tensor::new(x.clone(), &[2]));
            gradient(tape, outer, |x| max_over_y(tape, inner, x, &s), x).value().into_vec()
        };
        let x_star = argmin(s.clone(), objective, grad);
        let value = |y: &Vec<f64>| x_star.iter().map(|v| v * v).sum::<f64>() - y.iter().map(|v| v * v).sum::<f64>();
        let grad_y = |y: &Vec<f64>| {
            let mut guard = tape.borrow_mut();
            guard.reset();
            let tape = &*guard;
            let x = tape.input(Tensor::new(x_star.clone(), &[2]));
            let y = tape.input(Tensor::new(y.clone(), &[2]));
            gradient(tape, outer, |y| f(x, y), y).value().into_vec()
        };
        let y_star = argmax(s.clone(), value, grad_y);
        [x_star, y_star].concat()
    };
    Ok(measure(runs, run, |xy| to_json(&xy)))
}
