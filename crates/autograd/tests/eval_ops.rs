//! The ops, forward mode and Jacobians the GradBench evals use: gradcheck and
//! gradgradcheck of indexing (take, scatter_add, index_select, narrow, gather, cat, stack,
//! pad),
//! logsumexp, sin and cos; `jvp` against reverse-mode Jacobians and closed forms, nested in
//! all four combinations; `jacobian` in both modes against finite differences.

use tapegrad::{gradcheck, gradgradcheck, JacobianMode, ScalarTape, Tape, Tensor, TorchRng, Var};

fn rand(rng: &mut TorchRng, shape: &[usize]) -> Tensor<f64> {
    Tensor::uniform(shape, -1.5, 1.5, rng)
}

type F = for<'t> fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>;

/// gradcheck and gradgradcheck of `f` (squared first so second derivatives are not zero).
#[track_caller]
fn check_both(name: &str, f: F, inputs: &[Tensor<f64>]) {
    gradcheck(f, inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
    gradgradcheck(|t, x| squared(f, t, x), inputs).unwrap_or_else(|e| panic!("{name} (second order): {e}"));
}

fn squared<'t>(f: F, t: &'t Tape<f64>, x: &[Var<'t, f64>]) -> Var<'t, f64> {
    let y = f(t, x);
    (y * y).sum()
}

#[test]
fn indexing_ops() {
    let mut rng = TorchRng::manual_seed(7);
    let x = rand(&mut rng, &[3, 4]);
    let y = rand(&mut rng, &[3, 2]);
    let cases: &[(&str, F)] = &[
        // repeated and skipped positions: the scatter of the backward adds them up
        ("take", |_, x| x[0].take(vec![5, 0, 5, 11, 3, 3], &[2, 3])),
        ("scatter_add", |_, x| x[0].scatter_add((0..12).map(|i| (i * 7) % 5).collect::<Vec<_>>(), &[5])),
        ("index_select", |_, x| x[0].index_select(1, &[3, 1, 1])),
        ("narrow", |_, x| x[0].narrow(0, 1, 2)),
        ("narrow_inner", |_, x| x[0].narrow(1, 1, 3)),
        // pad: grown, cut, both at once, on either axis, and cut to nothing then grown
        ("pad_grow", |_, x| x[0].pad(1, 2, 1, 0.5)),
        ("pad_cut", |_, x| x[0].pad(0, -1, -1, 0.0)),
        ("pad_shift", |_, x| x[0].pad(1, 1, -1, 1.0)),
        ("pad_shift_back", |_, x| x[0].pad(0, -2, 2, -3.0)),
        ("pad_past_the_end", |_, x| x[0].pad(1, -5, 3, 2.0) * x[0].narrow(1, 0, 2) + x[0].pad(1, 6, -8, 0.0)),
        ("gather", |_, x| x[0].gather(1, &[0, 3, 2, 2, 1, 0], &[3, 2])),
        ("min_axis", |_, x| x[0].min_axis(1)),
        ("max_axis", |_, x| x[0].max_axis(0)),
        ("take_of_scatter", |_, x| {
            x[0].scatter_add(vec![1, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 9], &[10]).take(vec![1, 9, 0], &[3])
        }),
    ];
    for (name, f) in cases {
        check_both(name, *f, std::slice::from_ref(&x));
    }
    let z = rand(&mut rng, &[2, 3, 2]);
    check_both("pad_middle_axis", |_, x| x[0].pad(1, -1, 2, 0.5), std::slice::from_ref(&z));
    check_both("cat", |_, x| Var::cat(&[x[0], x[1], x[0]], 1), &[x.clone(), y.clone()]);
    check_both("stack", |_, x| Var::stack(&[x[0], x[0].exp()], 1), std::slice::from_ref(&y));
}

#[test]
fn add_scaled_is_one_add() {
    let mut rng = TorchRng::manual_seed(11);
    let (a, b, row) = (rand(&mut rng, &[3, 4]), rand(&mut rng, &[3, 4]), rand(&mut rng, &[4]));
    check_both("add_scaled", |_, x| x[0].add_scaled(x[1] * x[0], -1.5), &[a.clone(), b.clone()]);
    check_both("add_scaled_broadcast", |_, x| x[1].add_scaled(x[0], 0.25).exp(), &[a.clone(), row.clone()]);
    check_both("add_scaled_into_row", |_, x| x[1].add_scaled(x[0], 2.0), &[row, a.clone()]);
    // torch.add(a, b, alpha=-1.5) rounds as a + (-1.5 * b)
    let tape = Tape::<f64>::new();
    let (ta, tb) = (tape.input(&a), tape.input(&b));
    let want: Vec<f64> = a.data().iter().zip(b.data()).map(|(x, y)| x + -1.5 * y).collect();
    assert_eq!(ta.add_scaled(tb, -1.5).value().data(), &want[..]);
}

#[test]
fn indexing_values_are_pytorchs() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::new((0..12).map(f64::from).collect(), &[3, 4]));
    assert_eq!(x.index_select(1, &[3, 0]).value().data(), &[3.0, 0.0, 7.0, 4.0, 11.0, 8.0]);
    assert_eq!(x.gather(1, &[1, 1, 0, 3, 2, 2], &[3, 2]).value().data(), &[1.0, 1.0, 4.0, 7.0, 10.0, 10.0]);
    assert_eq!(x.narrow(0, 2, 1).value().data(), &[8.0, 9.0, 10.0, 11.0]);
    assert_eq!(x.narrow(1, 1, 2).value().data(), &[1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
    // F.pad(x, (1, -2), value=9) and F.pad(x, (0, 0, -1, 2), value=-1)
    assert_eq!(x.pad(1, 1, -2, 9.0).value().data(), &[9.0, 0.0, 1.0, 9.0, 4.0, 5.0, 9.0, 8.0, 9.0]);
    let down = x.pad(0, -1, 2, -1.0);
    assert_eq!(down.shape().as_slice(), &[4, 4]);
    assert_eq!(down.value().data()[..8], [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
    assert!(down.value().data()[8..].iter().all(|&v| v == -1.0));
    // along a middle axis, each outer block its own rows: F.pad(z, (0, 0, -1, 2), value=-1)
    // and F.pad(z, (0, 0, 1, -1), value=7) of z = arange(12).reshape(2, 3, 2)
    let z = tape.input(Tensor::new((0..12).map(f64::from).collect(), &[2, 3, 2]));
    let cut = z.pad(1, -1, 2, -1.0);
    assert_eq!(cut.shape().as_slice(), &[2, 4, 2]);
    let m = -1.0;
    assert_eq!(cut.value().data(), &[2.0, 3.0, 4.0, 5.0, m, m, m, m, 8.0, 9.0, 10.0, 11.0, m, m, m, m]);
    let shift = z.pad(1, 1, -1, 7.0);
    assert_eq!(shift.value().data(), &[7.0, 7.0, 0.0, 1.0, 2.0, 3.0, 7.0, 7.0, 6.0, 7.0, 8.0, 9.0]);
    assert_eq!(x.max_axis(1).value().data(), &[3.0, 7.0, 11.0]);
    assert_eq!(x.min_axis(0).value().data(), &[0.0, 1.0, 2.0, 3.0]);
    let ties = tape.leaf(Tensor::new(vec![2.0, 1.0, 1.0, f64::NAN, 0.0], &[5]), true);
    let m = ties.narrow(0, 0, 3).min_axis(0);
    m.backward();
    assert_eq!(ties.grad().unwrap().data(), &[0.0, 1.0, 0.0, 0.0, 0.0], "the first of equal minima");
    assert!(ties.narrow(0, 2, 3).min_axis(0).item().is_nan(), "NaN is the minimum, as in PyTorch");
    let c = Var::cat(&[x.narrow(1, 0, 1), x.narrow(1, 3, 1)], 1);
    assert_eq!(c.shape().as_slice(), &[3, 2]);
    assert_eq!(c.value().data(), &[0.0, 3.0, 4.0, 7.0, 8.0, 11.0]);
    let s = Var::stack(&[x.narrow(0, 0, 1).reshape(&[4]), x.narrow(0, 1, 1).reshape(&[4])], 0);
    assert_eq!(s.value().data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    assert_eq!(x.scatter_add(vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], &[2]).value().data(), &[30.0, 36.0]);
}

#[test]
#[should_panic(expected = "take: index 12 (position 1) out of range for 12 elements")]
fn take_checks_its_indices() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::zeros(&[3, 4]));
    x.take(vec![0, 12], &[2]);
}

#[test]
#[should_panic(expected = "pad: [3, 4] along axis 1 by -3 and -2 leaves -1 entries")]
fn pad_checks_its_widths() {
    let tape = Tape::<f64>::new();
    tape.input(Tensor::zeros(&[3, 4])).pad(1, -3, -2, 0.0);
}

#[test]
#[should_panic(expected = "narrow: 2 entries from 3 along axis 1 of [3, 4]")]
fn narrow_checks_its_range() {
    let tape = Tape::<f64>::new();
    tape.input(Tensor::zeros(&[3, 4])).narrow(1, 3, 2);
}

#[test]
fn logsumexp_sin_cos() {
    let mut rng = TorchRng::manual_seed(3);
    let x = rand(&mut rng, &[3, 4, 2]);
    let cases: &[(&str, F)] = &[
        ("logsumexp0", |_, x| x[0].logsumexp(0, false)),
        ("logsumexp1", |_, x| x[0].logsumexp(1, true)),
        ("logsumexp2", |_, x| x[0].logsumexp(2, false)),
        ("sin", |_, x| x[0].sin()),
        ("cos", |_, x| x[0].cos()),
    ];
    for (name, f) in cases {
        check_both(name, *f, std::slice::from_ref(&x));
    }
}

#[test]
fn logsumexp_does_not_overflow() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![1000.0, 1000.0, f64::NEG_INFINITY], &[3]), true);
    let y = x.logsumexp(0, false);
    assert!((y.item() - (1000.0 + 2f64.ln())).abs() < 1e-12);
    y.backward();
    let g = x.grad().unwrap();
    assert!((g.data()[0] - 0.5).abs() < 1e-12 && (g.data()[1] - 0.5).abs() < 1e-12 && g.data()[2] == 0.0, "{g:?}");
    let all = tape.input(Tensor::new(vec![f64::NEG_INFINITY; 2], &[2]));
    assert_eq!(all.logsumexp(0, false).item(), f64::NEG_INFINITY);
}

