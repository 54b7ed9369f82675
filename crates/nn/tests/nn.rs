//! Layers, loss, SGD and gradient accumulation.

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{
    split_sizes, Accumulation, L1Loss, Linear, LossScale, Module, Optimizer, ReLU, Reduction, Sequential, Sgd,
};

fn flat_grads(tape: &Tape<f64>, model: &dyn Module<f64>) -> Vec<f64> {
    model.parameters().iter().flat_map(|&p| tape.param_grad(p).map(|g| g.into_vec()).unwrap_or_default()).collect()
}

fn flat_params(tape: &Tape<f64>, model: &dyn Module<f64>) -> Vec<f64> {
    model.parameters().iter().flat_map(|&p| tape.param_value(p).into_vec()).collect()
}

#[test]
fn sequential_names_parameters_like_pytorch() {
    let tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, &[3, 5, 4, 2], &mut TorchRng::manual_seed(0));
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]);
    assert_eq!(tape.param_value(model.parameters()[2]).shape(), &[4, 5]);
    assert_eq!(model.to_string().lines().nth(2).unwrap().trim(), "(1): ReLU()");
}

#[test]
fn linear_forward_is_x_wt_plus_b() {
    let tape = Tape::<f64>::new();
    let lin = Linear::from_tensors(
        &tape,
        Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]),
        Tensor::new(vec![0.5, -0.5], &[2]),
    );
    let x = tape.input(Tensor::new(vec![1.0, 0.0, -1.0], &[1, 3]));
    let y = Sequential::new(vec![Box::new(lin), Box::new(ReLU)]).forward(x);
    assert_eq!(y.value().data(), &[0.0, 0.0]); // [-2 + 0.5, -2 - 0.5] through relu
    assert_eq!(Module::<f64>::forward(&lin, x).value().data(), &[-1.5, -2.5]);
}

#[test]
fn l1_loss_reductions() {
    let tape = Tape::<f64>::new();
    let p = tape.leaf(Tensor::new(vec![1.0, -2.0, 3.0, 0.0], &[2, 2]), true);
    let t = tape.input(Tensor::new(vec![0.0, 0.0, 1.0, 1.0], &[2, 2]));
    let sum = L1Loss::new(Reduction::Sum).forward(p, t);
    let mean = L1Loss::new(Reduction::Mean).forward(p, t);
    assert_eq!(sum.item(), 6.0);
    assert_eq!(mean.item(), 1.5);
    mean.backward();
    assert_eq!(p.grad().unwrap().data(), &[0.25, -0.25, 0.25, -0.25]);
}

/// The SGD recurrences computed independently in f64 (PyTorch's documented algorithm).
#[test]
fn sgd_momentum_dampening_weight_decay_nesterov() {
    for (momentum, dampening, wd, nesterov) in [
        (0.0, 0.0, 0.0, false),
        (0.9, 0.0, 0.0, false),
        (0.9, 0.1, 0.01, false),
        (0.8, 0.0, 0.05, true),
        (0.0, 0.0, 0.1, false),
    ] {
        let mut tape = Tape::<f64>::new();
        let p = tape.parameter(Tensor::new(vec![1.0, -2.0], &[2]));
        let mut opt = Sgd::new(0.1).momentum(momentum).dampening(dampening).weight_decay(wd).nesterov(nesterov);
        let (mut v, mut buf) = (vec![1.0f64, -2.0], vec![0.0f64; 2]);
        for step in 0..4 {
            opt.zero_grad(&tape);
            {
                let w = tape.var(p);
                (w * w).sum().mul_scalar(0.5 * (step + 1) as f64).backward(); // grad = (step+1) w
            }
            opt.step(&mut tape);
            tape.reset();
            for i in 0..2 {
                let mut d = (step + 1) as f64 * v[i] + wd * v[i];
                if momentum != 0.0 {
                    buf[i] = if step == 0 { d } else { momentum * buf[i] + (1.0 - dampening) * d };
                    d = if nesterov { d + momentum * buf[i] } else { buf[i] };
                }
                v[i] -= 0.1 * d;
            }
        }
        let got = tape.param_value(p);
        for i in 0..2 {
            assert!((got.data()[i] - v[i]).abs() < 1e-12, "{momentum} {dampening} {wd} {nesterov}: {got:?} vs {v:?}");
        }
    }
}

