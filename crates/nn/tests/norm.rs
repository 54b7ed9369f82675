//! `BatchNorm1d` and `LayerNorm` against PyTorch (float32, `tests/fixtures/norm.json`, made by
//! `tests/fixtures/make_norm_reference.py`): outputs and gradients within 1e-5 of each
//! vector's largest magnitude, running statistics bit for bit; gradcheck and gradgradcheck
//! of both normalisations in float64; training and evaluation mode.

use serde_json::Value;
use tapegrad::{gradcheck, gradgradcheck, Tape, Tensor, TorchRng, Var};
use tapegrad_nn::{batch_norm, layer_norm, BatchNorm1d, LayerNorm, Module, Norm, Sequential};

const NORM: &str = include_str!("fixtures/norm.json");

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

/// Within 1e-5 of the largest magnitude of `want` (at least 0.1).
#[track_caller]
fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    // a floor of 0.1: a gradient that is zero in exact arithmetic is rounding noise in PyTorch
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(0.1);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs PyTorch {w} (scale {scale})");
    }
}

/// `grad x` within 1e-5 of PyTorch's (as [`close`]), or no further from the float64
/// gradient than PyTorch's own: where the gradient is cancellation noise (2 rows, or one
/// feature) PyTorch's float32 value is not the truth either.
#[track_caller]
fn close_or_closer(what: &str, got: &[f32], want: &[f32], exact: &[f64]) {
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(0.1);
    for (i, ((&g, &w), &e)) in got.iter().zip(want).zip(exact).enumerate() {
        let ok = (g - w).abs() <= 1e-5 * scale || (g as f64 - e).abs() <= (w as f64 - e).abs();
        assert!(ok, "{what}[{i}]: {g} vs PyTorch {w}, float64 {e}");
    }
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn set(tape: &mut Tape<f32>, p: tapegrad::Param, values: Vec<f32>) {
    let n = values.len();
    tape.set_param_value(p, &Tensor::new(values, &[n]));
}

#[test]
fn batch_norm_matches_pytorch() {
    let fixture: Value = serde_json::from_str(NORM).unwrap();
    let cases = fixture["batchnorm"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for (k, c) in cases.iter().enumerate() {
        let (n, ch) = (c["n"].as_u64().unwrap() as usize, c["c"].as_u64().unwrap() as usize);
        let mut tape = Tape::<f32>::new();
        let mut bn = BatchNorm1d::new(&tape, ch);
        set(&mut tape, bn.weight, f32s(&c["weight"]));
        set(&mut tape, bn.bias, f32s(&c["bias"]));
        let buffers = bn.named_buffers();
        let load = |i: usize, key: &str| match buffers[i].1 {
            tapegrad_nn::Buffer::Float(t) => t.borrow_mut().data_mut().copy_from_slice(&f32s(&c[key])),
            _ => unreachable!(),
        };
        load(0, "running_mean0");
        load(1, "running_var0");
        let x = tape.leaf(Tensor::new(f32s(&c["x"]), &[n, ch]), true);
        let y = bn.forward(x);
        (y * tape.input(Tensor::new(f32s(&c["u"]), &[n, ch]))).sum().backward();
        close(&format!("case {k} y"), y.value().data(), &f32s(&c["y"]));
        let (want, exact) = (f32s(&c["grad_x"]), f64s(&c["grad_x64"]));
        close_or_closer(&format!("case {k} grad x"), x.grad().unwrap().data(), &want, &exact);
        close(&format!("case {k} grad weight"), tape.param_grad(bn.weight).unwrap().data(), &f32s(&c["grad_weight"]));
        close(&format!("case {k} grad bias"), tape.param_grad(bn.bias).unwrap().data(), &f32s(&c["grad_bias"]));
        tape.reset();
        bn.forward(tape.input(Tensor::new(f32s(&c["x2"]), &[n, ch])));
        // the running statistics follow PyTorch's kernel operation by operation
        assert_eq!(bn.running_mean().data(), &f32s(&c["running_mean"])[..], "case {k} running_mean");
        assert_eq!(bn.running_var().data(), &f32s(&c["running_var"])[..], "case {k} running_var");
        assert_eq!(bn.num_batches_tracked(), c["num_batches_tracked"].as_i64().unwrap());
        bn.set_training(false);
        tape.reset();
        let y = bn.forward(tape.input(Tensor::new(f32s(&c["x"]), &[n, ch])));
        close(&format!("case {k} y eval"), y.value().data(), &f32s(&c["y_eval"]));
        assert_eq!(bn.num_batches_tracked(), 2, "evaluation mode updates nothing");
        assert_eq!(bn.running_mean().data(), &f32s(&c["running_mean"])[..]);
    }
}

#[test]
fn layer_norm_matches_pytorch() {
    let fixture: Value = serde_json::from_str(NORM).unwrap();
    let cases = fixture["layernorm"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for (k, c) in cases.iter().enumerate() {
        let shape = usizes(&c["shape"]);
        let mut tape = Tape::<f32>::new();
        let ln = LayerNorm::new(&tape, *shape.last().unwrap());
        set(&mut tape, ln.weight, f32s(&c["weight"]));
        set(&mut tape, ln.bias, f32s(&c["bias"]));
        let x = tape.leaf(Tensor::new(f32s(&c["x"]), &shape), true);
        let y = ln.forward(x);
        (y * tape.input(Tensor::new(f32s(&c["u"]), &shape))).sum().backward();
        close(&format!("case {k} y"), y.value().data(), &f32s(&c["y"]));
        let (want, exact) = (f32s(&c["grad_x"]), f64s(&c["grad_x64"]));
        close_or_closer(&format!("case {k} grad x"), x.grad().unwrap().data(), &want, &exact);
        close(&format!("case {k} grad weight"), tape.param_grad(ln.weight).unwrap().data(), &f32s(&c["grad_weight"]));
        close(&format!("case {k} grad bias"), tape.param_grad(ln.bias).unwrap().data(), &f32s(&c["grad_bias"]));
    }
}

/// Inputs for the float64 checks: x `[n, c]` with distinct rows, weight, bias.
fn inputs(n: usize, c: usize, seed: u64) -> Vec<Tensor<f64>> {
    let mut rng = TorchRng::manual_seed(seed);
    vec![
        Tensor::uniform(&[n, c], -2.0, 2.0, &mut rng),
        Tensor::uniform(&[c], 0.5, 1.5, &mut rng),
        Tensor::uniform(&[c], -1.0, 1.0, &mut rng),
    ]
}

fn bn<'t>(_: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
    batch_norm(v[0], v[1], v[2], 1e-5)
}

fn ln<'t>(_: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
    layer_norm(v[0], v[1], v[2], 1e-5)
}

fn ln3<'t>(_: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
    layer_norm(v[0].reshape(&[2, 2, 3]), v[1], v[2], 1e-5)
}

