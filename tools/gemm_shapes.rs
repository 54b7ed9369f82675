//! Times the GEMM kernel on every matrix product of the dense workloads' training steps,
//! reporting the best of 15 timing loops per shape (a loop runs at least 20 MFLOP): on a
//! shared machine a neighbour can slow a loop, never speed it up, so the best loop is the
//! closest to the kernel's own speed. Complements `cargo bench --bench gemm` (criterion
//! medians), which reports what a typical call costs.
//!
//! Shares of peak are against this machine's FMA peak, measured at start-up: a loop of
//! independent multiply-adds (12 accumulators, enough to hide the FMA latency) on 1 and 2
//! threads for each instruction set the CPU supports; the shares use the one in use
//! (`TAPEGRAD_ISA`, default the best).
//!
//! `cargo run --release --bin gemm_shapes [-- FILTER]`, `THREADS=2` for two threads.

use std::hint::black_box;
use std::time::Instant;

use tapegrad::Element;
use tapegrad_workspace::workloads::GEMM_SHAPES;

fn main() {
    let filter = std::env::args().nth(1);
    let threads: usize = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    tapegrad::set_num_threads(threads);
    let isa = tapegrad::kernels::cpu::isa();
    let mut peak = 0.0;
    for other in tapegrad::kernels::Isa::ALL.into_iter().filter(|i| i.is_supported()) {
        for t in 1..=threads.max(2) {
            let p = peak::gflops(other, t);
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
        let iters = ((2e7 / flop) as usize).clamp(10, 100_000);
        let mut best = f64::MAX;
        for _ in 0..15 {
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

/// The FMA peak: independent multiply-add chains, timed best of several runs.
mod peak {
    use std::time::Instant;

    use tapegrad::kernels::Isa;

    /// Independent chains: enough to keep two FMA pipes busy through a 4-5 cycle latency.
    const CHAINS: usize = 12;

    /// f32 GFLOP/s of `threads` threads each running the multiply-add loop of `isa`: each
    /// thread times its own loop (started together at a barrier), a round counts its
    /// slowest thread, and the best of many short rounds is the one no neighbour slowed.
    pub fn gflops(isa: Isa, threads: usize) -> f64 {
        let steps: u64 = 200_000;
        let mut best = f64::MAX;
        for _ in 0..50 {
            let start = std::sync::Barrier::new(threads);
            let slowest = std::thread::scope(|s| {
                let runs: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            let t = Instant::now();
                            std::hint::black_box(run(isa, steps));
                            t.elapsed().as_secs_f64()
                        })
                    })
                    .collect();
                runs.into_iter().map(|r| r.join().expect("peak thread")).fold(0.0, f64::max)
            });
            best = best.min(slowest);
        }
        let flop = steps as f64 * (CHAINS * lanes(isa) * 2 * threads) as f64;
        flop / best / 1e9
    }

    /// f32 lanes per instruction.
    fn lanes(isa: Isa) -> usize {
        match isa {
            Isa::Portable => 4,
            _ => 8,
        }
    }

    fn run(isa: Isa, steps: u64) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2 {
            // SAFETY: the kernels only activate an instruction set the CPU supports.
            return unsafe { fma_avx2(steps) };
        }
        portable(steps)
    }

    /// `CHAINS` chains of `acc = acc * x + y` on 8 lanes with fused multiply-adds.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fma_avx2(steps: u64) -> f32 {
        use std::arch::x86_64::*;
        let (x, y) = std::hint::black_box((_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7)));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), acc.iter().fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a)));
        out.iter().sum()
    }

    /// `CHAINS` chains of `acc = acc * x + y` on 4 lanes (SSE2, the x86_64 baseline: a
    /// separate multiply and add, which is what the portable build executes).
    #[cfg(target_arch = "x86_64")]
    fn portable(steps: u64) -> f32 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            let (x, y) = std::hint::black_box((_mm_set1_ps(0.999_999), _mm_set1_ps(1e-7)));
            let mut acc = [_mm_set1_ps(1.0); CHAINS];
            for _ in 0..steps {
                for a in acc.iter_mut() {
                    *a = _mm_add_ps(_mm_mul_ps(*a, x), y);
                }
            }
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), acc.iter().fold(_mm_setzero_ps(), |s, &a| _mm_add_ps(s, a)));
            out.iter().sum()
        }
    }

    /// `CHAINS` chains of `acc = acc * x + y` on 4 lanes in plain Rust.
    #[cfg(not(target_arch = "x86_64"))]
    fn portable(steps: u64) -> f32 {
        let (x, y) = std::hint::black_box((0.999_999f32, 1e-7f32));
        let mut acc = [[1.0f32; 4]; CHAINS];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                for v in a.iter_mut() {
                    *v = *v * x + y;
                }
            }
        }
        acc.iter().flatten().sum()
    }
}
