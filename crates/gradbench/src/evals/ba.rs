//! ba: bundle adjustment. `n` cameras (11 parameters each: Rodrigues rotation `r`,
//! centre `C`, focal length `f`, principal point `x0`, radial distortion `κ`), `m` points
//! `X` and `p` observations, observation `i` of point `i mod m` by camera `i mod n`, with
//! weight `w_i` and feature `u_i`:
//!
//! ```text
//! reprojection error  e_i = w_i (π(cam, X) - u_i)        (two rows)
//! π(cam, X) = f · distort(κ, (Y_0, Y_1) / Y_2) + x0,   Y = R(r) (X - C)
//! distort(κ, q) = q (1 + κ_0 |q|² + κ_1 |q|⁴)
//! weight error        ω_i = 1 - w_i²                       (one row)
//! ```
//!
//! `R(r) Y = Y cos θ + (ŵ × Y) sin θ + ŵ (ŵ · Y)(1 - cos θ)` with `θ = |r|`, `ŵ = r / θ`
//! (`Y + r × Y` when `θ = 0`). `objective` gives observation 0's `e` and `ω` and their
//! counts; `jacobian` the `3p x (11n + 3m + p)` sparse Jacobian in CSR (the 2 x 15 block of
//! each observation, then the `dω_i/dw_i`), truncated as the reference prints it.
//!
//! The input repeats one camera, point, weight and feature; every observation is still
//! computed on its own. Each one is a small function of 15 numbers: the scalar engine
//! records it on one small tape (reset for the next) and [`ScalarTape::jacobian`] takes
//! the two rows by two reverse sweeps.

use serde_json::{json, Value};
use tapegrad::{Scalar, ScalarTape};

use crate::input::{count, float, repeated, to_json, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// Number of camera parameters.
const CAM: usize = 11;

/// `a × b`.
fn cross<'t>(a: [Scalar<'t>; 3], b: [Scalar<'t>; 3]) -> [Scalar<'t>; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// `R(r) y`, Rodrigues' rotation formula.
fn rotate<'t>(r: [Scalar<'t>; 3], y: [Scalar<'t>; 3]) -> [Scalar<'t>; 3] {
    let sqtheta = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    if sqtheta.value() == 0.0 {
        let rxy = cross(r, y);
        return [0, 1, 2].map(|i| y[i] + rxy[i]);
    }
    let theta = sqtheta.sqrt();
    let (cos, sin) = (theta.cos(), theta.sin());
    let inv = 1.0 / theta;
    let w = r.map(|ri| ri * inv);
    let wxy = cross(w, y);
    let tmp = (w[0] * y[0] + w[1] * y[1] + w[2] * y[2]) * (1.0 - cos);
    [0, 1, 2].map(|i| y[i] * cos + wxy[i] * sin + w[i] * tmp)
}

/// `e = w (π(cam, X) - u)`.
fn reprojection_error<'t>(cam: &[Scalar<'t>], x: &[Scalar<'t>], w: Scalar<'t>, u: [f64; 2]) -> [Scalar<'t>; 2] {
    let y = rotate([cam[0], cam[1], cam[2]], [0, 1, 2].map(|i| x[i] - cam[3 + i]));
    let q = [y[0] / y[2], y[1] / y[2]];
    let rsq = q[0] * q[0] + q[1] * q[1];
    let distort = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    [0, 1].map(|i| w * ((q[i] * distort) * cam[6] + cam[7 + i] - u[i]))
}

/// The one camera, point, weight and feature, and how often each repeats.
struct Problem {
    n: usize,
    m: usize,
    p: usize,
    cam: Vec<f64>,
    x: Vec<f64>,
    w: f64,
    feat: [f64; 2],
}

impl Problem {
    fn read(input: &Value) -> Result<Problem, String> {
        let (n, m, p) = (count(input, "n")?, count(input, "m")?, count(input, "p")?);
        let (cam, x, feat) = (vector_field(input, "cam")?, vector_field(input, "x")?, vector_field(input, "feat")?);
        if n == 0 || m == 0 || p == 0 || cam.len() != CAM || x.len() != 3 || feat.len() != 2 {
            return Err("expected n, m, p >= 1, cam of 11 numbers, x of 3 and feat of 2".into());
        }
        let (cam, x) = (repeated(&cam, n, "cam")?, repeated(&x, m, "x")?);
        Ok(Problem { n, m, p, cam, x, w: float(input, "w")?, feat: [feat[0], feat[1]] })
    }

    /// Observation `i`'s camera, point, weight and feature.
    fn observation(&self, i: usize) -> (&[f64], &[f64], f64, [f64; 2]) {
        let (c, pt) = (i % self.n, i % self.m);
        (&self.cam[c * CAM..(c + 1) * CAM], &self.x[pt * 3..pt * 3 + 3], self.w, self.feat)
    }
}

