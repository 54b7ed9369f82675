//! Adam and AdamW with PyTorch's update rule and rounding (`torch.optim.Adam` / `AdamW`,
//! the single-tensor `foreach=False` path, without amsgrad).

use tapegrad::kernels::cpu::vectorized;
use tapegrad::kernels::par_chunks_mut_n;
use tapegrad::{Float, Tape};

use crate::groups::check_non_negative;
use crate::groups::{group_methods, Groups};
use crate::optim::Optimizer;

/// Moment estimates and step counts, per parameter (by tape index).
#[derive(Clone, Debug, Default)]
struct Moments<T> {
    /// Steps taken by each parameter.
    steps: Vec<u64>,
    /// First moments `m` (`exp_avg`); empty until the parameter's first step.
    m: Vec<Vec<T>>,
    /// Second moments `v` (`exp_avg_sq`).
    v: Vec<Vec<T>>,
}

impl<T: Float> Moments<T> {
    fn reset(&mut self) {
        self.steps.fill(0);
    }
}

/// The hyper-parameters shared by [`Adam`] and [`AdamW`].
#[derive(Clone, Copy, Debug)]
struct Hyper {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    /// AdamW: `p *= 1 - lr * weight_decay` instead of adding `weight_decay * p` to `g`.
    decoupled: bool,
}

/// `a + w (b - a)` as PyTorch's vectorized CPU `lerp` computes it, in one rounding:
/// `fma(w, b - a, a)` for `|w| < 0.5`, else `fma(w - 1, b - a, b)`.
#[inline(always)]
fn lerp<T: Float>(a: T, b: T, w: T) -> T {
    if w.abs() < T::from_f64(0.5) {
        w.mul_add(b - a, a)
    } else {
        (w - T::ONE).mul_add(b - a, b)
    }
}

/// One Adam(W) step over the tape. For each parameter `p` with gradient `g`, at its step
/// `t` (from 1), with PyTorch's operations and roundings (scalars computed in `f64`,
/// rounded to the element type where they meet a tensor):
///
/// ```text
/// p = p * (1 - lr wd)                  (AdamW)     p.mul_(1 - lr*wd)
/// g = g + wd p                         (Adam)      g.add(p, alpha=wd), one rounding
/// m = lerp(m, g, 1 - b1)                           exp_avg.lerp_(g, 1 - b1)
/// v = v b2 + (1 - b2) g g                          exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
/// denom = sqrt(v) / sqrt(1 - b2^t) + eps           (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
/// p = p + (-lr / (1 - b1^t)) m / denom             p.addcdiv_(m, denom, value=-step_size)
/// ```
///
/// `groups` choose the parameters and their `lr` and weight decay (`h`'s are the defaults).
fn adam_step<T: Float>(h: &Hyper, groups: &Groups, state: &mut Moments<T>, tape: &mut Tape<T>) {
    let n = tape.num_params();
    if state.steps.len() < n {
        state.steps.resize(n, 0);
        state.m.resize_with(n, Vec::new);
        state.v.resize_with(n, Vec::new);
    }
    let (b1, b2) = h.betas;
    let w1 = T::from_f64(1.0 - b1);
    let (b2_t, c2) = (T::from_f64(b2), T::from_f64(1.0 - b2));
    let eps = T::from_f64(h.eps);
    tape.for_each_param_mut(|p, value, grad| {
        let Some(grad) = grad else { return };
        let i = p.index();
        let Some((lr, weight_decay)) = groups.settings(i, (h.lr, h.weight_decay)) else { return };
        let (wd, decay) = (T::from_f64(weight_decay), weight_decay != 0.0);
        let shrink = T::from_f64(1.0 - lr * weight_decay);
        let (m, v) = (&mut state.m[i], &mut state.v[i]);
        if state.steps[i] == 0 {
            if m.len() != value.len() {
                *m = vec![T::ZERO; value.len()];
                *v = vec![T::ZERO; value.len()];
            } else {
                m.fill(T::ZERO);
                v.fill(T::ZERO);
            }
        }
        state.steps[i] += 1;
        let t = state.steps[i] as f64;
        // Python floats: 1 - beta**step, lr / bias_correction1, bias_correction2**0.5
        let bias_correction1 = 1.0 - b1.powf(t);
        let bias_correction2 = 1.0 - b2.powf(t);
        let neg_step = T::from_f64(-(lr / bias_correction1));
        let bc2_sqrt = T::from_f64(bias_correction2.powf(0.5));
        // elementwise, so the threads' parts give the same floats as one pass; `vectorized`
        // also for parameters below 1,024 elements, which the split runs as they are
        par_chunks_mut_n([value, &mut m[..], &mut v[..]], |at, [value, m, v]| {
            vectorized(|| {
                for (((x, &g), m), v) in value.iter_mut().zip(&grad[at..]).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = if !decay {
                        g
                    } else if h.decoupled {
                        *x *= shrink;
                        g
                    } else {
                        wd.mul_add(*x, g)
                    };
                    *m = lerp(*m, g, w1);
                    *v = (c2 * g).mul_add(g, *v * b2_t);
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *x += (neg_step * *m) / denom;
                }
            })
        });
    });
}

/// Checks a pair of betas (each in `[0, 1)`), naming the optimizer.
#[track_caller]
fn check_betas(who: &str, b1: f64, b2: f64) {
    for (i, b) in [(0, b1), (1, b2)] {
        assert!((0.0..1.0).contains(&b), "{who}: invalid beta parameter at index {i}: {b} (must be in [0, 1))");
    }
}

