//! The token ops: `embedding` (row gather, scatter-add gradient) and `nll_loss` /
//! `cross_entropy` with `ignore_index` and the three reductions — against PyTorch in
//! float64 (`tests/fixtures/token_ops.json`, made by `tests/fixtures/make_token_ops.py`),
//! gradcheck and gradgradcheck on random shapes, and the messages of bad indices.

use serde_json::Value;
use tapegrad::{gradcheck, gradgradcheck, Reduction, Tape, Tensor, TorchRng, Var};

const TOL: f64 = 1e-6;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

/// `got` within `TOL` of `want` relative to `want`'s largest magnitude; NaN only where
/// `want` is NaN (PyTorch's null).
#[track_caller]
fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().filter(|v| !v.is_nan()).fold(1e-300f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= TOL * scale };
        assert!(ok, "{what}[{i}]: {g} vs PyTorch {w}");
    }
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/token_ops.json")).unwrap()
}

#[test]
fn embedding_matches_pytorch() {
    let fx = fixture();
    for (k, c) in fx["embedding"].as_array().unwrap().iter().enumerate() {
        let (v, d) = (c["v"].as_u64().unwrap() as usize, c["d"].as_u64().unwrap() as usize);
        let shape: Vec<usize> = c["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let tape = Tape::<f64>::new();
        let w = tape.leaf(Tensor::new(floats(&c["weight"]), &[v, d]), true);
        let idx = tape.input(Tensor::new(floats(&c["indices"]), &shape));
        let out = w.embedding(idx);
        let mut want_shape = shape.clone();
        want_shape.push(d);
        assert_eq!(out.shape().as_slice(), want_shape.as_slice(), "case {k}");
        close(&format!("case {k} out"), out.value().data(), &floats(&c["out"]));
        (out * tape.input(Tensor::new(floats(&c["up"]), &want_shape))).sum().backward();
        close(&format!("case {k} grad"), w.grad().unwrap().data(), &floats(&c["grad"]));
    }
}

#[test]
fn cross_entropy_and_nll_with_ignore_index_match_pytorch() {
    let fx = fixture();
    let cases = fx["cross_entropy"].as_array().unwrap();
    let mut nan_means = 0;
    for (k, c) in cases.iter().enumerate() {
        let cl = c["c"].as_u64().unwrap() as usize;
        let n = c["n"].as_u64().map(|n| n as usize);
        let (xs, ts): (Vec<usize>, Vec<usize>) = match n {
            Some(n) => (vec![n, cl], vec![n]),
            None => (vec![cl], vec![]),
        };
        let ignore = c["ignore_index"].as_i64().unwrap();
        let x = Tensor::new(floats(&c["x"]), &xs);
        let t = Tensor::new(floats(&c["target"]), &ts);
        for f in ["ce", "nll"] {
            for (rname, red) in [("none", Reduction::None), ("sum", Reduction::Sum), ("mean", Reduction::Mean)] {
                let key = format!("{f}_{rname}");
                let tape = Tape::<f64>::new();
                let xv = tape.leaf(&x, true);
                let tv = tape.input(t.clone());
                let loss = if f == "ce" { xv.cross_entropy(tv, red, ignore) } else { xv.nll_loss(tv, red, ignore) };
                let up = Tensor::new(floats(&c[format!("{key}_up")]), &loss.shape());
                close(&format!("case {k} {key}"), loss.value().data(), &floats(&c[&key]));
                nan_means += usize::from(red == Reduction::Mean && loss.item().is_nan());
                (loss * tape.input(up)).sum().backward();
                close(&format!("case {k} {key} grad"), xv.grad().unwrap().data(), &floats(&c[format!("{key}_grad")]));
            }
        }
    }
    assert_eq!(nan_means, 4, "two fixture cases have every target ignored (a NaN mean, zero gradients)");
}

/// Random targets `0..classes` with about a third set to `ignore`.
fn targets(rng: &mut TorchRng, n: usize, classes: usize, ignore: i64) -> Tensor<f64> {
    Tensor::from_fn(
        &[n],
        |_| if rng.randint(0, 3) == 0 { ignore as f64 } else { rng.randint(0, classes as i64) as f64 },
    )
}

#[track_caller]
fn check<F>(name: &str, seed: u64, f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64> + Copy,
{
    if let Err(e) = gradcheck(f, inputs) {
        panic!("{name} (seed {seed}): {e}");
    }
    if let Err(e) = gradgradcheck(f, inputs) {
        panic!("{name} (seed {seed}), second order: {e}");
    }
}

#[test]
fn gradcheck_and_gradgradcheck() {
    for seed in 0..8u64 {
        let mut rng = TorchRng::manual_seed(2400 + seed);
        let (n, c) = (1 + rng.randint(0, 6) as usize, 2 + rng.randint(0, 4) as usize);
        let ignore = if seed % 2 == 0 { -100 } else { rng.randint(0, c as i64) };
        let t = targets(&mut rng, n, c, ignore);
        let x = Tensor::uniform(&[n, c], -2.0, 2.0, &mut rng);
        for red in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            if red == Reduction::Mean && t.data().iter().all(|&v| v == ignore as f64) {
                continue; // NaN: no derivative to compare
            }
            let tt = &t;
            // cross entropy's curvature comes from its log-softmax; the tanh gives the
            // linear nll_loss some for the second order
            check(
                "cross_entropy",
                seed,
                |tape, v| v[0].cross_entropy(tape.input(tt.clone()), red, ignore),
                std::slice::from_ref(&x),
            );
            check(
                "tanh nll_loss",
                seed,
                |tape, v| v[0].tanh().nll_loss(tape.input(tt.clone()), red, ignore),
                std::slice::from_ref(&x),
            );
            // squared: the second order flows through the gradient's dy alone
            check(
                "nll_loss squared",
                seed,
                |tape, v| {
                    let l = v[0].nll_loss(tape.input(tt.clone()), red, ignore);
                    l * l
                },
                std::slice::from_ref(&x),
            );
        }
        // embedding: repeated indices, then a nonlinearity so the second order is not zero
        let (v, d) = (1 + rng.randint(0, 5) as usize, 1 + rng.randint(0, 3) as usize);
        let idx = Tensor::from_fn(&[2, 1 + rng.randint(0, 4) as usize], |_| rng.randint(0, v as i64) as f64);
        let w = Tensor::uniform(&[v, d], -1.5, 1.5, &mut rng);
        let up = Tensor::uniform(&[idx.shape()[0], idx.shape()[1], d], -1.0, 1.0, &mut rng);
        let (ir, ur) = (&idx, &up);
        check(
            "embedding",
            seed,
            |tape, x| x[0].embedding(tape.input(ir.clone())).tanh() * tape.input(ur.clone()),
            &[w],
        );
    }
}

#[test]
fn repeated_indices_add_up_and_mean_over_no_target_is_nan_with_zero_gradients() {
    let tape = Tape::<f32>::new();
    let w = tape.leaf(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]), true);
    let e = w.embedding(tape.input(Tensor::new(vec![2.0, 0.0, 2.0, 2.0], &[4])));
    assert_eq!(e.value().data(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0, 5.0, 6.0]);
    e.sum().backward();
    assert_eq!(w.grad().unwrap().data(), &[1.0, 1.0, 0.0, 0.0, 3.0, 3.0]);

    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::new(vec![0.5, -1.0, 2.0, 0.0, 1.0, 1.0], &[2, 3]), true);
    let t = tape.input(Tensor::new(vec![-100.0, -100.0], &[2]));
    let mean = x.cross_entropy(t, Reduction::Mean, -100);
    assert!(mean.item().is_nan());
    mean.backward();
    assert!(x.grad().unwrap().data().iter().all(|&g| g == 0.0), "{:?}", x.grad());
    assert_eq!(x.cross_entropy(t, Reduction::Sum, -100).item(), 0.0);
    assert_eq!(x.cross_entropy(t, Reduction::None, -100).value().data(), &[0.0, 0.0]);
}

