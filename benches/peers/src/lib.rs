//! The timing method and output format of tapegrad's `benches/workloads.rs`, shared by the
//! candle, burn and dfdx harnesses (`src/bin/*.rs`), so every engine is measured the same way:
//!
//! warm-up, then 15 samples; each sample is the mean time per iteration over an inner loop of
//! at least ~2 ms (`QUICK=1`: 3 samples of at least 0.2 ms); the median sample is reported, as
//! `engine<TAB>workload<TAB>threads<TAB>step_us<TAB>fwd_us<TAB>bwd_us`.

use std::time::{Duration, Instant};

/// One workload of WORKLOADS.md in some engine, each part timeable on its own.
pub trait Workload {
    /// One whole training step (zero grads, forward, loss, backward, SGD update); returns the
    /// loss before the update.
    fn step(&mut self) -> f32;
    /// Records forward + loss `iters` times (no backward, no update).
    fn forward(&mut self, iters: usize);
    /// Returns the time of `iters` backward passes alone, the forward + loss recorded outside
    /// the timed region: once, when the engine can run a backward pass twice on one graph
    /// (candle), else again before each pass (burn and dfdx consume the graph).
    fn backward(&mut self, iters: usize) -> Duration;
    /// Whether forward and backward can be timed apart (not for accumulation).
    fn splits(&self) -> bool {
        true
    }
}

/// A workload's name and constructor.
pub type Make = Box<dyn Fn() -> Box<dyn Workload>>;

/// Sample count and minimum sample length.
pub struct Settings {
    samples: usize,
    min_sample: Duration,
}

impl Settings {
    /// From `QUICK` (`1`: a fast smoke run).
    pub fn from_env() -> Self {
        if std::env::var("QUICK").is_ok_and(|v| v == "1") {
            Settings { samples: 3, min_sample: Duration::from_micros(200) }
        } else {
            Settings { samples: 15, min_sample: Duration::from_millis(2) }
        }
    }
}

/// `BENCH_THREADS` (default 1). Each engine's thread pool is rayon's, sized by
/// `RAYON_NUM_THREADS`, which `threads()` sets to the same number before any pool starts.
pub fn threads() -> usize {
    let t: usize = std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    rayon::ThreadPoolBuilder::new().num_threads(t).build_global().expect("rayon pool");
    t
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
pub fn measure(mut run: impl FnMut(usize) -> Duration, s: &Settings) -> f64 {
    let iters = calibrate(&mut run, s.min_sample);
    run(iters); // warm-up at full length
    let mut samples: Vec<f64> = (0..s.samples).map(|_| run(iters).as_secs_f64() * 1e6 / iters as f64).collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Wall time of `f`.
pub fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Runs every workload (or the one named by the first argument) and prints its row.
pub fn run(engine: &str, workloads: Vec<(&'static str, Make)>) {
    let threads = threads();
    let only: Option<String> = std::env::args().nth(1);
    let s = Settings::from_env();
    println!("engine\tworkload\tthreads\tstep_us\tfwd_us\tbwd_us");
    for (name, make) in workloads {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        // Before timing, the workload must show that it trains. candle cannot seed its CPU
        // random numbers, so an unlucky init (a deep-narrow net whose ReLUs are all off, its
        // output moving by its last bias alone) can raise the L1 loss over the first steps:
        // such a draw is replaced by a new one, at most 5 times.
        let mut tries = 0;
        let mut w = loop {
            let mut w = make();
            let first = w.step();
            let mut last = first;
            for _ in 0..5 {
                last = w.step();
            }
            tries += 1;
            if last < first {
                break w;
            }
            assert!(tries < 5, "{engine} {name}: loss did not decrease over 6 steps ({first} -> {last}), 5 draws");
            eprintln!("{engine} {name}: loss did not decrease over 6 steps ({first} -> {last}); drawing a new init");
        };
        let step = measure(|n| timed(|| (0..n).for_each(|_| _ = std::hint::black_box(w.step()))), &s);
        let (fwd, bwd) = if w.splits() {
            let fwd = measure(|n| timed(|| w.forward(n)), &s);
            let bwd = measure(|n| w.backward(n), &s);
            (format!("{fwd:.2}"), format!("{bwd:.2}"))
        } else {
            ("NA".to_string(), "NA".to_string())
        };
        println!("{engine}\t{name}\t{threads}\t{step:.2}\t{fwd}\t{bwd}");
    }
}
