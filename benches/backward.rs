//! Criterion benchmarks of the backward pass: each dense workload's backward alone, and
//! per-op backward micro-benchmarks with their throughput (elements, or FLOPs for matmul:
//! criterion's "elem/s" then reads as FLOP/s).
//!
//! `cargo bench --bench backward`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_bench::workloads::{all, Workload};

fn workloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("workload_backward");
    for (name, make) in all() {
        if name == "seed-accum2" {
            continue; // no separate backward: two passes per step
        }
        let mut w: Box<dyn Workload> = make();
        g.bench_function(name, |b| b.iter_custom(|iters| w.backward(iters as usize)));
    }
    g.finish();
}

/// Parameters `shapes` (uniform in [-1, 1)) and the backward pass of `f` on them, timed
/// with a zero-grad before each pass (so every pass writes fresh gradients, as in training).
fn op_backward(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    shapes: &[&[usize]],
    f: impl for<'t> Fn(&[tapegrad::Var<'t, f32>]) -> tapegrad::Var<'t, f32>,
) {
    let tape = Tape::<f32>::new();
    let mut rng = TorchRng::manual_seed(0);
    let vars: Vec<_> =
        shapes.iter().map(|s| tape.var(tape.parameter(Tensor::uniform(s, -1.0, 1.0, &mut rng)))).collect();
    let y = f(&vars);
    let seed = Tensor::<f32>::ones(&y.shape());
    g.bench_function(id, |b| {
        b.iter(|| {
            tape.zero_grad();
            y.backward_with(&seed);
        })
    });
}

fn ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("op_backward");
    g.measurement_time(Duration::from_secs(3));
    // matmul x·Wᵀ: both operand gradients, dX = G·W and dW = Gᵀ·X (4·m·k·n FLOPs)
    for &(m, k, n) in &[(2usize, 4usize, 8usize), (16, 64, 64), (64, 784, 256), (256, 1024, 1024)] {
        g.throughput(Throughput::Elements((4 * m * k * n) as u64));
        op_backward(&mut g, BenchmarkId::new("matmul_t_flops", format!("{m}x{k}x{n}")), &[&[m, k], &[n, k]], |v| {
            v[0].matmul_t(v[1])
        });
    }
    let (rows, cols) = (256usize, 1024usize);
    g.throughput(Throughput::Elements((rows * cols) as u64));
    op_backward(&mut g, BenchmarkId::new("bias_broadcast", format!("{rows}x{cols}")), &[&[rows, cols], &[cols]], |v| {
        v[0] + v[1]
    });
    op_backward(&mut g, BenchmarkId::new("relu", format!("{rows}x{cols}")), &[&[rows, cols]], |v| v[0].relu());
    op_backward(&mut g, BenchmarkId::new("abs", format!("{rows}x{cols}")), &[&[rows, cols]], |v| v[0].abs());
    op_backward(&mut g, BenchmarkId::new("mean", format!("{rows}x{cols}")), &[&[rows, cols]], |v| v[0].mean());
    g.finish();

    // the scalar engine: backward per node of the scalar-mlp graph
    let mut g = c.benchmark_group("scalar_backward");
    let mut w = tapegrad_bench::workloads::ScalarMlp::new();
    let nodes = w.graph_nodes() as u64;
    g.throughput(Throughput::Elements(nodes));
    g.bench_function(BenchmarkId::new("per_node", format!("{nodes}_nodes")), |b| {
        b.iter_custom(|iters| w.backward(iters as usize))
    });
    g.finish();
}

criterion_group!(benches, workloads, ops);
criterion_main!(benches);
