//! The machine's measured `f32` FMA peak for a vector width (what the benchmarks' shares of
//! peak are against), and the CPU's model name. Independent of tapegrad, so the peers'
//! harness (`benches/peers`) measures the peak with the same loop.

use std::time::Instant;

/// The vector width of the multiply-add loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Width {
    /// 4 lanes, separate multiply and add (SSE2: what a portable x86_64 build executes).
    Sse,
    /// 8 lanes, fused multiply-add (AVX2 + FMA).
    Avx2,
    /// 16 lanes, fused multiply-add (AVX-512F).
    Avx512,
}

impl Width {
    /// Every width, narrowest first.
    pub const ALL: [Width; 3] = [Width::Sse, Width::Avx2, Width::Avx512];

    /// The name printed in rows: `sse`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Width::Sse => "sse",
            Width::Avx2 => "avx2",
            Width::Avx512 => "avx512",
        }
    }

    /// Whether this CPU runs the width's loop.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Width::Sse => true,
                Width::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Width::Avx512 => is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Width::Sse
        }
    }

    /// `f32` lanes per instruction.
    fn lanes(self) -> usize {
        match self {
            Width::Sse => 4,
            Width::Avx2 => 8,
            Width::Avx512 => 16,
        }
    }
}

/// The CPU's model name (`model name` in `/proc/cpuinfo`), or `"unknown CPU"`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// Independent chains: enough to keep two FMA pipes busy through a 4-5 cycle latency.
const CHAINS: usize = 12;

/// f32 GFLOP/s of `threads` threads each running the multiply-add loop of `width`: each
/// thread times its own loop (started together at a barrier), a round counts its
/// slowest thread, and the best of many short rounds is the one no neighbour slowed.
///
/// # Panics
/// If the CPU does not support `width` ([`Width::is_supported`]).
pub fn gflops(width: Width, threads: usize) -> f64 {
    assert!(width.is_supported(), "peak: this CPU does not run {} multiply-adds", width.name());
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
                        std::hint::black_box(run(width, steps));
                        t.elapsed().as_secs_f64()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().expect("peak thread")).fold(0.0, f64::max)
        });
        best = best.min(slowest);
    }
    let flop = steps as f64 * (CHAINS * width.lanes() * 2 * threads) as f64;
    flop / best / 1e9
}

fn run(width: Width, steps: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if width == Width::Avx512 {
        // SAFETY: `gflops` checked that the CPU supports the width.
        return unsafe { fma_avx512(steps) };
    }
    #[cfg(target_arch = "x86_64")]
    if width == Width::Avx2 {
        // SAFETY: `gflops` checked that the CPU supports the width.
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

/// `CHAINS` chains of `acc = acc * x + y` on 16 lanes with fused multiply-adds.
///
/// # Safety
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(steps: u64) -> f32 {
    use std::arch::x86_64::*;
    let (x, y) = std::hint::black_box((_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7)));
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..steps {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    _mm512_reduce_add_ps(acc.iter().fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a)))
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
