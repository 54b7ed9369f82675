//! The edge cases of issue 15 against PyTorch (float64): values and gradients made by
//! `tests/fixtures/make_semantics.py` (the command is in the script). Where tapegrad keeps
//! a different rule on purpose (interior gradients do not accumulate), the test says so and
//! checks tapegrad's rule against PyTorch's single-pass value; the README's "Differences
//! from PyTorch" lists these.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;
use tapegrad::{ScalarTape, Tape, Tensor};

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/semantics.json")).unwrap()
}

/// A tensor of the fixture: floats are strings, so NaN, infinities and `-0.0` survive.
fn tensor(v: &Value) -> Tensor<f64> {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().parse().unwrap()).collect();
    Tensor::new(data, &shape)
}

/// A number of the fixture: a string, or a one-element tensor.
fn num(v: &Value) -> f64 {
    match v.as_str() {
        Some(s) => s.parse().unwrap(),
        None => tensor(v).data()[0],
    }
}

/// Equal as PyTorch's values: NaN where it has NaN, the same infinities and the same sign
/// of zero, finite values within 1e-12 relative.
fn same(got: f64, want: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want == 0.0 {
        return got == 0.0 && got.is_sign_negative() == want.is_sign_negative();
    }
    if want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= 1e-12 * want.abs().max(1.0)
}

#[track_caller]
fn check(what: &str, got: &Tensor<f64>, want: &Tensor<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(same(g, w), "{what}[{i}]: got {g:?}, PyTorch {w:?}\n  got {:?}\n want {:?}", got.data(), want.data());
    }
}

#[track_caller]
fn check1(what: &str, got: f64, want: f64) {
    assert!(same(got, want), "{what}: got {got:?}, PyTorch {want:?}");
}

// 1. relu at NaN: the value passes, and so does the gradient (PyTorch's `v <= 0 ? 0 : dy`)
#[test]
fn case1_relu_at_nan_and_signed_zero() {
    let f = &fixture()["relu"];
    let (x0, up, y_want, g_want) = (tensor(&f["x"]), tensor(&f["upstream"]), tensor(&f["y"]), tensor(&f["grad"]));
    let tape = Tape::<f64>::new();
    let x = tape.leaf(&x0, true);
    let y = x.relu();
    (y * tape.input(up.clone())).sum().backward();
    check("relu value", &y.value(), &y_want);
    check("relu grad", &x.grad().unwrap(), &g_want);
    // the scalar engine has the same meaning
    for (i, (&xv, &u)) in x0.data().iter().zip(up.data()).enumerate() {
        let st = ScalarTape::new();
        let s = st.leaf(xv);
        let r = s.relu();
        (r * u).backward();
        check1(&format!("scalar relu value {i}"), r.value(), y_want.data()[i]);
        check1(&format!("scalar relu grad {i}"), s.grad(), g_want.data()[i] + 0.0);
    }
}

#[test]
fn case1_linear_relu_with_nan_input_fused_and_composed() {
    let f = &fixture()["linear_relu"];
    for fused in [true, false] {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(tensor(&f["x"]), true);
        let w = tape.leaf(tensor(&f["w"]), true);
        let b = tape.leaf(tensor(&f["b"]), true);
        let y = if fused { x.linear_relu(w, b) } else { x.linear(w, b).relu() };
        y.sum().backward();
        check("linear_relu value", &y.value(), &tensor(&f["y"]));
        check("linear_relu dx", &x.grad().unwrap(), &tensor(&f["gx"]));
        check("linear_relu dW", &w.grad().unwrap(), &tensor(&f["gw"]));
        check("linear_relu db", &b.grad().unwrap(), &tensor(&f["gb"]));
    }
}

// 2. the scalar engine: an unused branch does not poison its input; the same rules as the
// tensor engine
#[test]
fn case2_scalar_unused_branches_do_not_poison() {
    let f = &fixture()["scalar_unused"];
    let tape = ScalarTape::new();
    let a = tape.leaf(0.0);
    let c = tape.leaf(2.0);
    let _unused = a.log(); // d/da = 1/0 = inf, never reached
    let d = tape.leaf(-1.0);
    let _unused2 = d.powf(0.5); // NaN, never reached
    let l = c * c + a * 3.0 + d * 5.0;
    l.backward();
    check1("L", l.value(), num(&f["L"]));
    check1("a.grad", a.grad(), num(&f["a"]));
    check1("c.grad", c.grad(), num(&f["c"]));
    check1("d.grad", d.grad(), num(&f["d"]));
}

