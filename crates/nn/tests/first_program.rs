//! A first program written from the crate docs alone, as a new user would: a frozen
//! feature extractor and two trained parts on one tape, Adam over a chosen set of
//! parameters with a per-group learning rate, a loop in `train_step` (which cannot grow
//! the tape), the losses' defaults, `Tensor::randn` data, then save and load.

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{
    load, save_to_bytes, train_step, Activation, Adam, CrossEntropyLoss, L1Loss, MSELoss, Module, Optimizer,
    ParamGroup, Reduction, Sequential,
};

#[test]
fn a_first_program_from_the_docs() {
    let mut rng = TorchRng::manual_seed(42);
    let mut tape = Tape::<f32>::new();
    // y = sum of sin of the features: a smooth target
    let x = Tensor::<f32>::randn(&[64, 3], &mut rng);
    let y = Tensor::from_fn(&[64, 1], |i| x.data()[3 * i..3 * i + 3].iter().map(|v| v.sin()).sum());

    let features = Sequential::mlp_with(&tape, &[3, 16], Activation::Tanh, &mut rng); // frozen
    let body = Sequential::mlp_with(&tape, &[16, 16, 16], Activation::Tanh, &mut rng);
    let head = Sequential::mlp(&tape, &[16, 1], &mut rng);
    let mut opt =
        Adam::new(1e-3).params(body.parameters()).group(ParamGroup::new(head.parameters()).lr(1e-2).weight_decay(1e-4));
    let frozen_before: Vec<_> = features.parameters().iter().map(|&p| tape.param_value(p)).collect();

    let mut losses = Vec::new();
    for _ in 0..300 {
        let loss = train_step(&mut tape, &mut opt, |tape| {
            let h = features.forward(tape.input(&x));
            let loss = MSELoss::default().forward(head.forward(body.forward(h)), tape.input(&y));
            loss.backward();
            loss.item()
        });
        assert!(tape.is_empty(), "train_step resets the tape");
        losses.push(loss);
    }
    assert!(losses[299] < 0.2 * losses[0], "the loss falls: {} -> {}", losses[0], losses[299]);
    let frozen_after: Vec<_> = features.parameters().iter().map(|&p| tape.param_value(p)).collect();
    assert_eq!(frozen_after, frozen_before, "the part in no group is frozen");
    assert_eq!(opt.lr(), 1e-3);

    // save the trained parts and load them into a fresh model of the same shape
    let bytes = save_to_bytes(&tape, &head).unwrap();
    let mut fresh_tape = Tape::<f32>::new();
    let fresh = Sequential::mlp(&fresh_tape, &[16, 1], &mut TorchRng::manual_seed(0));
    let dir = std::env::temp_dir().join(format!("tapegrad-first-program-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("head.safetensors");
    tapegrad_nn::files::write_atomic(&path, &bytes).unwrap();
    load(&mut fresh_tape, &fresh, &path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    for (p, q) in head.parameters().into_iter().zip(fresh.parameters()) {
        assert_eq!(tape.param_value(p), fresh_tape.param_value(q));
    }
}

/// The losses' `Default` is PyTorch's: a mean.
#[test]
fn losses_default_to_the_mean() {
    assert_eq!(MSELoss::default(), MSELoss::new(Reduction::Mean));
    assert_eq!(L1Loss::default(), L1Loss::new(Reduction::Mean));
    assert_eq!(CrossEntropyLoss::default(), CrossEntropyLoss::new(Reduction::Mean));
}
