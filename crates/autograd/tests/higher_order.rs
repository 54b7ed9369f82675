//! Higher-order gradients: second derivatives against closed forms, a Hessian-vector
//! product against finite differences of gradients, gradgradcheck on every op with a
//! non-zero second derivative, and the zero second derivative of relu and abs.

use tapegrad::{gradcheck, gradgradcheck, ScalarTape, Tape, Tensor, TorchRng, Var};

/// f, f', f'' at x for scalar functions built from the supported ops.
type Closed = (&'static str, fn(f64) -> f64, fn(f64) -> f64);

fn closed_forms() -> Vec<Closed> {
    vec![
        // x³: f' = 3x², f'' = 6x
        ("x^3", |x| 3.0 * x * x, |x| 6.0 * x),
        // tanh: f' = 1 - t², f'' = -2 t (1 - t²)
        ("tanh", |x| 1.0 - x.tanh().powi(2), |x| -2.0 * x.tanh() * (1.0 - x.tanh().powi(2))),
        // e^x ln x: f' = e^x (ln x + 1/x), f'' = e^x (ln x + 2/x - 1/x²)
        ("exp*log", |x| x.exp() * (x.ln() + 1.0 / x), |x| x.exp() * (x.ln() + 2.0 / x - 1.0 / (x * x))),
        // x / (1 + x²): f' = (1 - x²)/(1 + x²)², f'' = 2x(x² - 3)/(1 + x²)³
        ("x/(1+x^2)", |x| (1.0 - x * x) / (1.0 + x * x).powi(2), |x| 2.0 * x * (x * x - 3.0) / (1.0 + x * x).powi(3)),
    ]
}

fn tensor_f<'t>(name: &str, x: Var<'t, f64>) -> Var<'t, f64> {
    match name {
        "x^3" => x * x * x,
        "tanh" => x.tanh(),
        "exp*log" => x.exp() * x.log(),
        _ => x / (x * x + 1.0),
    }
}

fn scalar_f<'t>(name: &str, x: tapegrad::Scalar<'t>) -> tapegrad::Scalar<'t> {
    match name {
        "x^3" => x.powf(3.0),
        "tanh" => x.tanh(),
        "exp*log" => x.exp() * x.log(),
        _ => x / (x * x + 1.0),
    }
}

#[test]
fn second_derivatives_match_closed_forms_on_both_engines() {
    for (name, d1, d2) in closed_forms() {
        for &x in &[0.3, 0.9, 1.7, 2.5] {
            // tensor engine
            let tape = Tape::<f64>::new();
            let xv = tape.leaf(Tensor::scalar(x), true);
            let y = tensor_f(name, xv);
            let g = tape.grad(y, &[xv])[0];
            assert!((g.item() - d1(x)).abs() < 1e-10, "{name} f'({x})");
            let h = tape.grad(g, &[xv])[0];
            assert!((h.item() - d2(x)).abs() < 1e-9, "{name} f''({x}) = {} vs {}", h.item(), d2(x));
            // third order is just one more call; compare it with differences of f''
            let h3 = tape.grad(h, &[xv])[0].item();
            let fd = (d2(x + 1e-5) - d2(x - 1e-5)) / 2e-5;
            assert!((h3 - fd).abs() < 1e-4 * (1.0 + fd.abs()), "{name} f'''({x})");
            // scalar engine
            let st = ScalarTape::new();
            let xs = st.leaf(x);
            let y = scalar_f(name, xs);
            let g = st.grad(y, &[xs])[0];
            assert!((g.value() - d1(x)).abs() < 1e-10, "scalar {name} f'({x})");
            let h = st.grad(g, &[xs])[0];
            assert!((h.value() - d2(x)).abs() < 1e-9, "scalar {name} f''({x})");
            // the plain backward of the recorded gradient gives the same
            g.backward();
            assert!((xs.grad() - d2(x)).abs() < 1e-9, "scalar {name}: backward of the gradient");
        }
    }
}

