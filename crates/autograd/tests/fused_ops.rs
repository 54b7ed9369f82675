//! The fused ops' own contracts, beyond their values: the names and inputs each op and
//! each gradient op is listed with, the shape rules of the gradient ops (which the tape
//! never feeds a bad shape, so only a direct call reaches their errors), and exact
//! hand-computed values of the gradient kernels.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tapegrad::ops::embedding::{embedding_grad_shape, embedding_shape};
use tapegrad::ops::loss::{l1_grad_shape, nll_grad_shape, nll_shape};
use tapegrad::ops::softmax::{argmax_shape, grad_shape, same_shape};
use tapegrad::ops::{CustomOp, Graph, Handle, LogSumExp, OpFamily, Value, View};
use tapegrad::{gradcheck, Reduction, Shape, Tape, Tensor, Var};

/// The op lines of a tape's listing, `name(%a, %b)`, leaves and inputs left out.
fn ops(tape: &Tape<f64>) -> Vec<String> {
    tape.to_string()
        .lines()
        .filter_map(|l| l.split_once("= ").map(|(_, r)| r))
        .filter(|r| r.contains("(%"))
        .map(|r| r[..=r.find(')').unwrap()].to_string())
        .collect()
}

#[test]
fn loss_ops_and_their_gradients_are_listed_with_their_inputs() {
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::new(vec![0.5, -1.0, 2.0, 0.0], &[2, 2]), true); // %0
    let b = tape.leaf(Tensor::new(vec![1.5, -1.0, 0.0, 3.0], &[2, 2]), true); // %1
    let t = tape.input(Tensor::new(vec![0.0, 1.0], &[2])); // %2
    let _ = tape.grad(a.l1_loss_sum(b), &[a, b]); // %3; seed %4
    let _ = tape.grad(a.l1_loss_mean(b), &[a, b]); // %7; seed %8
    let _ = tape.grad(a.nll_loss(t, Reduction::None, -100), &[a]); // %11; seed %12
    let _ = tape.grad(a.nll_loss(t, Reduction::Sum, -100), &[a]); // %14; seed %15
    let _ = tape.grad(a.nll_loss(t, Reduction::Mean, -100), &[a]); // %17; seed %18
    let want = [
        "l1_loss_sum(%0, %1)",
        "l1_loss_backward(%4, %0, %1)",
        "neg(%5)",
        "l1_loss_mean(%0, %1)",
        "l1_loss_backward(%8, %0, %1)",
        "neg(%9)",
        "nll_loss_none(%0, %2)",
        "nll_loss_backward(%12, %0, %2)",
        "nll_loss_sum(%0, %2)",
        "nll_loss_backward(%15, %0, %2)",
        "nll_loss_mean(%0, %2)",
        "nll_loss_backward(%18, %0, %2)",
    ];
    assert_eq!(ops(&tape), want, "{tape}");
}

#[test]
fn loss_gradient_shape_rules() {
    // l1_loss_backward: a one-element dy (of any rank) and a, b of one shape
    assert_eq!(l1_grad_shape(&[], &[2, 3], &[2, 3]).unwrap().as_slice(), &[2, 3]);
    assert_eq!(l1_grad_shape(&[1, 1], &[3], &[3]).unwrap().as_slice(), &[3]);
    let e = l1_grad_shape(&[2], &[3], &[3]).unwrap_err();
    assert_eq!(e, "l1_loss_backward: dy [2], a [3], b [3]: need a one-element dy and a, b of one shape");
    assert!(l1_grad_shape(&[], &[3], &[4]).is_err());
    assert!(l1_grad_shape(&[2], &[3], &[4]).is_err());

    // nll_loss: [N, C] with [N], or [C] with []; the loss is the targets' shape unreduced
    assert_eq!(nll_shape(&[4, 10], &[4], Reduction::None).unwrap().as_slice(), &[4]);
    assert_eq!(nll_shape(&[4, 10], &[4], Reduction::Sum).unwrap().as_slice(), &[] as &[usize]);
    assert_eq!(nll_shape(&[10], &[], Reduction::Mean).unwrap().as_slice(), &[] as &[usize]);
    let e = nll_shape(&[4, 10], &[3], Reduction::Mean).unwrap_err();
    assert_eq!(
        e,
        "nll_loss: log-probabilities [4, 10] and targets [3] do not fit (need [N, C] and [N], or [C] and [])"
    );
    for (logp, target) in [(&[10][..], &[1][..]), (&[2, 3, 4], &[2, 3]), (&[], &[]), (&[4, 10], &[])] {
        assert!(nll_shape(logp, target, Reduction::Sum).is_err(), "{logp:?} {target:?}");
    }

    // nll_loss_backward: dy of the loss's shape, or one element for a reduced loss
    assert_eq!(nll_grad_shape(&[3], &[3, 5], &[3], Reduction::None).unwrap().as_slice(), &[3, 5]);
    assert_eq!(nll_grad_shape(&[], &[3, 5], &[3], Reduction::Sum).unwrap().as_slice(), &[3, 5]);
    assert_eq!(nll_grad_shape(&[1, 1], &[3, 5], &[3], Reduction::Mean).unwrap().as_slice(), &[3, 5]);
    assert_eq!(nll_grad_shape(&[], &[5], &[], Reduction::None).unwrap().as_slice(), &[5]);
    let e = nll_grad_shape(&[2], &[3, 5], &[3], Reduction::Sum).unwrap_err();
    assert_eq!(e, "nll_loss_backward: dy [2] does not fit the loss [] of targets [3]");
    assert!(nll_grad_shape(&[1], &[3, 5], &[3], Reduction::None).is_err());
    assert!(nll_grad_shape(&[3], &[3, 5], &[2], Reduction::None).is_err());
}