#[test]
fn case2_scalar_reached_zero_gradient_is_still_nan_at_a_pole() {
    // reached with a zero upstream gradient: 0 * inf = NaN, as PyTorch computes it
    let tape = ScalarTape::new();
    let a = tape.leaf(0.0);
    (a.log() * 0.0 + a).backward();
    check1("a.grad", a.grad(), num(&fixture()["scalar_reached_zero"]["a"]));
}

#[test]
fn case2_scalar_engine_matches_pytorch_on_every_op() {
    let f = &fixture()["scalar_mix"];
    let tape = ScalarTape::new();
    let (p, q, r) = (tape.leaf(1.5), tape.leaf(-0.5), tape.leaf(f64::NAN));
    let e = (p * q + p.powf(3.0) - q / p).tanh()
        + (q - 2.0).relu()
        + (p * 2.0).exp() * 0.1
        + p.log()
        + q.abs()
        + r.relu() * 0.0
        + (1.0 / p)
        + (3.0 - q);
    e.backward();
    check1("e", e.value(), num(&f["e"]));
    check1("p.grad", p.grad(), num(&f["p"]));
    check1("q.grad", q.grad(), num(&f["q"]));
    check1("r.grad", r.grad(), num(&f["r"]));
}

// 3. interior gradients: a pass overwrites the gradients of the nodes it reaches and leaves
// the others alone (PyTorch's retain_grad would accumulate them: a documented difference)
#[test]
fn case3_interior_gradients_belong_to_the_last_pass_that_reached_them() {
    let fx = fixture();
    for (order, f) in [([1, 2, 1], &fx["interior"]), ([2, 1, 2], &fx["interior_mirror"])] {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::new(vec![1.0, -2.0, 0.5], &[3]), true);
        let y = x * 2.0;
        let l1 = (y * y).sum();
        let z = x * 3.0;
        let l2 = (z * z).sum();
        for k in order {
            if k == 1 {
                l1.backward()
            } else {
                l2.backward()
            }
        }
        let ones = &fx["interior"];
        check("x.grad (accumulated, as PyTorch)", &x.grad().unwrap(), &tensor(&f["x"]));
        check("y.grad (one pass of l1)", &y.grad().unwrap(), &tensor(&ones["y_one_pass"]));
        check("z.grad (one pass of l2)", &z.grad().unwrap(), &tensor(&ones["z_one_pass"]));
        if order[0] == 1 {
            // z was reached once, so PyTorch agrees exactly
            check("z.grad", &z.grad().unwrap(), &tensor(&f["z"]));
        } else {
            check("y.grad", &y.grad().unwrap(), &tensor(&f["y"]));
        }
    }
    // the scalar engine has the same rule
    let st = ScalarTape::new();
    let x = st.leaf(1.0);
    let y = x * 2.0;
    let l1 = y * y;
    let z = x * 3.0;
    let l2 = z * z;
    l1.backward();
    l2.backward();
    l1.backward();
    check1("scalar x", x.grad(), tensor(&fx["interior"]["x"]).data()[0]);
    check1("scalar y", y.grad(), tensor(&fx["interior"]["y_one_pass"]).data()[0]);
    check1("scalar z", z.grad(), tensor(&fx["interior"]["z"]).data()[0]);
}

// 4. zero_grad clears a recorded leaf's gradient too
#[test]
fn case4_zero_grad_clears_recorded_leaves() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
    (x * x).sum().backward();
    tape.zero_grad();
    assert!(x.grad().is_none());
    (x * 3.0).sum().backward();
    check("x.grad", &x.grad().unwrap(), &tensor(&fixture()["zero_grad_leaf"]["grad"]));
}

