//! The [`Optimizer`] trait and stochastic gradient descent with PyTorch's update rule and
//! rounding. [`Adam`](crate::Adam) and [`AdamW`](crate::AdamW) are in `adam.rs`.

use tapegrad::kernels::cpu::vectorized;
use tapegrad::kernels::{par_chunks_mut, par_chunks_mut_n};
use tapegrad::{Float, Tape};

use crate::groups::{check_non_negative, group_methods, Groups};

/// An optimizer: updates every parameter of a tape that has a gradient, or those of its
/// parameter groups ([`crate::ParamGroup`]: `Sgd::new(0.1).params(model.parameters())`).
///
/// The same loop drives every optimizer (and [`crate::Accumulation`] takes any of them):
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// use tapegrad_nn::{Adam, Optimizer, Sgd};
///
/// fn train(opt: &mut dyn Optimizer<f32>) -> f32 {
///     let mut tape = Tape::<f32>::new();
///     let p = tape.parameter(Tensor::new(vec![1.0, -2.0], &[2]));
///     for _ in 0..3 {
///         opt.zero_grad(&tape);
///         let w = tape.var(p);
///         (w * w).sum().backward(); // gradient 2 w
///         tape.reset();
///         opt.step(&mut tape);
///     }
///     tape.param_value(p).data()[0]
/// }
/// assert!(train(&mut Sgd::new(0.1).momentum(0.9)) < 1.0);
/// assert!(train(&mut Adam::new(0.01)) < 1.0);
/// ```
///
/// [`train_step`] is the same loop in a shape that cannot forget the reset or the step.
///
/// State (momentum buffers, moment estimates, step counts) is allocated at the first
/// [`step`](Optimizer::step) that sees a parameter's gradient and reused afterwards: later
/// steps allocate nothing. State is indexed by the tape's parameter index, so one optimizer
/// serves one tape (several optimizers can share a tape, each over its own groups).
pub trait Optimizer<T: Float> {
    /// One update of every parameter of the tape (or of the optimizer's groups) that has a
    /// gradient (parameters without one are skipped and their state is left as it is, as
    /// in PyTorch).
    ///
    /// # Panics
    /// If the hyper-parameters contradict each other (e.g. Nesterov without momentum), or
    /// a group's parameter belongs to another tape.
    fn step(&mut self, tape: &mut Tape<T>);

    /// Clears the gradient of every parameter the optimizer updates (PyTorch's
    /// `zero_grad(set_to_none=True)`): all of the tape's (the default), or its groups'.
    fn zero_grad(&self, tape: &Tape<T>) {
        tape.zero_grad();
    }

    /// The learning rate (of the parameters whose group has none of its own).
    fn lr(&self) -> f64;

    /// Sets the learning rate (for schedules); the state is kept.
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    fn set_lr(&mut self, lr: f64);

    /// Forgets the state (buffers, moments, step counts): the next step is a first step
    /// again. The memory is kept for reuse.
    fn reset_state(&mut self);
}

/// One training step that cannot be half done: clears the optimizer's gradients, runs
/// `f` (the forward and backward pass) in a [`Tape::scope`], which resets the tape when `f`
/// returns, then takes the optimizer's step; returns what `f` returned (the loss, say).
/// Forgetting [`Tape::reset`] or the step is not possible in this shape, and `f` borrows
/// the tape only while it runs, so the step's `&mut Tape` never meets a live [`tapegrad::Var`].
///
/// ```
/// use tapegrad::{Tape, Tensor, TorchRng};
/// use tapegrad_nn::{train_step, Module, MSELoss, Sequential, Sgd};
///
/// let mut tape = Tape::<f32>::new();
/// let model = Sequential::mlp(&tape, &[2, 8, 1], &mut TorchRng::manual_seed(0));
/// let mut opt = Sgd::new(0.1);
/// let (x, y) = (Tensor::new(vec![0.5, -1.0], &[1, 2]), Tensor::new(vec![2.0], &[1, 1]));
/// let mut losses = Vec::new();
/// for _ in 0..20 {
///     let loss = train_step(&mut tape, &mut opt, |tape| {
///         let loss = MSELoss::default().forward(model.forward(tape.input(&x)), tape.input(&y));
///         loss.backward();
///         loss.item()
///     });
///     losses.push(loss);
/// }
/// assert!(losses[19] < 0.01 * losses[0] && tape.is_empty());
/// ```
pub fn train_step<T: Float, R>(
    tape: &mut Tape<T>,
    optimizer: &mut (impl Optimizer<T> + ?Sized),
    f: impl FnOnce(&Tape<T>) -> R,
) -> R {
    optimizer.zero_grad(tape);
    let r = tape.scope(f);
    optimizer.step(tape);
    r
}

