//! gmm: the log-posterior of a Gaussian mixture with `k` components in `d` dimensions,
//! over `n` points `x_i`, with a Wishart prior:
//!
//! ```text
//! L = -(n d / 2) log 2π + Σ_i log Σ_k exp(α_k + Σ_j q_kj - ½ |Q_k (x_i - μ_k)|²)
//!     - n log Σ_k exp(α_k) + Σ_k [ -½ γ² (|exp(q_k)|² + |l_k|²) + m Σ_j q_kj ] + k C
//! ```
//!
//! where `Q_k = diag(exp(q_k)) + L_k`, `L_k` strictly lower triangular with the entries of
//! `l_k` column by column, and `C = n' d (log γ - ½ log 2) - log Γ_d(n'/2)`, `n' = d + m + 1`
//! (the multivariate log-gamma). `jacobian` is `∇L` with respect to `α, μ, q, l`.
//!
//! All `k` components at once: `Q` is one `[k, d, d]` tensor (two scatters), and
//! `Q_k (x_i - μ_k) = Q_k x_i - Q_k μ_k` is one `[n, d] x [d, k d]` matrix product.

use serde_json::{json, Value};
use tapegrad::{Tape, Var};

use crate::input::{count, float, matrix_field, to_json, to_json_rows, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// One problem: sizes, points and parameters (row-major).
struct Gmm {
    d: usize,
    k: usize,
    n: usize,
    x: Vec<f64>,
    m: f64,
    gamma: f64,
    alpha: Vec<f64>,
    mu: Vec<f64>,
    q: Vec<f64>,
    l: Vec<f64>,
}

impl Gmm {
    fn read(input: &Value) -> Result<Gmm, String> {
        let (d, k, n) = (count(input, "d")?, count(input, "k")?, count(input, "n")?);
        if d == 0 || k == 0 {
            return Err("d and k must be at least 1".into());
        }
        let alpha = vector_field(input, "alpha")?;
        if alpha.len() != k {
            return Err(format!("alpha: expected {k} numbers"));
        }
        Ok(Gmm {
            d,
            k,
            n,
            x: matrix_field(input, "x", n, d)?,
            m: count(input, "m")? as f64,
            gamma: float(input, "gamma")?,
            alpha,
            mu: matrix_field(input, "mu", k, d)?,
            q: matrix_field(input, "q", k, d)?,
            l: matrix_field(input, "l", k, d * (d - 1) / 2)?,
        })
    }

    /// Flat positions in `[k, d, d]` of the diagonals (for `exp(q)`) and of the strictly
    /// lower triangles filled column by column (for `l`).
    fn positions(&self) -> (Vec<usize>, Vec<usize>) {
        let d = self.d;
        let diag = (0..self.k).flat_map(|c| (0..d).map(move |i| (c * d + i) * d + i)).collect();
        let lower = (0..self.k)
            .flat_map(|c| (0..d).flat_map(move |col| (col + 1..d).map(move |row| (c * d + row) * d + col)))
            .collect();
        (diag, lower)
    }

    /// `L` on the tape, from the parameters `alpha [k]`, `mu, q [k, d]` and `l [k, d(d-1)/2]`.
    fn log_posterior<'t>(
        &self,
        tape: &'t Tape<f64>,
        alpha: Var<'t, f64>,
        mu: Var<'t, f64>,
        q: Var<'t, f64>,
        l: Var<'t, f64>,
    ) -> Var<'t, f64> {
        let (d, k, n) = (self.d, self.k, self.n as f64);
        let x = tape.leaf_from_slice(&self.x, &[self.n, d], false);
        let (diag, lower) = self.positions();
        let qdiag = q.exp();
        // Q_k = diag(exp(q_k)) + L_k, all k: [k, d, d]
        let big_q = qdiag.scatter_add(diag, &[k, d, d]) + l.scatter_add(lower, &[k, d, d]);
        // Q_k (x_i - μ_k) = Q_k x_i - Q_k μ_k: [n, k d]
        let qx = x.matmul_t(big_q.reshape(&[k * d, d]));
        let qmu = (big_q * mu.reshape(&[k, 1, d])).sum_axis(2, false).reshape(&[1, k * d]);
        let r = qx - qmu;
        let sq = (r * r).reshape(&[self.n, k, d]).sum_axis(2, false);
        let sum_q = q.sum_axis(1, false);
        let inner = (alpha + sum_q) - sq * 0.5;
        let slse = inner.logsumexp(1, false).sum();
        let constant = -n * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
        let lse_alpha = alpha.logsumexp(0, false);
        // the Wishart prior
        let frobenius = (qdiag * qdiag).sum() + (l * l).sum();
        let prior = frobenius * (-0.5 * self.gamma * self.gamma) + sum_q.sum() * self.m;
        let n_w = d as f64 + self.m + 1.0;
        let c = n_w * d as f64 * (self.gamma.ln() - 0.5 * 2f64.ln()) - log_gamma_distrib(0.5 * n_w, d);
        (slse + constant) - lse_alpha * n + prior + k as f64 * c
    }
}

extern "C" {
    /// The C library's `log |Γ(x)|` (libm, which the standard library links on every
    /// platform it supports), as the C++ reference computes it.
    fn lgamma(x: f64) -> f64;
}

/// The multivariate log-gamma `log Γ_p(a) = p(p-1)/4 log π + Σ_{j=1..p} log Γ(a + (1-j)/2)`.
fn log_gamma_distrib(a: f64, p: usize) -> f64 {
    let pf = p as f64;
    let mut out = 0.25 * pf * (pf - 1.0) * std::f64::consts::PI.ln();
    for j in 1..=p {
        // SAFETY: lgamma reads a double and returns one (it may set errno, nothing else)
        out += unsafe { lgamma(a + 0.5 * (1.0 - j as f64)) };
    }
    out
}

/// `objective` (`L`) or `jacobian` (`∇L` as `{alpha, mu, q, l}`).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let g = Gmm::read(input)?;
    let grad = match function {
        "objective" => false,
        "jacobian" => true,
        _ => return Err(unknown_function(function, &["objective", "jacobian"])),
    };
    let (d, k) = (g.d, g.k);
    let tri = d * (d - 1) / 2;
    let mut tape = Tape::<f64>::new();
    let run = || {
        tape.reset();
        let tape = &tape;
        let alpha = tape.leaf_from_slice(&g.alpha, &[k], grad);
        let mu = tape.leaf_from_slice(&g.mu, &[k, d], grad);
        let q = tape.leaf_from_slice(&g.q, &[k, d], grad);
        let l = tape.leaf_from_slice(&g.l, &[k, tri], grad);
        let y = g.log_posterior(tape, alpha, mu, q, l);
        if !grad {
            return vec![vec![y.item()]];
        }
        y.backward();
        [alpha, mu, q, l].iter().map(|v| v.grad().expect("every parameter leads to L").into_vec()).collect()
    };
    Ok(if grad {
        measure(
            runs,
            run,
            |p| json!({"alpha": to_json(&p[0]), "mu": to_json_rows(&p[1], k, d), "q": to_json_rows(&p[2], k, d), "l": to_json_rows(&p[3], k, tri)}),
        )
    } else {
        measure(runs, run, |y| Value::from(y[0][0]))
    })
}
