//! The operations the tape records, each with its forward kernel and its backward rule
//! (vector-Jacobian product, VJP) side by side.
//!
//! | family | file | ops |
//! | --- | --- | --- |
//! | elementwise, one input | [`unary`] | neg, relu, abs, exp, log, tanh, sigmoid, sqrt, powf, scalar add/mul, sign |
//! | elementwise, two inputs (broadcasting) | [`binary`] | add, sub, mul, div, and the masks used by relu's and abs's backward |
//! | matrix products | [`matmul`] | matmul with either operand transposed, linear (`x·Wᵀ + b`, optionally with a fused ReLU) |
//! | reductions | [`reduce`] | sum and mean over everything or along an axis |
//! | fused losses | [`loss`] | `l1_loss`: sum or mean of `\|a - b\|` in one node; its gradient `c·dy·sign(a - b)` in one pass |
//! | fused losses (classification) | [`loss`] | `nll_loss`: `-logp[i, t_i]` with `ignore_index`, unreduced, summed or averaged over the targets kept; its gradient as one scatter |
//! | lookup | [`embedding`] | `embedding`: rows of a weight gathered by indices; its gradient as one scatter-add |
//! | along an axis | [`softmax`] | log_softmax, softmax (each with a fused one-pass gradient), argmax (no gradient) |
//! | shape | [`shape`] | reshape, permute/transpose, expand (broadcast), sum_to (un-broadcast) |
//!
//! # One rule serves every order
//! A backward rule is written once, as a composition of these same ops on a [`Graph`].
//! The plain backward pass runs it on an eager graph (values computed into reusable scratch
//! buffers, nothing recorded); `Tape::grad` runs the *same* rule on the tape itself, so
//! the gradient is a variable that can be differentiated again (grad of grad).

/// Returns `Err(format!(...))` from a shape check unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

pub mod binary;
pub mod custom;
pub mod embedding;
pub mod index;
pub mod logsumexp;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;

pub use binary::Binary;
pub use custom::{CustomOp, Handle, Value};
pub use index::IndexOp;
pub use logsumexp::LogSumExp;
pub use loss::{Nll, Reduction, DEFAULT_IGNORE_INDEX};
pub use reduce::Reduce;
pub use unary::Unary;

use std::sync::Arc;

use crate::float::Float;
use crate::shape::Shape;

/// One recorded operation.
#[derive(Clone, Debug)]
pub enum Op<T: Float> {
    /// A leaf: an input, a constant, or a parameter. No inputs, no backward rule.
    Leaf,
    /// Elementwise function of one input.
    Unary(Unary<T>),
    /// Elementwise function of two broadcast inputs.
    Binary(Binary),
    /// `op(A)·op(B)` of two 2-d inputs; `ta`/`tb` read an operand as transposed.
    Matmul {
        /// Read A as transposed.
        ta: bool,
        /// Read B as transposed.
        tb: bool,
    },
    /// `x·Wᵀ + b` in one node (x: `[batch, in]`, W: `[out, in]`, b: `[out]`), with
    /// `relu` followed by a fused ReLU.
    Linear {
        /// Apply `max(·, 0)` to the result.
        relu: bool,
    },
    /// Sum or mean, over all elements or along one axis.
    Reduce(Reduce),
    /// `Σ |a - b|` (divided by the element count with `mean`) of two same-shape inputs.
    L1Loss {
        /// Mean instead of sum.
        mean: bool,
    },
    /// The gradient of [`Op::L1Loss`] in one pass: `c·dy·sign(a - b)` of a one-element
    /// `dy` and same-shape `a`, `b`, with `c = 1/n` for a mean (else 1).
    L1LossGrad {
        /// Mean instead of sum.
        mean: bool,
    },
    /// `-logp[i, t_i]` of log-probabilities `[N, C]` and class indices `[N]` (or `[C]` and
    /// one index), targets equal to the ignore index skipped: unreduced, summed, or
    /// averaged over the targets kept.
    NllLoss(Nll),
    /// The gradient of [`Op::NllLoss`] as one scatter: `-c·dy` (or `-dy_i`) at each
    /// `(i, t_i)` not ignored, zero elsewhere, of `dy`, `logp` (for its shape) and the
    /// targets.
    NllLossGrad(Nll),
    /// `weight[idx, :]`: rows of a `[V, D]` weight gathered by indices of any shape.
    Embedding,
    /// The gradient of [`Op::Embedding`]: `dy`'s rows scatter-added into a `[rows, D]`
    /// zero matrix at the indices.
    EmbeddingGrad {
        /// The weight's row count `V`.
        rows: usize,
    },
    /// `x - max - ln Σ e^(x - max)` along an axis.
    LogSoftmax {
        /// The axis of the lanes.
        axis: usize,
    },
    /// `e^(x - max) / Σ e^(x - max)` along an axis.
    Softmax {
        /// The axis of the lanes.
        axis: usize,
    },
    /// The gradient of [`Op::LogSoftmax`] in one pass: `dy - e^y Σ dy` of `dy` and the
    /// output `y`.
    LogSoftmaxGrad {
        /// The axis of the lanes.
        axis: usize,
    },
    /// The gradient of [`Op::Softmax`] in one pass: `y (dy - Σ dy y)` of `dy` and the
    /// output `y`.
    SoftmaxGrad {
        /// The axis of the lanes.
        axis: usize,
    },
    /// Index of the largest element along an axis (the axis removed); no gradient.
    Argmax {
        /// The axis reduced.
        axis: usize,
    },
    /// Same data, new shape.
    Reshape(Shape),
    /// Dimensions reordered: output dimension `d` is input dimension `perm[d]`.
    Permute(Shape),
    /// Broadcast to a larger shape.
    Expand(Shape),
    /// Sum over broadcast dimensions down to a smaller shape (the adjoint of `Expand`).
    SumTo(Shape),
    /// A gather or scatter by flat indices (see [`index`]).
    Index(IndexOp),
    /// Log-sum-exp along an axis (see [`logsumexp`]).
    LogSumExp(LogSumExp),
    /// An op defined outside the crate.
    Custom(Arc<dyn CustomOp<T>>),
}

