//! candle 0.11 versions of the six workloads, written as a candle user writes a training
//! loop: `candle_nn::linear` layers in a `candle_nn::seq()` built from a `VarMap`, the loss
//! from tensor ops, and `candle_nn::SGD` (`backward_step`: a fresh `GradStore` from each
//! backward pass, so gradients start at zero every step). Accumulation merges the micro-batches'
//! stores with `GradStore::extend` before one `SGD::step`. scalar-mlp uses 0-d `Var`s, one
//! graph node per scalar op. `BENCH_THREADS=N cargo run --release --bin candle [WORKLOAD]`.

use std::time::Duration;

use candle_core::{backprop::GradStore, DType, Device, Result, Tensor, Var};
use candle_nn::{linear, Activation, Module, Optimizer, Sequential, VarBuilder, VarMap, SGD};
use tapegrad_peers::{run, timed, Make, Workload};

/// mean |y - t| over all elements.
fn l1(y: &Tensor, t: &Tensor) -> Result<Tensor> {
    y.sub(t)?.abs()?.mean_all()
}

struct Dense {
    model: Sequential,
    opt: SGD,
    /// (input, target) per micro-batch; one for a plain step.
    data: Vec<(Tensor, Tensor)>,
}

impl Dense {
    /// Linear layers of `sizes` with ReLU between them, or `deep` hidden layers of `sizes[1]`.
    fn new(sizes: &[usize], batch: usize, micro: usize, lr: f64) -> Result<Self> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let mut model = candle_nn::seq();
        for (i, w) in sizes.windows(2).enumerate() {
            model = model.add(linear(w[0], w[1], vb.pp(format!("l{i}")))?);
            if i + 2 < sizes.len() {
                model = model.add(Activation::Relu);
            }
        }
        let opt = SGD::new(varmap.all_vars(), lr)?;
        let x = Tensor::rand(0f32, 1f32, (batch, sizes[0]), &dev)?;
        let t = Tensor::rand(0f32, 1f32, (batch, *sizes.last().unwrap()), &dev)?;
        let m = batch / micro;
        let data = (0..micro).map(|i| Ok((x.narrow(0, i * m, m)?, t.narrow(0, i * m, m)?))).collect::<Result<_>>()?;
        Ok(Dense { model, opt, data })
    }

    fn loss(&self, i: usize) -> Result<Tensor> {
        let (x, t) = &self.data[i];
        l1(&self.model.forward(x)?, t)
    }

    fn try_step(&mut self) -> Result<f32> {
        if self.data.len() == 1 {
            let loss = self.loss(0)?;
            self.opt.backward_step(&loss)?;
            return loss.to_scalar::<f32>();
        }
        let mut total = 0.0;
        let mut grads: Option<GradStore> = None;
        for i in 0..self.data.len() {
            let loss = self.loss(i)?;
            let g = loss.backward()?;
            match grads.as_mut() {
                None => grads = Some(g),
                Some(acc) => acc.extend(g)?,
            }
            total += loss.to_scalar::<f32>()?;
        }
        self.opt.step(&grads.expect("micro-batches"))?;
        Ok(total)
    }
}

impl Workload<f32> for Dense {
    fn step(&mut self) -> f32 {
        self.try_step().expect("candle step")
    }
    fn forward(&mut self, iters: usize) {
        for _ in 0..iters {
            std::hint::black_box(self.loss(0).expect("forward"));
        }
    }
    fn backward(&mut self, iters: usize) -> Duration {
        let loss = self.loss(0).expect("forward");
        timed(|| {
            for _ in 0..iters {
                std::hint::black_box(loss.backward().expect("backward"));
            }
        })
    }
    fn splits(&self) -> bool {
        self.data.len() == 1
    }
}

/// scalar-mlp: 2-16-16-1 on 0-d tensors, 64 points, loss = mean |y - t|, lr 0.01.
struct ScalarMlp {
    /// Per layer: weights [out][in] and biases [out].
    layers: Vec<(Vec<Vec<Tensor>>, Vec<Tensor>)>,
    xs: Vec<Vec<Tensor>>,
    ts: Vec<Tensor>,
    opt: SGD,
}

