//! What the candle, burn and dfdx harnesses (`src/bin/*.rs`) share: the timing method and
//! output rows of tapegrad's own benchmark (`tapegrad_bench::timing`, so every engine is
//! measured the same way), and the thread count given to rayon.

pub use tapegrad_bench::timing::{timed, Workload};
use tapegrad_bench::timing::{run_rows, threads_from_env, Settings, HEADER};

/// A peer workload's constructor (its loss is `f32`).
pub type Make = tapegrad_bench::timing::Make<f32>;

/// `BENCH_THREADS` (default 1). Each engine's thread pool is rayon's, sized by
/// `RAYON_NUM_THREADS`, which `threads()` sets to the same number before any pool starts.
pub fn threads() -> usize {
    let t = threads_from_env();
    std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    rayon::ThreadPoolBuilder::new().num_threads(t).build_global().expect("rayon pool");
    t
}

/// Runs every workload (or the one named by the first argument) and prints its row.
pub fn run(engine: &str, workloads: Vec<(&'static str, Make)>) {
    let threads = threads();
    let only: Option<String> = std::env::args().nth(1);
    println!("{HEADER}");
    run_rows(engine, threads, workloads, only.as_deref(), &Settings::from_env(), |_| {});
}
