//! Parameter groups (`torch.optim`'s `param_groups`): a group's learning rate and weight
//! decay give bit for bit the update of an optimizer with those settings over that group
//! alone; parameters in no group are frozen (neither updated nor zeroed); two optimizers
//! share a tape; and the mistakes PyTorch refuses are refused.

use tapegrad::{Param, Tape, Tensor, TorchRng};
use tapegrad_nn::{train_step, Adam, AdamW, Module, Optimizer, ParamGroup, Sequential, Sgd};

/// Three parameters of distinct shapes, initialised from `seed`.
fn three(tape: &Tape<f32>, seed: u64) -> [Param; 3] {
    let mut rng = TorchRng::manual_seed(seed);
    [&[3, 2][..], &[4], &[2, 2]].map(|shape| tape.parameter(Tensor::uniform(shape, -1.0, 1.0, &mut rng)))
}

/// A loss touching every parameter in `ps` nonlinearly, so steps differ from step to step.
fn loss_step<O: Optimizer<f32> + ?Sized>(tape: &mut Tape<f32>, opt: &mut O, ps: &[Param]) {
    train_step(tape, opt, |tape| {
        let loss = ps.iter().map(|&p| (tape.var(p) * tape.var(p) * tape.var(p)).sum()).reduce(|a, b| a + b).unwrap();
        loss.backward();
    });
}

fn values(tape: &Tape<f32>, ps: &[Param]) -> Vec<Vec<f32>> {
    ps.iter().map(|&p| tape.param_value(p).into_vec()).collect()
}

/// For each optimizer kind: one optimizer with a default group `[a]` and a group `[b]`
/// of its own lr and weight decay, `c` in no group, against two optimizers each over one
/// parameter of a copy: equal bit for bit over four steps; `c` never moves.
#[test]
fn a_groups_settings_are_an_optimizer_of_its_own() {
    type Make = fn(f64, f64) -> Box<dyn Optimizer<f32>>;
    let kinds: [(&str, Make); 4] = [
        ("sgd", |lr, wd| Box::new(Sgd::new(lr).weight_decay(wd))),
        ("sgd-momentum", |lr, wd| Box::new(Sgd::new(lr).momentum(0.9).nesterov(true).weight_decay(wd))),
        ("adam", |lr, wd| Box::new(Adam::new(lr).weight_decay(wd))),
        ("adamw", |lr, wd| Box::new(AdamW::new(lr).weight_decay(wd))),
    ];
    for (name, make) in kinds {
        let mut tape = Tape::new();
        let [a, b, c] = three(&tape, 5);
        let group = ParamGroup::new([b]).lr(0.05).weight_decay(0.3);
        let mut grouped: Box<dyn Optimizer<f32>> = match name {
            "sgd" => Box::new(Sgd::new(0.01).weight_decay(0.1).params([a]).group(group)),
            "sgd-momentum" => {
                Box::new(Sgd::new(0.01).momentum(0.9).nesterov(true).weight_decay(0.1).params([a]).group(group))
            }
            "adam" => Box::new(Adam::new(0.01).weight_decay(0.1).params([a]).group(group)),
            _ => Box::new(AdamW::new(0.01).weight_decay(0.1).params([a]).group(group)),
        };
        let mut alone = Tape::new();
        let [a2, b2, c2] = three(&alone, 5);
        let (mut for_a, mut for_b) = (make(0.01, 0.1), make(0.05, 0.3));
        let c_before = tape.param_value(c);
        for step in 0..4 {
            loss_step(&mut tape, grouped.as_mut(), &[a, b, c]);
            // each reference optimizer over its own parameter: the other one's gradient is
            // cleared before it steps
            for (opt, p, other) in [(&mut for_a, a2, b2), (&mut for_b, b2, a2)] {
                opt.zero_grad(&alone);
                alone.scope(|t| (t.var(p) * t.var(p) * t.var(p)).sum().backward());
                alone.zero_param_grad(other);
                alone.zero_param_grad(c2);
                opt.step(&mut alone);
            }
            assert_eq!(values(&tape, &[a, b]), values(&alone, &[a2, b2]), "{name} step {step}");
            assert_eq!(tape.param_value(c), c_before, "{name}: c is in no group");
            // c's gradient accumulates: the optimizer zeroes only its own parameters
            let (got, want) =
                (tape.param_grad(c).unwrap().data()[0], 3.0 * c_before.data()[0].powi(2) * (step + 1) as f32);
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{name}: c's gradient {got}, want {want}");
        }
    }
}

