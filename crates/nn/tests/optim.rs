//! Each optimizer's updates against PyTorch's over several steps (fixture made by
//! `scripts/make_optim_reference.py`): plain SGD, L2 weight decay, momentum with and
//! without dampening, Nesterov, Adam with and without L2 decay, AdamW's decoupled decay.
//! SGD matches bit for bit; Adam(W) within 1e-6 of the largest parameter and at least 95%
//! of its values bit for bit (all of them on this fixture; PyTorch's vectorised `sqrt` is not
//! always correctly rounded on large tensors, so a denominator may differ by 1 ulp).

use serde_json::Value;
use tapegrad::{Tape, Tensor};
use tapegrad_nn::{Adam, AdamW, Optimizer, Sgd};

const OPTIM: &str = include_str!("fixtures/optim.json");

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn optimizer(kind: &str, h: &Value) -> Box<dyn Optimizer<f32>> {
    let f = |k: &str, default: f64| h.get(k).and_then(Value::as_f64).unwrap_or(default);
    let lr = f("lr", f64::NAN);
    let betas = h.get("betas").map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap())).unwrap_or((0.9, 0.999));
    match kind {
        // builder calls in an unusual order on purpose: nesterov before momentum
        "sgd" => Box::new(
            Sgd::new(lr)
                .nesterov(h.get("nesterov").and_then(Value::as_bool).unwrap_or(false))
                .weight_decay(f("weight_decay", 0.0))
                .dampening(f("dampening", 0.0))
                .momentum(f("momentum", 0.0)),
        ),
        "adam" => {
            Box::new(Adam::new(lr).weight_decay(f("weight_decay", 0.0)).eps(f("eps", 1e-8)).betas(betas.0, betas.1))
        }
        "adamw" => {
            Box::new(AdamW::new(lr).eps(f("eps", 1e-8)).weight_decay(f("weight_decay", 0.01)).betas(betas.0, betas.1))
        }
        _ => panic!("unknown optimizer {kind}"),
    }
}

/// Runs `opt` on the fixture's gradients; the parameter after every step.
fn trajectory(opt: &mut dyn Optimizer<f32>, initial: &[f32], grads: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut tape = Tape::<f32>::new();
    let n = initial.len();
    let p = tape.parameter(Tensor::from_slice(initial, &[n]));
    let mut out = Vec::new();
    for g in grads {
        opt.zero_grad(&tape);
        {
            let w = tape.var(p);
            let g = tape.input(Tensor::from_slice(g, &[n]));
            (w * g).sum().backward(); // gradient exactly g
        }
        tape.reset();
        opt.step(&mut tape);
        out.push(tape.param_value(p).into_vec());
    }
    out
}

#[test]
fn every_optimizer_follows_pytorch_step_by_step() {
    let r: Value = serde_json::from_str(OPTIM).unwrap();
    let initial = f32s(&r["initial"]);
    let grads: Vec<Vec<f32>> = r["grads"].as_array().unwrap().iter().map(f32s).collect();
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    let (mut adam_values, mut adam_exact) = (0usize, 0usize);
    for case in cases {
        let kind = case["optimizer"].as_str().unwrap();
        let label = format!("{kind} {}", case["hyper"]);
        let got = trajectory(optimizer(kind, &case["hyper"]).as_mut(), &initial, &grads);
        let want: Vec<Vec<f32>> = case["params"].as_array().unwrap().iter().map(f32s).collect();
        assert_eq!(got.len(), want.len());
        for (step, (g, w)) in got.iter().zip(&want).enumerate() {
            let scale = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                if kind == "sgd" {
                    assert_eq!(a.to_bits(), b.to_bits(), "{label} step {step} [{i}]: tapegrad {a}, PyTorch {b}");
                } else {
                    assert!((a - b).abs() <= 1e-6 * scale, "{label} step {step} [{i}]: tapegrad {a}, PyTorch {b}");
                    adam_values += 1;
                    adam_exact += usize::from(a.to_bits() == b.to_bits());
                }
            }
        }
    }
    // the same operations in the same order: nearly every value is PyTorch's bit for bit
    eprintln!("Adam/AdamW: {adam_exact} of {adam_values} values bit-identical to PyTorch");
    assert!(adam_exact * 100 >= adam_values * 95, "only {adam_exact} of {adam_values} Adam values bit-identical");
}

#[test]
fn reset_state_makes_the_next_step_a_first_step() {
    let r: Value = serde_json::from_str(OPTIM).unwrap();
    let initial = f32s(&r["initial"]);
    let grads: Vec<Vec<f32>> = r["grads"].as_array().unwrap().iter().map(f32s).collect();
    let opts: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Sgd::new(0.1).momentum(0.9)),
        Box::new(Adam::new(0.01).weight_decay(0.1)),
        Box::new(AdamW::new(0.01)),
    ];
    for mut opt in opts {
        let fresh = trajectory(opt.as_mut(), &initial, &grads[..2]);
        opt.reset_state();
        let again = trajectory(opt.as_mut(), &initial, &grads[..2]);
        assert_eq!(fresh, again);
    }
}

