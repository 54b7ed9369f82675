//! Stochastic gradient descent with PyTorch's update rule and rounding.

use tapegrad::{Float, Tape};

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
/// element type), which is how PyTorch's CPU kernels compute `add_(b, alpha=s)`: the plain
/// step matches PyTorch bit for bit. Parameters without a gradient are skipped.
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    buffers: Vec<Option<Vec<T>>>,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, buffers: Vec::new() }
    }

    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets the weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Enables Nesterov momentum.
    ///
    /// # Panics
    /// If momentum is 0 or dampening is not 0 (as PyTorch).
    pub fn nesterov(mut self, on: bool) -> Self {
        assert!(
            !on || (self.momentum > 0.0 && self.dampening == 0.0),
            "Sgd: nesterov needs a momentum and zero dampening"
        );
        self.nesterov = on;
        self
    }

    /// Clears the gradients of every parameter of the tape.
    pub fn zero_grad(&self, tape: &Tape<T>) {
        tape.zero_grad();
    }

    /// One update of every parameter of the tape that has a gradient.
    pub fn step(&mut self, tape: &mut Tape<T>) {
        let neg_lr = T::from_f64(-self.lr);
        let (wd, mom) = (T::from_f64(self.weight_decay), T::from_f64(self.momentum));
        let one_minus_damp = T::from_f64(1.0 - self.dampening);
        let plain = self.weight_decay == 0.0 && self.momentum == 0.0;
        let (nesterov, momentum) = (self.nesterov, self.momentum != 0.0);
        if self.buffers.len() < tape.num_params() && momentum {
            self.buffers.resize(tape.num_params(), None);
        }
        let buffers = &mut self.buffers;
        tape.for_each_param_mut(|p, value, grad| {
            let Some(grad) = grad else { return };
            if plain {
                // p = p - lr * g, one rounding
                tapegrad::kernels::fma_axpy(neg_lr, grad, value);
                return;
            }
            let buf = if momentum { Some(&mut buffers[p.index()]) } else { None };
            let fresh = buf.as_ref().is_some_and(|b| b.is_none());
            if let Some(b) = buf {
                let b = b.get_or_insert_with(|| vec![T::ZERO; value.len()]);
                for ((v, &g), m) in value.iter_mut().zip(grad).zip(b.iter_mut()) {
                    let d = if wd != T::ZERO { wd.mul_add(*v, g) } else { g };
                    *m = if fresh { d } else { one_minus_damp.mul_add(d, *m * mom) };
                    let d = if nesterov { mom.mul_add(*m, d) } else { *m };
                    *v = neg_lr.mul_add(d, *v);
                }
            } else {
                for (v, &g) in value.iter_mut().zip(grad) {
                    let d = wd.mul_add(*v, g);
                    *v = neg_lr.mul_add(d, *v);
                }
            }
        });
    }
}