/// The listing of `op`'s ops, its gradient ops and theirs (second order), on a tape with
/// `x` (`%0`, [2, 3]), `w` (`%1`, [3, 2]) and indices `i` (`%2`, [2]).
fn listed(op: for<'t> fn(Var<'t, f64>, Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>) -> Vec<String> {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![0.5, -1.0, 2.0, 0.0, 1.0, 3.0], &[2, 3]), true);
    let w = tape.leaf(Tensor::new(vec![1.5, -1.0, 0.0, 3.0, 0.5, 2.0], &[3, 2]), true);
    let i = tape.input(Tensor::new(vec![2.0, 0.0], &[2]));
    let y = op(x, w, i);
    let g = tape.grad((y * y).sum(), &[x, w]);
    let _ = tape.grad((g[0] * g[0]).sum() + (g[1] * g[1]).sum(), &[x, w]);
    let fused = ["log_softmax", "softmax", "logsumexp", "embedding"];
    ops(&tape).into_iter().filter(|o| fused.iter().any(|f| o.starts_with(f))).collect()
}

#[test]
fn softmax_logsumexp_and_embedding_ops_are_listed_with_their_inputs() {
    for (name, op) in [
        (
            "log_softmax",
            (|x, _, _| x.log_softmax(1)) as for<'t> fn(Var<'t, f64>, Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>,
        ),
        ("softmax", |x, _, _| x.softmax(0)),
        ("logsumexp", |x, _, _| x.logsumexp(1, true)),
        ("embedding", |_, w, i| w.embedding(i)),
    ] {
        let want: &[&str] = match name {
            "log_softmax" => &["log_softmax(%0)", "log_softmax_backward(%10, %3)", "log_softmax_backward(%33, %3)"],
            "softmax" => {
                &["softmax(%0)", "softmax_backward(%10, %3)", "softmax_backward(%22, %3)", "softmax_backward(%35, %3)"]
            }
            "logsumexp" => &["logsumexp(%0)"],
            _ => &[
                "embedding(%1, %2)",
                "embedding_backward(%10, %2)",
                "embedding(%22, %2)",
                "embedding_backward(%26, %2)",
            ],
        };
        assert_eq!(listed(op), want, "{name}");
    }
    // argmax records a constant (no gradient), seen by name in the profile
    let tape = Tape::<f64>::new();
    tape.set_profiling(true);
    let a = tape.input(Tensor::new(vec![0.5, -1.0, 2.0, 0.0], &[2, 2])).argmax(1);
    assert_eq!(a.value().data(), &[0.0, 0.0]);
    let names: Vec<&str> = tape.profile().rows().iter().map(|r| r.0).collect();
    assert_eq!(names, ["argmax"]);
}

