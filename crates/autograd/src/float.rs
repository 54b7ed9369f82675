//! The element types a tensor can hold: `f32` and `f64`, behind one trait so every op has
//! one generic code path.

use std::fmt::Display;

pub use tapegrad_kernels::Element;

use crate::rng::{TorchRng, TorchUniform};

/// A floating-point element type (`f32` or `f64`).
///
/// The kernels' [`Element`] (arithmetic, `ZERO`, `ONE`, ReLU, the matrix multiply) plus what
/// the engine adds: the math functions of the unary ops, conversions, printing and
/// PyTorch's random numbers.
pub trait Float: Element + Display + TorchUniform {
    /// `"f32"` or `"f64"` (as safetensors and PyTorch spell the dtype: F32, F64).
    const NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate when `self` is near zero.
    fn ln_1p(self) -> Self;
    /// Hyperbolic tangent (for `f32` [`tapegrad_kernels::math::tanh_f32`], within 1 ulp).
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// `self^p`.
    fn powf(self, p: Self) -> Self;
    /// Neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Not a number.
    fn is_nan(self) -> bool;
    /// Larger of two values.
    fn max(self, other: Self) -> Self;
    /// One uniform draw on `[0, 1)` exactly as `torch.rand` makes it for this dtype.
    fn rand_unit(rng: &mut TorchRng) -> Self {
        Self::torch_uniform(rng, Self::ZERO, Self::ONE)
    }
}

macro_rules! impl_float {
    ($t:ident, $tanh:path) => {
        impl Float for $t {
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
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline]
            fn sin(self) -> Self {
                $t::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                $t::cos(self)
            }
            #[inline]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
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
        }
    };
}

// f32's tanh vectorises (within 1 ulp; the C library's call costs about 20 ns an element and
// dominated small tanh networks); f64 keeps the C library's, which the gradient checks use.
impl_float!(f32, tapegrad_kernels::math::tanh_f32);
impl_float!(f64, f64::tanh);
