//! Fused losses: `l1_loss`, `reduction(|a - b|)` in one node (as `torch.nn.functional.l1_loss`),
//! and `nll_loss`, `reduction(-logp[i, t_i])` (as `torch.nn.functional.nll_loss`).
//!
//! The same value as `(a - b).abs().sum()` (or `.mean()`), bit for bit, in one node instead
//! of three: one record forward, one rule backward, and no intermediate `a - b` or `|a - b|`
//! kept on the tape.

use super::{Binary, Graph, Op, OpFamily, View};
use crate::float::Float;
use crate::shape::Shape;

/// A fused loss, or its gradient as one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossOp {
    /// `Σ |a - b|` (divided by the element count with `mean`) of two same-shape inputs.
    L1 {
        /// Mean instead of sum.
        mean: bool,
    },
    /// The gradient of [`LossOp::L1`] in one pass: `c·dy·sign(a - b)` of a one-element
    /// `dy` and same-shape `a`, `b`, with `c = 1/n` for a mean (else 1).
    L1Grad {
        /// Mean instead of sum.
        mean: bool,
    },
    /// `-Σ_i logp[i, t_i]` (divided by the sample count with `mean`) of log-probabilities
    /// `[N, C]` and class indices `[N]` (or `[C]` and one index).
    Nll {
        /// Mean instead of sum.
        mean: bool,
    },
    /// The gradient of [`LossOp::Nll`] as one scatter: `-c·dy` at each `(i, t_i)`, zero
    /// elsewhere, of a one-element `dy`, `logp` (for its shape) and the targets.
    NllGrad {
        /// Mean instead of sum.
        mean: bool,
    },
}

