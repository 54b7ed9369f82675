//! burn 0.22 versions of the six workloads on the NdArray backend (with autodiff), written
//! as the Burn Book writes a training loop: a `#[derive(Module)]` model of `nn::Linear`
//! layers and `nn::Relu`, the loss from tensor ops, `GradientsParams::from_grads` after each
//! backward, and `SgdConfig::new().init()` stepping the module (`model = optim.step(lr, model,
//! grads)`). Gradients are fresh from every backward pass (nothing to zero); accumulation
//! goes through `GradientsAccumulator`. scalar-mlp keeps one `Param<Tensor<1>>` of shape [1]
//! per scalar (burn has no rank-0 tensors), one graph node per scalar op.
//! `BENCH_THREADS=N cargo run --release --bin burn [WORKLOAD]`.
// burn 0.22 marks NdArray deprecated in favour of its new Flex backend; the comparison keeps
// the backend that burn users have run on CPU until now.
#![allow(deprecated)]

use std::time::Duration;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{activation::relu, Device, Distribution, Tensor};
use tapegrad_peers::{run, timed, Make, Workload};

#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
    activation: Relu,
}

impl Mlp {
    fn new(sizes: &[usize], device: &Device) -> Self {
        let layers = sizes.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect();
        Mlp { layers, activation: Relu::new() }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = self.activation.forward(h);
            }
        }
        h
    }
}

/// mean |y - t| over all elements.
fn l1(y: Tensor<2>, t: Tensor<2>) -> Tensor<1> {
    (y - t).abs().mean()
}

struct Dense {
    /// `None` only while the optimizer owns it during a step.
    model: Option<Mlp>,
    optim: ModuleOptimizer,
    lr: f64,
    data: Vec<(Tensor<2>, Tensor<2>)>,
}

impl Dense {
    fn new(sizes: &[usize], batch: usize, micro: usize, lr: f64) -> Self {
        let device = Device::ndarray().autodiff();
        let model = Mlp::new(sizes, &device);
        let x = Tensor::<2>::random([batch, sizes[0]], Distribution::Default, &device);
        let t = Tensor::<2>::random([batch, *sizes.last().unwrap()], Distribution::Default, &device);
        let m = batch / micro;
        let data = (0..micro).map(|i| (x.clone().narrow(0, i * m, m), t.clone().narrow(0, i * m, m))).collect();
        Dense { model: Some(model), optim: SgdConfig::new().init(), lr, data }
    }

    fn loss(&self, i: usize) -> Tensor<1> {
        let (x, t) = &self.data[i];
        l1(self.model.as_ref().unwrap().forward(x.clone()), t.clone())
    }
}

impl Workload<f32> for Dense {
    fn step(&mut self) -> f32 {
        let mut total = 0.0;
        let grads = if self.data.len() == 1 {
            let loss = self.loss(0);
            let grads = GradientsParams::from_grads(loss.backward(), self.model.as_ref().unwrap());
            total += loss.into_scalar::<f32>();
            grads
        } else {
            let mut acc = GradientsAccumulator::new();
            for i in 0..self.data.len() {
                let loss = self.loss(i);
                let model = self.model.as_ref().unwrap();
                acc.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
                total += loss.into_scalar::<f32>();
            }
            acc.grads()
        };
        let model = self.model.take().unwrap();
        self.model = Some(self.optim.step(self.lr, model, grads));
        total
    }
    fn forward(&mut self, iters: usize) {
        for _ in 0..iters {
            std::hint::black_box(self.loss(0));
        }
    }
    fn backward(&mut self, iters: usize) -> Duration {
        (0..iters)
            .map(|_| {
                let loss = self.loss(0);
                timed(|| _ = std::hint::black_box(loss.backward()))
            })
            .sum()
    }
    fn splits(&self) -> bool {
        self.data.len() == 1
    }
}

/// scalar-mlp's parameters: per layer, weights [out][in] then biases [out].
#[derive(Module, Debug)]
struct ScalarNet {
    weights: Vec<Vec<Vec<Param<Tensor<1>>>>>,
    biases: Vec<Vec<Param<Tensor<1>>>>,
}

/// scalar-mlp: 2-16-16-1 on one-element tensors, 64 points, loss = mean |y - t|, lr 0.01.
struct ScalarMlp {
    net: Option<ScalarNet>,
    optim: ModuleOptimizer,
    xs: Vec<Vec<Tensor<1>>>,
    ts: Vec<Tensor<1>>,
}

impl ScalarMlp {
    fn new() -> Self {
        let device = Device::ndarray().autodiff();
        let sizes = [2usize, 16, 16, 1];
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for w in sizes.windows(2) {
            let b = 1.0 / (w[0] as f64).sqrt();
            let param = || Param::from_tensor(Tensor::<1>::random([1], Distribution::Uniform(-b, b), &device));
            weights.push((0..w[1]).map(|_| (0..w[0]).map(|_| param()).collect()).collect());
            biases.push((0..w[1]).map(|_| param()).collect());
        }
        let scalar = || Tensor::<1>::random([1], Distribution::Default, &device);
        let xs = (0..64).map(|_| (0..2).map(|_| scalar()).collect()).collect();
        let ts = (0..64).map(|_| scalar()).collect();
        ScalarMlp { net: Some(ScalarNet { weights, biases }), optim: SgdConfig::new().init(), xs, ts }
    }

    fn loss(&self) -> Tensor<1> {
        let net = self.net.as_ref().unwrap();
        let layers = net.weights.len();
        let mut total: Option<Tensor<1>> = None;
        for (x, t) in self.xs.iter().zip(&self.ts) {
            let mut h = x.clone();
            for (li, (weights, biases)) in net.weights.iter().zip(&net.biases).enumerate() {
                let mut next = Vec::with_capacity(biases.len());
                for (w, b) in weights.iter().zip(biases) {
                    let mut acc = w[0].val() * h[0].clone();
                    for (wi, hi) in w.iter().zip(&h).skip(1) {
                        acc = acc + wi.val() * hi.clone();
                    }
                    acc = acc + b.val();
                    next.push(if li + 1 < layers { relu(acc) } else { acc });
                }
                h = next;
            }
            let d = (h[0].clone() - t.clone()).abs();
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
        let net = self.net.take().unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optim.step(0.01, net, grads));
        loss.into_scalar::<f32>()
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

fn dense(sizes: &'static [usize], batch: usize, micro: usize, lr: f64) -> Make {
    Box::new(move || Box::new(Dense::new(sizes, batch, micro, lr)))
}

const DEEP_NARROW: [usize; 34] = {
    let mut s = [64; 34];
    s[33] = 1;
    s
};

fn main() {
    run(
        "burn",
        vec![
            ("seed", dense(&[4, 8, 2], 2, 1, 0.1)),
            ("seed-accum2", dense(&[4, 8, 2], 2, 2, 0.1)),
            ("mlp-mnist", dense(&[784, 256, 256, 10], 64, 1, 0.01)),
            ("mlp-wide", dense(&[1024, 1024, 1024, 1024], 256, 1, 0.01)),
            ("deep-narrow", dense(&DEEP_NARROW, 16, 1, 0.01)),
            ("scalar-mlp", Box::new(|| Box::new(ScalarMlp::new()))),
        ],
    );
}
