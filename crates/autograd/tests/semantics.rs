//! Gradient semantics as PyTorch users know them: accumulation on leaves and parameters,
//! fresh interior gradients, reuse, no-grad, detach, tape reuse, and the panics.

use tapegrad::{gradcheck, Tape, Tensor, TorchRng, Var};

fn t(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_slice(data, shape)
}

#[test]
fn two_backward_calls_double_a_leaf_grad_and_zeroing_resets() {
    let tape = Tape::<f64>::new();
    let p = tape.parameter(t(&[1.0, 2.0, 3.0], &[3]));
    let x = tape.leaf(t(&[0.5, -1.0, 2.0], &[3]), true);
    let w = tape.var(p);
    let y = (w * x).sum();
    y.backward();
    assert_eq!(w.grad().unwrap().data(), &[0.5, -1.0, 2.0]);
    assert_eq!(x.grad().unwrap().data(), &[1.0, 2.0, 3.0]);
    y.backward();
    assert_eq!(w.grad().unwrap().data(), &[1.0, -2.0, 4.0]);
    assert_eq!(x.grad().unwrap().data(), &[2.0, 4.0, 6.0]);
    tape.zero_grad();
    assert!(w.grad().is_none());
    assert!(tape.param_grad(p).is_none());
    y.backward();
    assert_eq!(tape.param_grad(p).unwrap().data(), &[0.5, -1.0, 2.0]);
}

#[test]
fn interior_grads_do_not_accumulate() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[2.0], &[1]), true);
    let h = x.exp();
    let y = (h * h).sum(); // dy/dh = 2h
    y.backward();
    let first = h.grad().unwrap();
    y.backward();
    assert_eq!(h.grad().unwrap(), first, "interior gradient is fresh on each pass");
    assert!((x.grad().unwrap().data()[0] - 2.0 * 2.0 * (4.0f64).exp()).abs() < 1e-9);
}

#[test]
fn a_plus_a_gives_two() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(t(&[3.0], &[]), true);
    (a + a).backward();
    assert_eq!(a.grad().unwrap().item(), 2.0);
    let tape = Tape::<f32>::new();
    let a = tape.leaf(Tensor::scalar(3.0), true);
    (a + a + a).backward();
    assert_eq!(a.grad().unwrap().item(), 3.0);
}

#[test]
fn diamond_graph() {
    // x feeds two paths that meet again: y = exp(x) * tanh(x); dy/dx = e^x tanh x + e^x (1 - tanh² x)
    let tape = Tape::<f64>::new();
    let xv = 0.7f64;
    let x = tape.leaf(t(&[xv], &[1]), true);
    let y = (x.exp() * x.tanh()).sum();
    y.backward();
    let want = xv.exp() * xv.tanh() + xv.exp() * (1.0 - xv.tanh().powi(2));
    assert!((x.grad().unwrap().data()[0] - want).abs() < 1e-12);
}

#[test]
fn leaves_without_requires_grad_get_none() {
    let tape = Tape::<f64>::new();
    let x = tape.input(t(&[1.0, 2.0], &[2]));
    let c = tape.parameter_with(t(&[5.0, 5.0], &[2]), false);
    let w = tape.leaf(t(&[3.0, 4.0], &[2]), true);
    let y = ((x * w) + tape.var(c)).sum();
    y.backward();
    assert!(x.grad().is_none());
    assert!(tape.param_grad(c).is_none());
    assert!(!x.requires_grad());
    assert_eq!(w.grad().unwrap().data(), &[1.0, 2.0]);
}

#[test]
fn detach_and_no_grad_record_nothing() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[1.5], &[1]), true);
    let y = (x * x.detach()).sum(); // d/dx = x (the detached factor is a constant)
    y.backward();
    assert_eq!(x.grad().unwrap().data(), &[1.5]);
    let z = {
        let _guard = tape.no_grad();
        assert!(tape.is_no_grad());
        x.exp() * x
    };
    assert!(!tape.is_no_grad());
    assert!(!z.requires_grad());
    assert!((z.value().data()[0] - 1.5 * 1.5f64.exp()).abs() < 1e-12);
    let w = (z * x).sum(); // only the direct x path carries gradient
    w.backward();
    assert!((x.grad().unwrap().data()[0] - (1.5 + 1.5 * 1.5f64.exp())).abs() < 1e-12);
}

