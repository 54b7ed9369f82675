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
    /// `-logp[i, t_i]` of log-probabilities `[N, C]` and class indices `[N]` (or `[C]` and
    /// one index), targets equal to the ignore index skipped: unreduced, summed, or
    /// averaged over the targets kept.
    Nll(Nll),
    /// The gradient of [`LossOp::Nll`] as one scatter: `-c·dy` (or `-dy_i`) at each
    /// `(i, t_i)` not ignored, zero elsewhere, of `dy`, `logp` (for its shape) and the
    /// targets.
    NllGrad(Nll),
}

impl<T: Float> OpFamily<T> for LossOp {
    fn name(&self) -> &'static str {
        match self {
            LossOp::L1 { mean: false } => "l1_loss_sum",
            LossOp::L1 { mean: true } => "l1_loss_mean",
            LossOp::L1Grad { .. } => "l1_loss_backward",
            LossOp::Nll(nll) => nll.name(),
            LossOp::NllGrad(_) => "nll_loss_backward",
        }
    }

    fn arity(&self) -> usize {
        match self {
            LossOp::L1 { .. } | LossOp::Nll(_) => 2,
            LossOp::L1Grad { .. } | LossOp::NllGrad(_) => 3,
        }
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match self {
            LossOp::L1 { .. } => l1_shape(ins[0], ins[1]),
            LossOp::L1Grad { .. } => l1_grad_shape(ins[0], ins[1], ins[2]),
            LossOp::Nll(nll) => nll_shape(ins[0], ins[1], nll.reduction),
            LossOp::NllGrad(nll) => nll_grad_shape(ins[0], ins[1], ins[2], nll.reduction),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        match *self {
            LossOp::L1 { mean } => l1_forward(ins[0], ins[1], mean, out),
            LossOp::L1Grad { mean } => l1_grad_forward(ins[0], ins[1], ins[2], mean, out),
            LossOp::Nll(nll) => nll_forward(ins[0], ins[1], nll, out),
            LossOp::NllGrad(nll) => nll_grad_forward(ins[0], ins[1], ins[2], nll, out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match *self {
            LossOp::L1 { mean } => {
                let [ga, gb] = l1_vjp(g, x[0], x[1], mean, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            LossOp::L1Grad { mean } => l1_grad_vjp(g, x[0], x[1], x[2], mean, gy, need),
            LossOp::Nll(nll) => [need[0].then(|| nll_vjp(g, x[0], x[1], nll, gy)), None, None],
            LossOp::NllGrad(nll) => nll_grad_vjp(g, x[0], x[2], nll, gy, need),
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

/// How a loss reduces its per-element (or per-target) terms, as PyTorch's `reduction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: one term per element (or target); ignored targets give 0.
    None,
    /// Sum over all terms.
    Sum,
    /// Mean over all terms (for `nll_loss`: over the targets that are not ignored).
    Mean,
}

/// PyTorch's default `ignore_index` of `nll_loss` and `cross_entropy`.
pub const DEFAULT_IGNORE_INDEX: i64 = -100;

/// The parameters of [`LossOp::Nll`] and its gradient: the reduction and the target value
/// that marks a position to ignore (padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nll {
    /// The reduction.
    pub reduction: Reduction,
    /// Targets equal to this value contribute nothing (no loss term, zero gradient, not
    /// counted by the mean).
    pub ignore_index: i64,
}

impl Nll {
    /// The op's name: `nll_loss_none`, `nll_loss_sum` or `nll_loss_mean`.
    pub fn name(&self) -> &'static str {
        match self.reduction {
            Reduction::None => "nll_loss_none",
            Reduction::Sum => "nll_loss_sum",
            Reduction::Mean => "nll_loss_mean",
        }
    }

    /// Whether the target value `t` is the ignore index.
    #[inline]
    pub fn ignores<T: Float>(&self, t: T) -> bool {
        t.to_f64() == self.ignore_index as f64
    }

    /// The number of targets that are not ignored.
    pub fn count<T: Float>(&self, target: &[T]) -> usize {
        target.iter().filter(|&&t| !self.ignores(t)).count()
    }
}

/// Result shape of `nll_loss(logp, target)`: `logp` is `[N, C]` with `target` `[N]`, or
/// `[C]` with a 0-d `target` (one sample), as `torch.nn.functional.nll_loss`; the result
/// is 0-d for a sum or mean and the targets' shape without reduction.
///
/// # Errors
/// `nll_loss: log-probabilities [4, 10] and targets [3] do not fit (need [N, C] and [N], or [C] and [])`.
pub fn nll_shape(logp: &[usize], target: &[usize], reduction: Reduction) -> Result<Shape, String> {
    let fits = matches!((logp, target), ([n, _], [m]) if n == m) || (logp.len() == 1 && target.is_empty());
    ensure!(
        fits,
        "nll_loss: log-probabilities {logp:?} and targets {target:?} do not fit (need [N, C] and [N], or [C] and [])"
    );
    Ok(if reduction == Reduction::None { crate::shape::from_dims(target) } else { Shape::new() })
}

/// The class index a target value names, checked against the class count.
///
/// # Panics
/// `nll_loss: target 10 is not a class index in 0..10` (the tape checks targets before
/// recording, so this fires only for a direct call with a bad target).
#[inline]
pub fn class_index<T: Float>(t: T, classes: usize) -> usize {
    let v = t.to_f64();
    assert!(is_index(v, classes), "nll_loss: target {v} is not a class index in 0..{classes}");
    v as usize
}

/// Whether `v` is an integer in `0..n`.
#[inline]
pub fn is_index(v: f64, n: usize) -> bool {
    v >= 0.0 && v < n as f64 && v.fract() == 0.0
}

/// `-logp[i, t_i]` per target (0 where ignored) without reduction; else their sum, divided
/// by the number of targets not ignored for a mean (0/0 = NaN when all are ignored, as
/// PyTorch). The sum is PyTorch's cascade: partial sums at 8 levels, each level's sum
/// pushed up every 16 targets, so float32 rounds as PyTorch's does.
pub fn nll_forward<T: Float>(logp: View<'_, T>, target: View<'_, T>, nll: Nll, out: &mut [T]) {
    let classes = *logp.shape.last().expect("nll_loss: logp has a class axis");
    let term = |i: usize, t: T| logp.data[i * classes + class_index(t, classes)];
    if nll.reduction == Reduction::None {
        for (i, (o, &t)) in out.iter_mut().zip(target.data).enumerate() {
            *o = if nll.ignores(t) { T::ZERO } else { -term(i, t) };
        }
        return;
    }
    const LEVELS: usize = 8;
    let n = target.data.len();
    let power = 4.max(n.next_power_of_two().trailing_zeros() as usize / LEVELS);
    let mask = (1usize << power) - 1;
    let mut partial = [T::ZERO; LEVELS];
    let mut count = 0usize;
    for (b, &t) in target.data.iter().enumerate() {
        if nll.ignores(t) {
            continue; // PyTorch skips the cascade step too
        }
        count += 1;
        partial[0] -= term(b, t);
        for j in 0..LEVELS - 1 {
            if b & (mask << (j * power)) != 0 {
                break;
            }
            partial[j + 1] += partial[j];
            partial[j] = T::ZERO;
        }
    }
    let s = partial.iter().fold(T::ZERO, |a, &p| a + p);
    out[0] = if nll.reduction == Reduction::Mean { s / T::from_usize(count) } else { s };
}

/// Backward of `y = -Σ logp[i, t_i]` (or the mean, or the terms) given `dy`; targets are
/// indices and get no gradient.
pub fn nll_vjp<T: Float, G: Graph<T>>(g: &mut G, logp: G::V, target: G::V, nll: Nll, dy: G::V) -> G::V {
    // d/dlogp[i, c] = -[c = t_i] (0 where t_i is ignored; divided by the count for a mean)
    g.apply(Op::Loss(LossOp::NllGrad(nll)), &[dy, logp, target])
}

/// Result shape of the NLL gradient: `logp`'s (`dy` one element for a sum or mean, the
/// targets' shape without reduction; `logp` and `target` as for [`nll_shape`]).
///
/// # Errors
/// `nll_loss_backward: dy [2] does not fit the loss [] of targets [3]`.
pub fn nll_grad_shape(dy: &[usize], logp: &[usize], target: &[usize], reduction: Reduction) -> Result<Shape, String> {
    let loss = nll_shape(logp, target, reduction)?;
    ensure!(
        crate::shape::same(dy, &loss) || (reduction != Reduction::None && dy.iter().product::<usize>() == 1),
        "nll_loss_backward: dy {dy:?} does not fit the loss {:?} of targets {target:?}",
        loss.as_slice()
    );
    Ok(crate::shape::from_dims(logp))
}

/// `out = 0` except `out[i, t_i] = -dy_i` (without reduction), `-dy` (sum) or `-(dy / n)`
/// (mean over the `n` targets not ignored) where `t_i` is not ignored.
pub fn nll_grad_forward<T: Float>(dy: View<'_, T>, logp: View<'_, T>, target: View<'_, T>, nll: Nll, out: &mut [T]) {
    let classes = *logp.shape.last().expect("nll_loss_backward: logp has a class axis");
    let v = match nll.reduction {
        Reduction::None => T::ZERO,
        Reduction::Sum => -dy.data[0],
        Reduction::Mean => -(dy.data[0] / T::from_usize(nll.count(target.data))),
    };
    out.fill(T::ZERO);
    for (i, &t) in target.data.iter().enumerate() {
        if !nll.ignores(t) {
            out[i * classes + class_index(t, classes)] = if nll.reduction == Reduction::None { -dy.data[i] } else { v };
        }
    }
}

/// Backward of `d = -c·dy·onehot(t)` (for gradients of gradients): linear in `dy` alone,
/// with gradient `-c Σ_i gd[i, t_i]` (per `i` without reduction), which is the NLL loss of
/// `gd` itself.
pub fn nll_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    target: G::V,
    nll: Nll,
    gd: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/d(dy_i) (-c dy_i [c = t_i]) = -c [c = t_i]
    let gdy = need[0].then(|| {
        let v = g.apply(Op::Loss(LossOp::Nll(nll)), &[gd, target]);
        let s = g.shape(dy);
        g.reshape(v, &s)
    });
    [gdy, None, None]
}
