//! The timing method and output format of the workload benchmarks, shared by tapegrad's
//! `benches/workloads.rs` and the candle, burn and dfdx harnesses of `benches/peers`, so
//! every engine is measured the same way:
//!
//! warm-up, then 15 samples; each sample is the mean time per iteration over an inner loop of
//! at least ~2 ms (`QUICK=1`: 3 samples of at least 0.2 ms); the median sample is reported, as
//! `engine<TAB>workload<TAB>threads<TAB>step_us<TAB>fwd_us<TAB>bwd_us`.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// One workload of `docs/workloads.md` in some engine, each part timeable on its own; `L` is
/// the type of the loss a step returns (`f64` for tapegrad's, `f32` for the peers').
pub trait Workload<L = f64> {
    /// One whole training step (zero grads, forward, loss, backward, update); returns the
    /// loss before the update.
    fn step(&mut self) -> L;
    /// Records forward + loss `iters` times (no backward, no update).
    fn forward(&mut self, iters: usize);
    /// Returns the time of `iters` backward passes alone, the forward + loss recorded outside
    /// the timed region (once if the engine can run a backward pass twice on one graph, else
    /// again before each pass).
    fn backward(&mut self, iters: usize) -> Duration;
    /// Whether forward and backward can be timed apart (not for accumulation).
    fn splits(&self) -> bool {
        true
    }
}

/// A workload's constructor.
pub type Make<L = f64> = Box<dyn Fn() -> Box<dyn Workload<L>>>;

/// Sample count and minimum sample length.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Samples per figure (the median is reported).
    pub samples: usize,
    /// Minimum length of one sample's inner loop.
    pub min_sample: Duration,
}

impl Settings {
    /// From `QUICK` (`1`: a fast smoke run of 3 short samples).
    pub fn from_env() -> Self {
        if std::env::var("QUICK").is_ok_and(|v| v == "1") {
            Settings { samples: 3, min_sample: Duration::from_micros(200) }
        } else {
            Settings { samples: 15, min_sample: Duration::from_millis(2) }
        }
    }
}

/// The thread count of `BENCH_THREADS` (default 1). A value that is not a whole number of at
/// least 1 ends the program with one line on stderr and exit status 2.
pub fn threads_from_env() -> usize {
    match std::env::var("BENCH_THREADS") {
        Err(_) => 1,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(t) if t >= 1 => t,
            _ => {
                eprintln!("BENCH_THREADS must be a whole number of at least 1, not {v:?}");
                std::process::exit(2);
            }
        },
    }
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
        n = ((n as f64 * factor.clamp(1.5, 100.0)).ceil() as usize).max(n.saturating_add(1));
    }
}

/// Median over samples of the mean µs per iteration, `run(n)` returning the time of `n`
/// iterations.
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

/// Median µs of one call of `step` (a whole training step), its result kept from the
/// optimiser.
pub fn step_time<R>(mut step: impl FnMut() -> R, s: &Settings) -> f64 {
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

/// One output row: the workload's step, forward and backward times in µs (forward and
/// backward `None` for a workload that cannot time them apart).
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload's name.
    pub workload: &'static str,
    /// Median µs of a whole step.
    pub step_us: f64,
    /// Median µs of forward + loss, and of the backward pass alone.
    pub parts_us: Option<(f64, f64)>,
}

impl Row {
    /// The TSV line `engine workload threads step_us fwd_us bwd_us` (`NA` for parts that
    /// cannot be timed apart).
    pub fn tsv(&self, engine: &str, threads: usize) -> String {
        let (fwd, bwd) = match self.parts_us {
            Some((f, b)) => (format!("{f:.2}"), format!("{b:.2}")),
            None => ("NA".into(), "NA".into()),
        };
        format!("{engine}\t{}\t{threads}\t{:.2}\t{fwd}\t{bwd}", self.workload, self.step_us)
    }
}

/// The header line of the TSV output.
pub const HEADER: &str = "engine\tworkload\tthreads\tstep_us\tfwd_us\tbwd_us";

