//! The bundled digits, the split, the loader and a short training run, against PyTorch
//! (`tests/fixtures/digits_reference.json`, made by `tests/fixtures/make_digits_reference.py`).

use serde_json::Value;
use tapegrad::{Tape, TorchRng};
use tapegrad_nn::{
    Accumulation, Adam, CrossEntropyLoss, DataError, DataLoader, Dataset, LossScale, Module, Optimizer, Reduction,
    Sequential, Sgd,
};

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/digits_reference.json")).unwrap()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn row(d: &Dataset<f32>, i: usize) -> &[f32] {
    let f = d.num_features();
    &d.features().data()[i * f..(i + 1) * f]
}

#[test]
fn the_bundled_digits() {
    let d = Dataset::<f32>::digits().unwrap();
    assert_eq!((d.len(), d.num_features(), d.classes()), (1797, 64, 10));
    let mut counts = [0usize; 10];
    d.labels().iter().for_each(|&l| counts[l] += 1);
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert!(d.features().data().iter().all(|&v| (0.0..=1.0).contains(&v) && (v * 16.0).fract() == 0.0));
    // the first image is a 0: its first row of pixels is 0,0,5,13,9,1,0,0
    assert_eq!(d.labels()[0], 0);
    assert_eq!(&row(&d, 0)[..8], &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0, 9.0 / 16.0, 1.0 / 16.0, 0.0, 0.0]);
}

#[test]
fn split_is_pytorchs_random_split() {
    let fx = fixture();
    let d = Dataset::<f32>::digits().unwrap();
    let (train, test) = d.train_test_split(0.2, 0);
    assert_eq!((train.len(), test.len()), (1437, 360));
    for (part, key) in [(&train, "train"), (&test, "test")] {
        let want = indices(&fx["split"][key]);
        assert_eq!(part.len(), want.len());
        for (i, &j) in want.iter().enumerate() {
            assert_eq!(row(part, i), row(&d, j), "{key} sample {i} is digit line {j}");
            assert_eq!(part.labels()[i], d.labels()[j]);
        }
    }
    // another seed gives another split
    let (_, other) = d.train_test_split(0.2, 1);
    assert_ne!(other.labels(), test.labels());
}

#[test]
fn shuffled_epochs_are_pytorchs_dataloader_epochs() {
    let fx = fixture();
    let seed = fx["loader"]["seed"].as_u64().unwrap();
    let mut loader = DataLoader::new(64).shuffle(seed);
    for (e, want) in fx["loader"]["epochs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(loader.next_order(1437), indices(want).as_slice(), "epoch {e}");
    }
    assert_eq!(loader.batches_per_epoch(1437), 23);
}

/// Trains the reference's network for `epochs` on the reference split with `k`
/// micro-batches per batch (each micro-batch's mean loss scaled by its share of the batch),
/// with SGD (lr 0.05, momentum 0.9) or Adam (lr 0.01): per-epoch mean training loss, test
/// accuracy, and the final parameters.
fn train(epochs: usize, k: usize, adam: bool) -> (Vec<f64>, Vec<f64>, Vec<Vec<f32>>) {
    let d = Dataset::<f32>::digits().unwrap();
    let (train, test) = d.train_test_split(0.2, 0);
    let mut tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, &[64, 64, 10], &mut TorchRng::manual_seed(0));
    let mut opt: Box<dyn Optimizer<f32>> =
        if adam { Box::new(Adam::new(0.01)) } else { Box::new(Sgd::new(0.05).momentum(0.9)) };
    let ce = CrossEntropyLoss::new(Reduction::Mean);
    let mut loader = DataLoader::new(64).shuffle(0);
    let (mut losses, mut accs) = (Vec::new(), Vec::new());
    for _ in 0..epochs {
        let mut total = 0.0;
        for batch in loader.epoch(&train) {
            tape.zero_grad();
            for mb in batch.micro_batches(k) {
                tape.reset();
                let logits = model.forward(tape.input(mb.inputs.clone()));
                let loss = ce.forward(logits, tape.input(mb.targets()));
                total += f64::from(loss.item()) * mb.len() as f64;
                loss.mul_scalar(mb.len() as f32 / batch.len() as f32).backward();
            }
            tape.reset();
            opt.step(&mut tape);
        }
        losses.push(total / train.len() as f64);
        tape.reset();
        let pred = model.forward(tape.input(test.features().clone())).argmax(1).value();
        let right = pred.data().iter().zip(test.labels()).filter(|(&p, &l)| p as usize == l).count();
        accs.push(right as f64 / test.len() as f64);
    }
    let params = model.parameters().iter().map(|&p| tape.param_value(p).into_vec()).collect();
    (losses, accs, params)
}

