//! The six benchmark workloads (defined in `docs/workloads.md`):
//! the same work for every engine, so timings compare side by side.
//!
//! Each step is: zero the gradients, forward, loss, backward, one SGD update. All f32,
//! PyTorch's default init, L1 loss with mean reduction, inputs and targets fixed uniform
//! [0, 1) tensors made once.

use std::time::{Duration, Instant};

use tapegrad::{ScalarTape, Tape, Tensor, TorchRng};
use tapegrad_nn::{L1Loss, Linear, Module, Optimizer, Reduction, Sequential, Sgd};

pub use crate::timing::{Make, Workload};

/// A dense f32 MLP workload on the tensor tape.
pub struct Dense {
    name: &'static str,
    /// The tape (parameters and the constant data live on it).
    pub tape: Tape<f32>,
    /// The network.
    pub model: Sequential<f32>,
    /// Micro-batches (input, target) as persistent constants; one for a plain step.
    data: Vec<(tapegrad::Param, tapegrad::Param)>,
    loss: L1Loss,
    opt: Sgd<f32>,
}

impl Dense {
    /// The workload's name (`seed`, `mlp-mnist`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A network of `layers` trained on a batch of `batch` in `micro_batches` equal parts.
    pub fn new(name: &'static str, layers: &[usize], batch: usize, micro_batches: usize, lr: f64) -> Self {
        let tape = Tape::new();
        let mut rng = TorchRng::manual_seed(0);
        let model = Sequential::mlp(&tape, layers, &mut rng);
        Self::with_model(name, tape, model, layers[0], *layers.last().unwrap(), batch, micro_batches, lr)
    }

    /// deep-narrow: 32 x (Linear(64, 64) + ReLU), then Linear(64, 1); batch 16.
    pub fn deep_narrow() -> Self {
        let tape = Tape::new();
        let mut rng = TorchRng::manual_seed(0);
        let mut layers: Vec<Box<dyn Module<f32>>> = Vec::new();
        for _ in 0..32 {
            layers.push(Box::new(Linear::new(&tape, 64, 64, &mut rng)));
            layers.push(Box::new(tapegrad_nn::ReLU));
        }
        layers.push(Box::new(Linear::new(&tape, 64, 1, &mut rng)));
        Self::with_model("deep-narrow", tape, Sequential::new(layers), 64, 1, 16, 1, 0.01)
    }

    #[allow(clippy::too_many_arguments)]
    fn with_model(
        name: &'static str,
        tape: Tape<f32>,
        model: Sequential<f32>,
        inp: usize,
        out: usize,
        batch: usize,
        micro_batches: usize,
        lr: f64,
    ) -> Self {
        let mut rng = TorchRng::manual_seed(1);
        let x = Tensor::<f32>::rand(&[batch, inp], &mut rng);
        let t = Tensor::<f32>::rand(&[batch, out], &mut rng);
        let m = batch / micro_batches;
        let data = (0..micro_batches)
            .map(|i| (tape.parameter_with(x.rows(i * m, m), false), tape.parameter_with(t.rows(i * m, m), false)))
            .collect();
        Dense { name, tape, model, data, loss: L1Loss::new(Reduction::Mean), opt: Sgd::new(lr) }
    }

    /// seed: the forum post's 4-8-2 network, batch 2, lr 0.1.
    pub fn seed() -> Self {
        Self::new("seed", &[4, 8, 2], 2, 1, 0.1)
    }
    /// seed-accum2: the same as 2 micro-batches of 1.
    pub fn seed_accum2() -> Self {
        Self::new("seed-accum2", &[4, 8, 2], 2, 2, 0.1)
    }
    /// mlp-mnist: 784-256-256-10, batch 64, lr 0.01.
    pub fn mlp_mnist() -> Self {
        Self::new("mlp-mnist", &[784, 256, 256, 10], 64, 1, 0.01)
    }
    /// mlp-wide: 1024-1024-1024-1024, batch 256, lr 0.01.
    pub fn mlp_wide() -> Self {
        Self::new("mlp-wide", &[1024, 1024, 1024, 1024], 256, 1, 0.01)
    }
}

/// The parts of a training step that [`Dense::timed_step`] times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Zero-grad, then per micro-batch the forward pass and the loss.
    Forward,
    /// The backward passes.
    Backward,
    /// The optimizer's update.
    Update,
}

