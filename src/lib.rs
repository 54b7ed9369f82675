//! Root package of the tapegrad workspace: the cross-crate integration tests (`tests/`),
//! the benchmarks (`benches/`), and the benchmark workloads they share ([`workloads`], and
//! the two single-piece benchmarks [`extras`]), and the FMA peak measurement ([`peak`]).

pub mod extras;
pub mod peak;
pub mod workloads;

/// The README's Rust examples, compiled and run as doc-tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