impl<T: Float> OpFamily<T> for LossOp {
    fn name(&self) -> &'static str {
        match self {
            LossOp::L1 { mean: false } => "l1_loss_sum",
            LossOp::L1 { mean: true } => "l1_loss_mean",
            LossOp::L1Grad { .. } => "l1_loss_backward",
            LossOp::Nll { mean: false } => "nll_loss_sum",
            LossOp::Nll { mean: true } => "nll_loss_mean",
            LossOp::NllGrad { .. } => "nll_loss_backward",
        }
    }

    fn arity(&self) -> usize {
        match self {
            LossOp::L1 { .. } | LossOp::Nll { .. } => 2,
            LossOp::L1Grad { .. } | LossOp::NllGrad { .. } => 3,
        }
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match self {
            LossOp::L1 { .. } => l1_shape(ins[0], ins[1]),
            LossOp::L1Grad { .. } => l1_grad_shape(ins[0], ins[1], ins[2]),
            LossOp::Nll { .. } => nll_shape(ins[0], ins[1]),
            LossOp::NllGrad { .. } => nll_grad_shape(ins[0], ins[1], ins[2]),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        match *self {
            LossOp::L1 { mean } => l1_forward(ins[0], ins[1], mean, out),
            LossOp::L1Grad { mean } => l1_grad_forward(ins[0], ins[1], ins[2], mean, out),
            LossOp::Nll { mean } => nll_forward(ins[0], ins[1], mean, out),
            LossOp::NllGrad { mean } => nll_grad_forward(ins[0], ins[1], ins[2], mean, out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match *self {
            LossOp::L1 { mean } => {
                let [ga, gb] = l1_vjp(g, x[0], x[1], mean, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            LossOp::L1Grad { mean } => l1_grad_vjp(g, x[0], x[1], x[2], mean, gy, need),
            LossOp::Nll { mean } => [need[0].then(|| nll_vjp(g, x[0], x[1], mean, gy)), None, None],
            LossOp::NllGrad { mean } => nll_grad_vjp(g, x[0], x[2], mean, gy, need),
        }
    }
}

/// Result shape of `l1_loss(a, b)`: a 0-d value; `a` and `b` must have the same shape
/// (the composition `(a - b).abs().mean()` is there for broadcasting).
///
/// # Errors
/// `l1_loss: prediction [2, 2] and target [2, 3] differ in shape`.
pub fn l1_shape(a: &[usize], b: &[usize]) -> Result<Shape, String> {
    ensure!(crate::shape::same(a, b), "l1_loss: prediction {a:?} and target {b:?} differ in shape");
    Ok(Shape::new())
}

/// `out[0] = Σ |a - b|` (divided by the element count for a mean).
pub fn l1_forward<T: Float>(a: View<'_, T>, b: View<'_, T>, mean: bool, out: &mut [T]) {
    let s = crate::kernels::sum_abs_diff(a.data, b.data);
    out[0] = if mean { s / T::from_usize(a.data.len()) } else { s };
}

/// Backward of `y = Σ |a - b|` (or the mean) given the 0-d `dy`.
pub fn l1_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    a: G::V,
    b: G::V,
    mean: bool,
    dy: G::V,
    need: [bool; 2],
) -> [Option<G::V>; 2] {
    // d/da Σ|a - b| = sign(a - b), d/db = -sign(a - b); a mean divides both by n
    let da = g.apply(Op::Loss(LossOp::L1Grad { mean }), &[dy, a, b]);
    let db = need[1].then(|| g.neg(da));
    [need[0].then_some(da), db]
}

/// Result shape of the L1 gradient `c·dy·sign(a - b)`: `a`'s (`dy` one element, `a` and
/// `b` of one shape).
///
/// # Errors
/// `l1_loss_backward: dy [2], a [3], b [3]: need a one-element dy and a, b of one shape`.
pub fn l1_grad_shape(dy: &[usize], a: &[usize], b: &[usize]) -> Result<Shape, String> {
    let ok = dy.iter().product::<usize>() == 1 && crate::shape::same(a, b);
    ensure!(ok, "l1_loss_backward: dy {dy:?}, a {a:?}, b {b:?}: need a one-element dy and a, b of one shape");
    Ok(crate::shape::from_dims(a))
}

/// `out = (dy·c)·sign(a - b)` with `c = 1/n` for a mean (else no scaling) in one pass: the
/// same floats as `sign_mul(dy·c, a - b)`, without the `a - b` intermediate.
pub fn l1_grad_forward<T: Float>(dy: View<'_, T>, a: View<'_, T>, b: View<'_, T>, mean: bool, out: &mut [T]) {
    let s = if mean { dy.data[0] * (T::ONE / T::from_usize(a.data.len())) } else { dy.data[0] };
    crate::kernels::par_chunks_mut(out, |at, out| {
        for ((o, &x), &y) in out.iter_mut().zip(&a.data[at..]).zip(&b.data[at..]) {
            *o = s * super::unary::sign(x - y);
        }
    });
}

/// Backward of `g = c·dy·sign(a - b)` (for gradients of gradients): sign is flat almost
/// everywhere, so only `dy` has a gradient, `c·Σ gy·sign(a - b)`.
#[allow(clippy::too_many_arguments)]
pub fn l1_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    a: G::V,
    b: G::V,
    mean: bool,
    gy: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/d(dy) c·dy·sign(a - b) = c·sign(a - b)
    let gdy = need[0].then(|| {
        let d = g.binary(Binary::Sub, a, b);
        let t = g.binary(Binary::SignMul, gy, d);
        let s = g.shape(dy);
        let t = g.sum_to(t, &s);
        if mean {
            let n = g.shape(a).iter().product::<usize>();
            g.mul_scalar(t, T::ONE / T::from_usize(n))
        } else {
            t
        }
    });
    [gdy, None, None]
}

/// Result shape of `nll_loss(logp, target)`: a 0-d value; `logp` is `[N, C]` with `target`
/// `[N]`, or `[C]` with a 0-d `target` (one sample), as `torch.nn.functional.nll_loss`.
///
/// # Panics
/// `nll_loss: log-probabilities [4, 10] and targets [3] do not fit (need [N, C] and [N], or [C] and [])`.
pub fn nll_shape(logp: &[usize], target: &[usize]) -> Result<Shape, String> {
    let fits = matches!((logp, target), ([n, _], [m]) if n == m) || (logp.len() == 1 && target.is_empty());
    ensure!(
        fits,
        "nll_loss: log-probabilities {logp:?} and targets {target:?} do not fit (need [N, C] and [N], or [C] and [])"
    );
    Ok(Shape::new())
}

/// The class index a target value names, checked against the class count.
///
/// # Panics
/// `nll_loss: target 10 is not a class index in 0..10` (the tape checks targets before
/// recording, so this fires only for a direct call with a bad target).
#[inline]
pub fn class_index<T: Float>(t: T, classes: usize) -> usize {
    let v = t.to_f64();
    assert!(
        v >= 0.0 && v < classes as f64 && v.fract() == 0.0,
        "nll_loss: target {v} is not a class index in 0..{classes}"
    );
    v as usize
}

/// `out[0] = -Σ_i logp[i, t_i]`, divided by the sample count for a mean.
pub fn nll_forward<T: Float>(logp: View<'_, T>, target: View<'_, T>, mean: bool, out: &mut [T]) {
    let classes = *logp.shape.last().expect("nll_loss: logp has a class axis");
    let mut s = T::ZERO;
    for (i, &t) in target.data.iter().enumerate() {
        s += logp.data[i * classes + class_index(t, classes)];
    }
    let s = -s;
    out[0] = if mean { s / T::from_usize(target.data.len()) } else { s };
}

/// Backward of `y = -Σ logp[i, t_i]` (or the mean) given the one-element `dy`; targets are
/// indices and get no gradient.
pub fn nll_vjp<T: Float, G: Graph<T>>(g: &mut G, logp: G::V, target: G::V, mean: bool, dy: G::V) -> G::V {
    // d/dlogp[i, c] = -[c = t_i] (divided by N for a mean)
    g.apply(Op::Loss(LossOp::NllGrad { mean }), &[dy, logp, target])
}

/// Result shape of the NLL gradient: `logp`'s (`dy` one element, `logp` and `target` as
/// for [`nll_shape`]).
///
/// # Panics
/// `nll_loss_backward: dy [2] is not one element`.
pub fn nll_grad_shape(dy: &[usize], logp: &[usize], target: &[usize]) -> Result<Shape, String> {
    ensure!(dy.iter().product::<usize>() == 1, "nll_loss_backward: dy {dy:?} is not one element");
    nll_shape(logp, target)?;
    Ok(crate::shape::from_dims(logp))
}

/// `out = 0` except `out[i, t_i] = -dy·c`, with `c = 1/N` for a mean (else 1).
pub fn nll_grad_forward<T: Float>(dy: View<'_, T>, logp: View<'_, T>, target: View<'_, T>, mean: bool, out: &mut [T]) {
    let classes = *logp.shape.last().expect("nll_loss_backward: logp has a class axis");
    let v = if mean { -dy.data[0] / T::from_usize(target.data.len()) } else { -dy.data[0] };
    out.fill(T::ZERO);
    for (i, &t) in target.data.iter().enumerate() {
        out[i * classes + class_index(t, classes)] = v;
    }
}

/// Backward of `d = -c·dy·onehot(t)` (for gradients of gradients): linear in `dy` alone,
/// with gradient `-c Σ_i gd[i, t_i]`, which is the NLL loss of `gd` itself.
pub fn nll_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    target: G::V,
    mean: bool,
    gd: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/d(dy) (-c dy [c = t_i]) = -c [c = t_i]
    let gdy = need[0].then(|| {
        let v = g.apply(Op::Loss(LossOp::Nll { mean }), &[gd, target]);
        let s = g.shape(dy);
        g.reshape(v, &s)
    });
    [gdy, None, None]
}
