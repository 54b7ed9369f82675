//! Times the GEMM kernel on every matrix product of the dense workloads' training steps,
//! reporting the best of 40 timing loops per shape (a loop runs at least 20 MFLOP, or one
//! call of a larger product): on a shared machine a neighbour can slow a loop, never speed
//! it up, so the best loop is the closest to the kernel's own speed (and a single call is
//! more often left alone than a loop of several long ones). Complements `cargo bench --bench gemm` (criterion
//! medians), which reports what a typical call costs.
//!
//! Shares of peak are against this machine's FMA peak, measured at start-up: a loop of
//! independent multiply-adds (12 accumulators, enough to hide the FMA latency) on 1 and 2
//! threads for each instruction set the CPU supports; the shares use the one in use
//! (`TAPEGRAD_ISA`, default the best).
//!
//! `cargo run --release -p tapegrad-bench --bin gemm_shapes [-- FILTER]` (`BENCH_THREADS=2`
//! for two threads).

use std::hint::black_box;
use std::time::Instant;

use tapegrad::Element;
use tapegrad_bench::peak;
use tapegrad_bench::timing::threads_from_env;
use tapegrad_bench::workloads::GEMM_SHAPES;

fn main() {
    let filter = std::env::args().nth(1);
    let threads = threads_from_env();
    tapegrad::set_num_threads(threads);
    let isa = tapegrad::kernels::cpu::isa();
    println!("# CPU: {}; instruction set in use: {isa}", peak::cpu_model());
    let mut peak = 0.0;
    for other in tapegrad::kernels::Isa::ALL.into_iter().filter(|i| i.is_supported()) {
        for t in 1..=threads.max(2) {
            let p = peak::gflops(tapegrad_bench::peak_width(other), t);
            println!("# f32 peak, {other} multiply-adds, {t} thread(s): {p:.1} GFLOP/s");
            if other == isa && t == threads {
                peak = p;
            }
        }
    }
    println!("shape\tm\tk\tn\tbest_us\tGFLOP/s\t% of {peak:.1} GFLOP/s ({threads} thread(s))");
    for &(name, m, k, n, ta, tb) in GEMM_SHAPES {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut c = vec![0f32; m * n];
        let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
        let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
        let flop = 2.0 * (m * k * n) as f64;
        let iters = ((2e7 / flop) as usize).clamp(1, 100_000);
        let mut best = f64::MAX;
        for _ in 0..40 {
            let t = Instant::now();
            for _ in 0..iters {
                f32::gemm(m, k, n, black_box(&a), rsa, csa, black_box(&b), rsb, csb, &mut c, false);
            }
            best = best.min(t.elapsed().as_secs_f64() / iters as f64);
        }
        let gflops = flop / best / 1e9;
        println!("{name}\t{m}\t{k}\t{n}\t{:.2}\t{gflops:.1}\t{:.0}%", best * 1e6, 100.0 * gflops / peak);
    }
}