// 5. empty tensors
#[test]
fn case5_empty_tensors() {
    let fx = fixture();
    let tape = Tape::<f64>::new();
    let f = &fx["empty_axis1"];
    let x = tape.leaf(Tensor::zeros(&[3, 0]), true);
    let (m, s) = (x.mean_axis(1, false), x.sum_axis(1, false));
    (m.sum() + s.sum()).backward();
    check("mean_axis(1)", &m.value(), &tensor(&f["mean"]));
    check("sum_axis(1)", &s.value(), &tensor(&f["sum"]));
    check("grad", &x.grad().unwrap(), &tensor(&f["grad"]));

    let f = &fx["empty_axis0"];
    let x = tape.leaf(Tensor::zeros(&[0, 3]), true);
    let (m, s) = (x.mean_axis(0, false), x.sum_axis(0, false));
    (s * 2.0).sum().backward();
    check("mean_axis(0)", &m.value(), &tensor(&f["mean"]));
    check("sum_axis(0)", &s.value(), &tensor(&f["sum"]));
    check("mean()", &x.mean().value(), &tensor(&f["mean_all"]));
    check("grad", &x.grad().unwrap(), &tensor(&f["grad"]));

    let f = &fx["empty_expand"];
    let x = tape.leaf(Tensor::zeros(&[0]), true);
    let e = x.expand(&[3, 0]);
    e.sum().backward();
    assert_eq!(e.shape().as_slice(), [3, 0]);
    check("expand grad", &x.grad().unwrap(), &tensor(&f["grad"]));

    let f = &fx["expand_one_to_zero"];
    let x = tape.leaf(Tensor::new(vec![7.0], &[1]), true);
    let e = x.expand(&[0]);
    let t = e.sum();
    t.backward();
    assert_eq!(e.shape().as_slice(), [0]);
    check1("sum", t.item(), num(&f["sum"]));
    check("grad", &x.grad().unwrap(), &tensor(&f["grad"]));

    // the higher-order path computes the same
    let x = tape.leaf(Tensor::zeros(&[3, 0]), true);
    let g = tape.grad(x.mean_axis(1, false).sum(), &[x]);
    assert_eq!(g[0].shape().as_slice(), [3, 0]);
}

// 6. powf: PyTorch's exact special exponents, and pow's gradient zero for exponent 0
#[test]
fn case6_powf_values_and_gradients_at_the_edges() {
    for f in fixture()["powf"].as_array().unwrap() {
        let p = num(&f["p"]);
        let (x0, y_want, g_want) = (tensor(&f["x"]), tensor(&f["y"]), tensor(&f["grad"]));
        let tape = Tape::<f64>::new();
        let x = tape.leaf(&x0, true);
        let y = x.powf(p);
        y.sum().backward();
        check(&format!("x^{p}"), &y.value(), &y_want);
        check(&format!("d x^{p}"), &x.grad().unwrap(), &g_want);
        for (i, &xv) in x0.data().iter().enumerate() {
            let st = ScalarTape::new();
            let s = st.leaf(xv);
            let y = s.powf(p);
            y.backward();
            check1(&format!("scalar {xv}^{p}"), y.value(), y_want.data()[i]);
            // a scalar gradient starts at 0.0 and is added to: -0.0 reads as 0.0 (README)
            check1(&format!("scalar d {xv}^{p}"), s.grad(), g_want.data()[i] + 0.0);
        }
    }
}

// 7. a leaf on a zero-derivative path gets zeros, not None
#[test]
fn case7_zero_derivative_paths_give_zeros() {
    let fx = fixture();
    let f = &fx["zero_path"];
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![1.5, -2.0, 0.0], &[3]), true);
    (x.sign() * 2.0).sum().backward();
    check("sign path", &x.grad().unwrap(), &tensor(&f["sign"]));

    let x = tape.leaf(Tensor::new(vec![1.5, -2.0, 0.0], &[3]), true);
    let w = tape.leaf(Tensor::new(vec![0.5, 1.0, 2.0], &[3]), true);
    (x.powf(0.0) * w).sum().backward();
    check("pow 0 path", &x.grad().unwrap(), &tensor(&f["pow0_x"]));
    check("w", &w.grad().unwrap(), &tensor(&f["pow0_w"]));

    // second order through relu: the derivative of relu's gate is zero, and present
    let f = &fx["relu_second_order"];
    let x = tape.leaf(Tensor::new(vec![1.0, -2.0, 3.0], &[3]), true);
    let g = tape.grad((x.relu() * x).sum(), &[x]);
    check("g", &g[0].value(), &tensor(&f["g"]));
    let gg = tape.grad(g[0].sum(), &[x]);
    check("gg", &gg[0].value(), &tensor(&f["gg"]));
}

