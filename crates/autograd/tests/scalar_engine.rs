//! The scalar engine: gradcheck of every op, micrograd's reference example, accumulation
//! semantics and reuse.

use tapegrad::{scalar_gradcheck, Scalar, ScalarTape, TorchRng};

#[test]
fn gradcheck_every_scalar_op() {
    type F = for<'t> fn(&'t ScalarTape, &[Scalar<'t>]) -> Scalar<'t>;
    let ops: &[(&str, F)] = &[
        ("add", |_, v| v[0] + v[1]),
        ("sub", |_, v| v[0] - v[1]),
        ("mul", |_, v| v[0] * v[1]),
        ("div", |_, v| v[0] / v[1]),
        ("neg", |_, v| -v[0]),
        ("powf", |_, v| v[0].abs().powf(1.7)),
        ("exp", |_, v| v[0].exp()),
        ("log", |_, v| v[0].abs().log()),
        ("tanh", |_, v| v[0].tanh()),
        ("relu", |_, v| v[0].relu()),
        ("abs", |_, v| v[0].abs()),
        ("consts", |_, v| 2.0 - (v[0] * 3.0 + 1.0) / 4.0 + 1.0 / v[1] + 0.5 * v[0] - v[1] * 0.25),
        ("reuse", |_, v| v[0] * v[0] + v[0]),
    ];
    for &(name, f) in ops {
        for seed in 0..25u64 {
            let mut rng = TorchRng::manual_seed(seed);
            let pick = |rng: &mut TorchRng| {
                let v = rng.uniform_f64(0.2, 2.0);
                if rng.randint(0, 2) == 0 {
                    -v
                } else {
                    v
                }
            };
            let xs = [pick(&mut rng), pick(&mut rng)];
            if let Err(e) = scalar_gradcheck(f, &xs) {
                panic!("{name} at {xs:?}: {e}");
            }
        }
    }
}

/// micrograd's `test_more_ops`, whose expected values come from PyTorch.
#[test]
fn micrograd_reference_example() {
    let tape = ScalarTape::new();
    let a = tape.leaf(-4.0);
    let b = tape.leaf(2.0);
    let mut c = a + b;
    let mut d = a * b + b.powf(3.0);
    c = c + (c + 1.0);
    c = c + (1.0 + c + (-a));
    d = d + (d * 2.0 + (b + a).relu());
    d = d + (3.0 * d + (b - a).relu());
    let e = c - d;
    let f = e.powf(2.0);
    let mut g = f / 2.0;
    g = g + 10.0 / f;
    g.backward();
    assert!((g.value() - 24.70408163265306).abs() < 1e-9);
    assert!((a.grad() - 138.83381924198252).abs() < 1e-9);
    assert!((b.grad() - 645.5772594752186).abs() < 1e-9);
}

#[test]
fn leaves_accumulate_interiors_do_not() {
    let tape = ScalarTape::new();
    let x = tape.leaf(3.0);
    let h = x * x;
    let y = h + h; // dy/dh = 2, dy/dx = 4x
    y.backward();
    assert_eq!(x.grad(), 12.0);
    assert_eq!(h.grad(), 2.0);
    y.backward();
    assert_eq!(x.grad(), 24.0);
    assert_eq!(h.grad(), 2.0);
    tape.zero_grad();
    assert_eq!(x.grad(), 0.0);
}

/// `truncate` forgets the step's nodes and keeps the parameter and its update (that the
/// truncated tape's memory is reused, so a step allocates nothing, is
/// `tests/zero_alloc.rs`'s `scalar_engine_step_allocates_nothing` at the workspace root).
#[test]
fn truncate_keeps_parameters_and_forgets_the_rest() {
    let mut tape = ScalarTape::new();
    let w = tape.leaf(0.5).index();
    let mark = tape.len();
    for _ in 0..5 {
        {
            let x = tape.at(w);
            let loss = (x * 2.0 - 3.0).abs(); // |2w - 3|
            loss.backward();
        }
        let (v, g) = tape.values_and_grads_mut(w..w + 1);
        v[0] -= 0.25 * g[0];
        g[0] = 0.0;
        tape.truncate(mark);
        assert_eq!(tape.len(), mark);
    }
    // w decreases the loss: 0.5 -> 1.0 -> 1.5, the minimum, where |.|' = 0 keeps it (all
    // exact in binary)
    assert_eq!(tape.at(w).value(), 1.5);
}

#[test]
#[should_panic(expected = "add: scalars come from different tapes")]
fn mixing_scalar_tapes_panics() {
    let t1 = ScalarTape::new();
    let t2 = ScalarTape::new();
    let _ = t1.leaf(1.0) + t2.leaf(2.0);
}
