//! Elementwise ops as methods of [`Var`] ([`crate::ops::unary`], [`crate::ops::binary`]), and
//! the arithmetic operators.

use std::borrow::Borrow;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::panic::Location;

use super::Var;
use crate::float::Float;
use crate::ops::{Binary, Op, Unary};

impl<'t, T: Float> Var<'t, T> {
    #[track_caller]
    fn unary(&self, op: Unary<T>) -> Var<'t, T> {
        Var::new(self.tape, self.tape.record(Op::Unary(op), &[self.id], Location::caller()))
    }

    #[track_caller]
    fn binary(&self, op: Binary, other: &Var<'t, T>) -> Var<'t, T> {
        self.check_same_tape(other, op.name());
        Var::new(self.tape, self.tape.record(Op::Binary(op), &[self.id, other.id], Location::caller()))
    }

    /// `self + other` with broadcasting.
    #[track_caller]
    pub fn add(&self, other: impl Borrow<Var<'t, T>>) -> Var<'t, T> {
        self.binary(Binary::Add, other.borrow())
    }
    /// `self + alpha * other` with broadcasting, as one op (PyTorch's
    /// `torch.add(self, other, alpha=alpha)`): one pass over the data instead of two, and
    /// one node on the tape.
    #[track_caller]
    pub fn add_scaled(&self, other: impl Borrow<Var<'t, T>>, alpha: T) -> Var<'t, T> {
        self.binary(Binary::AddScaled(alpha.to_f64()), other.borrow())
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
    /// `ln(1 + e^self)`, as `torch.nn.functional.softplus` (without its threshold: the
    /// result is computed stably for every input instead).
    #[track_caller]
    pub fn softplus(&self) -> Var<'t, T> {
        self.unary(Unary::Softplus)
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
