//! lstm: the cross-entropy of an `l`-layer LSTM with diagonal weights predicting the next
//! character of a sequence of `c` characters, each a vector of `b` bits:
//!
//! ```text
//! layer (input x, state h, c):  f = σ(x ⊙ w_f + b_f)   i = σ(h ⊙ w_i + b_i)
//!                               o = σ(x ⊙ w_o + b_o)   g = tanh(h ⊙ w_g + b_g)
//!                               c ← c ⊙ f + i ⊙ g      h ← o ⊙ tanh c
//! step t:  x = s_t ⊙ w_in, through the layers (each layer's h is the next one's x),
//!          ŷ = h ⊙ w_out + b_out,   log p = ŷ - log(Σ_j e^ŷ_j + 2)
//! loss = -Σ_t s_(t+1) · log p_t / ((c - 1) b)
//! ```
//!
//! `main_params` row `2k` holds layer `k`'s weights `w_f, w_i, w_o, w_g` and row `2k + 1`
//! its biases; `extra_params` rows are `w_in, w_out, b_out`; `state` rows `2k` and `2k + 1`
//! are layer `k`'s initial `h` and `c`. `jacobian` is the gradient with respect to
//! `main_params` then `extra_params`, flattened.

use serde_json::Value;
use tapegrad::{Tape, Var};

use crate::input::{field, matrix, to_json};
use crate::{measure, unknown_function, Measured, Runs};

/// A layer's weights and biases, each `[b]`.
struct Layer<'t> {
    w: [Var<'t, f64>; 4],
    bias: [Var<'t, f64>; 4],
}

/// The loss, from the parameters on the tape.
fn loss<'t>(
    tape: &'t Tape<f64>,
    main: Var<'t, f64>,
    extra: Var<'t, f64>,
    state: &[f64],
    seq: &[f64],
    l: usize,
    b: usize,
) -> Var<'t, f64> {
    let row = |m: Var<'t, f64>, r: usize, part: usize| m.narrow(0, r, 1).narrow(1, part * b, b).reshape(&[b]);
    let layers: Vec<Layer<'t>> = (0..l)
        .map(|k| Layer {
            w: [0, 1, 2, 3].map(|p| row(main, 2 * k, p)),
            bias: [0, 1, 2, 3].map(|p| row(main, 2 * k + 1, p)),
        })
        .collect();
    let (w_in, w_out, b_out) = (row(extra, 0, 0), row(extra, 1, 0), row(extra, 2, 0));
    let mut h: Vec<Var<'t, f64>> =
        (0..l).map(|k| tape.leaf_from_slice(&state[2 * k * b..(2 * k + 1) * b], &[b], false)).collect();
    let mut c: Vec<Var<'t, f64>> =
        (0..l).map(|k| tape.leaf_from_slice(&state[(2 * k + 1) * b..(2 * k + 2) * b], &[b], false)).collect();
    let chars = seq.len() / b;
    let mut total: Option<Var<'t, f64>> = None;
    for t in 0..chars - 1 {
        let mut x = tape.leaf_from_slice(&seq[t * b..(t + 1) * b], &[b], false) * w_in;
        for (k, layer) in layers.iter().enumerate() {
            let [w_f, w_i, w_o, w_g] = layer.w;
            let [b_f, b_i, b_o, b_g] = layer.bias;
            let f = (x * w_f + b_f).sigmoid();
            let i = (h[k] * w_i + b_i).sigmoid();
            let o = (x * w_o + b_o).sigmoid();
            let g = (h[k] * w_g + b_g).tanh();
            c[k] = c[k] * f + i * g;
            h[k] = o * c[k].tanh();
            x = h[k];
        }
        let y = x * w_out + b_out;
        let log_p = y - (y.exp().sum() + 2.0).log();
        let gold = tape.leaf_from_slice(&seq[(t + 1) * b..(t + 2) * b], &[b], false);
        let term = (gold * log_p).sum();
        total = Some(match total {
            None => term,
            Some(s) => s + term,
        });
    }
    total.expect("at least two characters") * (-1.0 / ((chars - 1) * b) as f64)
}

/// `objective` (the loss) or `jacobian` (its gradient, flattened).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let (main0, mb) = matrix(field(input, "main_params")?, "main_params")?;
    let (extra0, b) = matrix(field(input, "extra_params")?, "extra_params")?;
    let (state0, sb) = matrix(field(input, "state")?, "state")?;
    let (seq, qb) = matrix(field(input, "sequence")?, "sequence")?;
    let l = main0.len() / (4 * b).max(1) / 2;
    let shapes_fit = b > 0
        && l > 0
        && mb == 4 * b
        && main0.len() == 8 * l * b
        && extra0.len() == 3 * b
        && sb == b
        && state0.len() == 2 * l * b
        && qb == b
        && seq.len() >= 2 * b;
    if !shapes_fit {
        return Err("expected main_params [2l][4b], extra_params [3][b], state [2l][b] and a sequence of at least 2 rows of b, with l, b >= 1".into());
    }
    let grad = match function {
        "objective" => false,
        "jacobian" => true,
        _ => return Err(unknown_function(function, &["objective", "jacobian"])),
    };
    let mut tape = Tape::<f64>::new();
    let run = || {
        tape.reset();
        let tape = &tape;
        let main = tape.leaf_from_slice(&main0, &[2 * l, 4 * b], grad);
        let extra = tape.leaf_from_slice(&extra0, &[3, b], grad);
        let y = loss(tape, main, extra, &state0, &seq, l, b);
        if !grad {
            return vec![y.item()];
        }
        y.backward();
        let mut g = main.grad().expect("main_params lead to the loss").into_vec();
        g.extend(extra.grad().expect("extra_params lead to the loss").into_vec());
        g
    };
    Ok(if grad { measure(runs, run, |g| to_json(&g)) } else { measure(runs, run, |y| Value::from(y[0])) })
}
