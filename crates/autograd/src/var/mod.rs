//! [`Var`]: a cheap, copyable handle to a value on a tape, with the ops as methods and
//! operators, so `(&x.matmul(&w) + &b).relu()` reads like the maths.
//!
//! This module is the whole `Var` API, one file per op family as in [`crate::ops`]; the
//! tape below it knows values only by their ids. The methods of [`Tape`] that make
//! variables (leaves, parameters' variables, custom ops, recorded gradients) are here too,
//! in `tape.rs`.

mod elementwise;
mod embedding;
mod index;
mod logsumexp;
mod loss;
mod matmul;
mod reduce;
mod shape;
mod softmax;
mod tape;

use std::fmt;
use std::panic::Location;

use crate::float::Float;
use crate::ops::Op;
use crate::shape::Shape;
use crate::tape::{Id, Tape};
use crate::tensor::Tensor;

/// A value recorded on a [`Tape`]: a leaf, a parameter, or the result of an op.
///
/// `Var` is `Copy` (a tape reference and an index). Ops take other variables by value or by
/// reference. Every op records the caller's source location, so messages point at the
/// user's line.
///
/// # Panics
/// Every op panics when its operands come from different tapes, and when their shapes do
/// not fit the op (the message names the op and the shapes).
#[derive(Clone, Copy)]
pub struct Var<'t, T: Float = f32> {
    tape: &'t Tape<T>,
    id: Id,
}

impl<T: Float> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var(#{:?} {:?})", self.id, self.shape().as_slice())
    }
}

impl<'t, T: Float> Var<'t, T> {
    pub(crate) fn new(tape: &'t Tape<T>, id: Id) -> Self {
        Var { tape, id }
    }

    pub(crate) fn id(&self) -> Id {
        self.id
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    #[track_caller]
    pub(crate) fn check_same_tape(&self, other: &Var<'t, T>, op: &str) {
        if !std::ptr::eq(self.tape, other.tape) {
            panic!(
                "{op}: operands come from different tapes (#{} and #{}) (at {})",
                self.tape.uid(),
                other.tape.uid(),
                Location::caller()
            );
        }
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        crate::shape::from_dims(self.tape.inner.borrow().shape(self.id))
    }

    /// Whether `other` has the same shape (without copying either shape).
    pub fn same_shape(&self, other: &Var<'t, T>) -> bool {
        let inner = self.tape.inner.borrow();
        crate::shape::same(inner.shape(self.id), inner.shape(other.id))
    }

    /// A copy of the value.
    pub fn value(&self) -> Tensor<T> {
        let inner = self.tape.inner.borrow();
        let v = inner.view(self.id);
        Tensor::from_slice(v.data, v.shape)
    }

    /// Reads the value without copying.
    pub fn with_value<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(self.tape.inner.borrow().view(self.id).data)
    }

    /// The single value of a one-element variable (e.g. a loss).
    ///
    /// # Panics
    /// If it has more than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        let inner = self.tape.inner.borrow();
        let v = inner.view(self.id);
        assert_eq!(
            v.data.len(),
            1,
            "item: variable of shape {:?} is not a single value (at {})",
            v.shape,
            Location::caller()
        );
        v.data[0]
    }

    /// Whether backward computes a gradient for (or through) this variable.
    pub fn requires_grad(&self) -> bool {
        self.tape.inner.borrow().requires_grad(self.id)
    }

    /// A copy of the gradient: for a leaf or parameter, the sum over the backward passes
    /// since it was last zeroed; for an interior node, the one from the last pass that
    /// reached it. `None` if no pass has reached it (since zeroing). A variable on the
    /// output's graph gets zeros when every path to it has a zero derivative (`sign`).
    pub fn grad(&self) -> Option<Tensor<T>> {
        let inner = self.tape.inner.borrow();
        inner.grad(self.id).map(|g| Tensor::from_slice(g, inner.shape(self.id)))
    }

    /// Runs the reverse pass from this one-element output (upstream gradient 1), filling
    /// the gradients of every node that leads to it, and visiting no other. Leaves and
    /// parameters accumulate; interior nodes get this pass's gradient.
    ///
    /// # Panics
    /// If the output has more than one element (use [`Var::backward_with`]) or does not
    /// require grad.
    #[track_caller]
    pub fn backward(&self) {
        let single = self.with_value(|v| v.len() == 1);
        assert!(
            single,
            "backward: output of shape {:?} is not a single value; use backward_with(upstream gradient) (at {})",
            self.shape(),
            Location::caller()
        );
        self.tape.backward_from(self.id, None);
    }

    /// Runs the reverse pass with a given upstream gradient (a vector-Jacobian product).
    ///
    /// # Panics
    /// If the gradient's shape differs from the output's.
    #[track_caller]
    pub fn backward_with(&self, grad: &Tensor<T>) {
        assert_eq!(
            self.shape().as_slice(),
            grad.shape(),
            "backward_with: gradient of shape {:?} for an output of shape {:?} (at {})",
            grad.shape(),
            self.shape(),
            Location::caller()
        );
        self.tape.backward_from(self.id, Some(grad.data()));
    }

    /// A copy of the value as a leaf that does not require grad: gradients stop here.
    #[track_caller]
    pub fn detach(&self) -> Var<'t, T> {
        let v = self.value();
        self.tape.leaf(&v, false)
    }

    #[track_caller]
    pub(crate) fn op1(&self, op: Op<T>) -> Var<'t, T> {
        Var::new(self.tape, self.tape.record(op, &[self.id], Location::caller()))
    }
}