/// f(x) = [sin(x0) x1², e^(x0 x1 + x0 / 2), ln Σ e^x]: a function with a full 3x2 Jacobian.
fn f<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
    let (x0, x1) = (x.narrow(0, 0, 1), x.narrow(0, 1, 1));
    Var::cat(&[x0.sin() * x1 * x1, (x0 * x1).add_scaled(x0, 0.5).exp(), x.logsumexp(0, true)], 0)
}

fn jacobian_by_differences(x: &[f64]) -> Vec<f64> {
    let eval = |x: &[f64]| {
        let tape = Tape::<f64>::new();
        f(tape.input(Tensor::new(x.to_vec(), &[2]))).value().into_vec()
    };
    let (m, n, h) = (3, x.len(), 1e-6);
    let mut jac = vec![0.0; m * n];
    for j in 0..n {
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[j] += h;
        b[j] -= h;
        let (ya, yb) = (eval(&a), eval(&b));
        for i in 0..m {
            jac[i * n + j] = (ya[i] - yb[i]) / (2.0 * h);
        }
    }
    jac
}

#[test]
fn jacobian_in_both_modes_and_jvp() {
    let x0 = [0.3, -0.8];
    let want = jacobian_by_differences(&x0);
    for mode in [JacobianMode::Forward, JacobianMode::Reverse, JacobianMode::Auto] {
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::new(x0.to_vec(), &[2]), true);
        let jac = tape.jacobian_with(f(x), x, mode);
        assert_eq!(jac.shape(), &[3, 2]);
        for (a, b) in jac.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-7, "{mode:?}: {:?} vs {want:?}", jac.data());
        }
    }
    // J v for v = (2, -1)
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(x0.to_vec(), &[2]), true);
    let v = tape.input(Tensor::new(vec![2.0, -1.0], &[2]));
    let jv = tape.jvp(f(x), &[x], &[v]).value();
    for i in 0..3 {
        let expect = want[i * 2] * 2.0 - want[i * 2 + 1];
        assert!((jv.data()[i] - expect).abs() < 1e-7, "{:?}", jv.data());
    }
}