#[test]
fn sgd_plain_step_rounds_once_like_pytorch() {
    // p + f32(-lr) * g in one rounding (an FMA), the formula PyTorch's CPU kernel uses
    let mut tape = Tape::<f32>::new();
    let (p0, g) = (0.114_695_07f32, 0.057_895_873f32);
    let p = tape.parameter(Tensor::new(vec![p0], &[1]));
    {
        let w = tape.var(p);
        w.mul_scalar(g).sum().backward();
    }
    Sgd::new(0.1).step(&mut tape);
    assert_eq!(tape.param_value(p).data()[0], (-0.1f32).mul_add(g, p0));
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let mut tape = Tape::<f64>::new();
    let model = Sequential::mlp(&tape, &[3, 4, 2], &mut TorchRng::manual_seed(5));
    let x = Tensor::uniform(&[2, 3], 0.0, 1.0, &mut TorchRng::manual_seed(6));
    let t = Tensor::uniform(&[2, 2], 0.0, 1.0, &mut TorchRng::manual_seed(7));
    let loss = L1Loss::new(Reduction::Sum);
    let once = |tape: &mut Tape<f64>| {
        tape.reset();
        let l = loss.forward(model.forward(tape.input(x.clone())), tape.input(t.clone()));
        l.backward();
    };
    once(&mut tape);
    let g1 = flat_grads(&tape, &model);
    once(&mut tape);
    let g2 = flat_grads(&tape, &model);
    for (a, b) in g1.iter().zip(&g2) {
        assert_eq!(2.0 * a, *b);
    }
    tape.zero_grad();
    assert!(flat_grads(&tape, &model).is_empty());
    once(&mut tape);
    assert_eq!(flat_grads(&tape, &model), g1);
}

#[test]
fn split_sizes_like_tensor_split() {
    assert_eq!(split_sizes(10, 4), [3, 3, 2, 2]);
    assert_eq!(split_sizes(2, 2), [1, 1]);
    assert_eq!(split_sizes(7, 1), [7]);
    assert_eq!(split_sizes(5, 5), [1; 5]);
}

/// Each loss-scale policy against one batched step, on random uneven and even splits.
#[test]
fn accumulation_policies() {
    for seed in 0..10u64 {
        let mut rng = TorchRng::manual_seed(seed);
        let batch = 2 + rng.randint(0, 9) as usize;
        let k = 1 + rng.randint(0, batch as i64) as usize;
        let x = Tensor::uniform(&[batch, 3], 0.0, 1.0, &mut rng);
        let t = Tensor::uniform(&[batch, 2], 0.0, 1.0, &mut rng);
        let run = |reduction, k, scale| {
            let mut tape = Tape::<f64>::new();
            let model = Sequential::mlp(&tape, &[3, 6, 2], &mut TorchRng::manual_seed(100 + seed));
            let mut opt = Sgd::new(0.1);
            Accumulation::new(k, scale).run(&mut tape, &model, &L1Loss::new(reduction), &x, &t, None);
            let g = flat_grads(&tape, &model);
            opt.step(&mut tape);
            (g, flat_params(&tape, &model))
        };
        let close = |a: &[f64], b: &[f64], f: f64| a.iter().zip(b).all(|(x, y)| (x - f * y).abs() < 1e-12);
        let (gs, ps) = run(Reduction::Sum, 1, LossScale::None);
        let (gs_k, ps_k) = run(Reduction::Sum, k, LossScale::None);
        assert!(close(&gs_k, &gs, 1.0) && close(&ps_k, &ps, 1.0), "sum, seed {seed}");
        let (gm, _) = run(Reduction::Mean, 1, LossScale::None);
        let (gw, _) = run(Reduction::Mean, k, LossScale::SizeOverBatch);
        assert!(close(&gw, &gm, 1.0), "size/batch is exact for any split, seed {seed}");
        let (gd, _) = run(Reduction::Mean, k, LossScale::DivideByK);
        let even = batch.is_multiple_of(k);
        assert_eq!(
            close(&gd, &gm, 1.0),
            even || k == 1 || gm.iter().all(|v| *v == 0.0),
            "divide by k, seed {seed} B={batch} k={k}"
        );
        if even {
            let (gn, _) = run(Reduction::Mean, k, LossScale::None);
            assert!(close(&gn, &gm, k as f64), "plain mean accumulates k x, seed {seed}");
        }
    }
}