/// `torch.optim.SGD`: for each parameter `p` with gradient `g`
///
/// ```text
/// g = g + weight_decay * p
/// buf = g                                   (first step)
/// buf = momentum * buf + (1 - dampening) * g (later steps)
/// g = g + momentum * buf  (nesterov)  or  g = buf  (momentum > 0)
/// p = p - lr * g
/// ```
///
/// Each `a + s * b` is rounded once (a fused multiply-add, with `s` first rounded to the
/// element type), which is how PyTorch's CPU kernels compute `add_(b, alpha=s)`;
/// `momentum * buf` is rounded on its own (`buf.mul_(momentum)`). The plain step matches
/// PyTorch bit for bit.
///
/// The builder methods can be called in any order; their combination is checked at the
/// first [`step`](Optimizer::step):
///
/// ```
/// use tapegrad_nn::Sgd;
/// let opt = Sgd::<f32>::new(0.1).nesterov(true).momentum(0.9).weight_decay(1e-4);
/// assert_eq!(opt.momentum, 0.9);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// L2 penalty, added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// Momentum buffer of each parameter (by tape index); empty until its first step.
    buffers: Vec<Vec<T>>,
    /// Whether each parameter's buffer holds a value (false before its first step).
    started: Vec<bool>,
    /// The parameter groups (none: every parameter of the tape).
    groups: Groups,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    #[track_caller]
    pub fn new(lr: f64) -> Self {
        check_non_negative("Sgd", "learning rate", lr);
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            buffers: Vec::new(),
            started: Vec::new(),
            groups: Groups::default(),
        }
    }

    group_methods!("Sgd");

    /// Sets the momentum.
    ///
    /// # Panics
    /// If it is negative or not finite.
    #[track_caller]
    pub fn momentum(mut self, momentum: f64) -> Self {
        check_non_negative("Sgd", "momentum", momentum);
        self.momentum = momentum;
        self
    }

    /// Sets the dampening.
    ///
    /// # Panics
    /// If it is not finite.
    #[track_caller]
    pub fn dampening(mut self, dampening: f64) -> Self {
        assert!(dampening.is_finite(), "Sgd: invalid dampening {dampening}");
        self.dampening = dampening;
        self
    }

    /// Sets the weight decay (L2 penalty).
    ///
    /// # Panics
    /// If it is negative or not finite.
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        check_non_negative("Sgd", "weight_decay", weight_decay);
        self.weight_decay = weight_decay;
        self
    }

    /// Turns Nesterov momentum on or off. Needs a momentum and zero dampening, checked at
    /// the first step (so the builder calls may come in any order).
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }

    /// Whether the hyper-parameters fit together (PyTorch's constructor check).
    ///
    /// # Errors
    /// Nesterov momentum without a momentum, or with dampening.
    pub fn validate(&self) -> Result<(), String> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(format!(
                "Sgd: nesterov needs a momentum > 0 and zero dampening (momentum {}, dampening {})",
                self.momentum, self.dampening
            ));
        }
        Ok(())
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    #[track_caller]
    fn step(&mut self, tape: &mut Tape<T>) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        self.groups.check("Sgd", tape);
        let mom = T::from_f64(self.momentum);
        let one_minus_damp = T::from_f64(1.0 - self.dampening);
        let (nesterov, momentum) = (self.nesterov, self.momentum != 0.0);
        if momentum && self.buffers.len() < tape.num_params() {
            self.buffers.resize_with(tape.num_params(), Vec::new);
            self.started.resize(tape.num_params(), false);
        }
        let (buffers, started, groups) = (&mut self.buffers, &mut self.started, &self.groups);
        let defaults = (self.lr, self.weight_decay);
        tape.for_each_param_mut(|p, value, grad| {
            let Some(grad) = grad else { return };
            let Some((lr, weight_decay)) = groups.settings(p.index(), defaults) else { return };
            let (neg_lr, wd, decay) = (T::from_f64(-lr), T::from_f64(weight_decay), weight_decay != 0.0);
            if !momentum && !decay {
                // p = p - lr * g, one rounding
                tapegrad::kernels::fma_axpy(neg_lr, grad, value);
                return;
            }
            if !momentum {
                par_chunks_mut(value, |at, value| {
                    vectorized(|| {
                        for (v, &g) in value.iter_mut().zip(&grad[at..]) {
                            let d = wd.mul_add(*v, g);
                            *v = neg_lr.mul_add(d, *v);
                        }
                    })
                });
                return;
            }
            let (buf, fresh) = (&mut buffers[p.index()], !started[p.index()]);
            if buf.len() != value.len() {
                *buf = vec![T::ZERO; value.len()];
            }
            started[p.index()] = true;
            par_chunks_mut_n([value, &mut buf[..]], |at, [value, buf]| {
                vectorized(|| {
                    for ((v, &g), m) in value.iter_mut().zip(&grad[at..]).zip(buf.iter_mut()) {
                        let d = if decay { wd.mul_add(*v, g) } else { g };
                        *m = if fresh { d } else { one_minus_damp.mul_add(d, *m * mom) };
                        let d = if nesterov { mom.mul_add(*m, d) } else { *m };
                        *v = neg_lr.mul_add(d, *v);
                    }
                })
            });
        });
    }

    fn zero_grad(&self, tape: &Tape<T>) {
        self.groups.zero_grad(tape);
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_non_negative("Sgd", "learning rate", lr);
        self.lr = lr;
    }

    fn reset_state(&mut self) {
        self.started.fill(false);
    }
}