/// Times every workload (or the one named `only`), printing each row as it is measured.
///
/// Before timing, a workload must show that it trains: its loss after 6 steps is lower than
/// after the first. An engine whose initialisation cannot be seeded (candle) can draw an
/// unlucky init (a deep-narrow net whose ReLUs are all off) that does not: such a draw is
/// replaced by a new one, at most 5 times; a seeded engine fails the same way each time.
///
/// # Panics
/// If a workload does not train in 5 draws.
pub fn run_rows<L: Copy + PartialOrd + Debug>(
    engine: &str,
    threads: usize,
    workloads: Vec<(&'static str, Make<L>)>,
    only: Option<&str>,
    s: &Settings,
    mut after_row: impl FnMut(&Row),
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, make) in workloads {
        if only.is_some_and(|o| o != name) {
            continue;
        }
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
            assert!(tries < 5, "{engine} {name}: loss did not decrease over 6 steps ({first:?} -> {last:?}), 5 draws");
            eprintln!(
                "{engine} {name}: loss did not decrease over 6 steps ({first:?} -> {last:?}); drawing a new init"
            );
        };
        let step_us = step_time(|| w.step(), s);
        let parts_us = w.splits().then(|| {
            let fwd = measure(|n| timed(|| w.forward(n)), s);
            let bwd = measure(|n| w.backward(n), s);
            (fwd, bwd)
        });
        let row = Row { workload: name, step_us, parts_us };
        println!("{}", row.tsv(engine, threads));
        after_row(&row);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workload whose loss follows a fixed sequence; its forward pass sleeps, its backward
    /// pass "takes" 1 µs.
    struct Scripted {
        losses: Vec<f32>,
        at: usize,
    }

    impl Workload<f32> for Scripted {
        fn step(&mut self) -> f32 {
            self.at += 1;
            self.losses[(self.at - 1).min(self.losses.len() - 1)]
        }
        fn forward(&mut self, iters: usize) {
            (0..iters).for_each(|_| std::thread::sleep(Duration::from_micros(1)));
        }
        fn backward(&mut self, _: usize) -> Duration {
            Duration::from_micros(1)
        }
    }

    fn quick() -> Settings {
        Settings { samples: 3, min_sample: Duration::from_micros(1) }
    }

    #[test]
    fn calibrate_reaches_the_minimum_sample() {
        // each iteration "takes" 3 µs: 2 ms needs at least 667 iterations
        let n = calibrate(|n| Duration::from_micros(3 * n as u64), Duration::from_millis(2));
        assert!(n >= 667, "{n}");
        assert!(n < 667 * 2, "{n}: overshoots by more than the 1.2 margin allows");
    }

    #[test]
    fn measure_reports_the_median_per_iteration() {
        let mut calls = 0u64;
        // sample lengths cycle 10, 50, 30 µs per iteration after calibration: median 30
        let us = measure(
            |n| {
                calls += 1;
                let per = [10u64, 50, 30][(calls % 3) as usize];
                Duration::from_micros(per * n as u64)
            },
            &Settings { samples: 3, min_sample: Duration::from_micros(1) },
        );
        assert!([10.0, 30.0, 50.0].contains(&us), "{us}");
        assert_eq!(us, 30.0);
    }

    #[test]
    fn a_workload_that_does_not_train_is_refused_after_five_draws() {
        let make: Make<f32> = Box::new(|| Box::new(Scripted { losses: vec![1.0, 1.0], at: 0 }));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_rows("test", 1, vec![("flat", make)], None, &quick(), |_| {})
        }));
        let msg = r.expect_err("must refuse").downcast::<String>().expect("message");
        assert!(msg.contains("flat: loss did not decrease"), "{msg}");
    }

    #[test]
    fn rows_are_filtered_and_formatted() {
        let make = || -> Make<f32> { Box::new(|| Box::new(Scripted { losses: vec![2.0, 1.0], at: 0 })) };
        let rows = run_rows("test", 2, vec![("a", make()), ("b", make())], Some("b"), &quick(), |_| {});
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].workload, "b");
        let line = rows[0].tsv("test", 2);
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), HEADER.split('\t').count());
        assert_eq!(&cols[..3], &["test", "b", "2"]);
        assert_eq!(cols[5], "1.00", "backward takes 1 µs per pass: {line}");
    }
}
