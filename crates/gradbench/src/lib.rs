//! tapegrad as a [GradBench](https://github.com/gradbench/gradbench) tool.
//!
//! GradBench's eval sends one JSON message per line; the tool answers each with one JSON
//! line carrying the same `id`. [`respond`] turns one message into its answer: `start`,
//! `define` (known modules succeed, unknown ones answer `success: false`), `evaluate` (run
//! the function `min_runs` times and until `min_seconds` have passed, one `evaluate` timing
//! per run, JSON parsing and writing outside the timings) and `analysis`. A message that
//! is not JSON, lacks a field, or holds input the eval cannot use gets an answer with an
//! `error`, never a panic.
//!
//! Each eval is one module of [`evals`], written against tapegrad like the maths of the
//! eval's README; [`input`] reads their inputs.

pub mod evals;
pub mod input;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How many times to run a function: at least `min_runs` times and until the runs add up
/// to `min_seconds`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Runs {
    /// Fewest runs.
    pub min_runs: usize,
    /// Least total run time, in seconds.
    pub min_seconds: f64,
}

impl Runs {
    /// The input's `min_runs` / `min_seconds` (1 run and 0 s where absent, as for hello).
    pub fn from_input(input: &Value) -> Result<Runs, String> {
        let min_runs = match input.get("min_runs") {
            None => 1,
            Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or("min_runs: expected a positive integer")? as usize,
        };
        let min_seconds = match input.get("min_seconds") {
            None => 0.0,
            Some(v) => {
                v.as_f64().filter(|s| s.is_finite() && *s >= 0.0).ok_or("min_seconds: expected a number >= 0")?
            }
        };
        Ok(Runs { min_runs, min_seconds })
    }
}

/// The outcome of an `evaluate`: the output (of the last run) and each run's duration.
pub struct Measured {
    /// The function's output as JSON.
    pub output: Value,
    /// One duration per run, in nanoseconds.
    pub timings: Vec<u64>,
}

/// Runs `f` as `runs` asks, timing each call; `f` returns the run's result, turned into
/// JSON by `to_json` after the last run (outside the timings).
pub fn measure<O>(runs: Runs, mut f: impl FnMut() -> O, to_json: impl FnOnce(O) -> Value) -> Measured {
    let mut timings = Vec::new();
    let mut total = Duration::ZERO;
    loop {
        let t0 = Instant::now();
        let out = f();
        let dt = t0.elapsed();
        timings.push(dt.as_nanos() as u64);
        total += dt;
        if timings.len() >= runs.min_runs && total.as_secs_f64() >= runs.min_seconds {
            return Measured { output: to_json(out), timings };
        }
    }
}

/// An eval: evaluates `function` on `input`.
pub type Eval = fn(function: &str, input: &Value, runs: Runs) -> Result<Measured, String>;

/// The evals this tool implements, by module name.
pub const MODULES: &[(&str, Eval)] = &[
    ("hello", evals::hello::evaluate),
    ("lse", evals::lse::evaluate),
    ("llsq", evals::llsq::evaluate),
    ("gmm", evals::gmm::evaluate),
    ("kmeans", evals::kmeans::evaluate),
    ("det", evals::det::evaluate),
    ("ode", evals::ode::evaluate),
    ("lstm", evals::lstm::evaluate),
    ("ba", evals::ba::evaluate),
    ("ht", evals::ht::evaluate),
    ("particle", evals::particle::evaluate),
    ("saddle", evals::saddle::evaluate),
];

fn module(name: &str) -> Option<Eval> {
    MODULES.iter().find(|(m, _)| *m == name).map(|&(_, e)| e)
}

/// The answer (one JSON line, without the newline) to one message line.
pub fn respond(line: &str) -> String {
    let msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return json!({"id": null, "success": false, "error": format!("message is not JSON: {e}")}).to_string()
        }
    };
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let answer = match msg.get("kind").and_then(Value::as_str) {
        Some("start") => json!({"id": id, "tool": "tapegrad"}),
        Some("define") => match msg.get("module").and_then(Value::as_str) {
            Some(m) if module(m).is_some() => json!({"id": id, "success": true}),
            Some(m) => {
                json!({"id": id, "success": false, "error": format!("tapegrad does not implement the module {m:?}")})
            }
            None => json!({"id": id, "success": false, "error": "define: no \"module\" string"}),
        },
        Some("evaluate") => match evaluate(&msg) {
            Ok(m) => {
                let timings: Vec<Value> =
                    m.timings.iter().map(|&t| json!({"name": "evaluate", "nanoseconds": t})).collect();
                json!({"id": id, "success": true, "output": m.output, "timings": timings})
            }
            Err(e) => json!({"id": id, "success": false, "error": e}),
        },
        _ => json!({"id": id}),
    };
    answer.to_string()
}

/// Runs an `evaluate` message; an input the eval cannot use, or a panic inside it, is an
/// error message.
fn evaluate(msg: &Value) -> Result<Measured, String> {
    let name = msg.get("module").and_then(Value::as_str).ok_or("evaluate: no \"module\" string")?;
    let function = msg.get("function").and_then(Value::as_str).ok_or("evaluate: no \"function\" string")?;
    let input = msg.get("input").ok_or("evaluate: no \"input\"")?;
    let eval = module(name).ok_or_else(|| format!("tapegrad does not implement the module {name:?}"))?;
    let runs = Runs::from_input(input)?;
    match catch_unwind(AssertUnwindSafe(|| eval(function, input, runs))) {
        Ok(r) => r.map_err(|e| format!("{name}.{function}: {e}")),
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            Err(format!("{name}.{function}: internal error: {what}"))
        }
    }
}

/// The error of an unknown function name.
pub fn unknown_function(function: &str, known: &[&str]) -> String {
    format!("unknown function {function:?} (this eval has {})", known.join(", "))
}
