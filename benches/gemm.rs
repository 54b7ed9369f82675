//! The GEMM kernel on the workloads' shapes, in FLOP/s (criterion's "elem/s" = FLOP/s;
//! compare with the 97 GFLOP/s single-core peak of this machine kind, `anchors.md`).
//!
//! `cargo bench --bench gemm` (`BENCH_THREADS=2` for two threads)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::kernels::gemm::sgemm;
use tapegrad::{Tensor, TorchRng};

/// (name, m, k, n, A read transposed, B read transposed): forward x·Wᵀ, backward dX = G·W
/// and dW = Gᵀ·X of each dense workload's layers.
const SHAPES: &[(&str, usize, usize, usize, bool, bool)] = &[
    ("wide fwd x·Wᵀ", 256, 1024, 1024, false, true),
    ("wide dX G·W", 256, 1024, 1024, false, false),
    ("wide dW Gᵀ·X", 1024, 256, 1024, true, false),
    ("mnist fwd1 x·Wᵀ", 64, 784, 256, false, true),
    ("mnist fwd2 x·Wᵀ", 64, 256, 256, false, true),
    ("mnist fwd3 x·Wᵀ", 64, 256, 10, false, true),
    ("mnist dX3 G·W", 64, 10, 256, false, false),
    ("mnist dW3 Gᵀ·X", 10, 64, 256, true, false),
    ("mnist dX2 G·W", 64, 256, 256, false, false),
    ("mnist dW2 Gᵀ·X", 256, 64, 256, true, false),
    ("mnist dW1 Gᵀ·X", 256, 64, 784, true, false),
    ("narrow fwd x·Wᵀ", 16, 64, 64, false, true),
    ("narrow dX G·W", 16, 64, 64, false, false),
    ("narrow dW Gᵀ·X", 64, 16, 64, true, false),
    ("seed fwd x·Wᵀ", 2, 4, 8, false, true),
];

fn gemm(c: &mut Criterion) {
    let threads: usize = std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    tapegrad::set_num_threads(threads);
    let mut g = c.benchmark_group(format!("sgemm_{threads}t"));
    let mut rng = TorchRng::manual_seed(0);
    for &(name, m, k, n, ta, tb) in SHAPES {
        let a = Tensor::<f32>::uniform(&[m * k], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::uniform(&[k * n], -1.0, 1.0, &mut rng);
        let mut out = vec![0.0f32; m * n];
        let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
        let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        g.bench_function(BenchmarkId::new(name, format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| sgemm(m, k, n, a.data(), rsa, csa, b.data(), rsb, csb, &mut out, false))
        });
    }
    g.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
