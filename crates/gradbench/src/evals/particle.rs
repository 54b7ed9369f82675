//! particle: the charge `w` that makes a particle land at `x₀ = 0`, by nested AD
//! (Pearlmutter and Siskind). A particle starts at `x = (0, 8)` with velocity `(0.75, 0)`
//! in the potential `p(x) = Σ_c 1 / |x - c|` of two charges `c = (10, 10 - w)` and
//! `(10, 0)`, and moves by Euler steps of `Δt = 0.1`:
//!
//! `ẍ = -∇p(x)`, `x ← x + Δt ẋ`, `ẋ ← ẋ + Δt ẍ`, until `x₁ <= 0`;
//!
//! the landing point `x(t_f) = x + δ ẋ`, `δ = -x₁ / ẋ₁`, gives the cost `x₀(t_f)²`, and
//! `w` minimises it by gradient descent from the input `w`. The two letters of the function
//! are the modes of the outer gradient (of the cost, with respect to `w`) and of the inner
//! one (`∇p`, inside every step): `rr`, `rf`, `fr`, `ff`.

use std::cell::RefCell;

use serde_json::Value;
use tapegrad::{Tape, Tensor, Var};

use super::descent::{argmin, gradient, Mode};
use crate::input::float;
use crate::{measure, unknown_function, Measured, Runs};

/// The cost `x₀(t_f)²` for the charge `w` (`[1]`), with `∇p` in mode `inner`.
fn cost<'t>(tape: &'t Tape<f64>, inner: Mode, w: Var<'t, f64>) -> Var<'t, f64> {
    let c1 = Var::cat(&[tape.input(Tensor::new(vec![10.0], &[1])), 10.0 - w], 0);
    let c2 = tape.input(Tensor::new(vec![10.0, 0.0], &[2]));
    let p = |x: Var<'t, f64>| {
        let inv_dist = |c: Var<'t, f64>| ((x - c) * (x - c)).sum().sqrt().powf(-1.0);
        inv_dist(c1) + inv_dist(c2)
    };
    let dt = 0.1;
    let mut x = tape.input(Tensor::new(vec![0.0, 8.0], &[2]));
    let mut xdot = tape.input(Tensor::new(vec![0.75, 0.0], &[2]));
    loop {
        let xddot = -gradient(tape, inner, p, x);
        let x_new = x + xdot * dt;
        if x_new.value().data()[1] <= 0.0 {
            break;
        }
        x = x_new;
        xdot = xdot + xddot * dt;
    }
    let (x1, xdot1) = (x.narrow(0, 1, 1), xdot.narrow(0, 1, 1));
    let delta = -(x1 / xdot1);
    let landing = x + xdot * delta.expand(&[2]);
    let x0 = landing.narrow(0, 0, 1);
    (x0 * x0).sum()
}

/// One of `rr`, `rf`, `fr`, `ff`: the minimising charge.
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let w0 = float(input, "w")?;
    let (outer, inner) = Mode::pair(function).ok_or_else(|| unknown_function(function, &["rr", "rf", "fr", "ff"]))?;
    // one tape for every evaluation (reset in between): its buffers are reused
    let tape = RefCell::new(Tape::<f64>::new());
    let run = || {
        let f = |w: &Vec<f64>| {
            let mut guard = tape.borrow_mut();
            guard.reset();
            let tape = &*guard;
            cost(tape, inner, tape.input(Tensor::new(w.clone(), &[1]))).item()
        };
        let grad = |w: &Vec<f64>| {
            let mut guard = tape.borrow_mut();
            guard.reset();
            let tape = &*guard;
            let w = tape.input(Tensor::new(w.clone(), &[1]));
            gradient(tape, outer, |w| cost(tape, inner, w), w).value().into_vec()
        };
        argmin(vec![w0], f, grad)[0]
    };
    Ok(measure(runs, run, Value::from))
}
