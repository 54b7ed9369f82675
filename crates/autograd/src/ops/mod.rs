//! The operations the tape records, each with its forward kernel and its backward rule
//! (vector-Jacobian product, VJP) side by side.
//!
//! Each family is one type implementing [`OpFamily`] (name, arity, shape rule, forward
//! kernel and VJP of each of its ops); [`Op`] holds one family value per recorded node and
//! delegates to it in one place. The methods of `Var` that record these ops are in
//! [`crate::var`], one file per family.
//!
//! | family | file | type | ops |
//! | --- | --- | --- | --- |
//! | elementwise, one input | [`unary`] | [`Unary`] | neg, relu, abs, exp, log, tanh, sigmoid, softplus, sqrt, powf, scalar add/mul, sign, sin, cos |
//! | elementwise, two inputs (broadcasting) | [`binary`] | [`Binary`] | add, sub, mul, div, add_scaled (`a + c·b`), and the masks used by relu's and abs's backward |
//! | matrix products | [`matmul`] | [`MatmulOp`] | matmul with either operand transposed, linear (`x·Wᵀ + b`, optionally with a fused ReLU) |
//! | reductions | [`reduce`] | [`Reduce`] | sum and mean over everything or along an axis |
//! | fused losses | [`loss`] | [`LossOp`] | `l1_loss`: sum or mean of `\|a - b\|` in one node, its gradient `c·dy·sign(a - b)` in one pass; `nll_loss`: `-logp[i, t_i]` with `ignore_index`, unreduced, summed or averaged over the targets kept, its gradient as one scatter |
//! | lookup | [`embedding`] | [`EmbeddingOp`] | `embedding`: rows of a weight gathered by indices; its gradient as one scatter-add |
//! | indexing | [`index`] | [`IndexOp`] | `take` (gather by flat indices) and `scatter_add`, each the other's gradient |
//! | along an axis | [`softmax`] | [`SoftmaxOp`] | log_softmax, softmax (each with a fused one-pass gradient), argmax (no gradient) |
//! | log-sum-exp | [`logsumexp`] | [`LogSumExp`] | `ln Σ e^x` along an axis, without overflow |
//! | shape | [`shape`] | [`ShapeOp`] | reshape, permute/transpose, expand (broadcast), sum_to (un-broadcast), pad (and narrow: a pad by negative widths) |
//! | user-defined | [`custom`] | [`CustomOp`] | ops defined outside the crate |
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
pub use embedding::EmbeddingOp;
pub use index::IndexOp;
pub use logsumexp::LogSumExp;
pub use loss::{LossOp, Nll, Reduction, DEFAULT_IGNORE_INDEX};
pub use matmul::MatmulOp;
pub use reduce::Reduce;
pub use shape::ShapeOp;
pub use softmax::SoftmaxOp;
pub use unary::Unary;

use std::sync::Arc;

use crate::float::Float;
use crate::shape::Shape;

/// An op family: one type that owns, for each of its ops, the name, the number of inputs,
/// the shape rule, the forward kernel and the backward rule (VJP). [`Op`] holds one family
/// value per recorded node and hands every question to it (in `Op`'s `dispatch!`, the one
/// place that lists the families).
///
/// Adding an op to a family touches only the family's file; a new family is a new file with
/// a type implementing this trait, one variant of [`Op`] and one line of `dispatch!`
/// (`docs/design.md`, "Adding an op").
pub trait OpFamily<T: Float> {
    /// The op's name, as used in messages, listings and profiles.
    fn name(&self) -> &'static str;

    /// Number of inputs (1 to 3).
    fn arity(&self) -> usize;

    /// Shape of the result, checking the inputs' shapes: an error message naming the op and
    /// the shapes when they do not fit (the tape panics with it, adding the source location
    /// of the call that recorded the op).
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String>;

    /// Computes the result into `out` (sized to the result, never empty; its old contents
    /// are ignored).
    fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]);

    /// The backward rule: given the gradient `gy` of the output `y`, the gradients of the
    /// inputs `x` for which `need[i]` is set, written with the ops of `g` (so the rule can
    /// itself be differentiated). `None` means "no contribution" (zero).
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3];
}

