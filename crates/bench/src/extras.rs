//! Benchmarks beside the six workloads, one piece each, timed against PyTorch by
//! `scripts/compare-peers.sh` (`docs/benchmarks.md`):
//!
//! - **adam-wide**: one Adam step (lr 1e-3, default betas and eps) over mlp-wide's 3.1 M
//!   parameters with gradients present: the optimizer alone, no forward or backward.
//! - **train-digits**: one training step of a 64-64-10 MLP (ReLU) on a batch of 64 of the
//!   bundled 8x8 digits, cross-entropy (mean) and SGD (lr 0.1), cycling through the data
//!   set's whole batches of 64. Images per second = 64 / step.
//! - **names-full** and **names-tokens**: one step of examples/train_names' run 1 (32
//!   surnames padded to the longest, token-mean cross-entropy, SGD lr 0.1) and of its run 3
//!   (the same batch as 32 micro-batches of one name, each one's summed loss over the
//!   batch's token count), cycling through the first 20 batches of the bundled surnames in
//!   file order; the makemore MLP (3 characters, embeddings of 10, 200 tanh units).

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::names::{self, NameBatch};
use tapegrad_nn::{
    Accumulation, Adam, CrossEntropyLoss, Dataset, L1Loss, LossScale, Module, Optimizer, Reduction, Sequential, Sgd,
};

/// One timed piece: `step` runs it once and returns a number that must not be optimised
/// away (the loss where there is one).
pub trait Extra {
    /// The benchmark's name in the output rows.
    fn name(&self) -> &'static str;
    /// One step.
    fn step(&mut self) -> f64;
}

/// adam-wide: an Adam step over 1024-1024-1024-1024's parameters.
pub struct AdamWide {
    tape: Tape<f32>,
    opt: Adam<f32>,
    /// The first layer's weight.
    first: tapegrad::Param,
}

impl AdamWide {
    /// The network with gradients from one backward pass of mlp-wide's L1 loss.
    pub fn new() -> Self {
        let tape = Tape::<f32>::new();
        let mut rng = TorchRng::manual_seed(0);
        let model = Sequential::mlp(&tape, &[1024, 1024, 1024, 1024], &mut rng);
        let x = Tensor::<f32>::rand(&[256, 1024], &mut rng);
        let t = Tensor::<f32>::rand(&[256, 1024], &mut rng);
        L1Loss::new(Reduction::Mean).forward(model.forward(tape.input(x)), tape.input(t)).backward();
        let mut tape = tape;
        tape.reset();
        AdamWide { tape, opt: Adam::new(1e-3), first: model.parameters()[0] }
    }
}

impl AdamWide {
    /// The first layer's weight now.
    pub fn first_weight(&self) -> Tensor<f32> {
        self.tape.param_value(self.first)
    }
}

impl Default for AdamWide {
    fn default() -> Self {
        Self::new()
    }
}

impl Extra for AdamWide {
    fn name(&self) -> &'static str {
        "adam-wide"
    }
    fn step(&mut self) -> f64 {
        self.opt.step(&mut self.tape);
        0.0
    }
}

/// train-digits: SGD on the digits with cross-entropy, batch 64.
pub struct TrainDigits {
    tape: Tape<f32>,
    model: Sequential<f32>,
    opt: Sgd<f32>,
    loss: CrossEntropyLoss,
    /// Whole batches of 64: (inputs, class indices as f32).
    batches: Vec<(Tensor<f32>, Vec<f32>)>,
    next: usize,
}

impl TrainDigits {
    /// The model (seed 0) and the data set's whole batches of 64, in file order.
    pub fn new() -> Self {
        let data = Dataset::<f32>::digits().expect("the bundled digits data set");
        let batches = (0..data.len() / 64)
            .map(|b| {
                let batch = data.batch(&(b * 64..(b + 1) * 64).collect::<Vec<_>>());
                let labels = batch.labels.iter().map(|&c| c as f32).collect();
                (batch.inputs, labels)
            })
            .collect();
        let tape = Tape::<f32>::new();
        let model = Sequential::mlp(&tape, &[64, 64, 10], &mut TorchRng::manual_seed(0));
        TrainDigits { tape, model, opt: Sgd::new(0.1), loss: CrossEntropyLoss::new(Reduction::Mean), batches, next: 0 }
    }
}