#[test]
#[should_panic(expected = "backward: the output does not require grad")]
fn backward_of_a_constant_panics() {
    let tape = Tape::<f64>::new();
    tape.input(t(&[1.0], &[1])).exp().sum().backward();
}

#[test]
fn vjp_with_upstream_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[1.0, 2.0, 3.0], &[3]), true);
    let y = x.mul_scalar(2.0).powf(2.0); // y = 4x², dy/dx = 8x
    y.backward_with(&t(&[1.0, 0.0, -1.0], &[3]));
    assert_eq!(x.grad().unwrap().data(), &[8.0, 0.0, -24.0]);
}

#[test]
fn backward_of_a_leaf_is_its_seed() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[1.0, 2.0], &[2]), true);
    x.backward_with(&t(&[3.0, 4.0], &[2]));
    assert_eq!(x.grad().unwrap().data(), &[3.0, 4.0]);
    // a parameter's too (node %0, which shares its index, is an op here), accumulating
    let tape = Tape::<f64>::new();
    let p = tape.parameter(t(&[5.0], &[1]));
    let w = tape.var(p);
    let _ = w * 2.0;
    w.backward_with(&t(&[2.0], &[1]));
    w.backward();
    assert_eq!(tape.param_grad(p).unwrap().data(), &[3.0]);
}

#[test]
fn reset_reuses_the_tape_and_keeps_parameters() {
    let mut tape = Tape::<f32>::new();
    let p = tape.parameter(Tensor::new(vec![1.0, -1.0], &[1, 2]));
    for step in 0..3 {
        tape.zero_grad();
        {
            let x = tape.input(Tensor::new(vec![2.0, 3.0], &[1, 2]));
            let loss = (x * tape.var(p)).sum();
            loss.backward();
            assert_eq!(tape.len(), 3, "step {step}: one input, one mul, one sum");
            assert!(!tape.is_empty());
        }
        tape.for_each_param_mut(|_, v, g| {
            for (v, g) in v.iter_mut().zip(g.unwrap()) {
                *v -= 0.5 * g;
            }
        });
        tape.reset();
        assert!(tape.is_empty());
    }
    assert_eq!(tape.param_value(p).data(), &[1.0 - 3.0 * 1.0, -1.0 - 3.0 * 1.5]);
}

#[test]
#[should_panic(expected = "matmul: [2, 4] x [8, 2]: inner dimensions 4 and 8 differ")]
fn matmul_shape_panic_names_op_and_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.input(Tensor::zeros(&[2, 4]));
    let b = tape.input(Tensor::zeros(&[8, 2]));
    let _ = a.matmul(b);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
fn broadcast_panic_names_op_and_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.input(Tensor::zeros(&[2, 3]));
    let b = tape.input(Tensor::zeros(&[2]));
    let _ = a + b;
}

#[test]
#[should_panic(expected = "mul: operands come from different tapes")]
fn mixing_tapes_panics() {
    let t1 = Tape::<f32>::new();
    let t2 = Tape::<f32>::new();
    let a = t1.input(Tensor::zeros(&[2]));
    let b = t2.input(Tensor::zeros(&[2]));
    let _ = a * b;
}