/// A small tanh MLP with a squared + L1 loss; `p[0]` is the input, `p[1..]` the parameters.
fn mlp_loss<'t>(tape: &'t Tape<f64>, p: &[Var<'t, f64>], t: &Tensor<f64>) -> Var<'t, f64> {
    let h = p[0].linear(p[1], p[2]).tanh();
    let y = h.linear(p[3], p[4]);
    let d = y - tape.input(t.clone());
    (d * d).mean() + d.abs().sum().mul_scalar(0.1)
}

fn grads_at(params: &[Tensor<f64>], x: &Tensor<f64>, t: &Tensor<f64>) -> Vec<Tensor<f64>> {
    let tape = Tape::<f64>::new();
    let xv = tape.input(x.clone());
    let mut p: Vec<Var<'_, f64>> = vec![xv];
    p.extend(params.iter().map(|t| tape.leaf(t, true)));
    mlp_loss(&tape, &p, t).backward();
    p[1..].iter().map(|v| v.grad().unwrap()).collect()
}

#[test]
fn hessian_vector_product_matches_finite_differences_of_gradients() {
    let mut rng = TorchRng::manual_seed(3);
    let shapes: [&[usize]; 4] = [&[5, 3], &[5], &[2, 5], &[2]];
    let params: Vec<Tensor<f64>> = shapes.iter().map(|s| Tensor::uniform(s, -0.8, 0.8, &mut rng)).collect();
    let v: Vec<Tensor<f64>> = shapes.iter().map(|s| Tensor::uniform(s, -1.0, 1.0, &mut rng)).collect();
    let x = Tensor::uniform(&[4, 3], -1.0, 1.0, &mut rng);
    let t = Tensor::uniform(&[4, 2], -1.0, 1.0, &mut rng);

    // H·v = ∇(∇L · v), the gradient recorded on the tape and differentiated again
    let tape = Tape::<f64>::new();
    let mut p: Vec<Var<'_, f64>> = vec![tape.input(x.clone())];
    p.extend(params.iter().map(|t| tape.leaf(t, true)));
    let loss = mlp_loss(&tape, &p, &t);
    let g = tape.grad(loss, &p[1..]);
    let gv =
        g.iter().zip(&v).fold(tape.input(Tensor::scalar(0.0)), |acc, (g, v)| acc + (*g * tape.input(v.clone())).sum());
    let hv = tape.grad(gv, &p[1..]);

    // (∇L(θ + εv) - ∇L(θ - εv)) / 2ε
    let eps = 1e-6;
    let shifted = |sign: f64| -> Vec<Tensor<f64>> {
        params
            .iter()
            .zip(&v)
            .map(|(p, v)| Tensor::from_fn(p.shape(), |i| p.data()[i] + sign * eps * v.data()[i]))
            .collect()
    };
    let (gp, gm) = (grads_at(&shifted(1.0), &x, &t), grads_at(&shifted(-1.0), &x, &t));
    for k in 0..4 {
        let want = Tensor::from_fn(params[k].shape(), |i| (gp[k].data()[i] - gm[k].data()[i]) / (2.0 * eps));
        let got = hv[k].value();
        let diff = got.max_abs_diff(&want);
        assert!(diff < 1e-6, "H·v block {k}: max diff {diff}\n{got}\n{want}");
    }
}

#[test]
fn gradgradcheck_every_op_with_a_nonzero_second_derivative() {
    type F = for<'t> fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>;
    let unary: &[(&str, F)] = &[
        ("exp", |_, v| v[0].exp()),
        ("log", |_, v| v[0].log()),
        ("tanh", |_, v| v[0].tanh()),
        ("sigmoid", |_, v| v[0].sigmoid()),
        ("sqrt", |_, v| v[0].sqrt()),
        ("powf", |_, v| v[0].powf(3.5)),
        ("powf_neg", |_, v| v[0].powf(-1.5)),
        // linear ops inside a nonlinear one: their rules must compose
        ("mean_axis+tanh", |_, v| v[0].mean_axis(1, true).tanh() * v[0]),
        ("sum+exp", |_, v| v[0].sum().mul_scalar(0.3).exp()),
        ("permute+mul", |_, v| v[0].t() * v[0].t()),
        ("reshape+mul", |_, v| v[0].reshape(&[6]) * v[0].reshape(&[6]).add_scalar(1.0)),
    ];
    let binary: &[(&str, F)] = &[
        ("mul", |_, v| v[0] * v[1]),
        ("div", |_, v| v[0] / v[1]),
        ("mul_broadcast", |_, v| v[0] * v[1].sum_axis(0, false)),
        ("sub_squared", |_, v| (v[0] - v[1]) * (v[0] - v[1])),
        ("matmul", |_, v| v[0].matmul_t(v[1])),
        ("matmul_ta", |_, v| v[0].matmul_ex(v[1], true, false)),
        ("matmul_tanh", |_, v| v[0].matmul_t(v[1]).tanh()),
        // the fused L1 loss is piecewise linear: its rule must carry the curvature around it
        ("tanh_l1_mean_exp", |_, v| v[0].tanh().l1_loss_mean(v[1]).exp()),
        ("l1_sum_squared", |_, v| v[0].l1_loss_sum(v[1].mul_scalar(3.0)).powf(2.0)),
    ];
    let mut rng = TorchRng::manual_seed(11);
    for (name, f) in unary {
        for _ in 0..3 {
            let x = Tensor::uniform(&[2, 3], 0.3, 2.0, &mut rng);
            gradgradcheck(*f, &[x]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    for (name, f) in binary {
        for _ in 0..3 {
            let a = Tensor::uniform(&[2, 3], 0.3, 2.0, &mut rng);
            let b = Tensor::uniform(&[2, 3], 0.3, 2.0, &mut rng);
            gradgradcheck(*f, &[a, b]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    // the fused linear layer, through a nonlinearity
    for _ in 0..3 {
        let x = Tensor::uniform(&[3, 4], -1.0, 1.0, &mut rng);
        let w = Tensor::uniform(&[2, 4], -1.0, 1.0, &mut rng);
        let b = Tensor::uniform(&[2], -1.0, 1.0, &mut rng);
        gradgradcheck(|_, v| v[0].linear(v[1], v[2]).sigmoid(), &[x.clone(), w.clone(), b.clone()]).unwrap();
        gradgradcheck(|_, v| v[0].linear_relu(v[1], v[2]).powf(2.0), &[x, w, b]).unwrap();
    }
}

#[test]
fn relu_and_abs_have_zero_second_derivative() {
    let mut rng = TorchRng::manual_seed(12);
    let x = Tensor::from_fn(&[8], |i| if i % 2 == 0 { 1.0 } else { -1.0 } * (0.2 + rng.uniform_f64(0.0, 1.0)));
    for name in ["relu", "abs"] {
        let tape = Tape::<f64>::new();
        let xv = tape.leaf(&x, true);
        let y = if name == "relu" { xv.relu() } else { xv.abs() };
        let g = tape.grad(y.sum(), &[xv])[0];
        // first derivative: step / sign
        let want: Vec<f64> =
            x.data().iter().map(|&v| if name == "relu" { (v > 0.0) as u8 as f64 } else { v.signum() }).collect();
        assert_eq!(g.value().data(), want.as_slice(), "{name}'");
        // second derivative: zero everywhere (the rule's mask has no derivative)
        let h = tape.grad(g.sum(), &[xv])[0];
        assert!(h.value().data().iter().all(|&v| v == 0.0), "{name}'' = {}", h.value());
        gradgradcheck(|_, v| if name == "relu" { v[0].relu() } else { v[0].abs() }, std::slice::from_ref(&x))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // scalar engine too
        let st = ScalarTape::new();
        for &v in x.data() {
            let s = st.leaf(v);
            let y = if name == "relu" { s.relu() } else { s.abs() };
            let g = st.grad(y, &[s])[0];
            assert_eq!(st.grad(g, &[s])[0].value(), 0.0);
        }
    }
}

#[test]
fn gradgradcheck_catches_a_wrong_second_derivative() {
    // detach inside the function hides a dependence from the recorded gradient graph
    let x = Tensor::new(vec![0.5, 1.5], &[2]);
    assert!(gradgradcheck(|_, v| v[0] * v[0] * v[0].detach(), std::slice::from_ref(&x)).is_err());
    // while first order of the same function is (rightly) inconsistent too
    assert!(gradcheck(|_, v| (v[0] * v[0] * v[0].detach()).sum(), &[x]).is_err());
}

#[test]
fn parameters_and_plain_backward_of_a_recorded_gradient() {
    // gradient penalty style: loss = |∇_w (w·x)²|², differentiated w.r.t. w
    let tape = Tape::<f64>::new();
    let w = tape.var(tape.parameter(Tensor::new(vec![0.5, -1.0], &[2])));
    let x = tape.input(Tensor::new(vec![2.0, 3.0], &[2]));
    let y = (w * x).sum();
    let y2 = y * y;
    let g = tape.grad(y2, &[w])[0]; // 2 (w·x) x
    let penalty = (g * g).sum(); // 4 (w·x)² |x|²
    penalty.backward(); // d/dw = 8 (w·x) |x|² x
    let wx = 0.5 * 2.0 - 3.0;
    let want = [8.0 * wx * 13.0 * 2.0, 8.0 * wx * 13.0 * 3.0];
    assert_eq!(w.grad().unwrap().data(), &want);
}

/// `Tape::grad` reaches what `backward` reaches: an input of `sign` (no derivative) gets
/// zeros, which the rule of `log` turns into 0/0 = NaN at 0 (as PyTorch), and an input
/// that already has a gradient keeps it.
#[test]
fn recorded_gradients_reach_zero_paths_as_backward_does() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![0.0, 1.0, 2.0], &[3]), true);
    // d/dx = 0 + 2 + 0/x
    let y = (x.sign() + x * 2.0 + x.log().sign()).sum();
    let g = tape.grad(y, &[x])[0].value();
    y.backward();
    for got in [g, x.grad().unwrap()] {
        assert!(got.data()[0].is_nan(), "{got:?}");
        assert_eq!(&got.data()[1..], &[2.0, 2.0]);
    }
}