// 8. contract violations name the caller's line
#[test]
fn case8_transpose_errors_name_the_callers_line() {
    let tape = Tape::<f64>::new();
    let v = tape.input(Tensor::zeros(&[3]));
    let line = line!() + 1;
    let err = catch_unwind(AssertUnwindSafe(|| v.t())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("transpose: dimensions 0 and 1 for a 1-d variable"), "{msg}");
    assert!(msg.contains(&format!("pytorch_semantics.rs:{line}")), "{msg}");
    let line = line!() + 1;
    let err = catch_unwind(AssertUnwindSafe(|| v.transpose(0, 2))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains(&format!("pytorch_semantics.rs:{line}")), "{msg}");
}

// 9. a training loop that forgets tape.reset() is told so, once
#[test]
fn case9_a_growing_tape_warns_once() {
    const CHILD: &str = "TAPEGRAD_GROWTH_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // the forgotten reset: a tape and a scalar tape that only grow
        let tape = Tape::<f64>::new();
        tape.set_node_warning(Some(100));
        let w = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
        for _ in 0..100 {
            (w * 3.0).sum().backward();
        }
        let quiet = Tape::<f64>::new();
        quiet.set_node_warning(None);
        for _ in 0..300 {
            let _ = quiet.input(Tensor::zeros(&[1]));
        }
        let st = ScalarTape::new();
        st.set_node_warning(Some(50));
        for _ in 0..100 {
            let _ = st.leaf(1.0) * 2.0;
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "case9_a_growing_tape_warns_once", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("tapegrad: warning")).collect();
    assert_eq!(warnings.len(), 2, "one warning per growing tape:\n{err}");
    assert!(warnings[0].contains("holds 100 nodes") && warnings[0].contains("tape.reset()"), "{err}");
    assert!(warnings[0].contains("pytorch_semantics.rs"), "names the line that recorded the node: {err}");
    assert!(warnings[1].contains("holds 50 nodes") && warnings[1].contains("ScalarTape::reset()"), "{err}");
    // a stderr that cannot be written drops the warnings, never panics
    #[cfg(target_os = "linux")]
    {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", "case9_a_growing_tape_warns_once", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .stderr(full)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

// A reset tape (the right loop) reuses its nodes and never warns: the mark counts the arena.
#[test]
fn case9_a_reset_tape_stays_below_the_mark() {
    let mut tape = Tape::<f64>::new();
    tape.set_node_warning(Some(10));
    for _ in 0..100 {
        let w = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
        (w * 3.0).sum().backward();
        tape.reset();
    }
    assert_eq!(tape.len(), 0);
}

/// `x.pow(-2)` is `1 / (x * x)` in PyTorch's CPU kernel (as `pow(2)` is `x * x`, `pow(-1)`
/// the reciprocal): two roundings, not `pow`'s one, so for these inputs its bits differ
/// from the C library's `pow(x, -2)`. Inputs and PyTorch 2.15's results, from
/// `torch.tensor(x, dtype=d).pow(-2).view(torch.int32 / torch.int64)`.
#[test]
fn pow_by_minus_two_rounds_as_pytorch() {
    let x32 = [0x3e391e19u32, 0x3f81f4b1, 0x3e7344c7].map(f32::from_bits);
    let want32 = [0x41f4ca60u32, 0x3f785a37, 0x418dbf8b];
    let tape = Tape::<f32>::new();
    let y = tape.input(Tensor::from_slice(&x32, &[3])).powf(-2.0);
    assert_eq!(y.value().data().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want32);
    let x64 = [0x3fc00c163a391e19u64, 0x3ff2d6903c10a7ed, 0x3ffc45a95d815cb0].map(f64::from_bits);
    let want64 = [0x404fcfdda8e67c41u64, 0x3fe7158b2cbbf888, 0x3fd47f63acd71505];
    let tape = Tape::<f64>::new();
    let y = tape.input(Tensor::from_slice(&x64, &[3])).powf(-2.0);
    assert_eq!(y.value().data().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want64);
    // the scalar engine shares the rule
    let st = ScalarTape::new();
    for (x, want) in x64.iter().zip(want64) {
        assert_eq!(st.leaf(*x).powf(-2.0).value().to_bits(), want);
    }
}
