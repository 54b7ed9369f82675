//! Root package: holds the cross-crate integration tests (`tests/`) and benchmarks (`benches/`).