/// A shape error inside a layer names the line that called `forward` (issue 15, case 8),
/// through `Sequential`'s `dyn Module` calls, the fused linear+relu and a lone `Linear`.
#[test]
fn shape_errors_in_layers_name_the_callers_line() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let tape = Tape::<f64>::new();
    let mut rng = TorchRng::manual_seed(0);
    let seq = Sequential::mlp(&tape, &[4, 3, 2], &mut rng);
    let lin = Linear::new(&tape, 4, 3, &mut rng);
    let x = tape.input(Tensor::zeros(&[2, 5]));
    let line = line!() + 1;
    let err = catch_unwind(AssertUnwindSafe(|| seq.forward(x))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("linear: x [2, 5], weight [3, 4], bias [3]"), "{msg}");
    assert!(msg.contains(&format!("nn.rs:{line}:")), "{msg}");
    let line = line!() + 1;
    let err = catch_unwind(AssertUnwindSafe(|| Module::<f64>::forward(&lin, x))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains(&format!("nn.rs:{line}:")), "{msg}");
}

/// `Accumulation::run` with any loss and any optimizer is the same as the hand-written
/// loop: zero the gradients, backward each micro-batch's scaled loss, step.
#[test]
fn accumulation_takes_any_loss_and_any_optimizer() {
    use tapegrad_nn::{Adam, AdamW, Loss, MSELoss};
    let x = Tensor::<f32>::uniform(&[5, 3], 0.0, 1.0, &mut TorchRng::manual_seed(6));
    let t = Tensor::<f32>::uniform(&[5, 2], 0.0, 1.0, &mut TorchRng::manual_seed(7));
    let losses: [&dyn Loss<f32>; 2] = [&L1Loss::new(Reduction::Mean), &MSELoss::new(Reduction::Sum)];
    for loss in losses {
        let make_opts = || -> Vec<Box<dyn Optimizer<f32>>> {
            vec![
                Box::new(Sgd::new(0.1).nesterov(true).momentum(0.9)),
                Box::new(Adam::new(0.01).weight_decay(0.1)),
                Box::new(AdamW::new(0.01)),
            ]
        };
        for (mut a, mut b) in make_opts().into_iter().zip(make_opts()) {
            let mut tape_a = Tape::<f32>::new();
            let model_a = Sequential::mlp(&tape_a, &[3, 4, 2], &mut TorchRng::manual_seed(5));
            let mut tape_b = Tape::<f32>::new();
            let model_b = Sequential::mlp(&tape_b, &[3, 4, 2], &mut TorchRng::manual_seed(5));
            let acc = Accumulation::new(2, LossScale::SizeOverBatch);
            for _ in 0..3 {
                let got = acc.run(&mut tape_a, &model_a, loss, &x, &t, Some(a.as_mut()));
                b.zero_grad(&tape_b);
                let mut want = Vec::new();
                for (start, size) in [(0, 3), (3, 2)] {
                    tape_b.reset();
                    let l = loss
                        .forward(model_b.forward(tape_b.input(x.rows(start, size))), tape_b.input(t.rows(start, size)));
                    want.push(l.item());
                    l.mul_scalar(size as f32 / 5.0).backward();
                }
                tape_b.reset();
                b.step(&mut tape_b);
                assert_eq!(got, want);
            }
            for (pa, pb) in model_a.parameters().into_iter().zip(model_b.parameters()) {
                assert_eq!(tape_a.param_value(pa).data(), tape_b.param_value(pb).data());
            }
        }
    }
}