#[test]
fn float32_sum_rounds_as_pytorchs_cascade() {
    // 40 terms of -logp = 0.1 + i·1e-7 in float32: PyTorch sums terms 1..15, 16..31 and
    // 32..39 at level 0 and pushes each block up; a plain running sum rounds differently
    let n = 40;
    let tape = Tape::<f32>::new();
    let lp = tape.input(Tensor::from_fn(&[n, 1], |i| -(0.1 + i as f32 * 1e-7)));
    let got = lp.nll_loss(tape.input(Tensor::zeros(&[n])), Reduction::Sum, -100).item();
    let term = |i: usize| 0.1 + i as f32 * 1e-7;
    let (mut l0, mut l1) = (term(0), 0.0f32);
    l1 += l0; // b = 0 pushes its term all the way up
    l0 = 0.0;
    for b in 1..n {
        l0 += term(b);
        if b % 16 == 0 {
            l1 += l0;
            l0 = 0.0;
        }
    }
    assert_eq!(got.to_bits(), (0.0 + l0 + l1).to_bits());
}

#[test]
fn float32_sum_over_many_targets_rounds_as_pytorchs_cascade_at_every_level() {
    // 9000 terms 1/(i + 1): PyTorch's cascade sums each block of 16 targets at level 0,
    // pushes level j up to level j + 1 every 16^(j + 1) targets (target 0 all the way up),
    // then adds the levels from the lowest; blocks of another size, pushes at other
    // targets or levels added in another order round differently here. (PyTorch 2.15's
    // `F.nll_loss(-x.reshape(n, 1), zeros(n), reduction='sum')` of these float32 terms
    // gives 9.6822509765625, this sum; a running sum gives 9.682266.)
    let n = 9000;
    let term = |i: usize| 1.0 / (i + 1) as f32;
    let tape = Tape::<f32>::new();
    let lp = tape.input(Tensor::from_fn(&[n, 1], |i| -term(i)));
    let got = lp.nll_loss(tape.input(Tensor::zeros(&[n])), Reduction::Sum, -100).item();
    let mut levels = [0.0f32; 8];
    for b in 0..n {
        levels[0] += term(b);
        let mut j = 0;
        while j < 7 && b % 16usize.pow(j as u32 + 1) == 0 {
            levels[j + 1] += levels[j];
            levels[j] = 0.0;
            j += 1;
        }
    }
    let want = levels.iter().fold(0.0f32, |s, &l| s + l);
    assert_eq!(got.to_bits(), want.to_bits(), "{got} vs {want}");
    let running = (0..n).fold(0.0f32, |s, i| s + term(i));
    assert_ne!(got, running, "the cascade rounds unlike a running sum here");
}

