//! dfdx 0.13 versions of the six workloads, written as dfdx's own docs write a training loop:
//! tuple models of `Linear` + `ReLU` builders (`Repeated` for deep-narrow) built with
//! `build_module`, gradients allocated once with `alloc_grads` and cleared with `zero_grads`,
//! the input traced into them (`x.trace(grads)`), `mae_loss`, `loss.backward()` and
//! `Sgd::update`. Accumulation traces each micro-batch into the same gradients without
//! zeroing in between. scalar-mlp uses rank-0 tensors, one graph node per scalar op: each input
//! scalar is traced, a value used several times is reused through `with_empty_tape` copies, and
//! the update is `axpy` on each parameter (dfdx's `Sgd` updates modules, not lists of tensors).
//! `BENCH_THREADS=N cargo run --release --bin dfdx [WORKLOAD]`.

use std::time::Duration;

use dfdx::optim::Sgd;
use dfdx::prelude::*;
use tapegrad_peers::{run, timed, Make, Workload};

/// One dense workload: a model type, the batch, its micro-batch size and the layer ends.
macro_rules! dense {
    ($name:ident, $model:ty, $batch:literal, $micro:literal, $inp:literal, $out:literal) => {
        struct $name {
            model: <$model as BuildOnDevice<Cpu, f32>>::Built,
            /// `None` only while the forward pass holds them.
            grads: Option<Gradients<f32, Cpu>>,
            opt: Sgd<<$model as BuildOnDevice<Cpu, f32>>::Built, f32, Cpu>,
            data: Vec<(Tensor<Rank2<$micro, $inp>, f32, Cpu>, Tensor<Rank2<$micro, $out>, f32, Cpu>)>,
        }

        impl $name {
            fn new(lr: f64) -> Self {
                let dev = Cpu::default();
                let model = dev.build_module::<$model, f32>();
                let grads = Some(model.alloc_grads());
                let opt = Sgd::new(&model, SgdConfig { lr, momentum: None, weight_decay: None });
                let data = (0..$batch / $micro).map(|_| (dev.sample_uniform(), dev.sample_uniform())).collect();
                $name { model, grads, opt, data }
            }
        }

        impl Workload<f32> for $name {
            fn step(&mut self) -> f32 {
                let mut grads = self.grads.take().unwrap();
                self.model.zero_grads(&mut grads);
                let mut total = 0.0;
                for (x, t) in &self.data {
                    let loss = mae_loss(self.model.forward_mut(x.trace(grads)), t.clone());
                    total += loss.array();
                    grads = loss.backward();
                }
                self.opt.update(&mut self.model, &grads).expect("every parameter has a gradient");
                self.grads = Some(grads);
                total
            }
            fn forward(&mut self, iters: usize) {
                let (x, t) = &self.data[0];
                for _ in 0..iters {
                    std::hint::black_box(mae_loss(self.model.forward_mut(x.leaky_trace()), t.clone()));
                }
            }
            fn backward(&mut self, iters: usize) -> Duration {
                let (x, t) = &self.data[0];
                let mut grads = self.grads.take().unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += timed(|| self.model.zero_grads(&mut grads));
                    let loss = mae_loss(self.model.forward_mut(x.trace(grads)), t.clone());
                    let mut out = None;
                    total += timed(|| out = Some(loss.backward()));
                    grads = out.unwrap();
                }
                self.grads = Some(grads);
                total
            }
            fn splits(&self) -> bool {
                self.data.len() == 1
            }
        }
    };
}

dense!(Seed, (Linear<4, 8>, ReLU, Linear<8, 2>), 2, 2, 4, 2);
dense!(SeedAccum2, (Linear<4, 8>, ReLU, Linear<8, 2>), 2, 1, 4, 2);
dense!(MlpMnist, (Linear<784, 256>, ReLU, Linear<256, 256>, ReLU, Linear<256, 10>), 64, 64, 784, 10);
dense!(MlpWide, (Linear<1024, 1024>, ReLU, Linear<1024, 1024>, ReLU, Linear<1024, 1024>), 256, 256, 1024, 1024);
dense!(DeepNarrow, (Repeated<(Linear<64, 64>, ReLU), 32>, Linear<64, 1>), 16, 16, 64, 1);