/// g(x, y) = x³ y + sin(x y): every nesting of the two modes gives ∂²g/∂x² and ∂²g/∂x∂y.
#[test]
fn nested_modes_agree_with_closed_forms() {
    let (xv, yv) = (0.7f64, -1.3f64);
    // ∂²g/∂x² = 6 x y - y² sin(x y); ∂²g/∂x∂y = 3 x² + cos(x y) - x y sin(x y)
    let gxx = 6.0 * xv * yv - yv * yv * (xv * yv).sin();
    let gxy = 3.0 * xv * xv + (xv * yv).cos() - xv * yv * (xv * yv).sin();
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::scalar(xv), true);
    let y = tape.leaf(Tensor::scalar(yv), true);
    let g = x * x * x * y + (x * y).sin();
    let one = tape.input(Tensor::scalar(1.0));
    // forward over forward: jvp (along x) of jvp (along x), and of jvp (along y)
    let gx_f = tape.jvp(g, &[x], &[one]);
    let ff_xx = tape.jvp(gx_f, &[x], &[one]).item();
    let ff_xy = tape.jvp(gx_f, &[y], &[one]).item();
    // forward over reverse: jvp of the recorded gradient
    let gx_r = tape.grad(g, &[x])[0];
    let fr_xx = tape.jvp(gx_r, &[x], &[one]).item();
    // reverse over forward: gradient of the jvp
    let rf = tape.grad(gx_f, &[x, y]);
    // reverse over reverse
    let rr = tape.grad(gx_r, &[x, y]);
    for (name, got, want) in [
        ("ff xx", ff_xx, gxx),
        ("ff xy", ff_xy, gxy),
        ("fr xx", fr_xx, gxx),
        ("rf xx", rf[0].item(), gxx),
        ("rf xy", rf[1].item(), gxy),
        ("rr xx", rr[0].item(), gxx),
        ("rr xy", rr[1].item(), gxy),
    ] {
        assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
    }
}

