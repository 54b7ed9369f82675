//! Runs N training steps of one benchmark workload, for profilers that count instructions
//! (`valgrind --tool=callgrind`) or sample (`perf record`).
//!
//! `cargo run --release --bin steps -- seed 100000`

use tapegrad_workspace::workloads::all;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "seed".into());
    let steps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let Some((_, make)) = all().into_iter().find(|(n, _)| *n == name) else {
        let names: Vec<_> = all().into_iter().map(|(n, _)| n).collect();
        eprintln!("steps: unknown workload '{name}' (one of {})", names.join(", "));
        std::process::exit(2);
    };
    let mut w = make();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = w.step();
    }
    println!("{name}: {steps} steps, last loss {loss:.6}");
}
