//! ht: hand tracking. A skinned hand model with `B` bones is posed by 26 parameters `θ`
//! and compared with `c` observed points `p_i`:
//!
//! ```text
//! bone b's pose:     R_b = R_z R_y R_x (Euler angles from θ; zero for fixed joints)
//! relative:          L_b = base_relative_b · [R_b 0; 0 1]
//! absolute:          A_b = A_parent(b) · L_b   (A_root = L_root)
//! skinned vertex v:  s_v = Σ_b w_bv (A_b · inverse_base_absolute_b · base_position_v)[0..3]
//!                    (first coordinate negated for a mirrored hand)
//! global:            y_v = R(θ_0..3) s_v + θ_3..6    (R from the angle-axis θ_0..3)
//! simple:            e_i = p_i - y_(corr_i)
//! complicated:       e_i = p_i - (u_i0 y_a + u_i1 y_b + (1 - u_i0 - u_i1) y_c),
//!                    (a, b, c) the vertices of triangle corr_i
//! ```
//!
//! `objective` is `e` (3c numbers); `jacobian` is `∂e/∂(u, θ)`, `3c` rows of 28 columns
//! (26 for the simple variant): `∂e_i/∂u_i` (the two columns of the row's own `u_i`) and
//! `∂e_i/∂θ`. It has 28 columns and `3c` rows, so it is built column by column in forward
//! mode ([`tapegrad::Tape::jvps`]): one column per `θ_k`, and one for all the `u_i0` at once
//! (and one for the `u_i1`), as `e_i` depends on no other point's `u`.
//!
//! The errors read only the vertices of the corresponded triangles, so only those are
//! skinned.

use serde_json::Value;
use tapegrad::{Tape, Tensor, Var};

use crate::input::{field, matrix, to_json, to_json_rows, vector_field};
use crate::{measure, unknown_function, Measured, Runs};

/// The hand model and the observations.
struct Hand {
    bones: usize,
    parents: Vec<Option<usize>>,
    /// `[B, 4, 4]` each.
    base_relatives: Vec<f64>,
    inverse_base_absolutes: Vec<f64>,
    /// `[4, k]` and `[B, 1, k]`: the homogeneous positions and the bone weights of the
    /// `k` vertices the errors read (three per point for the complicated variant).
    positions: Vec<f64>,
    weights: Vec<f64>,
    mirrored: bool,
    /// `[c, 3]`.
    points: Vec<f64>,
    c: usize,
    theta: Vec<f64>,
    /// `[c, 2]`, empty for the simple variant.
    us: Vec<f64>,
}

/// A list of `count` 4x4 matrices, row-major.
fn matrices(v: &Value, name: &str, count: usize) -> Result<Vec<f64>, String> {
    let list =
        v.as_array().filter(|l| l.len() == count).ok_or_else(|| format!("{name}: expected {count} 4x4 matrices"))?;
    let mut out = Vec::with_capacity(16 * count);
    for (i, m) in list.iter().enumerate() {
        let (data, cols) = matrix(m, &format!("{name}[{i}]"))?;
        if data.len() != 16 || cols != 4 {
            return Err(format!("{name}[{i}]: expected 4 rows of 4 numbers"));
        }
        out.extend(data);
    }
    Ok(out)
}