/// One recorded operation: a leaf, or an op of one family.
// `repr(u8)`: a tag of its own, so a match reads one byte (the families' tags would
// otherwise hold `Op`'s as a niche, costing a range check per match).
#[derive(Clone, Debug)]
#[repr(u8)]
pub enum Op<T: Float> {
    /// A leaf: an input, a constant, or a parameter. No inputs, no backward rule.
    Leaf,
    /// Elementwise function of one input.
    Unary(Unary<T>),
    /// Elementwise function of two broadcast inputs.
    Binary(Binary),
    /// Matrix products: matmul and the fused linear layer.
    Matmul(MatmulOp),
    /// Sum or mean, over all elements or along one axis.
    Reduce(Reduce),
    /// Fused losses and their one-pass gradients.
    Loss(LossOp),
    /// The embedding lookup and its gradient.
    Embedding(EmbeddingOp),
    /// The softmax family along one axis.
    Softmax(SoftmaxOp),
    /// Shape ops: reshape, permute, expand, sum_to.
    Shape(ShapeOp),
    /// Gathers and scatters by flat indices.
    Index(IndexOp),
    /// Log-sum-exp along an axis.
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

/// `$body` with `$f` bound to the family of `$op`, or `$leaf` for a leaf: the one place
/// that maps each variant of [`Op`] to its family.
macro_rules! dispatch {
    ($op:expr, $f:ident => $body:expr, leaf => $leaf:expr) => {
        match $op {
            Op::Leaf => $leaf,
            Op::Unary($f) => $body,
            Op::Binary($f) => $body,
            Op::Matmul($f) => $body,
            Op::Reduce($f) => $body,
            Op::Loss($f) => $body,
            Op::Embedding($f) => $body,
            Op::Softmax($f) => $body,
            Op::Shape($f) => $body,
            Op::Index($f) => $body,
            Op::LogSumExp($f) => $body,
            Op::Custom($f) => $body,
        }
    };
}

impl<T: Float> Op<T> {
    /// The op's name, as used in messages and listings.
    pub fn name(&self) -> &'static str {
        dispatch!(self, f => OpFamily::<T>::name(f), leaf => "leaf")
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        dispatch!(self, f => OpFamily::<T>::arity(f), leaf => 0)
    }

    /// Shape of the result, checking the inputs' shapes (see [`OpFamily::out_shape`]).
    pub fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        dispatch!(self, f => OpFamily::<T>::out_shape(f, ins), leaf => unreachable!("leaves are not computed"))
    }

    /// Computes the result into `out` (already sized to the result; its old contents are
    /// ignored).
    pub fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]) {
        if out.is_empty() {
            return; // a zero-size result: nothing to compute
        }
        dispatch!(self, f => OpFamily::<T>::forward(f, ins, out_shape, out), leaf => unreachable!("leaves are not computed"))
    }

    /// The backward rule (see [`OpFamily::vjp`]); a leaf has none.
    pub fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        dispatch!(self, f => OpFamily::<T>::vjp(f, g, x, y, gy, need), leaf => [None; 3])
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
        self.apply(Op::Matmul(MatmulOp::Matmul { ta, tb }), &[a, b])
    }
    /// `a` summed down to `shape` (identity when the shapes agree).
    fn sum_to(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::Shape(ShapeOp::SumTo(crate::shape::from_dims(shape))), &[a])
        }
    }
    /// `a` broadcast to `shape` (identity when the shapes agree).
    fn expand(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::Shape(ShapeOp::Expand(crate::shape::from_dims(shape))), &[a])
        }
    }
    /// `a` with a new shape (identity when the shapes agree).
    fn reshape(&mut self, a: Self::V, shape: &[usize]) -> Self::V {
        if self.has_shape(a, shape) {
            a
        } else {
            self.apply(Op::Shape(ShapeOp::Reshape(crate::shape::from_dims(shape))), &[a])
        }
    }
    /// `a` with its dimensions permuted.
    fn permute(&mut self, a: Self::V, perm: &[usize]) -> Self::V {
        self.apply(Op::Shape(ShapeOp::Permute(crate::shape::from_dims(perm))), &[a])
    }
}
