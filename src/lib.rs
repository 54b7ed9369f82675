//! Root package of the tapegrad workspace: the cross-crate integration tests (`tests/`),
//! the benchmarks (`benches/`), and the benchmark workloads they share ([`workloads`]).

pub mod workloads;
