//! Forward mode (Jacobian-vector products) and whole Jacobians.
//!
//! # Forward mode from the backward rules
//!
//! tapegrad has one set of derivative rules, the VJPs of [`crate::ops`]. A JVP is derived
//! from them by *transposing the VJP*: for `y = f(x)` the recorded VJP `g(u) = Jᵀu` is
//! linear in its cotangent `u`, so differentiating `⟨g(u), v⟩` with respect to `u` gives
//! `J v`. [`Tape::jvp`] records `g(u)` with [`Tape::grad_with`] (a dummy cotangent `u` that
//! requires grad), then differentiates `⟨g(u), v⟩` with respect to `u`, again with
//! [`Tape::grad`]. Every step is recorded, so the result is a variable that can be
//! differentiated again, in either mode: forward-over-forward (a `jvp` of a `jvp`),
//! forward-over-reverse (a `jvp` of a `grad`) and reverse-over-forward (a `grad` of a `jvp`)
//! all compose. Why this way: a second rule set (a tangent rule per op) would double every
//! op's derivative code and could disagree with the first; the transpose costs one extra
//! reverse sweep over the VJP graph (about two to three times a forward pass), which is the
//! price of having a single source of truth.
//!
//! # Jacobians
//!
//! [`Tape::jacobian`] fills an `m × n` Jacobian row by row (one backward pass per output,
//! reverse mode) or column by column (one backward pass over the recorded VJP graph per
//! input, forward mode as above), whichever needs fewer passes. [`ScalarTape::jacobian`]
//! does the same on the scalar engine, for the many small independent functions of, for
//! example, bundle adjustment: one small tape, reset between functions.

use std::panic::Location;

use crate::float::Float;
use crate::scalar::{Scalar, ScalarTape};
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::var::Var;

/// How [`Tape::jacobian_with`] builds a Jacobian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JacobianMode {
    /// Forward when there are fewer inputs than outputs, else reverse.
    Auto,
    /// One column per input element (JVPs).
    Forward,
    /// One row per output element (VJPs).
    Reverse,
}

