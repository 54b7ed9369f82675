//! det: the determinant of an `ℓ x ℓ` matrix `A` by expansion by minors along the first
//! row, recursively,
//!
//! `det M = Σ_j (-1)^j M_0j det S_j`, `S_j` = `M` without row 0 and column `j`,
//!
//! and its gradient `∂det A / ∂A`, on the scalar engine.
//!
//! Every minor that the recursion meets consists of the last `m` rows of `A` and some set
//! of `m` columns, so there are `2^ℓ` distinct ones: each is computed once (by the same
//! sum, in the same order, as the recursion computes it) and reused. This is `ℓ 2^(ℓ-1)`
//! products instead of the recursion's `e ℓ!`: ℓ = 11 takes 11 264 instead of 108 million.

use serde_json::Value;
use tapegrad::{Scalar, ScalarTape};

use crate::input::{count, to_json, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// The largest edge accepted (`2^ℓ` minors are kept).
const MAX_ELL: usize = 20;

/// `det A` on `tape`, `a` the `ℓ²` entries (row-major).
fn det<'t>(a: &[Scalar<'t>], ell: usize) -> Scalar<'t> {
    // minors[cols] = det of the last |cols| rows of A, restricted to the columns in `cols`
    let mut minors: Vec<Option<Scalar<'t>>> = vec![None; 1 << ell];
    for cols in 1usize..1 << ell {
        let m = cols.count_ones() as usize;
        let row = ell - m;
        let value = if m == 1 {
            a[row * ell + cols.trailing_zeros() as usize]
        } else {
            // det M = Σ_j (-1)^j M_0j det S_j, over the columns of M in increasing order
            let term = |c: usize| a[row * ell + c] * minors[cols & !(1 << c)].expect("smaller minors come first");
            let mut rest = cols & (cols - 1);
            let mut sum = term(cols.trailing_zeros() as usize);
            let mut plus = false;
            while rest != 0 {
                let c = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                sum = if plus { sum + term(c) } else { sum - term(c) };
                plus = !plus;
            }
            sum
        };
        minors[cols] = Some(value);
    }
    minors[(1 << ell) - 1].expect("the whole matrix")
}

/// `primal` (`det A`) or `gradient` (`∂det A / ∂A`, row-major).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let a0 = vector_field(input, "A")?;
    let ell = count(input, "ell")?;
    if ell == 0 || ell > MAX_ELL || a0.len() != ell * ell {
        return Err(format!("A has {} entries for ell = {ell}: expected ell² with 1 <= ell <= {MAX_ELL}", a0.len()));
    }
    let grad = match function {
        "primal" => false,
        "gradient" => true,
        _ => return Err(unknown_function(function, &["primal", "gradient"])),
    };
    let mut tape = ScalarTape::with_capacity((3 * ell) << ell);
    let run = || {
        tape.reset();
        let tape = &tape;
        let a: Vec<Scalar<'_>> = a0.iter().map(|&x| tape.leaf(x)).collect();
        let y = det(&a, ell);
        if !grad {
            return vec![y.value()];
        }
        y.backward();
        a.iter().map(|x| x.grad()).collect()
    };
    Ok(if grad { measure(runs, run, |g| to_json(&g)) } else { measure(runs, run, |y| Value::from(y[0])) })
}