/// The two panics name the tapes by the same numbers: distinct per tape.
#[test]
fn tape_mixing_messages_name_each_tape_by_its_number() {
    let message = |f: &dyn Fn()| {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        err.downcast_ref::<String>().unwrap().clone()
    };
    let numbers = |msg: &str| -> Vec<u32> {
        msg.split('#').skip(1).map(|s| s[..s.find(|c: char| !c.is_ascii_digit()).unwrap()].parse().unwrap()).collect()
    };
    let (t1, t2) = (Tape::<f32>::new(), Tape::<f32>::new());
    let p = t1.parameter(Tensor::zeros(&[2]));
    let mixed = message(&|| {
        let _ = t1.input(Tensor::zeros(&[2])) * t2.input(Tensor::zeros(&[2]));
    });
    let foreign = message(&|| {
        let _ = t2.var(p);
    });
    assert!(mixed.starts_with("mul: operands come from different tapes"), "{mixed}");
    assert!(foreign.starts_with("parameter 0 belongs to tape"), "{foreign}");
    let (m, f) = (numbers(&mixed), numbers(&foreign));
    assert_eq!((m.len(), f.len()), (2, 2), "{mixed} / {foreign}");
    assert_ne!(m[0], m[1], "{mixed}");
    assert_eq!(m, f, "t1 then t2 in both: {mixed} / {foreign}");
}

#[test]
#[should_panic(expected = "belongs to tape")]
fn parameter_of_another_tape_panics() {
    let t1 = Tape::<f32>::new();
    let t2 = Tape::<f32>::new();
    let p = t1.parameter(Tensor::zeros(&[2]));
    let _ = t2.var(p);
}

fn build_graph<'t>(plan: &[(u8, usize, usize)], v: &[Var<'t, f64>]) -> Var<'t, f64> {
    let mut pool: Vec<Var<'t, f64>> = v.to_vec();
    for &(kind, a, b) in plan {
        let (a, b) = (pool[a], pool[b]);
        let r = match kind {
            0 => a + b,
            1 => a * b,
            2 => (a - b).tanh(),
            3 => a.sigmoid() * b,
            _ => a.mul_scalar(0.5) + b.exp().mul_scalar(0.1),
        };
        pool.push(r);
    }
    // every node contributes, so every node is on a path to the output
    pool.iter().skip(3).fold(pool[0].sum(), |acc, v| acc + v.mean())
}

/// Random DAGs built in arbitrary orders (independent branches interleaved, nodes reused
/// many times, late nodes consuming early ones): the reverse pass must visit each node after
/// all its consumers. Checked against finite differences.
#[test]
fn random_graphs_built_in_any_order() {
    for seed in 0..20u64 {
        let mut rng = TorchRng::manual_seed(seed);
        let n_ops = 6 + rng.randint(0, 10) as usize;
        let plan: Vec<(u8, usize, usize)> = (0..n_ops)
            .map(|i| {
                let avail = 3 + i; // three inputs, then each recorded op
                (rng.randint(0, 5) as u8, rng.randint(0, avail as i64) as usize, rng.randint(0, avail as i64) as usize)
            })
            .collect();
        let inputs: Vec<Tensor<f64>> = (0..3).map(|_| Tensor::uniform(&[2, 2], -1.0, 1.0, &mut rng)).collect();
        if let Err(e) = gradcheck(|_, v| build_graph(&plan, v), &inputs) {
            panic!("graph seed {seed}: {e}");
        }
    }
}

#[test]
fn tensor_display_and_scalars() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]), true);
    let y = (x * 2.0 + 1.0 - 0.5) / 2.0;
    assert_eq!(y.value().data(), &[1.25, 2.25, 3.25, 4.25]);
    let z = 1.0 - (3.0 * x) + (2.0 + x);
    assert_eq!(z.value().to_string(), "tensor([[ 1., -1.],\n        [-3., -5.]], shape=[2, 2], dtype=f64)");
    z.sum().backward();
    assert_eq!(x.grad().unwrap().data(), &[-2.0; 4]);
}

