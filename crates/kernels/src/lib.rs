//! # tapegrad-kernels
//!
//! The compute kernels under the tapegrad engine: plain functions on slices that know
//! nothing of tapes, graphs or gradients. The engine decides *what* to compute; these
//! decide *how fast*.
//!
//! - [`Element`]: the number types (`f32`, `f64`) with the arithmetic, constants and the
//!   matrix multiply ([`Element::gemm`]) every kernel needs, and the one definition of
//!   ReLU's meaning ([`Element::relu`], [`Element::relu_backward`]).
//! - [`elementwise`]: broadcast binaries, expand, permute, strided walks, bias + ReLU, axpy.
//! - [`reduce`]: sums and the reductions that undo broadcasting, in a fixed order.
//! - [`threads`]: the worker pool and the helpers that split an output over it.
//! - [`cpu`]: the instruction set in use (detected, or forced for tests and benchmarks).
//! - [`layout`]: shapes and strides of row-major arrays.
//!
//! The GEMM (private module `gemm`) is split by path: `small` (plain loops and the tiny
//! entry), `direct` (unpacked SIMD kernels), `packed` (cache blocking and packing), `x86`
//! (the AVX2 micro-kernels) and `x86_512` (the AVX-512 ones); `crates/kernels/README.md`
//! describes the dispatch.

#![warn(missing_docs)]

pub mod cpu;
pub mod elementwise;
mod gemm;
pub mod layout;
pub mod math;
pub mod reduce;
pub mod threads;

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

pub use cpu::{set_isa, Isa};
pub use elementwise::{bias_relu_rows, binary_broadcast, expand, fma_axpy, for_each_strided2, is_trailing, permute};
pub use reduce::{reduce_axis, sum, sum_abs_diff, sum_to};
pub use threads::{num_threads, par_chunks_mut, par_chunks_mut_n, par_rows_mut, set_num_threads};

/// A floating-point element type the kernels work on (`f32` or `f64`).
///
/// The engine's number trait (`tapegrad::Float`) extends this one, so constants, ReLU and
/// the GEMM signature are defined here once.
pub trait Element:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Debug
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
    + gemm::GemmElement
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;

    /// Converts a count to this type (rounding to nearest).
    fn from_usize(n: usize) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self * a + b` with a single rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// `relu(x) = 0 if x < 0, else x`, as PyTorch computes it: NaN stays NaN and `-0.0`
    /// stays `-0.0` (a select on `x < 0`, not `max(x, 0)`). The SIMD kernels compute the
    /// same as `andnot(cmp_lt(x, 0), x)`.
    #[inline(always)]
    fn relu(self) -> Self {
        if self < Self::ZERO {
            Self::ZERO
        } else {
            self
        }
    }

    /// ReLU's backward gate: `dy` where the ReLU's input (or output) `self` is positive, `0`
    /// where it is `<= 0`. NaN passes the gradient, as PyTorch's `threshold_backward` does.
    #[inline(always)]
    fn relu_backward(self, dy: Self) -> Self {
        if self <= Self::ZERO {
            Self::ZERO
        } else {
            dy
        }
    }

    /// `C = op(A)·op(B)`, or `C += op(A)·op(B)` if `accumulate`; A, B strided views.
    ///
    /// A is m×k: element (i,p) at `a[i*rsa + p*csa]`. B is k×n: element (p,j) at
    /// `b[p*rsb + j*csb]`. C is m×n contiguous: element (i,j) at `c[i*n + j]`. Without
    /// `accumulate`, C's old contents (even NaN) are ignored. Transposed operands are
    /// read in place through their strides.
    ///
    /// # Panics
    /// If a slice is too short for the given sizes and strides.
    #[allow(clippy::too_many_arguments)]
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
        gemm::run(&gemm::Problem::new(m, k, n, a, rsa, csa, b, rsb, csb, c), accumulate, None);
    }

    /// `C = op(A)·op(B) + bias` (`bias`, of length n, added to every row), then
    /// [`Element::relu`] if `relu`: the linear layer's forward. The same floats as
    /// [`Element::gemm`] followed by [`bias_relu_rows`]; the panel path adds the bias and
    /// clamps in its tiles' registers before it stores, the other paths run the pass.
    ///
    /// # Panics
    /// If a slice is too short for the given sizes and strides, or `bias.len() != n`.
    #[allow(clippy::too_many_arguments)]
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
        let p = gemm::Problem::new(m, k, n, a, rsa, csa, b, rsb, csb, c).with_bias(bias, relu);
        gemm::run(&p, false, None);
    }
}

macro_rules! impl_element {
    ($t:ident) => {
        impl Element for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_usize(n: usize) -> Self {
                n as f64 as $t
            }
            #[inline]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
        }
    };
}

impl_element!(f32);
impl_element!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// ReLU's meaning at the edge values, as PyTorch (`torch.relu`, `threshold_backward`).
    #[test]
    fn relu_matches_pytorch_at_edge_values() {
        fn check<T: Element>(nan: T, inf: T) {
            let neg0 = -T::ZERO;
            assert!(nan.relu() != nan.relu(), "NaN stays NaN");
            assert!(neg0.relu() == T::ZERO && format!("{:?}", neg0.relu()).starts_with('-'), "-0.0 stays -0.0");
            assert!(inf.relu() == inf && (-inf).relu() == T::ZERO);
            assert!((-T::ONE).relu() == T::ZERO && T::ONE.relu() == T::ONE);
            let dy = T::ONE + T::ONE;
            assert!(nan.relu_backward(dy) == dy, "NaN passes the gradient");
            assert!(T::ZERO.relu_backward(dy) == T::ZERO && neg0.relu_backward(dy) == T::ZERO);
            assert!((-inf).relu_backward(dy) == T::ZERO && inf.relu_backward(dy) == dy);
            assert!(T::ONE.relu_backward(dy) == dy && (-T::ONE).relu_backward(dy) == T::ZERO);
        }
        check::<f32>(f32::NAN, f32::INFINITY);
        check::<f64>(f64::NAN, f64::INFINITY);
    }
}