impl Hand {
    fn read(input: &Value) -> Result<Hand, String> {
        let theta = vector_field(input, "theta")?;
        let data = field(input, "data")?;
        let model = field(data, "model")?;
        let parents: Vec<Option<usize>> = field(model, "parents")?
            .as_array()
            .ok_or("parents: expected a list")?
            .iter()
            .map(|p| p.as_i64().map(|p| usize::try_from(p).ok()))
            .collect::<Option<_>>()
            .ok_or("parents: expected integers")?;
        let bones = parents.len();
        if bones < 22 || theta.len() != 26 || parents.iter().enumerate().any(|(i, p)| p.is_some_and(|p| p >= i)) {
            return Err("expected 26 parameters theta and at least 22 bones, each parent before its child".into());
        }
        let (vertices, four) = matrix(field(model, "base_positions")?, "base_positions")?;
        let (weights, wb) = matrix(field(model, "weights")?, "weights")?;
        let nv = vertices.len() / 4;
        if four != 4 || wb != bones || weights.len() != nv * bones {
            return Err(
                "base_positions: expected rows of 4; weights: one row of one weight per bone for each vertex".into()
            );
        }
        let corr: Vec<usize> = field(data, "correspondences")?
            .as_array()
            .ok_or("correspondences: expected a list")?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize))
            .collect::<Option<_>>()
            .ok_or("correspondences: expected non-negative integers")?;
        let (points, p3) = matrix(field(data, "points")?, "points")?;
        let c = corr.len();
        if points.len() != 3 * c || (c > 0 && p3 != 3) {
            return Err("points: expected one row of 3 numbers per correspondence".into());
        }
        let (us, u2) = matrix(field(input, "us")?, "us")?;
        let complicated = !us.is_empty();
        if complicated && (us.len() != 2 * c || u2 != 2) {
            return Err("us: expected one row of 2 numbers per correspondence".into());
        }
        // the vertices the errors read: corr_i, or the corners of triangle corr_i
        let read: Vec<usize> = if complicated {
            let (tri, t3) = matrix(field(model, "triangles")?, "triangles")?;
            if t3 != 3 || tri.iter().any(|&v| v < 0.0 || v as usize >= nv || v.fract() != 0.0) {
                return Err("triangles: expected rows of 3 vertex indices".into());
            }
            let mut r = Vec::with_capacity(3 * c);
            for &t in &corr {
                let corners = tri.get(3 * t..3 * t + 3).ok_or("correspondences: a triangle index is out of range")?;
                r.extend(corners.iter().map(|&v| v as usize));
            }
            r
        } else {
            corr
        };
        if read.iter().any(|&v| v >= nv) {
            return Err("correspondences: a vertex index is out of range".into());
        }
        let k = read.len();
        let positions = (0..4 * k).map(|i| vertices[read[i % k] * 4 + i / k]).collect();
        let weights = (0..bones * k).map(|i| weights[read[i % k] * bones + i / k]).collect();
        Ok(Hand {
            bones,
            parents,
            base_relatives: matrices(field(model, "base_relatives")?, "base_relatives", bones)?,
            inverse_base_absolutes: matrices(field(model, "inverse_base_absolutes")?, "inverse_base_absolutes", bones)?,
            positions,
            weights,
            mirrored: field(model, "is_mirrored")?.as_bool().ok_or("is_mirrored: expected a boolean")?,
            points,
            c,
            theta,
            us,
        })
    }

    /// Flat positions in `[B, 3]` (bone, Euler angle) of `θ_6..26`: bones 2-4, 6-8, ...
    /// of each finger, the first of three with two angles (the rest fixed at 0).
    fn angle_positions() -> Vec<usize> {
        let mut at = Vec::with_capacity(20);
        for finger in 0..5 {
            for joint in 0..3 {
                let bone = 2 + 4 * finger + joint;
                at.push(bone * 3);
                if joint == 0 {
                    at.push(bone * 3 + 1);
                }
            }
        }
        at
    }

    /// The errors `e` (`[3c]`) from `θ` (`[26]`) and `u` (`[c, 2]`, if complicated).
    fn errors<'t>(&self, tape: &'t Tape<f64>, theta: Var<'t, f64>, us: Option<Var<'t, f64>>) -> Var<'t, f64> {
        let bones = self.bones;
        let angles = theta.narrow(0, 6, 20).scatter_add(Self::angle_positions(), &[bones, 3]);
        // Euler angles in the order x, z, y: R = R_z R_y R_x
        let (tx, tz, ty) = (angles.narrow(1, 0, 1), angles.narrow(1, 1, 1), angles.narrow(1, 2, 1));
        let (cx, sx, cy, sy, cz, sz) = (tx.cos(), tx.sin(), ty.cos(), ty.sin(), tz.cos(), tz.sin());
        let zero = tape.input(Tensor::zeros(&[bones, 1]));
        let one = tape.input(Tensor::full(&[bones, 1], 1.0));
        #[rustfmt::skip]
        let pose = Var::cat(&[
            cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx, zero,
            sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx, zero,
            -sy,     cy * sx,                cy * cx,                zero,
            zero,    zero,                   zero,                   one,
        ], 1).reshape(&[bones, 4, 4]);
        let base = tape.input(Tensor::new(self.base_relatives.clone(), &[bones, 4, 4]));
        let relatives = batched_matmul(base, pose);
        let mut absolutes: Vec<Var<'t, f64>> = Vec::with_capacity(bones);
        for b in 0..bones {
            let rel = relatives.narrow(0, b, 1).reshape(&[4, 4]);
            let abs = match self.parents[b] {
                None => rel,
                Some(p) => absolutes[p].matmul(rel),
            };
            absolutes.push(abs);
        }
        let inverse = tape.input(Tensor::new(self.inverse_base_absolutes.clone(), &[bones, 4, 4]));
        let transforms = batched_matmul(Var::stack(&absolutes, 0), inverse);
        // s = Σ_b w_b (T_b x)[0..3] over the vertices read
        let k = self.positions.len() / 4;
        let x = tape.input(Tensor::new(self.positions.clone(), &[4, k]));
        let moved = transforms.narrow(1, 0, 3).reshape(&[bones * 3, 4]).matmul(x).reshape(&[bones, 3, k]);
        let w = tape.input(Tensor::new(self.weights.clone(), &[bones, 1, k]));
        let mut skinned = (moved * w).sum_axis(0, false);
        if self.mirrored {
            skinned = skinned * tape.input(Tensor::new(vec![-1.0, 1.0, 1.0], &[3, 1]));
        }
        let y = angle_axis(tape, theta.narrow(0, 0, 3)).matmul(skinned) + theta.narrow(0, 3, 3).reshape(&[3, 1]);
        let points = tape.input(Tensor::new(self.points.clone(), &[self.c, 3]));
        let model_points = match us {
            None => y.t(),
            Some(us) => {
                // u_0 y_a + u_1 y_b + (1 - u_0 - u_1) y_c
                let bary = Var::cat(&[us, 1.0 - us.sum_axis(1, true)], 1).reshape(&[1, self.c, 3]);
                (y.reshape(&[3, self.c, 3]) * bary).sum_axis(2, false).t()
            }
        };
        (points - model_points).reshape(&[3 * self.c])
    }
}