/// The CSR Jacobian. Indices are `u32`, as the reference's are 32-bit `int`s: ba20's
/// 899 million nonzeros take 10.8 GB, not 14.4 GB with `usize` (`evaluate` checks they fit).
struct Csr {
    rows: Vec<u32>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

impl Csr {
    /// Room for the Jacobian of `p` observations, or an error (not an abort) when it does
    /// not fit in memory.
    fn with_room(p: usize) -> Result<Csr, String> {
        let mut csr = Csr { rows: Vec::new(), cols: Vec::new(), vals: Vec::new() };
        let (rows, nnz) = (p.checked_mul(3).and_then(|r| r.checked_add(1)), p.checked_mul(31));
        let room = rows.zip(nnz).and_then(|(rows, nnz)| {
            let rows = csr.rows.try_reserve_exact(rows);
            rows.and_then(|()| csr.cols.try_reserve_exact(nnz)).and_then(|()| csr.vals.try_reserve_exact(nnz)).ok()
        });
        room.map(|()| csr).ok_or_else(|| format!("the Jacobian of {p} observations does not fit in memory"))
    }
}

/// The Jacobian, in `csr` (emptied first; room for it is made by [`Csr::with_room`]).
fn jacobian(pb: &Problem, tape: &mut ScalarTape, mut csr: Csr) -> Csr {
    csr.rows.clear();
    csr.cols.clear();
    csr.vals.clear();
    csr.rows.push(0);
    let mut block = [0.0; 30];
    for i in 0..pb.p {
        let (cam0, x0, w0, u) = pb.observation(i);
        tape.reset();
        let t = &*tape;
        let inputs: Vec<Scalar<'_>> = cam0.iter().chain(x0).chain([&w0]).map(|&v| t.leaf(v)).collect();
        let e = reprojection_error(&inputs[..CAM], &inputs[CAM..CAM + 3], inputs[CAM + 3], u);
        t.jacobian(&e, &inputs, &mut block);
        let (c, pt) = (i % pb.n, i % pb.m);
        let columns = (0..CAM)
            .map(|j| CAM * c + j)
            .chain((0..3).map(|j| CAM * pb.n + 3 * pt + j))
            .chain([CAM * pb.n + 3 * pb.m + i])
            .map(index);
        for row in block.chunks_exact(15) {
            csr.cols.extend(columns.clone());
            csr.vals.extend_from_slice(row);
            csr.rows.push(index(csr.cols.len()));
        }
    }
    for i in 0..pb.p {
        tape.reset();
        let w = tape.leaf(pb.observation(i).2);
        (1.0 - w * w).backward();
        csr.cols.push(index(CAM * pb.n + 3 * pb.m + i));
        csr.vals.push(w.grad());
        csr.rows.push(index(csr.cols.len()));
    }
    csr
}

/// A CSR index, known to fit (`evaluate` checks the sizes).
fn index(i: usize) -> u32 {
    u32::try_from(i).expect("evaluate checks that the indices fit in 32 bits")
}

/// Every observation's errors: `(e_0, ω_0)` are reported.
fn objective(pb: &Problem, tape: &mut ScalarTape) -> ([f64; 2], f64) {
    let mut first = ([0.0; 2], 0.0);
    for i in (0..pb.p).rev() {
        let (cam0, x0, w0, u) = pb.observation(i);
        tape.reset();
        let t = &*tape;
        let cam: Vec<Scalar<'_>> = cam0.iter().map(|&v| t.leaf(v)).collect();
        let x: Vec<Scalar<'_>> = x0.iter().map(|&v| t.leaf(v)).collect();
        let w = t.leaf(w0);
        let e = reprojection_error(&cam, &x, w, u);
        first = ([e[0].value(), e[1].value()], (1.0 - w * w).value());
    }
    first
}

/// The first 30 entries and the last, as the reference prints a CSR array.
fn truncated<T: Copy + Into<Value>>(v: &[T]) -> Value {
    Value::Array(v.iter().take(30).chain(v.last()).map(|&x| x.into()).collect())
}

/// `objective` or `jacobian`.
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let pb = Problem::read(input)?;
    let nonzeros = pb.p.saturating_mul(31);
    let columns = pb.n.saturating_mul(CAM).saturating_add(pb.m.saturating_mul(3)).saturating_add(pb.p);
    let mut tape = ScalarTape::with_capacity(256);
    match function {
        "objective" => Ok(measure(
            runs,
            || objective(&pb, &mut tape),
            |(e, omega)| json!({"reproj_error": {"elements": to_json(&e), "repeated": pb.p}, "w_err": {"element": omega, "repeated": pb.p}}),
        )),
        "jacobian" if nonzeros > u32::MAX as usize || columns > u32::MAX as usize => {
            Err(format!("a Jacobian of {nonzeros} nonzeros and {columns} columns exceeds 32-bit indices"))
        }
        "jacobian" => {
            // the first run's room is made here, so memory running out is an answer, not an
            // abort; later runs reuse what the run before freed
            let mut room = Some(Csr::with_room(pb.p)?);
            Ok(measure(
                runs,
                || {
                    jacobian(
                        &pb,
                        &mut tape,
                        room.take().unwrap_or_else(|| Csr::with_room(pb.p).expect("room of the first run")),
                    )
                },
                |j| json!({"rows": truncated(&j.rows), "cols": truncated(&j.cols), "vals": truncated(&j.vals)}),
            ))
        }
        _ => Err(unknown_function(function, &["objective", "jacobian"])),
    }
}

#[cfg(test)]
mod tests {
    use super::Csr;

    #[test]
    fn a_jacobian_beyond_memory_is_an_error() {
        // 2^45 observations: 8.7e15 bytes of values, beyond any address space
        let err = Csr::with_room(1 << 45).err().expect("no room for 2^45 observations");
        assert!(err.contains("does not fit in memory"), "{err}");
        assert_eq!(Csr::with_room(2).expect("room for two").vals.capacity(), 62);
    }
}