type Norm64 = for<'t> fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>;

/// gradcheck and gradgradcheck of `f` on inputs `[n, c]` for each `(n, c, seed)`.
fn check_twice(f: Norm64, cases: &[(usize, usize, u64)]) {
    for &(n, c, seed) in cases {
        let xs = inputs(n, c, seed);
        gradcheck(f, &xs).unwrap_or_else(|e| panic!("[{n}, {c}]: {e}"));
        gradgradcheck(f, &xs).unwrap_or_else(|e| panic!("[{n}, {c}]: {e}"));
    }
}

#[test]
fn batch_norm_gradcheck_and_gradgradcheck() {
    check_twice(bn, &[(4, 3, 1), (2, 2, 2), (5, 1, 3)]);
}

#[test]
fn layer_norm_gradcheck_and_gradgradcheck() {
    check_twice(ln, &[(3, 4, 4), (1, 2, 5), (2, 5, 6)]);
    // a 3-d input normalises its last dimension
    check_twice(ln3, &[(4, 3, 7)]);
}

#[test]
fn sequential_passes_the_mode_and_names_buffers_as_pytorch() {
    let tape = Tape::<f32>::new();
    let mut model = Sequential::mlp_norm(&tape, &[4, 8, 8, 2], Norm::Batch, &mut TorchRng::manual_seed(3));
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "1.weight", "1.bias", "3.weight", "4.weight", "4.bias", "6.weight", "6.bias"]);
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        [
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "4.running_mean",
            "4.running_var",
            "4.num_batches_tracked"
        ]
    );
    let x = Tensor::from_fn(&[3, 4], |i| i as f32 * 0.1);
    let counts = |m: &Sequential<f32>| -> Vec<f64> {
        m.named_buffers().into_iter().filter(|(n, _)| n.ends_with("tracked")).map(|(_, b)| b.to_f64_vec()[0]).collect()
    };
    model.forward(tape.input(x.clone()));
    assert_eq!(counts(&model), [1.0, 1.0]);
    model.set_training(false);
    let single = model.forward(tape.input(x.rows(0, 1)));
    assert_eq!(single.shape().as_slice(), [1, 2], "evaluation mode takes one sample");
    assert_eq!(counts(&model), [1.0, 1.0]);
    model.set_training(true);
    model.forward(tape.input(x));
    assert_eq!(counts(&model), [2.0, 2.0]);
    let layer = Sequential::<f32>::mlp_norm(&tape, &[4, 8, 2], Norm::Layer, &mut TorchRng::manual_seed(3));
    let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]);
    assert!(layer.named_buffers().is_empty());
    let text = format!("{model}");
    assert!(text.contains("(0): Linear(in_features=4, out_features=8, bias=False)"), "{text}");
    let bn = "(1): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)";
    assert!(text.contains(bn), "{text}");
    assert!(format!("{layer}").contains("(1): LayerNorm((8,), eps=1e-05, elementwise_affine=True)"), "{layer}");
}