/// A borrowed tensor: shape and row-major data.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    /// Dimension sizes.
    pub shape: &'a [usize],
    /// Elements, row-major.
    pub data: &'a [T],
}

impl<T: Float> Op<T> {
    /// The op's name, as used in messages and listings.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Matmul { .. } => "matmul",
            Op::Linear { relu: false } => "linear",
            Op::Linear { relu: true } => "linear_relu",
            Op::Reduce(r) => r.name(),
            Op::L1Loss { mean: false } => "l1_loss_sum",
            Op::L1Loss { mean: true } => "l1_loss_mean",
            Op::L1LossGrad { .. } => "l1_loss_backward",
            Op::NllLoss(nll) => nll.name(),
            Op::NllLossGrad(_) => "nll_loss_backward",
            Op::Embedding => "embedding",
            Op::EmbeddingGrad { .. } => "embedding_backward",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmaxGrad { .. } => "log_softmax_backward",
            Op::SoftmaxGrad { .. } => "softmax_backward",
            Op::Argmax { .. } => "argmax",
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "permute",
            Op::Expand(_) => "expand",
            Op::SumTo(_) => "sum_to",
            Op::Index(i) => i.name(),
            Op::LogSumExp(_) => "logsumexp",
            Op::Custom(c) => c.name(),
        }
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        match self {
            Op::Leaf => 0,
            Op::Binary(_)
            | Op::Matmul { .. }
            | Op::L1Loss { .. }
            | Op::NllLoss(_)
            | Op::Embedding
            | Op::EmbeddingGrad { .. }
            | Op::LogSoftmaxGrad { .. }
            | Op::SoftmaxGrad { .. } => 2,
            Op::Linear { .. } | Op::L1LossGrad { .. } | Op::NllLossGrad(_) => 3,
            Op::Custom(c) => c.arity(),
            _ => 1,
        }
    }

    /// Shape of the result, checking the inputs' shapes: an error message naming the op and
    /// the shapes when they do not fit the op (the tape panics with it, adding the source
    /// location of the call that recorded the op).
    pub fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match self {
            Op::Leaf => unreachable!("leaves are not computed"),
            Op::Unary(_) => Ok(crate::shape::from_dims(ins[0])),
            Op::Binary(b) => b.out_shape(ins[0], ins[1]),
            Op::Matmul { ta, tb } => matmul::matmul_shape(ins[0], ins[1], *ta, *tb),
            Op::Linear { .. } => matmul::linear_shape(ins[0], ins[1], ins[2]),
            Op::Reduce(r) => r.out_shape(ins[0]),
            Op::L1Loss { .. } => loss::l1_shape(ins[0], ins[1]),
            Op::L1LossGrad { .. } => loss::l1_grad_shape(ins[0], ins[1], ins[2]),
            Op::NllLoss(nll) => loss::nll_shape(ins[0], ins[1], nll.reduction),
            Op::NllLossGrad(nll) => loss::nll_grad_shape(ins[0], ins[1], ins[2], nll.reduction),
            Op::Embedding => embedding::embedding_shape(ins[0], ins[1]),
            Op::EmbeddingGrad { rows } => embedding::embedding_grad_shape(ins[0], ins[1], *rows),
            Op::LogSoftmax { axis } => softmax::same_shape("log_softmax", ins[0], *axis),
            Op::Softmax { axis } => softmax::same_shape("softmax", ins[0], *axis),
            Op::LogSoftmaxGrad { axis } => softmax::grad_shape("log_softmax_backward", ins[0], ins[1], *axis),
            Op::SoftmaxGrad { axis } => softmax::grad_shape("softmax_backward", ins[0], ins[1], *axis),
            Op::Argmax { axis } => softmax::argmax_shape(ins[0], *axis),
            Op::Reshape(s) => shape::reshape_shape(ins[0], s),
            Op::Permute(p) => shape::permute_shape(ins[0], p),
            Op::Expand(s) => shape::expand_shape(ins[0], s),
            Op::SumTo(s) => shape::sum_to_shape(ins[0], s),
            Op::Index(i) => i.out_shape(ins[0]),
            Op::LogSumExp(l) => l.out_shape(ins[0]),
            Op::Custom(c) => c.out_shape(ins),
        }
    }

    /// Computes the result into `out` (already sized to the result; its old contents are
    /// ignored).
    pub fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]) {
        if out.is_empty() {
            return; // a zero-size result: nothing to compute
        }
        match self {
            Op::Leaf => unreachable!("leaves are not computed"),
            Op::Unary(u) => u.forward(ins[0].data, out),
            Op::Binary(b) => b.forward(ins[0], ins[1], out_shape, out),
            Op::Matmul { ta, tb } => matmul::matmul_forward(ins[0], ins[1], *ta, *tb, out),
            Op::Linear { relu } => matmul::linear_forward(ins[0], ins[1], ins[2], *relu, out),
            Op::Reduce(r) => r.forward(ins[0], out),
            Op::L1Loss { mean } => loss::l1_forward(ins[0], ins[1], *mean, out),
            Op::L1LossGrad { mean } => loss::l1_grad_forward(ins[0], ins[1], ins[2], *mean, out),
            Op::NllLoss(nll) => loss::nll_forward(ins[0], ins[1], *nll, out),
            Op::NllLossGrad(nll) => loss::nll_grad_forward(ins[0], ins[1], ins[2], *nll, out),
            Op::Embedding => embedding::embedding_forward(ins[0], ins[1], out),
            Op::EmbeddingGrad { rows } => embedding::embedding_grad_forward(ins[0], ins[1], *rows, out),
            Op::LogSoftmax { axis } => softmax::log_softmax_forward(ins[0], *axis, out),
            Op::Softmax { axis } => softmax::softmax_forward(ins[0], *axis, out),
            Op::LogSoftmaxGrad { axis } => softmax::log_softmax_grad_forward(ins[0], ins[1], *axis, out),
            Op::SoftmaxGrad { axis } => softmax::softmax_grad_forward(ins[0], ins[1], *axis, out),
            Op::Argmax { axis } => softmax::argmax_forward(ins[0], *axis, out),
            Op::Reshape(_) => out.copy_from_slice(ins[0].data),
            Op::Permute(p) => crate::kernels::permute(ins[0].data, ins[0].shape, p, out),
            Op::Expand(_) => crate::kernels::expand(ins[0].data, ins[0].shape, out_shape, out),
            Op::SumTo(_) => crate::kernels::sum_to(ins[0].data, ins[0].shape, out_shape, out, false),
            Op::Index(i) => i.forward(ins[0], out),
            Op::LogSumExp(l) => l.forward(ins[0], out),
            Op::Custom(c) => c.forward(ins, out),
        }
    }

    /// The backward rule: given the gradient `gy` of the output `y` (with respect to some
    /// final scalar), the gradients of the inputs `x` for which `need[i]` is set.
    /// `None` means "no contribution" (zero).
    pub fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match self {
            Op::Leaf => [None; 3],
            Op::Unary(u) => [u.vjp(g, x[0], y, gy), None, None],
            Op::Binary(b) => {
                let [ga, gb] = b.vjp(g, x[0], x[1], y, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            Op::Matmul { ta, tb } => {
                let [ga, gb] = matmul::matmul_vjp(g, x[0], x[1], *ta, *tb, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            Op::Linear { relu } => matmul::linear_vjp(g, x[0], x[1], x[2], *relu, y, gy, need),
            Op::Reduce(r) => [Some(r.vjp(g, x[0], gy)), None, None],
            Op::L1Loss { mean } => {
                let [ga, gb] = loss::l1_vjp(g, x[0], x[1], *mean, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            Op::L1LossGrad { mean } => loss::l1_grad_vjp(g, x[0], x[1], x[2], *mean, gy, need),
            Op::NllLoss(nll) => [need[0].then(|| loss::nll_vjp(g, x[0], x[1], *nll, gy)), None, None],
            Op::NllLossGrad(nll) => loss::nll_grad_vjp(g, x[0], x[2], *nll, gy, need),
            Op::Embedding => [need[0].then(|| embedding::embedding_vjp(g, x[0], x[1], gy)), None, None],
            Op::EmbeddingGrad { .. } => embedding::embedding_grad_vjp(g, x[1], gy, need),
            Op::LogSoftmax { axis } => [Some(softmax::log_softmax_vjp(g, y, gy, *axis)), None, None],
            Op::Softmax { axis } => [Some(softmax::softmax_vjp(g, y, gy, *axis)), None, None],
            Op::LogSoftmaxGrad { axis } => softmax::log_softmax_grad_vjp(g, x[0], x[1], gy, *axis, need),
            Op::SoftmaxGrad { axis } => softmax::softmax_grad_vjp(g, x[0], x[1], gy, *axis, need),
            Op::Argmax { .. } => [None; 3],
            Op::Reshape(_) => {
                let s = g.shape(x[0]);
                [Some(g.reshape(gy, &s)), None, None]
            }
            Op::Permute(p) => [Some(g.permute(gy, &shape::inverse_perm(p))), None, None],
            Op::Expand(_) => {
                let s = g.shape(x[0]);
                [Some(g.sum_to(gy, &s)), None, None]
            }
            Op::SumTo(_) => {
                let s = g.shape(x[0]);
                [Some(g.expand(gy, &s)), None, None]
            }
            Op::Index(i) => [Some(i.vjp(g, x[0], gy)), None, None],
            Op::LogSumExp(l) => [Some(l.vjp(g, x[0], y, gy)), None, None],
            Op::Custom(c) => custom::custom_vjp(c.as_ref(), g, x, y, gy, need),
        }
    }
}

/// Where a backward rule computes: something that can apply ops to values of type `V`.
///
/// Implemented by the eager backward pass (values are scratch buffers) and by the tape
/// itself (values are recorded variables, for higher-order gradients). Backward rules are
/// generic over it, so each rule is written once.
pub trait Graph<T: Float> {
    /// A handle to a value.
    type V: Handle;

    /// Applies `op` to `inputs`, returning the result.
    fn apply(&mut self, op: Op<T>, inputs: &[Self::V]) -> Self::V;

    /// The shape of a value.
    fn shape(&self, v: Self::V) -> Shape;

    /// Whether a value has this shape (without copying the shape).
    fn has_shape(&self, v: Self::V, shape: &[usize]) -> bool {
        self.shape(v).as_slice() == shape
    }

    /// `op(a)` elementwise.
    fn unary(&mut self, op: Unary<T>, a: Self::V) -> Self::V {
        self.apply(Op::Unary(op), &[a])
    }
    /// `op(a, b)` elementwise with broadcasting.
    fn binary(&mut self, op: Binary, a: Self::V, b: Self::V) -> Self::V {
        self.apply(Op::Binary(op), &[a, b])
    }
    /// `a + b`.
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.binary(Binary::Add, a, b)
    }
    /// `a * b`.
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.binary(Binary::Mul, a, b)
    }
    /// `a / b`.
    fn div(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.binary(Binary::Div, a, b)
    }
    /// `-a`.
    fn neg(&mut self, a: Self::V) -> Self::V {
        self.unary(Unary::Neg, a)
    }
    /// `a * c` for a constant `c`.
    fn mul_scalar(&mut self, a: Self::V, c: T) -> Self::V {
        self.unary(Unary::MulScalar(c), a)
    }
    /// `a + c` for a constant `c`.
    fn add_scalar(&mut self, a: Self::V, c: T) -> Self::V {
        self.unary(Unary::AddScalar(c), a)
    }
    /// `op(a)·op(b)`.
    fn matmul(&mut self, a: Self::V, b: Self::V, ta: bool, tb: bool) -> Self::V {
        self.apply(Op::Matmul { ta, tb }, &[a, b])
    }
    /// `a` summed down to `shape` (identity when the shapes agree).
    fn sum_to(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::SumTo(crate::shape::from_dims(shape)), &[a])
        }
    }
    /// `a` broadcast to `shape` (identity when the shapes agree).
    fn expand(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::Expand(crate::shape::from_dims(shape)), &[a])
        }
    }
    /// `a` with a new shape (identity when the shapes agree).
    fn reshape(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::Reshape(crate::shape::from_dims(shape)), &[a])
        }
    }
    /// `a` with its dimensions permuted.
    fn permute(&mut self, a: Self::V, perm: &[usize]) -> Self::V {
        self.apply(Op::Permute(crate::shape::from_dims(perm)), &[a])
    }
}