macro_rules! adam_like {
    ($name:ident, $who:literal, $decoupled:expr, $default_wd:expr) => {
        impl<T: Float> $name<T> {
            /// With learning rate `lr` and PyTorch's other defaults.
            ///
            /// # Panics
            /// If `lr` is negative or not finite.
            #[track_caller]
            pub fn new(lr: f64) -> Self {
                check_non_negative($who, "learning rate", lr);
                $name {
                    lr,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    weight_decay: $default_wd,
                    state: Moments::default(),
                    groups: Groups::default(),
                }
            }

            group_methods!($who);

            /// Sets the coefficients of the running averages of the gradient and its square.
            ///
            /// # Panics
            /// If either is outside `[0, 1)`.
            #[track_caller]
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                check_betas($who, beta1, beta2);
                self.betas = (beta1, beta2);
                self
            }

            /// Sets the term added to the denominator.
            ///
            /// # Panics
            /// If it is negative or not finite.
            #[track_caller]
            pub fn eps(mut self, eps: f64) -> Self {
                check_non_negative($who, "epsilon value", eps);
                self.eps = eps;
                self
            }

            /// Sets the weight decay.
            ///
            /// # Panics
            /// If it is negative or not finite.
            #[track_caller]
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                check_non_negative($who, "weight_decay value", weight_decay);
                self.weight_decay = weight_decay;
                self
            }

            fn hyper(&self) -> Hyper {
                Hyper {
                    lr: self.lr,
                    betas: self.betas,
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                    decoupled: $decoupled,
                }
            }
        }

        impl<T: Float> Optimizer<T> for $name<T> {
            #[track_caller]
            fn step(&mut self, tape: &mut Tape<T>) {
                check_betas($who, self.betas.0, self.betas.1);
                self.groups.check($who, tape);
                adam_step(&self.hyper(), &self.groups, &mut self.state, tape);
            }

            fn zero_grad(&self, tape: &Tape<T>) {
                self.groups.zero_grad(tape);
            }

            fn lr(&self) -> f64 {
                self.lr
            }

            #[track_caller]
            fn set_lr(&mut self, lr: f64) {
                check_non_negative($who, "learning rate", lr);
                self.lr = lr;
            }

            fn reset_state(&mut self) {
                self.state.reset();
            }
        }
    };
}

/// `torch.optim.Adam` (amsgrad off): adaptive moments with the weight decay as an L2
/// penalty added to the gradient. See [`AdamW`] for the decoupled decay.
///
/// For each parameter `p` with gradient `g`, at its step `t` (from 1), with PyTorch's
/// operations and roundings (each `a + s b` below is one fused rounding; scalars are
/// computed in `f64` and rounded to the element type where they meet a tensor):
///
/// ```text
/// g = g + weight_decay p
/// m = lerp(m, g, 1 - beta1)
/// v = beta2 v + (1 - beta2) g²
/// p = p - lr / (1 - beta1^t) · m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// Defaults as PyTorch: betas (0.9, 0.999), eps 1e-8, weight decay 0. Builder calls can
/// come in any order:
///
/// ```
/// use tapegrad_nn::Adam;
/// let opt = Adam::<f32>::new(1e-3).weight_decay(1e-4).betas(0.9, 0.99).eps(1e-6);
/// assert_eq!(opt.betas, (0.9, 0.99));
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float> {
    /// Learning rate.
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// L2 penalty, added to the gradient.
    pub weight_decay: f64,
    state: Moments<T>,
    groups: Groups,
}

/// `torch.optim.AdamW` (amsgrad off): [`Adam`] with decoupled weight decay, applied to the
/// parameter before the update as `p = p · (1 - lr · weight_decay)` (one rounding, the
/// factor computed in `f64`) instead of being added to the gradient.
///
/// Defaults as PyTorch: betas (0.9, 0.999), eps 1e-8, weight decay **0.01**.
///
/// ```
/// use tapegrad_nn::AdamW;
/// let opt = AdamW::<f32>::new(1e-3).weight_decay(0.1);
/// assert_eq!((opt.weight_decay, opt.eps), (0.1, 1e-8));
/// ```
#[derive(Clone, Debug)]
pub struct AdamW<T: Float> {
    /// Learning rate.
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    state: Moments<T>,
    groups: Groups,
}

adam_like!(Adam, "Adam", false, 0.0);
adam_like!(AdamW, "AdamW", true, 0.01);

#[cfg(test)]
mod tests {
    use super::lerp;

    /// At `|w| = 0.5` PyTorch's `lerp` (ATen `Lerp.h`: `|w| < 0.5 ? a + w*(b-a) : b -
    /// (b-a)*(1-w)`) takes the second form, which rounds differently from the first for
    /// some `a, b`: a `beta` of 0.5 gives such weights.
    #[test]
    fn lerp_switches_form_at_one_half_as_pytorch_does() {
        let mut differ = 0;
        for i in 1..2000u32 {
            let (a, b) = (1.0f32 + i as f32 * 1e-3, -(i as f32).sqrt() * 0.37);
            let second = (0.5f32 - 1.0).mul_add(b - a, b);
            if 0.5f32.mul_add(b - a, a) != second {
                differ += 1;
            }
            assert_eq!(lerp(a, b, 0.5).to_bits(), second.to_bits(), "lerp({a}, {b}, 0.5)");
            assert_eq!(lerp(a, b, -0.5).to_bits(), (-1.5f32).mul_add(b - a, b).to_bits());
            assert_eq!(lerp(a, b, 0.25).to_bits(), 0.25f32.mul_add(b - a, a).to_bits());
        }
        assert!(differ > 0, "no case where the two forms differ");
    }
}