#[test]
#[should_panic(
    expected = "BatchNorm1d(3): expected more than 1 value per channel when training, got input of shape [1, 3]"
)]
fn batch_norm_refuses_one_training_sample() {
    let tape = Tape::<f32>::new();
    let bn = BatchNorm1d::new(&tape, 3);
    bn.forward(tape.input(Tensor::zeros(&[1, 3])));
}

#[test]
#[should_panic(expected = "BatchNorm1d(3): expected an input of shape [N, 3], got [4, 2]")]
fn batch_norm_names_a_wrong_shape() {
    let tape = Tape::<f32>::new();
    let bn = BatchNorm1d::new(&tape, 3);
    bn.forward(tape.input(Tensor::zeros(&[4, 2])));
}

/// Settings are printed as Python's `repr` writes floats (what PyTorch's printout shows):
/// `repr(x)` for each `x` below, from Python 3.
#[test]
fn settings_print_as_python_writes_floats() {
    let tape = Tape::<f32>::new();
    let mut bn = BatchNorm1d::new(&tape, 3);
    let cases = [
        (1e-5, "1e-05"),
        (1e-3, "0.001"),
        (1e-4, "0.0001"),
        (1e-10, "1e-10"),
        (1.5e-7, "1.5e-07"),
        (1e-100, "1e-100"),
        (0.5, "0.5"),
        (1.0, "1.0"),
        (123.0, "123.0"),
        (2.5e15, "2500000000000000.0"),
        (1e16, "1e+16"),
        (0.0, "0.0"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];
    for (x, want) in cases {
        bn.eps = x;
        bn.momentum = x;
        let text = format!("{bn}");
        assert_eq!(text, format!("BatchNorm1d(3, eps={want}, momentum={want}, affine=True, track_running_stats=True)"));
        let mut ln = LayerNorm::new(&tape, 4);
        ln.eps = x;
        assert_eq!(format!("{ln}"), format!("LayerNorm((4,), eps={want}, elementwise_affine=True)"));
    }
}

/// `is_training` follows `set_training`; a layer starts in training mode, as in PyTorch.
#[test]
fn batch_norm_reports_its_mode() {
    let tape = Tape::<f32>::new();
    let mut bn = BatchNorm1d::new(&tape, 3);
    assert!(bn.is_training());
    bn.set_training(false);
    assert!(!bn.is_training());
    bn.set_training(true);
    assert!(bn.is_training());
}
