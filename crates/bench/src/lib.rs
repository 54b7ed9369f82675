//! # tapegrad-bench
//!
//! tapegrad's benchmark harness, in one place: the timing method and output rows
//! ([`timing`]), the machine's FMA peak ([`peak`]), and (feature `workloads`, on by default)
//! the six workloads of `docs/workloads.md` ([`workloads`]) with the two single-piece
//! benchmarks beside them ([`extras`]).
//!
//! Used by the workspace's `benches/` (`cargo bench --bench workloads`), by its tools
//! (`cargo run --release -p tapegrad-bench --bin steps`, `--bin gemm_shapes`), by the
//! zero-allocation tests, and, without the `workloads` feature (so without tapegrad), by the
//! candle, burn and dfdx harnesses of `benches/peers`, which time their engines with the same
//! [`timing`] code.
//!
//! Settings come from the environment: `BENCH_THREADS` (threads, default 1,
//! [`timing::threads_from_env`]) and `QUICK=1` (a smoke run, [`timing::Settings::from_env`]).

#![warn(missing_docs)]

pub mod peak;
pub mod timing;

#[cfg(feature = "workloads")]
pub mod extras;
#[cfg(feature = "workloads")]
pub mod workloads;

/// The multiply-add loop of the vector width tapegrad's kernels use under `isa`.
#[cfg(feature = "workloads")]
pub fn peak_width(isa: tapegrad::kernels::Isa) -> peak::Width {
    use tapegrad::kernels::Isa;
    match isa {
        Isa::Portable => peak::Width::Sse,
        Isa::Avx2 => peak::Width::Avx2,
        // AVX-512 and any wider set added later run the 512-bit loop
        _ => peak::Width::Avx512,
    }
}
