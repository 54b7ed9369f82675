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
//! single-piece benchmarks of `src/extras.rs` (adam-wide, train-digits), step time only.

use std::time::{Duration, Instant};

use tapegrad_workspace::extras::extras;
use tapegrad_workspace::peak;
use tapegrad_workspace::workloads::{all, Workload};

struct Settings {
    samples: usize,
    min_sample: Duration,
}

/// Iterations so that one sample lasts at least `min` (from a timed probe).
fn calibrate(mut run: impl FnMut(usize) -> Duration, min: Duration) -> usize {
    let mut n = 1;
    loop {
        let t = run(n);
        if t >= min {
            return n;
        }
        let factor = if t.as_nanos() == 0 { 100.0 } else { min.as_secs_f64() / t.as_secs_f64() * 1.2 };
        n = ((n as f64 * factor.clamp(1.5, 100.0)).ceil() as usize).max(n + 1);
    }
}

/// Median over samples of the mean µs per iteration.
fn measure(mut run: impl FnMut(usize) -> Duration, s: &Settings) -> f64 {
    let iters = calibrate(&mut run, s.min_sample);
    run(iters); // warm-up at full length
    let mut samples: Vec<f64> = (0..s.samples).map(|_| run(iters).as_secs_f64() * 1e6 / iters as f64).collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn timed(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Median µs of one call of `step` (a whole training step).
fn step_time(mut step: impl FnMut() -> f64, s: &Settings) -> f64 {
    measure(
        |n| {
            timed(|| {
                for _ in 0..n {
                    std::hint::black_box(step());
                }
            })
        },
        s,
    )
}

fn check_trains(w: &mut dyn Workload) {
    let first = w.step();
    let mut last = first;
    for _ in 0..5 {
        last = w.step();
    }
    assert!(last < first, "{}: loss did not decrease over 6 steps ({first} -> {last})", w.name());
}

/// `--profile`: per-op forward/backward times of 200 steps of each dense workload (the
/// scalar engine has no per-op profiler: its ops are a few nanoseconds each).
fn profile(only: Option<&str>) {
    for (name, _) in all() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Some(mut w) = tapegrad_workspace::workloads::dense(name) else { continue };
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
    let threads: usize = std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let quick = std::env::var("QUICK").is_ok_and(|v| v == "1");
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    tapegrad::set_num_threads(threads);
    if std::env::args().any(|a| a == "--profile") {
        profile(only.as_deref());
        return;
    }
    let settings = if quick {
        Settings { samples: 3, min_sample: Duration::from_micros(200) }
    } else {
        Settings { samples: 15, min_sample: Duration::from_millis(2) }
    };
    // The machine and its measured peak (stderr: stdout stays TSV).
    let isa = tapegrad::kernels::cpu::isa();
    let peak = peak::gflops(isa, threads);
    eprintln!(
        "# CPU: {}; instruction set: {isa}; f32 FMA peak on {threads} thread(s): {peak:.1} GFLOP/s",
        peak::cpu_model()
    );
    println!("engine\tworkload\tthreads\tstep_us\tfwd_us\tbwd_us");
    for (name, make) in all() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut w = make();
        check_trains(w.as_mut());
        let step = step_time(|| w.step(), &settings);
        let (fwd, bwd) = if w.splits() {
            let fwd = measure(|n| timed(|| w.forward(n)), &settings);
            let bwd = measure(|n| w.backward(n), &settings);
            (format!("{fwd:.2}"), format!("{bwd:.2}"))
        } else {
            ("NA".into(), "NA".into())
        };
        println!("tapegrad\t{}\t{threads}\t{step:.2}\t{fwd}\t{bwd}", w.name());
        if let Some(flop) = dense_flop(w.name()) {
            let gflops = flop / (step * 1e-6) / 1e9;
            eprintln!(
                "# {}: {:.1} MFLOP per step, {gflops:.1} GFLOP/s, {:.0}% of the {isa} peak",
                w.name(),
                flop / 1e6,
                100.0 * gflops / peak
            );
        }
    }
    // The single-piece benchmarks beside PyTorch's (`src/extras.rs`): step time only.
    for (name, make) in extras() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut e = make();
        let step = step_time(|| e.step(), &settings);
        println!("tapegrad\t{name}\t{threads}\t{step:.2}\tNA\tNA");
    }
}