/// Time spent in each [`Part`] of one step.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    /// Zero-grad and the forward passes with their losses.
    pub forward: Duration,
    /// The backward passes.
    pub backward: Duration,
    /// The optimizer's update.
    pub update: Duration,
}

impl Dense {
    /// One training step, as [`Workload::step`], with the time of each of its parts:
    /// where a whole step's time goes, measured inside the step (the benchmark's forward
    /// and backward figures come from loops of one part alone, with warmer caches).
    /// Returns the loss and the times.
    pub fn timed_step(&mut self) -> (f64, StepTimes) {
        let mut times = StepTimes::default();
        let mut last = Instant::now();
        let loss = self.run_step(|part| {
            let now = Instant::now();
            let slot = match part {
                Part::Forward => &mut times.forward,
                Part::Backward => &mut times.backward,
                Part::Update => &mut times.update,
            };
            *slot += now - last;
            last = now;
        });
        (loss, times)
    }

    /// The step, calling `done(part)` as each part ends (for every micro-batch).
    #[inline(always)]
    fn run_step(&mut self, mut done: impl FnMut(Part)) -> f64 {
        self.tape.zero_grad();
        let mut total = 0.0;
        for i in 0..self.data.len() {
            self.tape.reset();
            let (x, t) = self.data[i];
            let tape = &self.tape;
            let loss = self.loss.forward(self.model.forward(tape.var(x)), tape.var(t));
            done(Part::Forward);
            loss.backward();
            total += loss.item() as f64;
            done(Part::Backward);
        }
        self.tape.reset();
        self.opt.step(&mut self.tape);
        done(Part::Update);
        total
    }
}

impl Workload for Dense {
    fn step(&mut self) -> f64 {
        self.run_step(|_| {})
    }

    fn forward(&mut self, iters: usize) {
        let (x, t) = self.data[0];
        for _ in 0..iters {
            self.tape.reset();
            let tape = &self.tape;
            let loss = self.loss.forward(self.model.forward(tape.var(x)), tape.var(t));
            std::hint::black_box(loss);
        }
    }

    fn backward(&mut self, iters: usize) -> std::time::Duration {
        let (x, t) = self.data[0];
        self.tape.reset();
        let tape = &self.tape;
        let loss = self.loss.forward(self.model.forward(tape.var(x)), tape.var(t));
        let start = std::time::Instant::now();
        for _ in 0..iters {
            tape.zero_grad();
            loss.backward();
        }
        start.elapsed()
    }

    fn splits(&self) -> bool {
        self.data.len() == 1
    }
}

/// scalar-mlp: a 2-16-16-1 MLP on the scalar engine (one node per scalar op), 64 points,
/// loss = mean |y - t|.
pub struct ScalarMlp {
    /// The tape: node 1.. are the parameters, then the data, then each step's graph.
    pub tape: ScalarTape,
    layers: Vec<(usize, usize, usize)>, // (first parameter node, fan_in, fan_out)
    n_params: usize,
    points: usize,
    x0: usize,
    t0: usize,
    mark: usize,
    lr: f64,
    /// Node ids of one layer's activations, and of the next (reused: no allocation).
    h: Vec<usize>,
    next: Vec<usize>,
}

impl ScalarMlp {
    /// The workload (sizes 2-16-16-1, 64 points, lr 0.01).
    pub fn new() -> Self {
        let sizes = [2usize, 16, 16, 1];
        let points = 64;
        let tape = ScalarTape::with_capacity(50_000);
        let mut rng = TorchRng::manual_seed(0);
        let mut layers = Vec::new();
        let mut first = 1;
        for w in sizes.windows(2) {
            // PyTorch's Linear init: weight [out, in] then bias [out], uniform ±1/sqrt(in)
            let b = (1.0 / (w[0] as f64).sqrt()) as f32;
            for _ in 0..w[0] * w[1] + w[1] {
                tape.leaf(rng.uniform_f32(-b, b) as f64);
            }
            layers.push((first, w[0], w[1]));
            first += w[0] * w[1] + w[1];
        }
        let n_params = first - 1;
        let mut rng = TorchRng::manual_seed(1);
        let x0 = tape.len();
        for _ in 0..points * sizes[0] {
            tape.leaf(rng.uniform_f32_unit() as f64);
        }
        let t0 = tape.len();
        for _ in 0..points {
            tape.leaf(rng.uniform_f32_unit() as f64);
        }
        let mark = tape.len();
        ScalarMlp {
            tape,
            layers,
            n_params,
            points,
            x0,
            t0,
            mark,
            lr: 0.01,
            h: Vec::with_capacity(16),
            next: Vec::with_capacity(16),
        }
    }

