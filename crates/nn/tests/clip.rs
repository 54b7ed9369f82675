//! `clip_grad_norm` and `clip_grad_value` against PyTorch's `clip_grad_norm_` /
//! `clip_grad_value_` (`foreach=False`, float32, bit for bit; `tests/fixtures/norm.json`, made by
//! `tests/fixtures/make_norm_reference.py`), and their edge cases.

use serde_json::Value;
use tapegrad::{Param, Tape, Tensor};
use tapegrad_nn::{clip_grad_norm, clip_grad_value, ClipGradNorm, NormType};

const NORM: &str = include_str!("fixtures/norm.json");

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// A tape whose parameters have the given gradients (`g = grad of sum(p * g)`).
fn tape_with_grads(shapes: &[Vec<usize>], grads: &[Vec<f32>]) -> (Tape<f32>, Vec<Param>) {
    let mut tape = Tape::<f32>::new();
    let params: Vec<Param> = shapes.iter().map(|s| tape.parameter(Tensor::zeros(s))).collect();
    for ((p, g), s) in params.iter().zip(grads).zip(shapes) {
        (tape.var(*p) * tape.input(Tensor::new(g.clone(), s))).sum().backward();
    }
    tape.reset();
    (tape, params)
}

fn grads(tape: &Tape<f32>, params: &[Param]) -> Vec<Vec<f32>> {
    params.iter().map(|p| tape.param_grad(*p).unwrap().into_vec()).collect()
}

