//! The six workloads of `docs/workloads.md` with its timing method and output format:
//!
//! ```text
//! BENCH_THREADS=1 cargo bench --bench workloads      (QUICK=1 for a fast smoke run)
//! engine  workload  threads  step_us  fwd_us  bwd_us
//! ```
//!
//! Timing: warm-up, then 15 samples; each sample is the mean time per iteration over an
//! inner loop of at least ~2 ms; the median sample is reported. Before timing, each
//! workload must show that it trains (the loss after a few steps is lower). Then the two
//! single-piece benchmarks of `tapegrad_bench::extras` (adam-wide, train-digits), step time
//! only. The timing code is `tapegrad_bench::timing`, shared with the peers' harness.

use tapegrad_bench::extras::extras;
use tapegrad_bench::timing::{run_rows, step_time, threads_from_env, Row, Settings, HEADER};
use tapegrad_bench::workloads::{all, Workload};
use tapegrad_bench::{peak, peak_width};

/// `--profile`: per-op forward/backward times of 200 steps of each dense workload (the
/// scalar engine has no per-op profiler: its ops are a few nanoseconds each).
fn profile(only: Option<&str>) {
    for (name, _) in all() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Some(mut w) = tapegrad_bench::workloads::dense(name) else { continue };
        w.tape.set_profiling(true);
        for _ in 0..200 {
            w.step();
        }
        println!("{name}: 200 steps\n{}\n", w.tape.profile());
    }
}

/// Floating-point operations of one training step of a dense workload: per layer the
/// forward product and the weight gradient, and the input gradient of every layer but the
/// first (2 per multiply-add).
fn dense_flop(name: &str) -> Option<f64> {
    let (dims, batch): (&[usize], usize) = match name {
        "mlp-mnist" => (&[784, 256, 256, 10], 64),
        "mlp-wide" => (&[1024, 1024, 1024, 1024], 256),
        _ => return None,
    };
    let products: usize = dims.windows(2).enumerate().map(|(l, d)| d[0] * d[1] * if l == 0 { 2 } else { 3 }).sum();
    Some(2.0 * (batch * products) as f64)
}

fn main() {
    let threads = threads_from_env();
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    tapegrad::set_num_threads(threads);
    if std::env::args().any(|a| a == "--profile") {
        profile(only.as_deref());
        return;
    }
    let settings = Settings::from_env();
    // The machine and its measured peak (stderr: stdout stays TSV).
    let isa = tapegrad::kernels::cpu::isa();
    let peak = peak::gflops(peak_width(isa), threads);
    eprintln!(
        "# CPU: {}; instruction set: {isa}; f32 FMA peak on {threads} thread(s): {peak:.1} GFLOP/s",
        peak::cpu_model()
    );
    println!("{HEADER}");
    run_rows("tapegrad", threads, all(), only.as_deref(), &settings, |row| {
        if let Some(flop) = dense_flop(row.workload) {
            let gflops = flop / (row.step_us * 1e-6) / 1e9;
            eprintln!(
                "# {}: {:.1} MFLOP per step, {gflops:.1} GFLOP/s, {:.0}% of the {isa} peak",
                row.workload,
                flop / 1e6,
                100.0 * gflops / peak
            );
        }
    });
    // The single-piece benchmarks beside PyTorch's: step time only.
    for (name, make) in extras() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut e = make();
        let step_us = step_time(|| e.step(), &settings);
        println!("{}", Row { workload: name, step_us, parts_us: None }.tsv("tapegrad", threads));
    }
}
