//! # tapegrad
//!
//! A tape-based (Wengert list) reverse-mode automatic differentiation engine.
//!
//! - [`Tape`] records operations on [`Var`]s (n-dimensional `f32` or `f64` tensors) in an
//!   arena indexed by integer ids; [`Var::backward`] walks it in reverse. Parameters
//!   ([`Param`]) persist across [`Tape::reset`] and accumulate gradients until zeroed,
//!   as in PyTorch.
//! - [`ScalarTape`] is a specialised engine for `f64` scalars, one node per op
//!   (micrograd's `Value` API), built for speed.
//! - [`Tape::jvp`] (forward mode, derived from the same backward rules) and
//!   [`Tape::jacobian`] / [`ScalarTape::jacobian`] (whole Jacobians) are in [`jacobian`].
//! - [`gradcheck()`] and [`gradgradcheck()`] compare first and second derivatives with finite
//!   differences.
//! - [`rng::TorchRng`] reproduces PyTorch's CPU random numbers bit for bit.
//!
//! Each op's forward kernel and backward rule sit side by side in [`ops`]; the rules are
//! written once against a [`ops::Graph`], which lets the same rule run as the fast eager
//! backward pass or be recorded on the tape for higher-order gradients ([`Tape::grad`]).
//!
//! ```
//! use tapegrad::{Tape, Tensor};
//! let tape = Tape::<f32>::new();
//! let x = tape.leaf(&Tensor::new(vec![1.0, -2.0, 3.0], &[3]), true);
//! let y = (x * x).sum();          // y = Σ x²
//! y.backward();
//! assert_eq!(x.grad().unwrap().data(), &[2.0, -4.0, 6.0]);
//! ```

#![warn(missing_docs)]

pub mod float;
pub mod gradcheck;
pub mod introspect;
pub mod jacobian;
pub mod ops;
pub mod print;
pub mod profile;
pub mod rng;
pub mod scalar;
pub mod shape;
pub mod tape;
pub mod tensor;
pub mod var;

pub use float::Float;
pub use gradcheck::{
    gradcheck, gradcheck_with, gradgradcheck, scalar_gradcheck, GradcheckFailure, GradcheckOptions, GradcheckReport,
};
pub use introspect::Listing;
pub use jacobian::JacobianMode;
pub use ops::{Reduction, DEFAULT_IGNORE_INDEX};
pub use profile::{BackwardStats, OpStats, Profile, Spread};
pub use rng::TorchRng;
pub use scalar::{Scalar, ScalarTape};
pub use shape::Shape;
pub use tape::{NoGradGuard, Param, Tape};
pub use tapegrad_kernels as kernels;
pub use tapegrad_kernels::{num_threads, set_num_threads, Element};
pub use tensor::Tensor;
pub use var::Var;
