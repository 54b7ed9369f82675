//! The classification ops: log_softmax, softmax, argmax along any axis and nll_loss —
//! gradcheck on random shapes and axes, gradgradcheck (the fused gradient ops carry the
//! curvature), stability at large magnitudes, argmax semantics, and the messages of bad
//! shapes and targets. (PyTorch's values are compared in tapegrad-nn's cross-entropy
//! fixture test.)

use tapegrad::{gradcheck, gradgradcheck, Tape, Tensor, TorchRng, Var};

const CASES: u64 = 12;

/// A random shape of 1 to 4 dimensions with sizes 1..=4, and an axis of it.
fn shape_and_axis(rng: &mut TorchRng) -> (Vec<usize>, usize) {
    let nd = 1 + rng.randint(0, 4) as usize;
    let s: Vec<usize> = (0..nd).map(|_| 1 + rng.randint(0, 4) as usize).collect();
    let axis = rng.randint(0, nd as i64) as usize;
    (s, axis)
}

#[track_caller]
fn check<F>(name: &str, seed: u64, f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let shapes: Vec<_> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    if let Err(e) = gradcheck(f, inputs) {
        panic!("{name} (seed {seed}, shapes {shapes:?}): {e}");
    }
}

/// Random class indices `0..classes` as values.
fn targets(rng: &mut TorchRng, n: usize, classes: usize) -> Tensor<f64> {
    Tensor::from_fn(&[n], |_| rng.randint(0, classes as i64) as f64)
}

#[test]
fn log_softmax_and_softmax_on_every_axis() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(8000 + seed);
        let (s, axis) = shape_and_axis(&mut rng);
        let x = Tensor::uniform(&s, -3.0, 3.0, &mut rng);
        // a random weighting makes the upstream gradient generic (the sum of a log_softmax
        // lane's gradient alone is special)
        let w = Tensor::uniform(&s, -1.0, 1.0, &mut rng);
        check("log_softmax", seed, move |_, v| v[0].log_softmax(axis) * v[1], &[x.clone(), w.clone()]);
        check("softmax", seed, move |_, v| v[0].softmax(axis) * v[1], &[x.clone(), w.clone()]);
        // softmax is exp(log_softmax), and each lane of softmax sums to one
        let tape = Tape::<f64>::new();
        let xv = tape.input(x.clone());
        let a = xv.softmax(axis).value();
        let b = xv.log_softmax(axis).exp().value();
        assert!(a.max_abs_diff(&b) < 1e-15, "seed {seed}");
        let sums = xv.softmax(axis).sum_axis(axis, false).value();
        assert!(sums.data().iter().all(|&v| (v - 1.0).abs() < 1e-14), "seed {seed}: {sums}");
    }
}

#[test]
fn nll_loss_and_cross_entropy() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(8100 + seed);
        let (n, c) = (1 + rng.randint(0, 5) as usize, 1 + rng.randint(0, 5) as usize);
        let x = Tensor::uniform(&[n, c], -3.0, 3.0, &mut rng);
        let t = targets(&mut rng, n, c);
        let (t1, t2, t3) = (t.clone(), t.clone(), t.clone());
        check("nll_sum", seed, move |tape, v| v[0].nll_loss_sum(tape.input(t1.clone())), std::slice::from_ref(&x));
        check("nll_mean", seed, move |tape, v| v[0].nll_loss_mean(tape.input(t2.clone())), std::slice::from_ref(&x));
        check(
            "cross_entropy",
            seed,
            move |tape, v| v[0].log_softmax(1).nll_loss_mean(tape.input(t3.clone())),
            std::slice::from_ref(&x),
        );
        // the value: -mean of the picked log-probabilities
        let tape = Tape::<f64>::new();
        let lp = tape.input(x.clone()).log_softmax(1);
        let got = lp.nll_loss_mean(tape.input(t.clone())).item();
        let lpv = lp.value();
        let want = -(0..n).map(|i| lpv.at(&[i, t.data()[i] as usize])).sum::<f64>() / n as f64;
        assert!((got - want).abs() < 1e-14, "seed {seed}: {got} vs {want}");
        // one sample: [C] with a 0-d target
        let row = Tensor::from_slice(&x.data()[..c], &[c]);
        let t0 = Tensor::scalar(t.data()[0]);
        check("nll_one", seed, move |tape, v| v[0].log_softmax(0).nll_loss_sum(tape.input(t0.clone())), &[row]);
    }
}

#[test]
fn second_derivatives() {
    let mut rng = TorchRng::manual_seed(8200);
    for k in 0..4 {
        let axis = k % 2;
        let x = Tensor::uniform(&[3, 4], -2.0, 2.0, &mut rng);
        let w = Tensor::uniform(&[3, 4], -1.0, 1.0, &mut rng);
        let t = targets(&mut rng, 3, 4);
        let run = |name: &str, r: Result<_, _>| r.unwrap_or_else(|e| panic!("{name} axis {axis}: {e}"));
        run("log_softmax", gradgradcheck(move |_, v| v[0].log_softmax(axis) * v[1], &[x.clone(), w.clone()]));
        run("softmax", gradgradcheck(move |_, v| v[0].softmax(axis) * v[1], &[x.clone(), w.clone()]));
        let t1 = t.clone();
        run(
            "cross_entropy",
            gradgradcheck(
                move |tape, v| v[0].log_softmax(1).nll_loss_mean(tape.input(t1.clone())),
                std::slice::from_ref(&x),
            ),
        );
        // the nll loss is linear: its curvature comes from what feeds it
        let t2 = t.clone();
        run(
            "tanh_nll_sum",
            gradgradcheck(move |tape, v| v[0].tanh().nll_loss_sum(tape.input(t2.clone())), std::slice::from_ref(&x)),
        );
    }
}