impl Default for TrainDigits {
    fn default() -> Self {
        Self::new()
    }
}

impl Extra for TrainDigits {
    fn name(&self) -> &'static str {
        "train-digits"
    }
    fn step(&mut self) -> f64 {
        let (x, t) = &self.batches[self.next];
        self.next = (self.next + 1) % self.batches.len();
        self.tape.zero_grad();
        self.tape.reset();
        let input = self.tape.leaf_from_slice(x.data(), x.shape(), false);
        let target = self.tape.leaf_from_slice(t, &[t.len()], false);
        let loss = self.loss.forward(self.model.forward(input), target);
        loss.backward();
        let value = loss.item() as f64;
        self.tape.reset();
        self.opt.step(&mut self.tape);
        value
    }
}

/// names-full / names-tokens: a step of examples/train_names' run 1 or run 3.
pub struct Names {
    name: &'static str,
    tape: Tape<f32>,
    model: Sequential<f32>,
    opt: Sgd<f32>,
    accumulation: Accumulation,
    batches: Vec<NameBatch<f32>>,
    losses: Vec<f32>,
    next: usize,
}

impl Names {
    /// Run 1 (`micro_batches` 1, the token mean) or run 3 (32 micro-batches, the token
    /// count), model seed 0.
    pub fn new(micro_batches: usize) -> Self {
        let all = names::surnames();
        let batches = all
            .chunks(32)
            .take(20)
            .map(|chunk| {
                let mut b = NameBatch::default();
                b.fill(chunk.iter().copied(), 3);
                b
            })
            .collect();
        let tape = Tape::<f32>::new();
        let model = names::char_mlp(&tape, 3, 10, 200, &mut TorchRng::manual_seed(0));
        let (name, scale) =
            if micro_batches == 1 { ("names-full", LossScale::None) } else { ("names-tokens", LossScale::PerLossTerm) };
        let accumulation = Accumulation::new(micro_batches, scale);
        Names { name, tape, model, opt: Sgd::new(0.1), accumulation, batches, losses: Vec::with_capacity(32), next: 0 }
    }
}

impl Extra for Names {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&mut self) -> f64 {
        let b = &self.batches[self.next];
        self.next = (self.next + 1) % self.batches.len();
        let ce = CrossEntropyLoss::new(Reduction::Mean);
        let data = (&b.contexts, &b.targets);
        self.accumulation.run_into((&mut self.tape, &self.model, &ce), data, Some(&mut self.opt), &mut self.losses);
        f64::from(self.losses[0])
    }
}

/// Constructor of an extra benchmark.
pub type MakeExtra = fn() -> Box<dyn Extra>;

/// The extra benchmarks, by name.
pub fn extras() -> Vec<(&'static str, MakeExtra)> {
    vec![
        ("adam-wide", || Box::new(AdamWide::new())),
        ("train-digits", || Box::new(TrainDigits::new())),
        ("names-full", || Box::new(Names::new(1))),
        ("names-tokens", || Box::new(Names::new(32))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_wide_moves_the_parameters() {
        let mut w = AdamWide::new();
        let before = w.first_weight();
        w.step();
        let after = w.first_weight();
        assert_ne!(before.data(), after.data());
    }

    #[test]
    fn train_digits_learns() {
        let mut w = TrainDigits::new();
        let first: f64 = (0..28).map(|_| w.step()).sum();
        let later: f64 = (0..28).map(|_| w.step()).sum();
        assert!(later < first, "epoch loss {first} -> {later}");
    }
}
