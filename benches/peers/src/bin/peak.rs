//! The machine's f32 FMA peak: GFLOP/s of independent fused multiply-adds on 1 and 2 threads,
//! with 512-bit vectors if the CPU has AVX-512 and with 256-bit ones (AVX2 + FMA; tapegrad's
//! kernels use these, and AVX-512 cores may run them at a higher clock). Twelve
//! accumulators per thread hide the FMA latency (4 cycles, 2 ports: 8 in flight needed);
//! the best of several runs is reported. Prints `peak<TAB>isa<TAB>threads<TAB>gflops`, widest
//! instruction set first.

use std::time::Instant;

/// FLOPs of one call: iters x 12 accumulators x lanes x 2 (multiply + add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for v in acc {
        s = _mm256_add_ps(s, v);
    }
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        type Kernel = unsafe fn(usize) -> f32;
        let mut kernels: Vec<(&str, usize, Kernel)> = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            kernels.push(("avx512", 16, fma512));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            kernels.push(("avx2", 8, fma256));
        }
        if kernels.is_empty() {
            eprintln!("peak: this CPU has neither AVX-512 nor AVX2 + FMA");
            std::process::exit(1);
        }
        let quick = std::env::var("QUICK").is_ok_and(|v| v == "1");
        let (iters, runs) = if quick { (2_000_000, 3) } else { (20_000_000, 7) };
        for (isa, lanes, kernel) in kernels {
            for threads in [1usize, 2] {
                let mut best = 0f64;
                for _ in 0..runs {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            // SAFETY: the kernel's instruction set was detected above.
                            s.spawn(|| std::hint::black_box(unsafe { kernel(std::hint::black_box(iters)) }));
                        }
                    });
                    let flops = (iters * 12 * lanes * 2 * threads) as f64;
                    best = best.max(flops / start.elapsed().as_secs_f64() / 1e9);
                }
                println!("peak\t{isa}\t{threads}\t{best:.1}");
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        eprintln!("peak: only x86_64 is measured");
        std::process::exit(1);
    }
}
