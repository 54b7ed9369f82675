//! log_softmax, softmax and `CrossEntropyLoss` against PyTorch (float64, within 1e-12 of
//! each vector's largest magnitude):
//! values and gradients on random logits up to |x| = 1e4, where a naive softmax overflows
//! (`tests/fixtures/cross_entropy.json`, made by `tests/fixtures/make_cross_entropy.py`).

use serde_json::Value;
use tapegrad::{Tape, Tensor, Var};
use tapegrad_nn::{CrossEntropyLoss, Reduction};

/// Relative to the largest magnitude of the expected vector.
const TOL: f64 = 1e-12;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[track_caller]
fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(f64::MIN_POSITIVE, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= TOL * scale, "{what}[{i}]: {g} vs PyTorch {w} (scale {scale})");
    }
}

/// The value of `f(x)` and the gradient of `sum(f(x) * w)` (or of `f(x)` when `w` is None).
fn run<F>(x: &Tensor<f64>, w: Option<&Tensor<f64>>, f: F) -> (Vec<f64>, Vec<f64>)
where
    F: for<'t> Fn(&'t Tape<f64>, Var<'t, f64>) -> Var<'t, f64>,
{
    let tape = Tape::<f64>::new();
    let xv = tape.leaf(x, true);
    let y = f(&tape, xv);
    let out = match w {
        Some(w) => (y * tape.input(w.clone())).sum(),
        None => y,
    };
    out.backward();
    (y.value().into_vec(), xv.grad().unwrap().into_vec())
}

#[test]
fn matches_pytorch() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/cross_entropy.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let mut max_scale: f64 = 0.0;
    for (k, c) in cases.iter().enumerate() {
        let (n, cl) = (c["n"].as_u64().unwrap() as usize, c["c"].as_u64().unwrap() as usize);
        max_scale = max_scale.max(c["scale"].as_f64().unwrap());
        let x = Tensor::new(floats(&c["x"]), &[n, cl]);
        let w = Tensor::new(floats(&c["w"]), &[n, cl]);
        let t = Tensor::new(floats(&c["target"]), &[n]);
        let (v, g) = run(&x, Some(&w), |_, x| x.log_softmax(1));
        close(&format!("case {k} log_softmax"), &v, &floats(&c["log_softmax"]));
        close(&format!("case {k} grad log_softmax"), &g, &floats(&c["grad_log_softmax"]));
        let (v, g) = run(&x, Some(&w), |_, x| x.log_softmax(0));
        close(&format!("case {k} log_softmax dim 0"), &v, &floats(&c["log_softmax0"]));
        close(&format!("case {k} grad log_softmax dim 0"), &g, &floats(&c["grad_log_softmax0"]));
        let (v, g) = run(&x, Some(&w), |_, x| x.softmax(1));
        close(&format!("case {k} softmax"), &v, &floats(&c["softmax"]));
        close(&format!("case {k} grad softmax"), &g, &floats(&c["grad_softmax"]));
        for (name, red) in [("sum", Reduction::Sum), ("mean", Reduction::Mean)] {
            let t = t.clone();
            let (v, g) = run(&x, None, move |tape, x| CrossEntropyLoss::new(red).forward(x, tape.input(t.clone())));
            close(&format!("case {k} ce_{name}"), &v, &[c[format!("ce_{name}")].as_f64().unwrap()]);
            close(&format!("case {k} grad ce_{name}"), &g, &floats(&c[format!("grad_ce_{name}")]));
        }
    }
    assert!(max_scale >= 1e4, "the fixture covers logits of magnitude 1e4");
}

#[test]
fn one_sample_without_a_batch_axis() {
    // logits [C] with a 0-d target, as PyTorch accepts them
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![2.0, -1.0, 0.5], &[3]), true);
    let loss = CrossEntropyLoss::new(Reduction::Mean).forward(x, tape.input(Tensor::scalar(2.0)));
    let lse = (2f64.exp() + (-1f64).exp() + 0.5f64.exp()).ln();
    assert!((loss.item() - (lse - 0.5)).abs() < 1e-15);
    loss.backward();
    let g = x.grad().unwrap();
    assert!((g.data()[2] - (0.5f64.exp() / lse.exp() - 1.0)).abs() < 1e-15);
}

#[test]
#[should_panic(expected = "nll_loss: target 3 is not a class index in 0..3")]
fn rejects_a_target_out_of_range() {
    let tape = Tape::<f32>::new();
    let x = tape.input(Tensor::zeros(&[2, 3]));
    CrossEntropyLoss::new(Reduction::Sum).forward(x, tape.input(Tensor::new(vec![0.0, 3.0], &[2])));
}