type Scalar<T = NoneTape> = Tensor<Rank0, f32, Cpu, T>;
type Traced = Scalar<OwnedTape<f32, Cpu>>;

/// scalar-mlp: 2-16-16-1 on rank-0 tensors, 64 points, loss = mean |y - t|, lr 0.01.
struct ScalarMlp {
    /// Per layer: weights [out][in] and biases [out].
    layers: Vec<(Vec<Vec<Scalar>>, Vec<Scalar>)>,
    xs: Vec<Vec<Scalar>>,
    ts: Vec<Scalar>,
}

impl ScalarMlp {
    fn new() -> Self {
        let dev = Cpu::default();
        let sizes = [2usize, 16, 16, 1];
        let layers = sizes
            .windows(2)
            .map(|w| {
                let b = 1.0 / (w[0] as f32).sqrt();
                let param = || -> Scalar { dev.sample_uniform::<Rank0>() * (2.0 * b) - b };
                let weights = (0..w[1]).map(|_| (0..w[0]).map(|_| param()).collect()).collect();
                (weights, (0..w[1]).map(|_| param()).collect())
            })
            .collect();
        let xs = (0..64).map(|_| (0..2).map(|_| dev.sample_uniform()).collect()).collect();
        let ts = (0..64).map(|_| dev.sample_uniform()).collect();
        ScalarMlp { layers, xs, ts }
    }

    fn loss(&self) -> Traced {
        let mut total: Option<Traced> = None;
        for (x, t) in self.xs.iter().zip(&self.ts) {
            let mut h: Vec<Traced> = x.iter().map(|xi| xi.leaky_trace()).collect();
            for (li, (weights, biases)) in self.layers.iter().enumerate() {
                // Each input feeds every output: the first use carries its tape, the others
                // are copies with empty tapes (same tensor id, so the gradients meet).
                let mut uses: Vec<Vec<Traced>> = h
                    .into_iter()
                    .map(|hi| {
                        let mut v: Vec<Traced> = (1..biases.len()).map(|_| hi.with_empty_tape()).collect();
                        v.push(hi);
                        v
                    })
                    .collect();
                h = weights
                    .iter()
                    .zip(biases)
                    .map(|(w, b)| {
                        let mut acc = uses[0].pop().unwrap() * w[0].clone();
                        for (wi, ui) in w.iter().zip(uses.iter_mut()).skip(1) {
                            acc = acc + ui.pop().unwrap() * wi.clone();
                        }
                        acc = acc + b.clone();
                        if li + 1 < self.layers.len() {
                            acc.relu()
                        } else {
                            acc
                        }
                    })
                    .collect();
            }
            let d = (h.pop().unwrap() - t.clone()).abs();
            total = Some(match total {
                None => d,
                Some(s) => s + d,
            });
        }
        total.expect("points") / self.xs.len() as f32
    }
}

impl Workload<f32> for ScalarMlp {
    fn step(&mut self) -> f32 {
        let loss = self.loss();
        let value = loss.array();
        let grads = loss.backward();
        for (weights, biases) in &mut self.layers {
            for p in weights.iter_mut().flatten().chain(biases.iter_mut()) {
                let g = grads.get(&*p);
                p.axpy(1.0, &g, -0.01);
            }
        }
        value
    }
    fn forward(&mut self, iters: usize) {
        for _ in 0..iters {
            std::hint::black_box(self.loss());
        }
    }
    fn backward(&mut self, iters: usize) -> Duration {
        (0..iters)
            .map(|_| {
                let loss = self.loss();
                timed(|| _ = std::hint::black_box(loss.backward()))
            })
            .sum()
    }
}

fn make<W: Workload<f32> + 'static>(f: fn() -> W) -> Make {
    Box::new(move || Box::new(f()))
}

fn main() {
    run(
        "dfdx",
        vec![
            ("seed", make(|| Seed::new(0.1))),
            ("seed-accum2", make(|| SeedAccum2::new(0.1))),
            ("mlp-mnist", make(|| MlpMnist::new(0.01))),
            ("mlp-wide", make(|| MlpWide::new(0.01))),
            ("deep-narrow", make(|| DeepNarrow::new(0.01))),
            ("scalar-mlp", make(ScalarMlp::new)),
        ],
    );
}