#[test]
fn matches_pytorch() {
    let fixture: Value = serde_json::from_str(NORM).unwrap();
    let cases = fixture["clip"].as_array().unwrap();
    assert!(cases.len() >= 5);
    let mut clipped_somewhere = (false, false);
    for (k, c) in cases.iter().enumerate() {
        let shapes: Vec<Vec<usize>> = c["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect())
            .collect();
        let given: Vec<Vec<f32>> = c["grads"].as_array().unwrap().iter().map(f32s).collect();
        let norm_type = if c["norm_type"] == "inf" { NormType::Inf } else { NormType::L2 };
        let max_norm = c["max_norm"].as_f64().unwrap();
        let (mut tape, params) = tape_with_grads(&shapes, &given);
        let total = clip_grad_norm(&mut tape, max_norm, norm_type);
        let want_total = c["total"].as_f64().unwrap() as f32;
        assert_eq!(total, want_total, "case {k}: total");
        let want: Vec<Vec<f32>> = c["clipped"].as_array().unwrap().iter().map(f32s).collect();
        for (i, (g, w)) in grads(&tape, &params).iter().zip(&want).enumerate() {
            for (j, (a, b)) in g.iter().zip(w).enumerate() {
                assert_eq!(a, b, "case {k} param {i}[{j}]");
            }
        }
        if total as f64 > max_norm {
            clipped_somewhere.0 = true;
        } else {
            clipped_somewhere.1 = true;
        }
        let (mut tape, params) = tape_with_grads(&shapes, &given);
        clip_grad_value(&mut tape, c["clip_value"].as_f64().unwrap());
        let want: Vec<Vec<f32>> = c["value_clipped"].as_array().unwrap().iter().map(f32s).collect();
        assert_eq!(grads(&tape, &params), want, "case {k}: clip_grad_value");
    }
    assert_eq!(clipped_somewhere, (true, true), "the fixture has cases above and below the threshold");
}

/// `clip_grad_value_(params, 0.0, foreach=False)` in PyTorch 2.15 (clamp to -0.0, then to
/// 0.0) keeps each zero's sign and sends positives to 0.0, negatives to -0.0:
/// `[0.0, -0.0, 1.0, -1.0]` -> `[0.0, -0.0, 0.0, -0.0]`, for 4 and 40 elements alike.
#[test]
fn clip_value_zero_keeps_the_sign_of_zeros() {
    for n in [4, 40] {
        let g: Vec<f32> = [0.0, -0.0, 1.0, -1.0].iter().cycle().take(n).copied().collect();
        let (mut tape, params) = tape_with_grads(&[vec![n]], &[g]);
        clip_grad_value(&mut tape, 0.0);
        let bits: Vec<u32> = grads(&tape, &params)[0].iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [0.0f32, -0.0, 0.0, -0.0].iter().cycle().take(n).map(|v| v.to_bits()).collect();
        assert_eq!(bits, want, "{n} elements");
    }
}

#[test]
fn coefficient_is_applied_also_when_it_is_one() {
    // total norm 5 far below max_norm: coef = min(1e6 / 5, 1) = 1, the gradients stay as they are
    let (mut tape, params) = tape_with_grads(&[vec![2]], &[vec![3.0, 4.0]]);
    assert_eq!(clip_grad_norm(&mut tape, 1e6, NormType::L2), 5.0);
    assert_eq!(grads(&tape, &params), [vec![3.0, 4.0]]);
    // just above: coef = f32(5) * (1 / (5 + 1e-6)) rounded in float32, below one
    let (mut tape, params) = tape_with_grads(&[vec![2]], &[vec![3.0, 4.0]]);
    clip_grad_norm(&mut tape, 5.0, NormType::L2);
    let coef = 5f32 * (1.0 / (5f32 + 1e-6f32));
    assert!(coef < 1.0);
    assert_eq!(grads(&tape, &params), [vec![3.0 * coef, 4.0 * coef]]);
}

#[test]
fn infinity_norm_and_parameters_without_gradients() {
    let mut tape = Tape::<f32>::new();
    let a = tape.parameter(Tensor::zeros(&[3]));
    let unused = tape.parameter(Tensor::new(vec![100.0], &[1]));
    let buffer = tape.parameter_with(Tensor::new(vec![7.0], &[1]), false);
    (tape.var(a) * tape.input(Tensor::new(vec![1.0, -4.0, 2.0], &[3]))).sum().backward();
    tape.reset();
    assert_eq!(clip_grad_norm(&mut tape, 2.0, NormType::Inf), 4.0);
    let coef = 2f32 * (1.0 / (4f32 + 1e-6f32));
    assert_eq!(tape.param_grad(a).unwrap().data(), &[coef, -4.0 * coef, 2.0 * coef]);
    assert!(tape.param_grad(unused).is_none() && tape.param_grad(buffer).is_none());
    // no gradient at all: norm 0, nothing to do
    tape.zero_grad();
    assert_eq!(clip_grad_norm(&mut tape, 1.0, NormType::L2), 0.0);
}

#[test]
fn non_finite_norms() {
    for (bad, norm_type) in [(f32::NAN, NormType::L2), (f32::INFINITY, NormType::L2), (f32::NAN, NormType::Inf)] {
        let given = [vec![1.0, bad], vec![2.0]];
        let (mut tape, params) = tape_with_grads(&[vec![2], vec![1]], &given);
        let err = ClipGradNorm::new(1.0).norm_type(norm_type).error_if_nonfinite(true).apply(&mut tape).unwrap_err();
        assert_eq!(err.total_norm.is_nan(), bad.is_nan(), "{err}");
        assert!(err.to_string().contains("cannot be clipped"), "{err}");
        // the gradients are left as they are
        let g = grads(&tape, &params);
        assert_eq!((g[0][0], g[1][0]), (1.0, 2.0));
        // without the check, PyTorch scales by the non-finite norm: everything becomes NaN (or 0)
        let (mut tape, params) = tape_with_grads(&[vec![2], vec![1]], &given);
        let total = clip_grad_norm(&mut tape, 1.0, norm_type);
        assert!(!total.is_finite());
        let g = grads(&tape, &params);
        if bad.is_nan() {
            assert!(g.iter().flatten().all(|v| v.is_nan()), "{g:?}");
        } else {
            assert_eq!(g[1][0], 0.0, "coef 1 / inf = 0");
        }
    }
}

#[test]
#[should_panic(expected = "clip_grad_norm: max_norm -1 must be >= 0")]
fn negative_max_norm_panics() {
    let mut tape = Tape::<f32>::new();
    clip_grad_norm(&mut tape, -1.0, NormType::L2);
}

#[test]
#[should_panic(expected = "clip_grad_value: clip_value NaN must be >= 0")]
fn nan_clip_value_panics() {
    let mut tape = Tape::<f32>::new();
    clip_grad_value(&mut tape, f64::NAN);
}