#[test]
fn a_short_training_run_follows_pytorch() {
    follows_pytorch("run", false);
}

#[test]
fn a_short_adam_run_follows_pytorch() {
    follows_pytorch("run_adam", true);
}

fn follows_pytorch(key: &str, adam: bool) {
    let fx = fixture();
    let run = &fx[key];
    let epochs = run["epochs"].as_u64().unwrap() as usize;
    let (losses, accs, params) = train(epochs, 1, adam);
    let want_loss: Vec<f64> = run["train_loss"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let want_acc: Vec<f64> = run["test_accuracy"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for e in 0..epochs {
        assert!((losses[e] - want_loss[e]).abs() < 1e-5, "epoch {e}: loss {} vs PyTorch {}", losses[e], want_loss[e]);
        // an argmax may flip on a near tie: one test sample of slack
        assert!((accs[e] - want_acc[e]).abs() <= 1.0 / 360.0 + 1e-9, "epoch {e}: {} vs {}", accs[e], want_acc[e]);
    }
    assert!(accs[epochs - 1] > 0.85, "a sane accuracy after {epochs} epochs: {}", accs[epochs - 1]);
    for (name, p) in ["0.weight", "0.bias", "2.weight", "2.bias"].iter().zip(&params) {
        let want = &run["params"][name];
        let norm = p.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let want_norm = want["norm"].as_f64().unwrap();
        assert!((norm - want_norm).abs() < 1e-4 * want_norm, "{name}: norm {norm} vs {want_norm}");
        for (i, w) in want["first"].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap();
            assert!((f64::from(p[i]) - w).abs() < 1e-4, "{name}[{i}]: {} vs {w}", p[i]);
        }
    }
}

#[test]
fn micro_batches_follow_the_full_batch_run() {
    let (l1, a1, p1) = train(2, 1, false);
    let (l4, a4, p4) = train(2, 4, false);
    let dist =
        p1.iter().zip(&p4).flat_map(|(a, b)| a.iter().zip(b)).map(|(&a, &b)| f64::from(a - b).powi(2)).sum::<f64>();
    assert!(dist.sqrt() < 1e-3, "final weights {} apart", dist.sqrt());
    assert!((l1[1] - l4[1]).abs() < 1e-4 && (a1[1] - a4[1]).abs() <= 0.005, "{l1:?} {l4:?} {a1:?} {a4:?}");
}

#[test]
fn csv_errors_name_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("tapegrad-digits-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("ragged.csv", "1,2,3\n4,5\n", "ragged.csv:2: 2 fields"),
        ("word.csv", "1,2,3\n4,x,5\n", "word.csv:2: feature \"x\" is not a number"),
        ("label.csv", "1,2,3\n4,5,-1\n", "label.csv:2: label \"-1\" is not a class index"),
        ("empty.csv", "\n\n", "empty.csv: no samples"),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err: DataError = Dataset::<f32>::from_csv(&path, 1.0).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    let err = Dataset::<f32>::from_csv(dir.join("missing.csv"), 1.0).unwrap_err();
    assert!(err.to_string().contains("missing.csv") && err.line.is_none(), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `Accumulation::run` with the cross-entropy loss (through the `Loss` trait) and the
/// size-weighted scale gives the gradients of one full-batch backward.
#[test]
fn accumulation_runs_cross_entropy() {
    let d = Dataset::<f64>::digits().unwrap();
    let batch = d.batch(&(0..64).map(|i| i * 28).collect::<Vec<_>>());
    let grads = |k: usize| {
        let mut tape = Tape::<f64>::new();
        let model = Sequential::mlp(&tape, &[64, 64, 10], &mut TorchRng::manual_seed(4));
        let ce = CrossEntropyLoss::new(Reduction::Mean);
        let losses = Accumulation::new(k, LossScale::SizeOverBatch).run(
            &mut tape,
            &model,
            &ce,
            &batch.inputs,
            &batch.targets(),
            None,
        );
        assert_eq!(losses.len(), k);
        let g: Vec<f64> = model.parameters().iter().flat_map(|&p| tape.param_grad(p).unwrap().into_vec()).collect();
        g
    };
    let (full, acc) = (grads(1), grads(3));
    let diff = full.iter().zip(&acc).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-12, "accumulated gradients differ by {diff}");
}
