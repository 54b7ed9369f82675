//! gradcheck of every tensor op on randomly generated shapes and values (property-based:
//! each case is drawn from a seeded generator, and a failure names its seed).

use tapegrad::{gradcheck, Float, Tape, Tensor, TorchRng, Var};

const CASES: u64 = 12;

/// A random shape of 1 to `max_dims` dimensions with sizes 1..=4.
fn shape(rng: &mut TorchRng, min_dims: usize, max_dims: usize) -> Vec<usize> {
    let nd = min_dims + rng.randint(0, (max_dims - min_dims + 1) as i64) as usize;
    (0..nd).map(|_| 1 + rng.randint(0, 4) as usize).collect()
}

fn rand_tensor(rng: &mut TorchRng, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
    Tensor::uniform(shape, lo, hi, rng)
}

/// Values away from 0 (for abs, relu, log, sqrt, div: no kink within eps).
fn away_from_zero(rng: &mut TorchRng, shape: &[usize]) -> Tensor<f64> {
    let t = rand_tensor(rng, shape, 0.2, 2.0);
    let signs: Vec<f64> = (0..t.numel()).map(|_| if rng.randint(0, 2) == 0 { -1.0 } else { 1.0 }).collect();
    Tensor::from_fn(shape, |i| t.data()[i] * signs[i])
}

/// A shape that broadcasts against `s`: some dims dropped from the front, some set to 1.
fn broadcastable(rng: &mut TorchRng, s: &[usize]) -> Vec<usize> {
    let drop = rng.randint(0, s.len() as i64 + 1) as usize;
    s[drop..].iter().map(|&d| if rng.randint(0, 2) == 0 { 1 } else { d }).collect()
}

#[track_caller]
fn check<F>(name: &str, seed: u64, f: F, inputs: &[Tensor<f64>]) -> usize
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    let shapes: Vec<_> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    match gradcheck(f, inputs) {
        Ok(r) => r.entries,
        Err(e) => panic!("{name} (seed {seed}, shapes {shapes:?}): {e}"),
    }
}

#[test]
fn unary_ops() {
    type F = for<'t> fn(&Var<'t, f64>) -> Var<'t, f64>;
    let ops: &[(&str, F, bool)] = &[
        ("neg", |x| x.neg(), false),
        ("relu", |x| x.relu(), true),
        ("abs", |x| x.abs(), true),
        ("exp", |x| x.exp(), false),
        ("log", |x| x.abs().log(), true),
        ("tanh", |x| x.tanh(), false),
        ("sigmoid", |x| x.sigmoid(), false),
        ("sqrt", |x| x.abs().sqrt(), true),
        ("powf", |x| x.abs().powf(2.5), true),
        ("powf_neg", |x| x.powf(-2.0), true),
        ("add_scalar", |x| x.add_scalar(0.7), false),
        ("mul_scalar", |x| x.mul_scalar(-1.3), false),
        ("sign_times", |x| x.sign() * x, true),
    ];
    let mut total = 0;
    for &(name, op, kink) in ops {
        for seed in 0..CASES {
            let mut rng = TorchRng::manual_seed(seed);
            let s = shape(&mut rng, 0, 3);
            let x = if kink { away_from_zero(&mut rng, &s) } else { rand_tensor(&mut rng, &s, -2.0, 2.0) };
            total += check(name, seed, move |_, v| op(&v[0]), &[x]);
        }
    }
    assert!(total > 0);
}

#[test]
fn binary_ops_with_broadcasting() {
    type F = for<'t> fn(&Var<'t, f64>, &Var<'t, f64>) -> Var<'t, f64>;
    let ops: &[(&str, F)] = &[
        ("add", |a, b| a + b),
        ("sub", |a, b| a - b),
        ("mul", |a, b| a * b),
        ("div", |a, b| a / b),
        ("add_scaled", |a, b| a.add_scaled(b, -1.7)),
    ];
    for &(name, op) in ops {
        for seed in 0..CASES * 2 {
            let mut rng = TorchRng::manual_seed(1000 + seed);
            let sa = shape(&mut rng, 1, 4);
            let sb = broadcastable(&mut rng, &sa);
            // alternate which side is the broadcast one
            let (sa, sb) = if seed % 2 == 0 { (sa, sb) } else { (sb, sa) };
            let a = rand_tensor(&mut rng, &sa, -2.0, 2.0);
            let b = away_from_zero(&mut rng, &sb);
            check(name, seed, move |_, v| op(&v[0], &v[1]), &[a, b]);
        }
    }
}

#[test]
fn same_operand_twice() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(2000 + seed);
        let s = shape(&mut rng, 1, 3);
        let x = away_from_zero(&mut rng, &s);
        check("x*x", seed, |_, v| v[0] * v[0], std::slice::from_ref(&x));
        check("x/x+x", seed, |_, v| (v[0] / v[0]) + v[0], std::slice::from_ref(&x));
    }
}