    /// Records forward + loss; returns the loss node.
    fn record(&mut self) -> usize {
        self.tape.truncate(self.mark);
        let tape = &self.tape;
        let (h, next) = (&mut self.h, &mut self.next);
        let mut total = None;
        for p in 0..self.points {
            h.clear();
            let n_in = self.layers[0].1;
            h.extend((0..n_in).map(|i| self.x0 + p * n_in + i));
            for (li, &(first, fan_in, fan_out)) in self.layers.iter().enumerate() {
                next.clear();
                for o in 0..fan_out {
                    let w = first + o * fan_in;
                    let mut acc = tape.at(w) * tape.at(h[0]);
                    for (i, &hi) in h.iter().enumerate().skip(1) {
                        acc = acc + tape.at(w + i) * tape.at(hi);
                    }
                    acc = acc + tape.at(first + fan_in * fan_out + o);
                    let out = if li + 1 < self.layers.len() { acc.relu() } else { acc };
                    next.push(out.index());
                }
                std::mem::swap(h, next);
            }
            let d = (tape.at(h[0]) - tape.at(self.t0 + p)).abs();
            total = Some(match total {
                None => d,
                Some(s) => s + d,
            });
        }
        let loss = total.expect("points") * (1.0 / self.points as f64);
        loss.index()
    }

    /// Number of nodes one step records (forward and loss).
    pub fn graph_nodes(&mut self) -> usize {
        let loss = self.record();
        loss + 1 - self.mark
    }

    fn update(&mut self) {
        let lr = self.lr;
        let (v, g) = self.tape.values_and_grads_mut(1..1 + self.n_params);
        for (v, g) in v.iter_mut().zip(g.iter_mut()) {
            *v -= lr * *g;
            *g = 0.0;
        }
    }
}

impl Default for ScalarMlp {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for ScalarMlp {
    fn step(&mut self) -> f64 {
        self.tape.zero_grad();
        let loss = self.record();
        let l = self.tape.at(loss);
        l.backward();
        let value = l.value();
        self.update();
        value
    }

    fn forward(&mut self, iters: usize) {
        for _ in 0..iters {
            std::hint::black_box(self.record());
        }
    }

    fn backward(&mut self, iters: usize) -> std::time::Duration {
        let loss = self.record();
        let l = self.tape.at(loss);
        let start = std::time::Instant::now();
        for _ in 0..iters {
            l.backward();
        }
        start.elapsed()
    }
}

/// The dense workload of this name (`None` for scalar-mlp or an unknown name).
pub fn dense(name: &str) -> Option<Dense> {
    Some(match name {
        "seed" => Dense::seed(),
        "seed-accum2" => Dense::seed_accum2(),
        "mlp-mnist" => Dense::mlp_mnist(),
        "mlp-wide" => Dense::mlp_wide(),
        "deep-narrow" => Dense::deep_narrow(),
        _ => return None,
    })
}

/// All six workloads in `docs/workloads.md` order, by name (built on demand: mlp-wide's setup
/// alone draws 3 million random weights).
pub fn all() -> Vec<(&'static str, Make)> {
    vec![
        ("seed", Box::new(|| Box::new(Dense::seed()))),
        ("seed-accum2", Box::new(|| Box::new(Dense::seed_accum2()))),
        ("mlp-mnist", Box::new(|| Box::new(Dense::mlp_mnist()))),
        ("mlp-wide", Box::new(|| Box::new(Dense::mlp_wide()))),
        ("deep-narrow", Box::new(|| Box::new(Dense::deep_narrow()))),
        ("scalar-mlp", Box::new(|| Box::new(ScalarMlp::new()))),
    ]
}

/// Every matrix product of the dense workloads' training steps, as
/// (name, m, k, n, A read transposed, B read transposed): forward x·Wᵀ, backward dX = G·W
/// and dW = Gᵀ·X of each layer. Timed by `benches/gemm.rs` and the `gemm_shapes` tool.
pub const GEMM_SHAPES: &[(&str, usize, usize, usize, bool, bool)] = &[
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
