//! The element types a tensor can hold: `f32` and `f64`, behind one trait so every op has
//! one generic code path.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::rng::{TorchRng, TorchUniform};

/// A floating-point element type (`f32` or `f64`).
///
/// Everything the kernels need from a number: arithmetic, the math functions of the unary
/// ops, conversions, and the matrix-multiply kernel for this type.
pub trait Float:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + TorchUniform
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// `"f32"` or `"f64"` (as safetensors and PyTorch spell the dtype: F32, F64).
    const NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts a count to this type.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// `self^p`.
    fn powf(self, p: Self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self * a + b` with a single rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Not a number.
    fn is_nan(self) -> bool;
    /// Larger of two values.
    fn max(self, other: Self) -> Self;
    /// `C = op(A)·op(B) (+ C)`: see [`crate::kernels::gemm`].
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        c: &mut [Self],
        accumulate: bool,
    );
    /// `C = op(A)·op(B) + bias` (bias added to every row), then `max(C, 0)` if `relu`: see
    /// [`crate::kernels::gemm::sgemm_bias`].
    #[allow(clippy::too_many_arguments)]
    fn gemm_bias(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        c: &mut [Self],
        bias: &[Self],
        relu: bool,
    );
    /// One uniform draw on `[0, 1)` exactly as `torch.rand` makes it for this dtype.
    fn rand_unit(rng: &mut TorchRng) -> Self {
        Self::torch_uniform(rng, Self::ZERO, Self::ONE)
    }
}

macro_rules! impl_float {
    ($t:ident, $gemm:path, $gemm_bias:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = $t::EPSILON;
            const NAME: &'static str = stringify!($t);
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            #[inline]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline]
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                rsa: usize,
                csa: usize,
                b: &[Self],
                rsb: usize,
                csb: usize,
                c: &mut [Self],
                accumulate: bool,
            ) {
                $gemm(m, k, n, a, rsa, csa, b, rsb, csb, c, accumulate)
            }
            #[inline]
            fn gemm_bias(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                rsa: usize,
                csa: usize,
                b: &[Self],
                rsb: usize,
                csb: usize,
                c: &mut [Self],
                bias: &[Self],
                relu: bool,
            ) {
                $gemm_bias(m, k, n, a, rsa, csa, b, rsb, csb, c, bias, relu)
            }
        }
    };
}

impl_float!(f32, crate::kernels::gemm::sgemm, crate::kernels::gemm::sgemm_bias);
impl_float!(f64, crate::kernels::gemm::dgemm, crate::kernels::gemm::dgemm_bias);
