//! The parameters' API: creating them, reading and writing their values and gradients.

use super::{Id, Param, Slot, Tape};
use crate::float::Float;
use crate::tensor::Tensor;

impl<T: Float> Tape<T> {
    /// A new parameter (requires grad).
    pub fn parameter(&self, value: Tensor<T>) -> Param {
        self.parameter_with(value, true)
    }

    /// A new persistent leaf; with `requires_grad == false` it is a constant that survives
    /// [`Tape::reset`] (like a registered buffer in PyTorch).
    pub fn parameter_with(&self, value: Tensor<T>, requires_grad: bool) -> Param {
        let mut inner = self.inner.borrow_mut();
        let index = inner.params.len() as u32;
        assert!(index < Id::PARAM, "too many parameters");
        let shape = crate::shape::from_dims(value.shape());
        inner.params.push(Slot::new(shape, value.into_vec(), requires_grad));
        Param { index, tape: self.uid }
    }

    /// The id of a parameter's value.
    ///
    /// # Panics
    /// If the parameter belongs to another tape.
    #[track_caller]
    pub(crate) fn param_id(&self, p: Param) -> Id {
        self.check_param(p);
        Id::param(p.index as usize)
    }

    /// Whether `p` is a parameter of this tape (not of another one).
    pub fn owns(&self, p: Param) -> bool {
        p.tape == self.uid && p.index() < self.num_params()
    }

    #[track_caller]
    fn check_param(&self, p: Param) {
        assert!(
            p.tape == self.uid,
            "parameter {} belongs to tape #{}, used on tape #{} (at {})",
            p.index,
            p.tape,
            self.uid,
            std::panic::Location::caller()
        );
    }

    /// All parameters, in creation order.
    pub fn params(&self) -> Vec<Param> {
        (0..self.inner.borrow().params.len()).map(|i| Param { index: i as u32, tape: self.uid }).collect()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.inner.borrow().params.len()
    }

    /// A copy of a parameter's value.
    #[track_caller]
    pub fn param_value(&self, p: Param) -> Tensor<T> {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        Tensor::from_parts(s.shape.clone(), s.value.clone())
    }

    /// A copy of a parameter's gradient, `None` if none has arrived since the last zeroing.
    #[track_caller]
    pub fn param_grad(&self, p: Param) -> Option<Tensor<T>> {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        s.grad().map(|g| Tensor::from_parts(s.shape.clone(), g.to_vec()))
    }

    /// Replaces a parameter's value.
    ///
    /// # Panics
    /// If the shape differs.
    #[track_caller]
    pub fn set_param_value(&mut self, p: Param, value: &Tensor<T>) {
        self.check_param(p);
        let s = &mut self.inner.get_mut().params[p.index()];
        assert_eq!(
            s.shape.as_slice(),
            value.shape(),
            "set_param_value: parameter of shape {:?} given shape {:?} (at {})",
            s.shape,
            value.shape(),
            std::panic::Location::caller()
        );
        s.value.copy_from_slice(value.data());
    }

    /// Visits every parameter mutably: `f(param, value, gradient)` (gradient `None` when
    /// none has arrived since zeroing, or when the parameter does not require grad). This
    /// is what optimizers use; it allocates nothing.
    pub fn for_each_param_mut(&mut self, mut f: impl FnMut(Param, &mut [T], Option<&[T]>)) {
        let uid = self.uid;
        for (i, s) in self.inner.get_mut().params.iter_mut().enumerate() {
            let grad = (s.has_grad && s.requires_grad).then_some(s.grad.as_slice());
            f(Param { index: i as u32, tape: uid }, &mut s.value, grad);
        }
    }

    /// Clears one parameter's gradient (what [`Tape::zero_grad`] does for all), for an
    /// optimizer that owns some of the tape's parameters.
    #[track_caller]
    pub fn zero_param_grad(&self, p: Param) {
        self.check_param(p);
        self.inner.borrow_mut().params[p.index()].has_grad = false;
    }

    /// Visits the gradient of every parameter that has one (since the last zeroing, and
    /// requiring grad) mutably: `f(param, gradient)`. What gradient clipping uses; it
    /// allocates nothing.
    pub fn for_each_grad_mut(&mut self, mut f: impl FnMut(Param, &mut [T])) {
        let uid = self.uid;
        for (i, s) in self.inner.get_mut().params.iter_mut().enumerate() {
            if s.has_grad && s.requires_grad {
                f(Param { index: i as u32, tape: uid }, &mut s.grad);
            }
        }
    }

    /// Reads a parameter's value and gradient without copying.
    #[track_caller]
    pub fn with_param<R>(&self, p: Param, f: impl FnOnce(&[usize], &[T], Option<&[T]>) -> R) -> R {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        f(&s.shape, &s.value, s.grad())
    }
}
