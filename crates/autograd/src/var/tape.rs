//! The methods of [`Tape`] that make variables: leaves, parameters' variables, custom ops
//! and gradients recorded as variables. The tape itself knows values only by their ids.

use std::borrow::Borrow;
use std::panic::Location;
use std::sync::Arc;

use smallvec::SmallVec;

use super::Var;
use crate::float::Float;
use crate::ops::{CustomOp, Op};
use crate::shape::numel;
use crate::tape::{Id, Param, Tape};
use crate::tensor::Tensor;

impl<T: Float> Tape<T> {
    /// A leaf holding a copy of `value` (a tensor or a reference to one); with
    /// `requires_grad`, backward fills (and across backward calls, accumulates) its
    /// gradient. Inside [`Tape::no_grad`] it never requires grad.
    #[track_caller]
    pub fn leaf(&self, value: impl Borrow<Tensor<T>>, requires_grad: bool) -> Var<'_, T> {
        let value = value.borrow();
        let id = self.inner.borrow_mut().leaf(value.shape(), value.data(), requires_grad, Location::caller());
        Var::new(self, id)
    }

    /// A leaf that does not require grad (an input or a constant), from a tensor or a
    /// reference to one.
    #[track_caller]
    pub fn input(&self, value: impl Borrow<Tensor<T>>) -> Var<'_, T> {
        self.leaf(value, false)
    }

    /// A leaf from a slice and a shape, without building a [`Tensor`] first.
    ///
    /// # Panics
    /// If `data.len()` does not match the shape.
    #[track_caller]
    pub fn leaf_from_slice(&self, data: &[T], shape: &[usize], requires_grad: bool) -> Var<'_, T> {
        assert_eq!(
            data.len(),
            numel(shape),
            "leaf: {} values do not fill shape {shape:?} (at {})",
            data.len(),
            Location::caller()
        );
        let id = self.inner.borrow_mut().leaf(shape, data, requires_grad, Location::caller());
        Var::new(self, id)
    }

    /// The variable of a parameter, for use in ops.
    ///
    /// # Panics
    /// If the parameter belongs to another tape.
    #[track_caller]
    pub fn var(&self, p: Param) -> Var<'_, T> {
        Var::new(self, self.param_id(p))
    }

    /// Records a user-defined op on `inputs` (see [`CustomOp`]).
    ///
    /// # Panics
    /// If the number of inputs is not the op's arity, the variables come from another tape,
    /// or the op rejects the shapes.
    #[track_caller]
    pub fn custom<'t>(&'t self, op: Arc<dyn CustomOp<T>>, inputs: &[Var<'t, T>]) -> Var<'t, T> {
        assert!(
            inputs.len() == op.arity() && (1..=3).contains(&inputs.len()),
            "{}: {} inputs given, the op takes {} (at {})",
            op.name(),
            inputs.len(),
            op.arity(),
            Location::caller()
        );
        for v in inputs {
            assert!(
                std::ptr::eq(v.tape(), self),
                "{}: operands come from different tapes (at {})",
                op.name(),
                Location::caller()
            );
        }
        let ids: SmallVec<[Id; 3]> = inputs.iter().map(|v| v.id()).collect();
        Var::new(self, self.record(Op::Custom(op), &ids, Location::caller()))
    }

    /// Gradients of `output` with respect to `wrt`, **recorded on the tape** (PyTorch's
    /// `torch.autograd.grad(..., create_graph=True)`): the results are variables, so they
    /// can be differentiated again. The upstream gradient is ones (`output` is usually a
    /// scalar). Does not touch any `.grad`. An input `output` does not depend on gets zeros.
    ///
    /// The backward rules are the same ones the plain backward pass runs, and the pass
    /// visits the same nodes: those that lead to `output`.
    #[track_caller]
    pub fn grad<'t>(&'t self, output: Var<'t, T>, wrt: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        let ones = Tensor::ones(&output.shape());
        self.grad_with(output, self.leaf(&ones, false), wrt)
    }

    /// Like [`Tape::grad`] with a given upstream gradient `seed` (a vector-Jacobian product;
    /// the seed may itself require grad).
    ///
    /// # Panics
    /// If the seed's shape is not the output's, or a variable is from another tape.
    #[track_caller]
    pub fn grad_with<'t>(&'t self, output: Var<'t, T>, seed: Var<'t, T>, wrt: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        let loc = Location::caller();
        output.check_same_tape(&seed, "grad");
        for w in wrt {
            output.check_same_tape(w, "grad");
        }
        assert_eq!(
            output.shape(),
            seed.shape(),
            "grad: upstream gradient of shape {:?} for an output of shape {:?} (at {loc})",
            seed.shape(),
            output.shape()
        );
        let ids: Vec<Id> = wrt.iter().map(|w| w.id()).collect();
        let found = self.grad_ids(output.id(), seed.id(), &ids, loc);
        wrt.iter()
            .zip(found)
            .map(|(w, g)| match g {
                Some(g) => Var::new(self, g),
                None => self.leaf(Tensor::zeros(&w.shape()), false),
            })
            .collect()
    }
}
