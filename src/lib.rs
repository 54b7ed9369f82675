//! Root package of the tapegrad workspace: what ties the crates together, the cross-crate
//! integration tests (`tests/`), the benchmarks (`benches/`, on `tapegrad-bench`) and the
//! examples (`examples/`), and the README's Rust examples as doc-tests.

/// The README's Rust examples, compiled and run as doc-tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

/// The Rust examples of docs/design.md, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/design.md")]
mod design {}