#[test]
fn matmul_all_transposes_and_linear() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(3000 + seed);
        let (m, k, n) =
            (1 + rng.randint(0, 5) as usize, 1 + rng.randint(0, 5) as usize, 1 + rng.randint(0, 5) as usize);
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let sa = if ta { vec![k, m] } else { vec![m, k] };
            let sb = if tb { vec![n, k] } else { vec![k, n] };
            let a = rand_tensor(&mut rng, &sa, -1.0, 1.0);
            let b = rand_tensor(&mut rng, &sb, -1.0, 1.0);
            check("matmul", seed, move |_, v| v[0].matmul_ex(v[1], ta, tb), &[a, b]);
        }
        let x = rand_tensor(&mut rng, &[m, k], -1.0, 1.0);
        let w = rand_tensor(&mut rng, &[n, k], -1.0, 1.0);
        let b = rand_tensor(&mut rng, &[n], -1.0, 1.0);
        check("linear", seed, |_, v| v[0].linear(v[1], v[2]), &[x.clone(), w.clone(), b.clone()]);
        // fused linear + relu: same values and gradients as the two ops (kinks avoided by
        // gradcheck's tolerance only where no pre-activation is within eps of 0)
        check("linear_relu", seed, |_, v| v[0].linear_relu(v[1], v[2]), &[x.clone(), w.clone(), b.clone()]);
        let tape = Tape::<f64>::new();
        let (xv, wv, bv) = (tape.leaf(&x, true), tape.leaf(&w, true), tape.leaf(&b, true));
        let fused = xv.linear_relu(wv, bv);
        let separate = xv.linear(wv, bv).relu();
        assert_eq!(fused.value(), separate.value());
        let g = tape.grad((fused * separate).sum(), &[xv, wv, bv]);
        let h = tape.grad((separate * separate).sum(), &[xv, wv, bv]);
        for (a, b) in g.iter().zip(&h) {
            assert!(a.value().max_abs_diff(&b.value()) < 1e-12);
        }
    }
}

#[test]
fn reductions() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(4000 + seed);
        let s = shape(&mut rng, 1, 4);
        let x = rand_tensor(&mut rng, &s, -2.0, 2.0);
        let axis = rng.randint(0, s.len() as i64) as usize;
        check("sum", seed, |_, v| v[0].sum(), std::slice::from_ref(&x));
        check("mean", seed, |_, v| v[0].mean(), std::slice::from_ref(&x));
        for keep in [false, true] {
            check("sum_axis", seed, move |_, v| v[0].sum_axis(axis, keep), std::slice::from_ref(&x));
            check("mean_axis", seed, move |_, v| v[0].mean_axis(axis, keep), std::slice::from_ref(&x));
        }
    }
}

#[test]
fn fused_l1_loss_matches_its_composition_bit_for_bit() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(4500 + seed);
        let s = shape(&mut rng, 0, 4);
        let a = away_from_zero(&mut rng, &s);
        let b = rand_tensor(&mut rng, &s, -0.1, 0.1); // |a - b| >= 0.1: no kink within eps
        check("l1_loss_sum", seed, |_, v| v[0].l1_loss_sum(v[1]), &[a.clone(), b.clone()]);
        check("l1_loss_mean", seed, |_, v| v[0].l1_loss_mean(v[1]), &[a.clone(), b.clone()]);
        // the fused node and `(a - b).abs().mean()` agree exactly, value and gradients
        for mean in [false, true] {
            let run = |fused: bool| {
                let tape = Tape::<f64>::new();
                let (x, t) = (tape.leaf(&a, true), tape.leaf(&b, true));
                let y = match (fused, mean) {
                    (true, true) => x.l1_loss_mean(t),
                    (true, false) => x.l1_loss_sum(t),
                    (false, true) => (x - t).abs().mean(),
                    (false, false) => (x - t).abs().sum(),
                };
                y.mul_scalar(1.7).backward();
                (y.item(), x.grad().unwrap(), t.grad().unwrap())
            };
            assert_eq!(run(true), run(false), "seed {seed}, shape {s:?}, mean {mean}");
        }
    }
}

/// The same on arrays long enough for the blocked, parallel sum and the split gradient
/// pass (f32, as the benchmarks run), on one and two threads: value and gradients equal
/// the composition's bit for bit, and equal across thread counts. Also exact zeros
/// (a == b), where sign gives 0.
#[test]
fn fused_l1_loss_matches_its_composition_on_long_arrays() {
    let mut rng = TorchRng::manual_seed(4600);
    for shape in [[300usize, 250], [256, 1024], [7, 16385]] {
        let a = Tensor::<f32>::rand(&shape, &mut rng);
        let mut b = Tensor::<f32>::rand(&shape, &mut rng);
        for i in (0..b.numel()).step_by(97) {
            b.data_mut()[i] = a.data()[i];
        }
        let mut results = Vec::new();
        for threads in [1, 2] {
            tapegrad::set_num_threads(threads);
            for fused in [true, false] {
                let tape = Tape::<f32>::new();
                let (x, t) = (tape.leaf(&a, true), tape.leaf(&b, true));
                let y = if fused { x.l1_loss_mean(t) } else { (x - t).abs().mean() };
                y.mul_scalar(1.7).backward();
                results.push((y.item(), x.grad().unwrap(), t.grad().unwrap()));
            }
            tapegrad::set_num_threads(1);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{shape:?}: fused/composition or 1/2 threads differ");
        assert!(results[0].1.data().iter().step_by(97).all(|&g| g == 0.0), "{shape:?}: sign(0) must give 0");
    }
}

#[test]
#[should_panic(expected = "l1_loss: prediction [2, 2] and target [2, 3] differ in shape")]
fn fused_l1_loss_names_the_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.input(Tensor::zeros(&[2, 2]));
    let b = tape.input(Tensor::zeros(&[2, 3]));
    a.l1_loss_mean(b);
}