/// Without groups an optimizer takes every parameter, as before; with the same settings
/// in one group over every parameter, the numbers are the same.
#[test]
fn one_group_of_everything_is_the_default() {
    let mut plain_tape = Tape::new();
    let ps = three(&plain_tape, 8);
    let mut plain = Adam::new(0.02).weight_decay(0.01);
    let mut tape = Tape::new();
    let qs = three(&tape, 8);
    let mut grouped = Adam::new(0.02).weight_decay(0.01).params(qs);
    assert!(plain.param_groups().is_empty() && grouped.param_groups().len() == 1);
    for _ in 0..3 {
        loss_step(&mut plain_tape, &mut plain, &ps);
        loss_step(&mut tape, &mut grouped, &qs);
    }
    assert_eq!(values(&plain_tape, &ps), values(&tape, &qs));
}

/// Two models on one tape, each trained by its own optimizer; `set_group_lr` changes one
/// group's learning rate (a schedule), `set_lr` the default.
#[test]
fn two_models_on_one_tape_and_a_group_schedule() {
    let mut tape = Tape::<f32>::new();
    let mut rng = TorchRng::manual_seed(0);
    let (m1, m2) = (Sequential::mlp(&tape, &[2, 3, 1], &mut rng), Sequential::mlp(&tape, &[2, 1], &mut rng));
    let mut opt1 = Sgd::new(0.1).params(m1.parameters());
    let mut opt2 = Sgd::new(0.0).group(ParamGroup::new(m2.parameters()).lr(0.0));
    let x = Tensor::new(vec![1.0, -1.0], &[1, 2]);
    let before = [values(&tape, &m1.parameters()), values(&tape, &m2.parameters())];
    for opt in [&mut opt1 as &mut dyn Optimizer<f32>, &mut opt2] {
        opt.zero_grad(&tape);
    }
    tape.scope(|t| (m1.forward(t.input(&x)) + m2.forward(t.input(&x))).sum().backward());
    opt1.step(&mut tape);
    opt2.step(&mut tape);
    assert_ne!(values(&tape, &m1.parameters()), before[0]);
    assert_eq!(values(&tape, &m2.parameters()), before[1], "lr 0");
    opt2.set_group_lr(0, 0.5);
    opt2.step(&mut tape);
    assert_ne!(values(&tape, &m2.parameters()), before[1]);
    assert_eq!(opt2.param_groups()[0].lr, Some(0.5));
}

#[test]
#[should_panic(expected = "Sgd: parameter 1 appears in more than one parameter group")]
fn a_parameter_in_two_groups_panics() {
    let tape = Tape::<f32>::new();
    let [a, b, _] = three(&tape, 1);
    let _ = Sgd::<f32>::new(0.1).params([a, b]).params([b].iter());
}

#[test]
#[should_panic(expected = "Adam: parameter 0 of a parameter group belongs to another tape")]
fn a_group_of_another_tape_panics() {
    let other = Tape::<f32>::new();
    let [a, ..] = three(&other, 1);
    let mut tape = Tape::<f32>::new();
    let _ = three(&tape, 1);
    Adam::new(0.1).params([a]).step(&mut tape);
}

#[test]
#[should_panic(expected = "no parameter group 2")]
fn a_missing_group_panics() {
    Sgd::<f32>::new(0.1).set_group_lr(2, 0.1);
}