impl ScalarMlp {
    fn new() -> Result<Self> {
        let dev = Device::Cpu;
        let sizes = [2usize, 16, 16, 1];
        let mut vars = Vec::new();
        let mut layers = Vec::new();
        for w in sizes.windows(2) {
            let b = 1.0 / (w[0] as f64).sqrt();
            let mut param = || -> Result<Tensor> {
                let v = Var::rand(-b as f32, b as f32, (), &dev)?;
                let t = v.as_tensor().clone();
                vars.push(v);
                Ok(t)
            };
            let weights =
                (0..w[1]).map(|_| (0..w[0]).map(|_| param()).collect::<Result<Vec<_>>>()).collect::<Result<_>>()?;
            let biases = (0..w[1]).map(|_| param()).collect::<Result<_>>()?;
            layers.push((weights, biases));
        }
        let scalar = || Tensor::rand(0f32, 1f32, (), &dev);
        let xs = (0..64).map(|_| (0..2).map(|_| scalar()).collect::<Result<Vec<_>>>()).collect::<Result<_>>()?;
        let ts = (0..64).map(|_| scalar()).collect::<Result<_>>()?;
        Ok(ScalarMlp { layers, xs, ts, opt: SGD::new(vars, 0.01)? })
    }

    fn loss(&self) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for (x, t) in self.xs.iter().zip(&self.ts) {
            let mut h = x.clone();
            for (li, (weights, biases)) in self.layers.iter().enumerate() {
                let mut next = Vec::with_capacity(biases.len());
                for (w, b) in weights.iter().zip(biases) {
                    let mut acc = w[0].mul(&h[0])?;
                    for (wi, hi) in w.iter().zip(&h).skip(1) {
                        acc = acc.add(&wi.mul(hi)?)?;
                    }
                    acc = acc.add(b)?;
                    next.push(if li + 1 < self.layers.len() { acc.relu()? } else { acc });
                }
                h = next;
            }
            let d = h[0].sub(t)?.abs()?;
            total = Some(match total {
                None => d,
                Some(s) => s.add(&d)?,
            });
        }
        total.expect("points") / self.xs.len() as f64
    }
}

impl Workload<f32> for ScalarMlp {
    fn step(&mut self) -> f32 {
        let loss = self.loss().expect("forward");
        self.opt.backward_step(&loss).expect("backward and SGD");
        loss.to_scalar::<f32>().expect("loss")
    }
    fn forward(&mut self, iters: usize) {
        for _ in 0..iters {
            std::hint::black_box(self.loss().expect("forward"));
        }
    }
    fn backward(&mut self, iters: usize) -> Duration {
        let loss = self.loss().expect("forward");
        timed(|| {
            for _ in 0..iters {
                std::hint::black_box(loss.backward().expect("backward"));
            }
        })
    }
}

fn dense(sizes: &'static [usize], batch: usize, micro: usize, lr: f64) -> Make {
    Box::new(move || Box::new(Dense::new(sizes, batch, micro, lr).expect("candle setup")))
}

const DEEP_NARROW: [usize; 34] = {
    let mut s = [64; 34];
    s[33] = 1;
    s
};

fn main() {
    run(
        "candle",
        vec![
            ("seed", dense(&[4, 8, 2], 2, 1, 0.1)),
            ("seed-accum2", dense(&[4, 8, 2], 2, 2, 0.1)),
            ("mlp-mnist", dense(&[784, 256, 256, 10], 64, 1, 0.01)),
            ("mlp-wide", dense(&[1024, 1024, 1024, 1024], 256, 1, 0.01)),
            ("deep-narrow", dense(&DEEP_NARROW, 16, 1, 0.01)),
            ("scalar-mlp", Box::new(|| Box::new(ScalarMlp::new().expect("candle setup")))),
        ],
    );
}