#[test]
#[should_panic(expected = "embedding: index 3 is outside 0..3 (at crates/autograd/tests/token_ops.rs:")]
fn embedding_names_a_bad_index_and_the_line() {
    let tape = Tape::<f32>::new();
    let w = tape.leaf(Tensor::zeros(&[3, 2]), true);
    w.embedding(tape.input(Tensor::new(vec![0.0, 3.0], &[2])));
}

#[test]
#[should_panic(expected = "embedding: index -1 is outside 0..3")]
fn embedding_rejects_a_negative_index() {
    let tape = Tape::<f32>::new();
    let w = tape.leaf(Tensor::zeros(&[3, 2]), true);
    w.embedding(tape.input(Tensor::new(vec![-1.0], &[1])));
}

#[test]
#[should_panic(expected = "embedding: weight [6] is not a matrix [V, D]")]
fn embedding_needs_a_matrix() {
    let tape = Tape::<f32>::new();
    let w = tape.leaf(Tensor::zeros(&[6]), true);
    w.embedding(tape.input(Tensor::new(vec![0.0], &[1])));
}

#[test]
#[should_panic(
    expected = "nll_loss: target -100 is not a class index in 0..3 nor the ignore_index -1 (at crates/autograd/tests/token_ops.rs:"
)]
fn nll_loss_ignores_only_its_ignore_index() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::zeros(&[2, 3]), true);
    x.nll_loss(tape.input(Tensor::new(vec![-1.0, -100.0], &[2])), Reduction::Mean, -1);
}

#[test]
fn the_default_ignore_index_is_pytorchs_minus_100() {
    // F.nll_loss(logp, t) with its default ignore_index=-100: the mean over the kept targets
    let tape = Tape::<f64>::new();
    let lp = tape.leaf(Tensor::new(vec![-0.5, -1.5, -2.0, -0.25, -3.0, -1.0], &[3, 2]), true);
    let t = tape.input(Tensor::new(vec![1.0, -100.0, 0.0], &[3]));
    let mean = lp.nll_loss_mean(t);
    assert_eq!(mean.item(), (1.5 + 3.0) / 2.0);
    mean.backward();
    assert_eq!(lp.grad().unwrap().data(), &[0.0, -0.5, 0.0, 0.0, -0.5, 0.0]);
    assert_eq!(lp.nll_loss_sum(t).item(), 4.5);
    assert_eq!(tapegrad::DEFAULT_IGNORE_INDEX, -100);
}