#[test]
fn stable_at_large_magnitudes() {
    // e^1e4 overflows f64; subtracting the max keeps every value exact
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![1e4, -1e4, 1e4 - 1.0, 0.0], &[1, 4]), true);
    let lp = x.log_softmax(1);
    let l = (1.0 + (-1.0f64).exp()).ln();
    let want = [-l, -2e4 - l, -1.0 - l, -1e4 - l];
    for (g, w) in lp.value().data().iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
    let p = x.softmax(1).value();
    assert!(p.data().iter().all(|v| v.is_finite()));
    assert!((p.data()[0] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
    let t = tape.input(Tensor::new(vec![1.0], &[1]));
    let loss = lp.nll_loss_sum(t);
    assert_eq!(loss.item(), 2e4 + l);
    loss.backward();
    let g = x.grad().unwrap();
    assert!(g.data().iter().all(|v| v.is_finite()), "{g}");
    // f32 too: 1e4 is far beyond e^x's f32 range (88)
    let tape = Tape::<f32>::new();
    let x = tape.input(Tensor::new(vec![1e4f32, 0.0], &[2]));
    assert_eq!(x.log_softmax(0).value().data(), &[0.0, -1e4]);
}

#[test]
fn stable_along_a_strided_axis() {
    // lanes down the columns of a [4, 2] matrix (elements 2 apart), the largest last: the
    // maximum subtracted must be the lane's own, or e^(1e4 - m) overflows
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::new(vec![0.0, 3.0, -1e4, 2.0, 1e4 - 1.0, 1.0, 1e4, 0.0], &[4, 2]));
    let l = (1.0 + (-1.0f64).exp()).ln();
    let lp = x.log_softmax(0).value();
    let want0 = [-1e4 - l, -2e4 - l, -1.0 - l, -l];
    for (k, w) in want0.iter().enumerate() {
        let g = lp.data()[2 * k];
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "row {k}: {g} vs {w}");
    }
    let p = x.softmax(0).value();
    assert!(p.data().iter().all(|v| v.is_finite()), "{p}");
    assert!((p.data()[6] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15, "{p}");
}

#[test]
fn non_finite_lanes_are_nan_only_where_pytorch_gives_nan() {
    let tape = Tape::<f64>::new();
    let inf = f64::INFINITY;
    let x = tape.input(Tensor::new(vec![-inf, 0.0, 1.0, f64::NAN, 2.0, 3.0, -inf, -inf, inf, 0.0], &[5, 2]));
    let lp = x.log_softmax(1).value();
    let d = lp.data();
    assert_eq!(d[0], -inf);
    assert_eq!(d[1], 0.0);
    assert!(d[2].is_nan() && d[3].is_nan(), "a NaN poisons its lane");
    assert!(d[4].is_finite() && d[5].is_finite());
    assert!(d[6].is_nan() && d[7].is_nan(), "an all -inf lane has no distribution");
    assert!(d[8].is_nan() && d[9].is_nan(), "an infinite maximum gives NaN");
}

#[test]
fn argmax_semantics() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::new(vec![1.0, 5.0, 5.0, -1.0, 7.0, 0.0], &[2, 3]), true);
    let a = x.argmax(1);
    assert_eq!(a.shape().as_slice(), &[2]);
    assert_eq!(a.value().data(), &[1.0, 1.0], "first index on ties");
    assert_eq!(x.argmax(0).value().data(), &[0.0, 1.0, 0.0]);
    assert!(!a.requires_grad(), "indices have no gradient");
    // a NaN counts as the largest, as in PyTorch
    let y = tape.input(Tensor::new(vec![1.0, f32::NAN, 9.0], &[3]));
    assert_eq!(y.argmax(0).item(), 1.0);
    // 3-d, the middle axis
    let z = tape.input(Tensor::from_fn(&[2, 3, 2], |i| [0., 9., 4., 2., 8., 1., 3., 3., 5., 7., 1., 8.][i]));
    assert_eq!(z.argmax(1).value().data(), &[2.0, 0.0, 1.0, 2.0]);
    assert_eq!(z.argmax(1).shape().as_slice(), &[2, 2]);
}

#[test]
#[should_panic(expected = "log_softmax: axis 2 out of range for shape [3, 4]")]
fn log_softmax_names_a_bad_axis() {
    let tape = Tape::<f64>::new();
    tape.input(Tensor::zeros(&[3, 4])).log_softmax(2);
}

#[test]
#[should_panic(expected = "nll_loss: target 4 is not a class index in 0..4")]
fn nll_loss_rejects_an_out_of_range_target() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::zeros(&[2, 4]));
    x.nll_loss_mean(tape.input(Tensor::new(vec![0.0, 4.0], &[2])));
}

#[test]
#[should_panic(expected = "nll_loss: target 0.5 is not a class index in 0..4")]
fn nll_loss_rejects_a_fractional_target() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::zeros(&[2, 4]));
    x.nll_loss_sum(tape.input(Tensor::new(vec![0.5, 1.0], &[2])));
}

#[test]
#[should_panic(expected = "nll_loss: log-probabilities [2, 4] and targets [3] do not fit")]
fn nll_loss_names_the_shapes() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::zeros(&[2, 4]));
    x.nll_loss_sum(tape.input(Tensor::zeros(&[3])));
}