#[test]
fn softmax_logsumexp_and_embedding_shape_rules() {
    assert_eq!(same_shape("softmax", &[3, 4], 1).unwrap().as_slice(), &[3, 4]);
    assert_eq!(same_shape("softmax", &[3, 4], 2).unwrap_err(), "softmax: axis 2 out of range for shape [3, 4]");
    assert_eq!(argmax_shape(&[2, 3, 4], 1).unwrap().as_slice(), &[2, 4]);
    assert_eq!(argmax_shape(&[1], 0).unwrap().as_slice(), &[] as &[usize]);
    assert_eq!(argmax_shape(&[3], 1).unwrap_err(), "argmax: axis 1 out of range for shape [3]");
    assert_eq!(argmax_shape(&[0, 2], 0).unwrap_err(), "argmax: axis 0 of shape [0, 2] is empty");
    let name = "log_softmax_backward";
    assert_eq!(grad_shape(name, &[2, 3], &[2, 3], 0).unwrap().as_slice(), &[2, 3]);
    assert_eq!(
        grad_shape(name, &[2, 3], &[2, 4], 1).unwrap_err(),
        "log_softmax_backward: dy [2, 3] and y [2, 4] differ in shape"
    );
    assert_eq!(
        grad_shape(name, &[2, 3], &[2, 3], 2).unwrap_err(),
        "log_softmax_backward: axis 2 out of range for shape [2, 3]"
    );

    let lse = |axis, keepdim, x: &[usize]| OpFamily::<f64>::out_shape(&LogSumExp { axis, keepdim }, &[x]);
    assert_eq!(lse(1, true, &[2, 3, 4]).unwrap().as_slice(), &[2, 1, 4]);
    assert_eq!(lse(1, false, &[2, 3, 4]).unwrap().as_slice(), &[2, 4]);
    assert_eq!(lse(0, false, &[5]).unwrap().as_slice(), &[] as &[usize]);
    assert_eq!(lse(2, false, &[2, 3]).unwrap_err(), "logsumexp: axis 2 out of range for shape [2, 3]");

    assert_eq!(embedding_shape(&[5, 4], &[2, 3]).unwrap().as_slice(), &[2, 3, 4]);
    assert_eq!(embedding_shape(&[5, 4], &[]).unwrap().as_slice(), &[4]);
    assert_eq!(embedding_shape(&[3], &[2]).unwrap_err(), "embedding: weight [3] is not a matrix [V, D]");
    assert!(embedding_shape(&[2, 3, 4], &[2]).is_err());
    assert_eq!(embedding_grad_shape(&[2, 3, 4], &[2, 3], 5).unwrap().as_slice(), &[5, 4]);
    assert_eq!(embedding_grad_shape(&[4], &[], 7).unwrap().as_slice(), &[7, 4]);
    assert_eq!(
        embedding_grad_shape(&[2, 5], &[3], 4).unwrap_err(),
        "embedding_backward: dy [2, 5] does not fit indices [3]"
    );
    assert!(embedding_grad_shape(&[2, 3, 4], &[2], 5).is_err());
    assert!(embedding_grad_shape(&[2, 4], &[2, 1], 5).is_err());
}

/// `y = s·Σx` of a vector `x` and a one-element `s`, as a user-defined op of two inputs
/// whose backward rule asks the graph for shapes.
#[derive(Debug)]
struct ScaledSum;

impl CustomOp<f64> for ScaledSum {
    fn name(&self) -> &'static str {
        "scaled_sum"
    }
    fn arity(&self) -> usize {
        2
    }
    fn out_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        match inputs {
            [[_], []] => Ok(Shape::new()),
            _ => Err(format!("scaled_sum: x {:?} and s {:?}: need a vector and a scalar", inputs[0], inputs[1])),
        }
    }
    fn forward(&self, inputs: &[View<'_, f64>], out: &mut [f64]) {
        out[0] = inputs[1].data[0] * inputs[0].data.iter().sum::<f64>();
    }
    fn vjp(
        &self,
        g: &mut dyn Graph<f64, V = Value>,
        x: &[Value],
        _y: Value,
        dy: Value,
        _: [bool; 3],
    ) -> [Option<Value>; 3] {
        // d/dx_i s·Σx = s, d/ds s·Σx = Σx
        let xs = g.shape(x[0]);
        let ds = g.shape(x[1]);
        let gx = g.mul(dy, x[1]);
        let gx = g.expand(gx, &xs);
        let sx = g.sum_to(x[0], &ds);
        [Some(gx), Some(g.mul(dy, sx)), None]
    }
}

#[test]
fn a_two_input_custom_op_is_listed_differentiated_and_checks_shapes() {
    let op: Arc<dyn CustomOp<f64>> = Arc::new(ScaledSum);
    let x = Tensor::new(vec![-1.5, 0.2, 2.0], &[3]);
    let s = Tensor::new(vec![0.7], &[]);
    gradcheck(|t, v| t.custom(op.clone(), &[v[0].tanh(), v[1]]).mul(v[1]), &[x.clone(), s.clone()]).unwrap();
    let tape = Tape::<f64>::new();
    let (xv, sv) = (tape.leaf(&x, true), tape.leaf(&s, true));
    let y = tape.custom(op.clone(), &[xv, sv]);
    assert_eq!(y.item(), 0.7 * (-1.5 + 0.2 + 2.0));
    let g = tape.grad(y, &[xv, sv]);
    assert_eq!(g[0].value().data(), &[0.7; 3]);
    assert_eq!(g[1].value().data(), &[-1.5 + 0.2 + 2.0]);
    assert_eq!(ops(&tape)[0], "scaled_sum(%0, %1)");
    let bad = tape.input(Tensor::zeros(&[2]));
    let err = catch_unwind(AssertUnwindSafe(|| tape.custom(op.clone(), &[xv, bad]))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("scaled_sum: x [3] and s [2]: need a vector and a scalar"), "{msg}");
}

#[test]
fn a_custom_rules_value_handle_round_trips_its_bits() {
    // what `pack` gives, `unpack` takes back, and the other way round (a rule that hands
    // its handles on to another rule depends on it)
    for bits in [0, 1, 7, 1 << 40, u64::MAX] {
        assert_eq!(Value::unpack(bits).pack(), bits);
        assert_eq!(Value::unpack(Value::unpack(bits).pack()), Value::unpack(bits));
    }
    assert_ne!(Value::unpack(3), Value::unpack(4));
}