#[test]
fn shape_ops() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(5000 + seed);
        let s = shape(&mut rng, 1, 4);
        let x = rand_tensor(&mut rng, &s, -2.0, 2.0);
        let n: usize = s.iter().product();
        check("reshape", seed, move |_, v| v[0].reshape(&[n]), std::slice::from_ref(&x));
        // a random permutation
        let mut perm: Vec<usize> = (0..s.len()).collect();
        for i in (1..perm.len()).rev() {
            let j = rng.randint(0, i as i64 + 1) as usize;
            perm.swap(i, j);
        }
        let p = perm.clone();
        check("permute", seed, move |_, v| v[0].permute(&p), std::slice::from_ref(&x));
        let small = broadcastable(&mut rng, &s);
        let xs = rand_tensor(&mut rng, &small, -2.0, 2.0);
        let big = s.clone();
        check("expand", seed, move |_, v| v[0].expand(&big), &[xs]);
        let to = small.clone();
        check("sum_to", seed, move |_, v| v[0].sum_to(&to), std::slice::from_ref(&x));
        if s.len() >= 2 {
            check("transpose", seed, |_, v| v[0].transpose(0, 1), std::slice::from_ref(&x));
        }
    }
}

/// The seed network's step as one function of all its tensors: linear, relu, linear,
/// sub, abs, mean.
#[test]
fn composed_network() {
    for seed in 0..CASES {
        let mut rng = TorchRng::manual_seed(6000 + seed);
        let (b, i, h, o) = (1 + rng.randint(0, 3) as usize, 4, 8, 2);
        let x = rand_tensor(&mut rng, &[b, i], 0.0, 1.0);
        let w1 = rand_tensor(&mut rng, &[h, i], -0.5, 0.5);
        let b1 = rand_tensor(&mut rng, &[h], -0.5, 0.5);
        let w2 = rand_tensor(&mut rng, &[o, h], -0.5, 0.5);
        let b2 = rand_tensor(&mut rng, &[o], -0.5, 0.5);
        let t = rand_tensor(&mut rng, &[b, o], 0.0, 1.0);
        check(
            "mlp",
            seed,
            |_, v| {
                let hdn = (v[0].matmul_t(v[1]) + v[2]).relu();
                (hdn.linear(v[3], v[4]) - v[5]).abs().mean()
            },
            &[x, w1, b1, w2, b2, t],
        );
    }
}

/// f32 and f64 run one generic code path: the same computation agrees.
#[test]
fn f32_matches_f64() {
    fn grads<T: Float>(x: &Tensor<T>, w: &Tensor<T>) -> (Vec<f64>, Vec<f64>) {
        let tape = Tape::<T>::new();
        let xv = tape.leaf(x, true);
        let wv = tape.leaf(w, true);
        let y = (xv.matmul_t(wv).tanh() * xv.matmul_t(wv).sigmoid()).mean_axis(0, false).sum();
        y.backward();
        let c = |t: Tensor<T>| t.data().iter().map(|v| v.to_f64()).collect::<Vec<_>>();
        (c(xv.grad().unwrap()), c(wv.grad().unwrap()))
    }
    let mut rng = TorchRng::manual_seed(7);
    let x = Tensor::<f64>::uniform(&[5, 3], -1.0, 1.0, &mut rng);
    let w = Tensor::<f64>::uniform(&[4, 3], -1.0, 1.0, &mut rng);
    let (gx64, gw64) = grads(&x, &w);
    let (gx32, gw32) = grads(&x.cast::<f32>(), &w.cast::<f32>());
    for (a, b) in gx64.iter().chain(&gw64).zip(gx32.iter().chain(&gw32)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // a function whose backward is deliberately inconsistent with its forward: detach one
    // path, so the analytic gradient misses a term
    let x = Tensor::new(vec![0.5, -1.5, 2.0], &[3]);
    let err = gradcheck(|_, v| (v[0] * v[0].detach()).sum(), &[x]).unwrap_err();
    assert_eq!(err.input, 0);
    assert!((err.numeric - 2.0 * err.analytic).abs() < 1e-4, "{err}");
    assert!(err.to_string().contains("gradcheck failed"));
}