/// `a_i · b_i` for `[n, 4, 4]` stacks.
fn batched_matmul<'t>(a: Var<'t, f64>, b: Var<'t, f64>) -> Var<'t, f64> {
    let n = a.shape()[0];
    (a.reshape(&[n, 4, 4, 1]) * b.reshape(&[n, 1, 4, 4])).sum_axis(2, false)
}

/// The rotation of the angle-axis vector `r` (`[3]`): identity below an angle of 1e-4.
fn angle_axis<'t>(tape: &'t Tape<f64>, r: Var<'t, f64>) -> Var<'t, f64> {
    let norm = (r * r).sum().sqrt();
    if norm.item() < 1e-4 {
        return tape.input(Tensor::from_fn(&[3, 3], |i| if i % 4 == 0 { 1.0 } else { 0.0 }));
    }
    let a = r / norm.expand(&[3]);
    let (x, y, z) = (a.narrow(0, 0, 1), a.narrow(0, 1, 1), a.narrow(0, 2, 1));
    let (s, c) = (norm.reshape(&[1]).sin(), norm.reshape(&[1]).cos());
    let omc = 1.0 - c;
    #[rustfmt::skip]
    let entries = [
        x * x + (1.0 - x * x) * c, x * y * omc - z * s,       x * z * omc + y * s,
        x * y * omc + z * s,       y * y + (1.0 - y * y) * c, y * z * omc - x * s,
        x * z * omc - y * s,       z * y * omc + x * s,       z * z + (1.0 - z * z) * c,
    ];
    Var::cat(&entries, 0).reshape(&[3, 3])
}

/// `objective` (`e`) or `jacobian` (`∂e/∂(u, θ)`, compressed as described above).
pub fn evaluate(function: &str, input: &Value, runs: Runs) -> Result<Measured, String> {
    let hand = Hand::read(input)?;
    let grad = match function {
        "objective" => false,
        "jacobian" => true,
        _ => return Err(unknown_function(function, &["objective", "jacobian"])),
    };
    let c = hand.c;
    let complicated = !hand.us.is_empty();
    let cols = if complicated { 28 } else { 26 };
    // tangent sets: (all u_i0), (all u_i1), then each θ_k
    let tangents: Vec<Vec<Tensor<f64>>> = (0..cols)
        .map(|j| {
            let theta = Tensor::from_fn(&[26], |k| {
                if (complicated && j >= 2 && k == j - 2) || (!complicated && k == j) {
                    1.0
                } else {
                    0.0
                }
            });
            if complicated {
                vec![theta, Tensor::from_fn(&[c, 2], |i| if j < 2 && i % 2 == j { 1.0 } else { 0.0 })]
            } else {
                vec![theta]
            }
        })
        .collect();
    let mut tape = Tape::<f64>::new();
    let run = || {
        tape.reset();
        let tape = &tape;
        let theta = tape.leaf_from_slice(&hand.theta, &[26], grad);
        let us = complicated.then(|| tape.leaf_from_slice(&hand.us, &[c, 2], grad));
        let e = hand.errors(tape, theta, us);
        if !grad {
            return e.value().into_vec();
        }
        let inputs: Vec<Var<'_, f64>> = [Some(theta), us].into_iter().flatten().collect();
        let columns = tape.jvps(e, &inputs, &tangents);
        let mut jac = vec![0.0; 3 * c * cols];
        for (j, col) in columns.iter().enumerate() {
            for (i, &v) in col.data().iter().enumerate() {
                jac[i * cols + j] = v;
            }
        }
        jac
    };
    Ok(if grad { measure(runs, run, |j| to_json_rows(&j, 3 * c, cols)) } else { measure(runs, run, |e| to_json(&e)) })
}
