//! Runs N training steps of one benchmark workload, for profilers that count instructions
//! (`valgrind --tool=callgrind`) or sample (`perf record`); with `--parts`, times the parts
//! of each step of a dense workload (forward, backward, optimizer update) and prints each
//! part's minimum and median over the steps, after one warm-up step.
//!
//! `cargo run --release -p tapegrad-bench --bin steps -- seed 100000`
//! `cargo run --release -p tapegrad-bench --bin steps -- mlp-wide 40 --parts` (`BENCH_THREADS=2` for two threads)

use std::time::Duration;

use tapegrad_bench::timing::threads_from_env;
use tapegrad_bench::workloads::{all, dense, StepTimes};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parts = args.iter().any(|a| a == "--parts");
    let mut plain = args.iter().filter(|a| !a.starts_with("--"));
    let name = plain.next().cloned().unwrap_or_else(|| "seed".into());
    let steps: usize = match plain.next().map(|s| s.parse()) {
        None => 10_000,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => fail("the step count must be a whole number of at least 1"),
    };
    let threads = threads_from_env();
    tapegrad::set_num_threads(threads);
    if parts {
        let Some(mut w) = dense(&name) else {
            fail(&format!("--parts needs a dense workload, not '{name}'"));
        };
        w.timed_step();
        let times: Vec<_> = (0..steps).map(|_| w.timed_step().1).collect();
        println!("{name}, {threads} thread(s), {steps} steps: ms per step, minimum and median");
        let parts: [(&str, Pick); 4] = [
            ("forward (with zero-grad and loss)", |t| t.forward),
            ("backward", |t| t.backward),
            ("optimizer update", |t| t.update),
            ("whole step", |t| t.forward + t.backward + t.update),
        ];
        for (label, part) in parts {
            let mut ms: Vec<f64> = times.iter().map(|t| part(t).as_secs_f64() * 1e3).collect();
            ms.sort_by(f64::total_cmp);
            println!("{label:34} {:9.3} {:9.3}", ms[0], ms[ms.len() / 2]);
        }
        return;
    }
    let Some((_, make)) = all().into_iter().find(|(n, _)| *n == name) else {
        let names: Vec<_> = all().into_iter().map(|(n, _)| n).collect();
        fail(&format!("unknown workload '{name}' (one of {})", names.join(", ")));
    };
    let mut w = make();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = w.step();
    }
    println!("{name}: {steps} steps, last loss {loss:.6}");
}

/// Picks one part's time out of a step's.
type Pick = fn(&StepTimes) -> Duration;

/// Prints `message` and exits with status 2.
fn fail(message: &str) -> ! {
    eprintln!("steps: {message}");
    std::process::exit(2);
}