impl<T: Float> Tape<T> {
    /// The Jacobian-vector product `J·v` of `output` with respect to `inputs` along
    /// `tangents` (one per input, same shapes), as a recorded variable shaped like
    /// `output` (see the [module documentation](self) for how it is derived).
    ///
    /// # Panics
    /// If the numbers or shapes of inputs and tangents differ, or a variable is on another
    /// tape.
    #[track_caller]
    pub fn jvp<'t>(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>], tangents: &[Var<'t, T>]) -> Var<'t, T> {
        let loc = Location::caller();
        assert_eq!(
            inputs.len(),
            tangents.len(),
            "jvp: {} inputs, {} tangents (at {loc})",
            inputs.len(),
            tangents.len()
        );
        for (x, v) in inputs.iter().zip(tangents) {
            assert!(x.same_shape(v), "jvp: tangent {:?} for an input {:?} (at {loc})", v.shape(), x.shape());
        }
        // g(u) = Jᵀu for a cotangent u (its value does not matter: g is linear in u)
        let u = self.leaf(Tensor::zeros(&output.shape()), true);
        let g = self.grad_with(output, u, inputs);
        // ⟨g(u), v⟩ = ⟨u, J v⟩, so its gradient with respect to u is J v
        let mut dot: Option<Var<'t, T>> = None;
        for (gi, v) in g.iter().zip(tangents) {
            let d = (gi * v).sum();
            dot = Some(match dot {
                None => d,
                Some(s) => s + d,
            });
        }
        match dot {
            Some(dot) if dot.requires_grad() => self.grad(dot, &[u])[0],
            // no input, or nothing leads from u: J v = 0
            _ => self.leaf(Tensor::zeros(&output.shape()), false),
        }
    }

    /// Many Jacobian-vector products of one output as values (not recorded): entry `k` is
    /// `Σ_i J_i v_ki` for the tangents `tangents[k]` (one per input, same shapes). The
    /// transposed VJP graph is recorded once and swept backward once per tangent set: the
    /// columns of a Jacobian, or its compressed columns (one tangent set seeding many
    /// inputs whose outputs do not overlap).
    ///
    /// Leaves' `.grad` are cleared ([`Tape::zero_grad`]) by the passes.
    ///
    /// # Panics
    /// If a tangent's shape differs from its input's, or an input does not require grad.
    #[track_caller]
    pub fn jvps<'t>(
        &'t self,
        output: Var<'t, T>,
        inputs: &[Var<'t, T>],
        tangents: &[Vec<Tensor<T>>],
    ) -> Vec<Tensor<T>> {
        let loc = Location::caller();
        let shape = output.shape();
        let u = self.leaf(Tensor::zeros(&shape), true);
        let g = self.grad_with(output, u, inputs);
        let mut out = Vec::with_capacity(tangents.len());
        for set in tangents {
            assert_eq!(set.len(), inputs.len(), "jvps: {} tangents for {} inputs (at {loc})", set.len(), inputs.len());
            let mut dot: Option<Var<'t, T>> = None;
            for ((gi, v), x) in g.iter().zip(set).zip(inputs) {
                assert_eq!(
                    v.shape(),
                    x.shape().as_slice(),
                    "jvps: tangent {:?} for an input {:?} (at {loc})",
                    v.shape(),
                    x.shape()
                );
                let d = (gi * self.input(v.clone())).sum();
                dot = Some(dot.map_or(d, |s| s + d));
            }
            self.zero_grad();
            match dot {
                Some(dot) if dot.requires_grad() => {
                    dot.backward();
                    out.push(u.grad().unwrap_or_else(|| Tensor::zeros(&shape)));
                }
                _ => out.push(Tensor::zeros(&shape)),
            }
        }
        self.zero_grad();
        out
    }

    /// The Jacobian of `output` with respect to `input`: an `[m, n]` tensor (`m`, `n` their
    /// element counts), entry `(i, j)` = `∂output[i] / ∂input[j]`; forward or reverse by
    /// the shape ([`JacobianMode::Auto`]).
    ///
    /// Leaves' `.grad` are cleared ([`Tape::zero_grad`]) by the passes.
    #[track_caller]
    pub fn jacobian<'t>(&'t self, output: Var<'t, T>, input: Var<'t, T>) -> Tensor<T> {
        self.jacobian_with(output, input, JacobianMode::Auto)
    }

    /// [`Tape::jacobian`] in a chosen mode.
    ///
    /// # Panics
    /// If `input` does not require grad or the variables are on different tapes.
    #[track_caller]
    pub fn jacobian_with<'t>(&'t self, output: Var<'t, T>, input: Var<'t, T>, mode: JacobianMode) -> Tensor<T> {
        output.check_same_tape(&input, "jacobian");
        assert!(input.requires_grad(), "jacobian: the input does not require grad (at {})", Location::caller());
        let (m, n) = (output.shape().iter().product::<usize>(), input.shape().iter().product::<usize>());
        let mut jac = Tensor::zeros(&[m, n]);
        if m == 0 || n == 0 || !output.requires_grad() {
            return jac;
        }
        let forward = match mode {
            JacobianMode::Auto => n < m,
            JacobianMode::Forward => true,
            JacobianMode::Reverse => false,
        };
        // one backward pass of `from` per basis vector, reading the gradient of `at`
        let sweep = |from: Var<'t, T>, at: Var<'t, T>, count: usize, put: &mut dyn FnMut(usize, &[T])| {
            let mut e = Tensor::zeros(&from.shape());
            for k in 0..count {
                e.data_mut()[k] = T::ONE;
                self.zero_grad();
                from.backward_with(&e);
                e.data_mut()[k] = T::ZERO;
                match at.grad() {
                    Some(g) => put(k, g.data()),
                    None => put(k, &vec![T::ZERO; at.shape().iter().product()]),
                }
            }
        };
        let data = jac.data_mut();
        if forward {
            // column j = J e_j = the gradient with respect to u of ⟨Jᵀu, e_j⟩
            let u = self.leaf(Tensor::zeros(&output.shape()), true);
            let g = self.grad_with(output, u, &[input])[0];
            if g.requires_grad() {
                sweep(g, u, n, &mut |j, col| col.iter().enumerate().for_each(|(i, &c)| data[i * n + j] = c));
            }
        } else {
            sweep(output, input, m, &mut |i, row| data[i * n..(i + 1) * n].copy_from_slice(row));
        }
        self.zero_grad();
        jac
    }
}

impl ScalarTape {
    /// The Jacobian of `outputs` with respect to `inputs` into `out` (row-major,
    /// `outputs.len() × inputs.len()`), one backward pass per output. Gradients of
    /// leaves are zeroed before each pass and left holding the last row's.
    ///
    /// # Panics
    /// If `out` has the wrong length.
    #[track_caller]
    pub fn jacobian(&self, outputs: &[Scalar<'_>], inputs: &[Scalar<'_>], out: &mut [f64]) {
        let n = inputs.len();
        assert_eq!(
            out.len(),
            outputs.len() * n,
            "jacobian: {} entries for {} outputs x {n} inputs (at {})",
            out.len(),
            outputs.len(),
            Location::caller()
        );
        for (row, y) in out.chunks_exact_mut(n.max(1)).zip(outputs) {
            self.zero_grad();
            y.backward();
            for (r, x) in row.iter_mut().zip(inputs) {
                *r = x.grad();
            }
        }
    }
}