#[test]
fn jvp_of_a_constant_output_is_zero() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
    let c = tape.input(Tensor::new(vec![3.0], &[1]));
    let v = tape.input(Tensor::new(vec![1.0, 1.0], &[2]));
    assert_eq!(tape.jvp(c * 2.0, &[x], &[v]).value().data(), &[0.0]);
}

#[test]
fn scalar_jacobian_and_trig() {
    let tape = ScalarTape::new();
    let (a, b) = (tape.leaf(0.4), tape.leaf(1.1));
    let y0 = a.sin() * b;
    let y1 = (a * b).cos() + b.sqrt();
    let mut jac = [0.0; 4];
    tape.jacobian(&[y0, y1], &[a, b], &mut jac);
    let want = [0.4f64.cos() * 1.1, 0.4f64.sin(), -(0.44f64).sin() * 1.1, -(0.44f64).sin() * 0.4 + 0.5 / 1.1f64.sqrt()];
    for (g, w) in jac.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{jac:?} vs {want:?}");
    }
}

/// `jvps`: a tangent set seeding both inputs gives the sum of their columns.
#[test]
fn jvps_are_jacobian_columns() {
    let x0 = [0.3, -0.8];
    let want = jacobian_by_differences(&x0);
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(x0.to_vec(), &[2]), true);
    let sets = vec![
        vec![Tensor::new(vec![1.0, 0.0], &[2])],
        vec![Tensor::new(vec![0.0, 1.0], &[2])],
        vec![Tensor::new(vec![1.0, 1.0], &[2])],
    ];
    let cols = tape.jvps(f(x), &[x], &sets);
    for i in 0..3 {
        let (a, b) = (want[i * 2], want[i * 2 + 1]);
        for (k, expect) in [a, b, a + b].into_iter().enumerate() {
            assert!((cols[k].data()[i] - expect).abs() < 1e-7, "set {k}, row {i}: {:?}", cols[k].data());
        }
    }
}
