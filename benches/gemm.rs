//! The GEMM kernel on the workloads' shapes, in FLOP/s (criterion's "elem/s" = FLOP/s;
//! compare with the machine's FMA peak, which `cargo bench --bench workloads` prints).
//!
//! `cargo bench --bench gemm` (`BENCH_THREADS=2` for two threads)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::Element;
use tapegrad::{Tensor, TorchRng};
use tapegrad_bench::timing::threads_from_env;
use tapegrad_bench::workloads::GEMM_SHAPES;

fn gemm(c: &mut Criterion) {
    let threads = threads_from_env();
    tapegrad::set_num_threads(threads);
    let mut g = c.benchmark_group(format!("sgemm_{threads}t"));
    let mut rng = TorchRng::manual_seed(0);
    for &(name, m, k, n, ta, tb) in GEMM_SHAPES {
        let a = Tensor::<f32>::uniform(&[m * k], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::uniform(&[k * n], -1.0, 1.0, &mut rng);
        let mut out = vec![0.0f32; m * n];
        let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
        let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        g.bench_function(BenchmarkId::new(name, format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| f32::gemm(m, k, n, a.data(), rsa, csa, b.data(), rsb, csb, &mut out, false))
        });
    }
    g.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