#[test]
fn learning_rate_get_and_set() {
    let mut opts: Vec<Box<dyn Optimizer<f32>>> =
        vec![Box::new(Sgd::new(0.1)), Box::new(Adam::new(0.01)), Box::new(AdamW::new(0.001))];
    for opt in &mut opts {
        opt.set_lr(0.25);
        assert_eq!(opt.lr(), 0.25);
    }
    // a zero learning rate leaves the parameters as they are, whatever the state does
    let r: Value = serde_json::from_str(OPTIM).unwrap();
    let initial = f32s(&r["initial"]);
    let grads: Vec<Vec<f32>> = r["grads"].as_array().unwrap().iter().map(f32s).collect();
    for opt in &mut opts {
        opt.set_lr(0.0);
        assert_eq!(trajectory(opt.as_mut(), &initial, &grads[..2])[1], initial);
    }
}

#[test]
fn defaults_are_pytorchs() {
    let adam = Adam::<f32>::new(1e-3);
    assert_eq!((adam.betas, adam.eps, adam.weight_decay), ((0.9, 0.999), 1e-8, 0.0));
    let adamw = AdamW::<f32>::new(1e-3);
    assert_eq!((adamw.betas, adamw.eps, adamw.weight_decay), ((0.9, 0.999), 1e-8, 0.01));
    let sgd = Sgd::<f32>::new(0.1);
    assert_eq!((sgd.momentum, sgd.dampening, sgd.weight_decay, sgd.nesterov), (0.0, 0.0, 0.0, false));
}

#[test]
fn builder_order_does_not_matter() {
    let a = Sgd::<f32>::new(0.1).nesterov(true).momentum(0.9);
    let b = Sgd::<f32>::new(0.1).momentum(0.9).nesterov(true);
    assert_eq!((a.momentum, a.nesterov), (b.momentum, b.nesterov));
    assert!(a.validate().is_ok());
    let c = Adam::<f32>::new(0.1).betas(0.5, 0.6).eps(1e-3).weight_decay(0.2);
    let d = Adam::<f32>::new(0.1).weight_decay(0.2).eps(1e-3).betas(0.5, 0.6);
    assert_eq!((c.betas, c.eps, c.weight_decay), (d.betas, d.eps, d.weight_decay));
}

#[test]
#[should_panic(expected = "nesterov needs a momentum")]
fn nesterov_without_momentum_panics_at_the_step() {
    let mut tape = Tape::<f32>::new();
    let p = tape.parameter(Tensor::new(vec![1.0], &[1]));
    tape.var(p).sum().backward();
    tape.reset();
    Sgd::new(0.1).nesterov(true).step(&mut tape);
}

#[test]
#[should_panic(expected = "Adam: invalid beta parameter at index 1: 1")]
fn adam_rejects_a_beta_of_one() {
    let _ = Adam::<f32>::new(0.1).betas(0.9, 1.0);
}

#[test]
#[should_panic(expected = "AdamW: invalid epsilon value -1")]
fn adamw_rejects_a_negative_eps() {
    let _ = AdamW::<f32>::new(0.1).eps(-1.0);
}

#[test]
#[should_panic(expected = "Sgd: invalid weight_decay -0.1")]
fn sgd_rejects_a_negative_weight_decay() {
    let _ = Sgd::<f32>::new(0.1).weight_decay(-0.1);
}

/// An optimizer of one's own: plain gradient descent, with the trait's default
/// `zero_grad`.
struct Descent {
    lr: f64,
}

impl Optimizer<f64> for Descent {
    fn step(&mut self, tape: &mut Tape<f64>) {
        let lr = self.lr;
        tape.for_each_param_mut(|_, value, grad| {
            if let Some(grad) = grad {
                for (v, g) in value.iter_mut().zip(grad) {
                    *v -= lr * g;
                }
            }
        });
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn reset_state(&mut self) {}
}

/// The trait's default `zero_grad` clears every parameter's gradient (PyTorch's
/// `set_to_none=True`), so each step of a loop sees its own gradient only.
#[test]
fn the_default_zero_grad_clears_every_gradient() {
    let mut tape = Tape::<f64>::new();
    let (a, b) = (tape.parameter(Tensor::new(vec![1.0, -2.0], &[2])), tape.parameter(Tensor::new(vec![3.0], &[1])));
    let mut opt = Descent { lr: 0.25 };
    for step in 0..3 {
        opt.zero_grad(&tape);
        assert!(tape.param_grad(a).is_none() && tape.param_grad(b).is_none(), "step {step}");
        (tape.var(a).sum() + tape.var(b).sum() * 2.0).backward();
        tape.reset();
        assert_eq!(tape.param_grad(a).unwrap().data(), &[1.0, 1.0]);
        assert_eq!(tape.param_grad(b).unwrap().data(), &[2.0]);
        opt.step(&mut tape);
    }
    // three steps of -0.25 * (1, 1) and -0.25 * 2
    assert_eq!(tape.param_value(a).data(), &[0.25, -2.75]);
    assert_eq!(tape.param_value(b).data(), &[1.5]);
}