/// The fused linear layers give exactly the composed ops' values, also on an output large
/// enough for the bias-and-ReLU pass to be split over two threads, and in `f32` on shapes
/// where the GEMM's panel path applies bias and ReLU to each panel as it finishes it
/// (n = 310: a last panel of 6 columns; 64x784x256: mlp-mnist's first layer).
#[test]
fn fused_linear_equals_its_composition_on_two_threads() {
    fn check<T: tapegrad::Float>(batch: usize, inp: usize, out: usize, seed: u64) {
        let mut rng = TorchRng::manual_seed(seed);
        let x = Tensor::<T>::uniform(&[batch, inp], T::from_f64(-1.0), T::from_f64(1.0), &mut rng);
        let w = Tensor::<T>::uniform(&[out, inp], T::from_f64(-1.0), T::from_f64(1.0), &mut rng);
        let b = Tensor::<T>::uniform(&[out], T::from_f64(-1.0), T::from_f64(1.0), &mut rng);
        for threads in [1, 2] {
            tapegrad::set_num_threads(threads);
            let tape = Tape::<T>::new();
            let (xv, wv, bv) = (tape.input(x.clone()), tape.input(w.clone()), tape.input(b.clone()));
            let composed = xv.matmul_t(wv) + bv;
            let what = format!("{batch}x{inp}x{out}, {threads} thread(s)");
            assert_eq!(xv.linear(wv, bv).value(), composed.value(), "{what}");
            assert_eq!(xv.linear_relu(wv, bv).value(), composed.relu().value(), "{what}");
        }
        tapegrad::set_num_threads(1);
    }
    check::<f64>(300, 50, 310, 77);
    check::<f32>(300, 50, 310, 78);
    check::<f32>(64, 784, 256, 79);
    check::<f32>(40, 33, 17, 80);
}

/// `leaf` and `input` take a tensor by value or by reference alike.
#[test]
fn leaf_and_input_take_tensors_and_references() {
    let tape = Tape::<f64>::new();
    let x = t(&[1.0, -2.0], &[2]);
    let by_ref = tape.leaf(&x, true);
    let by_value = tape.leaf(x.clone(), true);
    let inputs = [tape.input(&x), tape.input(x.clone())];
    for v in [by_ref, by_value, inputs[0], inputs[1]] {
        assert_eq!(v.value().data(), x.data());
    }
    (by_ref * by_value * inputs[0] * inputs[1]).sum().backward();
    assert!(inputs[0].grad().is_none() && by_value.grad().is_some());
}

/// Parameters are numbered in creation order, per tape, and a tape owns only its own.
#[test]
fn parameters_are_numbered_in_creation_order() {
    let tape = Tape::<f64>::new();
    let ps: Vec<_> = (0..3).map(|i| tape.parameter(t(&[i as f64], &[1]))).collect();
    assert_eq!(ps.iter().map(|p| p.index()).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(tape.params(), ps);
    assert_eq!(tape.num_params(), 3);
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(tape.param_value(*p).data(), &[i as f64]);
    }
    let other = Tape::<f64>::new();
    let q = other.parameter(t(&[9.0], &[1]));
    assert!(tape.owns(ps[2]) && !tape.owns(q) && other.owns(q) && !other.owns(ps[0]));
}

