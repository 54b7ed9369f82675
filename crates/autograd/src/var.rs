//! [`Var`]: a cheap, copyable handle to a value on a tape, with the ops as methods and
//! operators, so `(&x.matmul(&w) + &b).relu()` reads like the maths.

use std::borrow::Borrow;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::panic::Location;

use crate::float::Float;
use crate::ops::{Binary, Op, Reduce, Unary};
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
        let s = inner.slot(self.id);
        s.grad().map(|g| Tensor::from_slice(g, &s.shape))
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
    fn unary(&self, op: Unary<T>) -> Var<'t, T> {
        Var::new(self.tape, self.tape.record(Op::Unary(op), &[self.id], Location::caller()))
    }

    #[track_caller]
    fn binary(&self, op: Binary, other: &Var<'t, T>) -> Var<'t, T> {
        self.check_same_tape(other, op.name());
        Var::new(self.tape, self.tape.record(Op::Binary(op), &[self.id, other.id], Location::caller()))
    }

    #[track_caller]
    fn op1(&self, op: Op<T>) -> Var<'t, T> {
        Var::new(self.tape, self.tape.record(op, &[self.id], Location::caller()))
    }

    /// `self + other` with broadcasting.
    #[track_caller]
    pub fn add(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.binary(Binary::Add, other.borrow())
    }
    /// `self - other` with broadcasting.
    #[track_caller]
    pub fn sub(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.binary(Binary::Sub, other.borrow())
    }
    /// `self * other` elementwise with broadcasting.
    #[track_caller]
    pub fn mul(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.binary(Binary::Mul, other.borrow())
    }
    /// `self / other` elementwise with broadcasting.
    #[track_caller]
    pub fn div(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.binary(Binary::Div, other.borrow())
    }
    /// `-self`.
    #[track_caller]
    pub fn neg(&self) -> Var<'t, T> {
        self.unary(Unary::Neg)
    }
    /// `self + c`.
    #[track_caller]
    pub fn add_scalar(&self, c: T) -> Var<'t, T> {
        self.unary(Unary::AddScalar(c))
    }
    /// `self * c`.
    #[track_caller]
    pub fn mul_scalar(&self, c: T) -> Var<'t, T> {
        self.unary(Unary::MulScalar(c))
    }
    /// `max(self, 0)`.
    #[track_caller]
    pub fn relu(&self) -> Var<'t, T> {
        self.unary(Unary::Relu)
    }
    /// `|self|`.
    #[track_caller]
    pub fn abs(&self) -> Var<'t, T> {
        self.unary(Unary::Abs)
    }
    /// `e^self`.
    #[track_caller]
    pub fn exp(&self) -> Var<'t, T> {
        self.unary(Unary::Exp)
    }
    /// Natural logarithm.
    #[track_caller]
    pub fn log(&self) -> Var<'t, T> {
        self.unary(Unary::Log)
    }
    /// Hyperbolic tangent.
    #[track_caller]
    pub fn tanh(&self) -> Var<'t, T> {
        self.unary(Unary::Tanh)
    }
    /// Logistic sigmoid.
    #[track_caller]
    pub fn sigmoid(&self) -> Var<'t, T> {
        self.unary(Unary::Sigmoid)
    }
    /// Square root.
    #[track_caller]
    pub fn sqrt(&self) -> Var<'t, T> {
        self.unary(Unary::Sqrt)
    }
    /// `self^p` for a constant exponent.
    #[track_caller]
    pub fn powf(&self, p: T) -> Var<'t, T> {
        self.unary(Unary::Powf(p))
    }
    /// Sine.
    #[track_caller]
    pub fn sin(&self) -> Var<'t, T> {
        self.unary(Unary::Sin)
    }
    /// Cosine.
    #[track_caller]
    pub fn cos(&self) -> Var<'t, T> {
        self.unary(Unary::Cos)
    }
    /// Sign (−1, 0, 1); its gradient is zero.
    #[track_caller]
    pub fn sign(&self) -> Var<'t, T> {
        self.unary(Unary::Sign)
    }

    /// Matrix product `self · other` of 2-d variables.
    ///
    /// # Panics
    /// `matmul: [2, 4] x [8, 2]: inner dimensions 4 and 8 differ`.
    #[track_caller]
    pub fn matmul(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.matmul_ex(other, false, false)
    }

    /// `self · otherᵀ` without materialising the transpose (the `x·Wᵀ` of a linear layer).
    #[track_caller]
    pub fn matmul_t(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.matmul_ex(other, false, true)
    }

    /// `op(self) · op(other)`, each operand optionally read as transposed.
    #[track_caller]
    pub fn matmul_ex(&self, other: impl Borrow<Var<'t, T>>, ta: bool, tb: bool) -> Var<'t, T> {
        let other = other.borrow();
        self.check_same_tape(other, "matmul");
        Var::new(self.tape, self.tape.record(Op::Matmul { ta, tb }, &[self.id, other.id], Location::caller()))
    }

    /// `self · weightᵀ + bias` in one node (self `[batch, in]`, weight `[out, in]`, bias
    /// `[out]`), as `torch.nn.functional.linear`.
    #[track_caller]
    pub fn linear(&self, weight: impl Borrow<Var<'t, T>>, bias: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        let (w, b) = (weight.borrow(), bias.borrow());
        self.check_same_tape(w, "linear");
        self.check_same_tape(b, "linear");
        Var::new(self.tape, self.tape.record(Op::Linear { relu: false }, &[self.id, w.id, b.id], Location::caller()))
    }

    /// `relu(self · weightᵀ + bias)` in one node: the linear layer and its activation
    /// fused (one pass and one buffer less forward, one node less backward).
    #[track_caller]
    pub fn linear_relu(&self, weight: impl Borrow<Var<'t, T>>, bias: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        let (w, b) = (weight.borrow(), bias.borrow());
        self.check_same_tape(w, "linear_relu");
        self.check_same_tape(b, "linear_relu");
        Var::new(self.tape, self.tape.record(Op::Linear { relu: true }, &[self.id, w.id, b.id], Location::caller()))
    }

    /// `Σ |self - target|` in one node (a 0-d result): the value of
    /// `(self - target).abs().sum()`, bit for bit, recorded and differentiated as one op.
    ///
    /// # Panics
    /// If the shapes differ (the composition broadcasts; this does not).
    #[track_caller]
    pub fn l1_loss_sum(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.l1(target.borrow(), false)
    }

    /// `mean |self - target|` in one node (a 0-d result): the value of
    /// `(self - target).abs().mean()`, bit for bit, as `torch.nn.functional.l1_loss`.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn l1_loss_mean(&self, target: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.l1(target.borrow(), true)
    }

    #[track_caller]
    fn l1(&self, target: &Var<'t, T>, mean: bool) -> Var<'t, T> {
        self.check_same_tape(target, "l1_loss");
        Var::new(self.tape, self.tape.record(Op::L1Loss { mean }, &[self.id, target.id], Location::caller()))
    }

    /// Sum of all elements (a 0-d result).
    #[track_caller]
    pub fn sum(&self) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: false, axis: None, keepdim: false }))
    }
    /// Mean of all elements (a 0-d result).
    #[track_caller]
    pub fn mean(&self) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: true, axis: None, keepdim: false }))
    }
    /// Sum along `axis`.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: false, axis: Some(axis), keepdim }))
    }
    /// Mean along `axis`.
    #[track_caller]
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Var<'t, T> {
        self.op1(Op::Reduce(Reduce { mean: true, axis: Some(axis), keepdim }))
    }
    /// The same data with a new shape.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::Reshape(crate::shape::from_dims(shape)))
    }
    /// Dimensions reordered: result dimension `d` is dimension `perm[d]` of `self`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Var<'t, T> {
        self.op1(Op::Permute(crate::shape::from_dims(perm)))
    }
    /// Swaps two dimensions.
    ///
    /// # Panics
    /// If a dimension is out of range.
    #[track_caller]
    pub fn transpose(&self, d0: usize, d1: usize) -> Var<'t, T> {
        let nd = self.shape().len();
        assert!(
            d0 < nd && d1 < nd,
            "transpose: dimensions {d0} and {d1} for a {nd}-d variable (at {})",
            Location::caller()
        );
        let mut perm: Shape = (0..nd).collect();
        perm.swap(d0, d1);
        self.op1(Op::Permute(perm))
    }
    /// Transpose of a 2-d variable (a copy; use [`Var::matmul_t`] to multiply by a
    /// transpose without one).
    #[track_caller]
    pub fn t(&self) -> Var<'t, T> {
        self.transpose(0, 1)
    }
    /// Broadcast to a larger shape.
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::Expand(crate::shape::from_dims(shape)))
    }
    /// Sum over broadcast dimensions down to `shape` (the adjoint of [`Var::expand`]).
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Var<'t, T> {
        self.op1(Op::SumTo(crate::shape::from_dims(shape)))
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident) => {
        impl<'t, T: Float> $trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                Var::$method(&self, rhs)
            }
        }
        impl<'t, T: Float> $trait<&Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> {
                Var::$method(&self, rhs)
            }
        }
        impl<'t, T: Float> $trait<Var<'t, T>> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                Var::$method(self, rhs)
            }
        }
        impl<'t, T: Float> $trait<&Var<'t, T>> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> {
                Var::$method(self, rhs)
            }
        }
    };
}

binary_operator!(Add, add);
binary_operator!(Sub, sub);
binary_operator!(Mul, mul);
binary_operator!(Div, div);

macro_rules! scalar_operator {
    ($t:ty) => {
        impl<'t> Add<$t> for Var<'t, $t> {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn add(self, c: $t) -> Var<'t, $t> {
                self.add_scalar(c)
            }
        }
        impl<'t> Sub<$t> for Var<'t, $t> {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn sub(self, c: $t) -> Var<'t, $t> {
                self.add_scalar(-c)
            }
        }
        impl<'t> Mul<$t> for Var<'t, $t> {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn mul(self, c: $t) -> Var<'t, $t> {
                self.mul_scalar(c)
            }
        }
        impl<'t> Div<$t> for Var<'t, $t> {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn div(self, c: $t) -> Var<'t, $t> {
                self.mul_scalar(1.0 / c)
            }
        }
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn add(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.add_scalar(self)
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn sub(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.neg().add_scalar(self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[track_caller]
            fn mul(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v.mul_scalar(self)
            }
        }
    };
}

scalar_operator!(f32);
scalar_operator!(f64);

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        Var::neg(&self)
    }
}

impl<'t, T: Float> Neg for &Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        Var::neg(self)
    }
}