/// What optimizers and clipping use: every parameter visited in order with its live
/// gradient (none before a backward, after zeroing, or for a constant), gradients changed
/// in place, values read and replaced.
#[test]
fn parameter_accessors_see_values_and_live_gradients_only() {
    let mut tape = Tape::<f64>::new();
    let w = tape.parameter(t(&[1.0, 2.0], &[2]));
    let c = tape.parameter_with(t(&[3.0, 4.0], &[2]), false);
    let mut seen = Vec::new();
    tape.for_each_param_mut(|p, _, g| seen.push((p.index(), g.map(<[f64]>::to_vec))));
    assert_eq!(seen, [(0, None), (1, None)]);
    tape.scope(|tape| (tape.var(w) * tape.var(c)).sum().backward());
    seen.clear();
    tape.for_each_param_mut(|p, v, g| {
        seen.push((p.index(), g.map(<[f64]>::to_vec)));
        v[0] += 10.0;
    });
    assert_eq!(seen, [(0, Some(vec![3.0, 4.0])), (1, None)], "d/dw (w c) = c; c needs none");
    let mut grads = Vec::new();
    tape.for_each_grad_mut(|p, g| {
        grads.push((p.index(), g.to_vec()));
        g[0] = -1.0;
    });
    assert_eq!(grads, [(0, vec![3.0, 4.0])]);
    assert_eq!(tape.param_grad(w).unwrap().data(), &[-1.0, 4.0]);
    tape.with_param(w, |shape, v, g| {
        assert_eq!((shape, v, g), (&[2][..], &[11.0, 2.0][..], Some(&[-1.0, 4.0][..])));
    });
    assert_eq!(tape.with_param(c, |_, v, g| (v.iter().sum::<f64>(), g.is_none())), (17.0, true));
    // a zeroed gradient keeps its buffer, which no accessor may show
    tape.zero_param_grad(w);
    tape.for_each_param_mut(|p, _, g| assert!(g.is_none(), "{p:?}"));
    tape.for_each_grad_mut(|p, _| panic!("{p:?} has no gradient"));
    assert!(tape.with_param(w, |_, _, g| g.is_none()));
    tape.set_param_value(w, &t(&[5.0, 6.0], &[2]));
    assert_eq!(tape.param_value(w).data(), &[5.0, 6.0]);
    assert_eq!(tape.param_value(c).data(), &[13.0, 4.0]);
}

/// A scope resets the tape when it ends, so a loop of scopes holds one step's nodes at
/// most; parameters and their gradients persist as with `reset`.
#[test]
fn a_scope_resets_the_tape_and_keeps_the_parameters() {
    let mut tape = Tape::<f64>::new();
    tape.set_node_warning(Some(10));
    let p = tape.parameter(t(&[1.0, 2.0], &[2]));
    for step in 1..=100 {
        let (nodes, loss) = tape.scope(|tape| {
            let loss = (tape.var(p) * 3.0).sum();
            loss.backward();
            (tape.len(), loss.item())
        });
        assert_eq!((nodes, loss, tape.len()), (2, 9.0, 0));
        // gradients accumulate across steps until zeroed, as in PyTorch
        assert_eq!(tape.param_grad(p).unwrap().data(), &[3.0 * step as f64; 2]);
    }
    tape.zero_param_grad(p);
    assert!(tape.param_grad(p).is_none());
}

/// `Tensor::randn`: seeded, standard normal (moments and tails of 200,000 draws), the
/// same values in f32 as in f64 rounded.
#[test]
fn randn_is_a_seeded_standard_normal() {
    let n = 200_000;
    let x = Tensor::<f64>::randn(&[n], &mut TorchRng::manual_seed(7));
    assert_eq!(x.data(), Tensor::<f64>::randn(&[n], &mut TorchRng::manual_seed(7)).data());
    assert_ne!(x.data(), Tensor::<f64>::randn(&[n], &mut TorchRng::manual_seed(8)).data());
    let mean = x.data().iter().sum::<f64>() / n as f64;
    let moment = |k: i32| x.data().iter().map(|v| (v - mean).powi(k)).sum::<f64>() / n as f64;
    // standard errors: mean 0.0022, variance 0.0032, skewness 0.0055, kurtosis 0.011
    assert!(mean.abs() < 0.01, "{mean}");
    assert!((moment(2) - 1.0).abs() < 0.015, "{}", moment(2));
    assert!(moment(3).abs() < 0.03, "{}", moment(3));
    assert!((moment(4) - 3.0).abs() < 0.06, "{}", moment(4));
    let beyond = |c: f64| x.data().iter().filter(|v| v.abs() > c).count() as f64 / n as f64;
    assert!((beyond(1.0) - 0.3173).abs() < 0.005 && (beyond(2.0) - 0.0455).abs() < 0.002);
    let y = Tensor::<f32>::randn(&[4, 5], &mut TorchRng::manual_seed(7));
    assert_eq!(y.shape(), &[4, 5]);
    assert!(y.data().iter().zip(x.data()).all(|(&a, &b)| a == b as f32));
}
