//! Listing, DOT, source locations, the profiler, anomaly detection and custom ops.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tapegrad::ops::{CustomOp, Graph, Value, View};
use tapegrad::{gradcheck, ScalarTape, Shape, Tape, Tensor, Var};

fn small_graph(tape: &Tape<f64>) -> tapegrad::Var<'_, f64> {
    let w = tape.var(tape.parameter(Tensor::new(vec![1.0, -1.0, 0.5, 2.0], &[2, 2])));
    let b = tape.var(tape.parameter(Tensor::new(vec![0.0, 0.1], &[2])));
    let x = tape.input(Tensor::new(vec![1.0, 2.0], &[1, 2]));
    x.linear(w, b).relu().sum()
}

#[test]
fn listing_shows_the_wengert_list() {
    let tape = Tape::<f64>::new();
    let y = small_graph(&tape);
    y.backward();
    let plain = tape.to_string();
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines[0], "tape<f64>: 4 nodes, 2 parameters");
    assert!(lines[1].starts_with("  p0") && lines[1].contains("parameter") && lines[1].ends_with("[2, 2]"), "{plain}");
    assert!(lines[3].contains("%0") && lines[3].contains("input") && lines[3].ends_with("[1, 2]"), "{plain}");
    assert!(lines[4].contains("%1") && lines[4].contains("linear(%0, p0, p1)") && lines[4].ends_with("[1, 2]"));
    assert!(lines[5].contains("relu(%1)"));
    assert!(lines[6].contains("sum(%2)") && lines[6].ends_with("[]"));
    // x·Wᵀ + b = [1 - 2, 0.5 + 4 + 0.1] = [-1, 4.6]; relu → [0, 4.6]; d/dW row 1 = x
    let full = tape.listing().values(true).grads(true).locations(true).to_string();
    assert!(full.contains("value [-1.0000, 4.6000]"), "{full}");
    assert!(full.contains("grad [0.0000, 0.0000, 1.0000, 2.0000]"), "{full}");
    assert!(full.contains("introspection.rs:"), "locations point at this file: {full}");
}

#[test]
fn dot_marks_ops_leaves_parameters_and_gradient_flow() {
    let tape = Tape::<f64>::new();
    let _ = small_graph(&tape);
    let names = vec![("0.weight".to_string(), tape.params()[0]), ("0.bias".to_string(), tape.params()[1])];
    let dot = tape.to_dot(&names);
    assert!(dot.starts_with("digraph tape {") && dot.trim_end().ends_with('}'));
    assert!(dot.contains("p0 [shape=box, style=\"rounded,filled\"") && dot.contains("0.weight\\n[2, 2]\\nparameter"));
    assert!(dot.contains("n0 [shape=ellipse, label=\"input %0\\n[1, 2]\"]"));
    assert!(dot.contains("label=\"linear %1\\n[1, 2]\""));
    for edge in ["n0 -> n1;", "p0 -> n1;", "p1 -> n1;", "n1 -> n2;", "n2 -> n3;"] {
        assert!(dot.contains(edge), "missing {edge}: {dot}");
    }
    // gradients flow back to the parameters but not to the input
    assert!(dot.contains("n1 -> p0 [style=dashed"));
    assert!(!dot.contains("n1 -> n0 [style=dashed"));
}

#[test]
fn scalar_tape_listing() {
    let tape = ScalarTape::new();
    let a = tape.leaf(2.0);
    let b = tape.leaf(-3.0);
    (a * b + a).tanh().backward();
    let s = tape.to_string();
    assert!(s.starts_with("scalar tape: 5 nodes"), "{s}");
    assert!(s.contains("%3    = mul(%1, %2)"), "{s}");
    assert!(s.contains("%5    = tanh(%4)"), "{s}");
}

#[test]
fn shape_errors_name_the_users_line() {
    let tape = Tape::<f32>::new();
    let a = tape.input(Tensor::zeros(&[2, 4]));
    let b = tape.input(Tensor::zeros(&[8, 2]));
    let line = line!() + 1;
    let err = catch_unwind(AssertUnwindSafe(|| a.matmul(b))).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("matmul: [2, 4] x [8, 2]: inner dimensions 4 and 8 differ"), "{msg}");
    assert!(msg.contains(&format!("introspection.rs:{line}")), "{msg}");
}

#[test]
fn profiler_counts_and_totals_are_consistent() {
    let mut tape = Tape::<f64>::new();
    tape.set_profiling(true);
    for _ in 0..3 {
        tape.zero_grad();
        small_graph(&tape).backward();
        tape.reset();
    }
    let p = tape.profile();
    let rows = p.rows();
    let get = |op: &str| rows.iter().find(|(n, _)| *n == op).map(|(_, s)| *s).unwrap();
    for op in ["linear", "relu", "sum"] {
        assert_eq!(get(op).fwd_count, 3, "{op}");
        assert_eq!(get(op).bwd_count, 3, "{op}");
    }
    // the totals are the sums of the rows
    let (tf, tb) = p.total();
    let sum_f: std::time::Duration = rows.iter().map(|(_, s)| s.fwd_time).sum();
    let sum_b: std::time::Duration = rows.iter().map(|(_, s)| s.bwd_time).sum();
    assert_eq!((tf, tb), (sum_f, sum_b));
    assert!(tb > std::time::Duration::ZERO);
    // sorted by total time
    let totals: Vec<_> = rows.iter().map(|(_, s)| s.fwd_time + s.bwd_time).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]));
    let table = p.to_string();
    assert!(table.lines().next().unwrap().starts_with("op"));
    assert!(table.lines().last().unwrap().starts_with("total"));
    tape.set_profiling(false);
    assert!(tape.profile().is_empty());
}

#[test]
fn anomaly_mode_catches_a_nan_made_in_backward_only() {
    let tape = Tape::<f64>::new();
    tape.set_detect_anomaly(true);
    let x = tape.leaf(Tensor::new(vec![4.0, 0.0, 1.0], &[3]), true);
    let line = line!() + 1;
    let r = x.sqrt(); // forward is finite (sqrt 0 = 0); backward divides by 0
    let y = r.sum();
    assert!(y.item().is_finite());
    let err = catch_unwind(AssertUnwindSafe(|| y.backward())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("anomaly: backward of 'sqrt' (node %1, shape [3]"), "{msg}");
    assert!(msg.contains(&format!("introspection.rs:{line}")), "{msg}");
    assert!(msg.contains("returned inf values in the gradient of its input 0 (%0)"), "{msg}");
}

#[test]
fn anomaly_mode_catches_nan_in_forward_and_is_silent_when_off() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::new(vec![-1.0], &[1]), true);
    let quiet = x.log(); // NaN, but anomaly mode is off
    assert!(quiet.item().is_nan());
    tape.set_detect_anomaly(true);
    let err = catch_unwind(AssertUnwindSafe(|| x.log())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("anomaly: forward of 'log' (node %2, shape [1]"), "{msg}");
    assert!(msg.contains("produced nan values"), "{msg}");
}

/// cube(x) = x³ with d/dx = 3x², as a user-defined op (`examples/custom_op.rs` shows
/// softplus the same way).
#[derive(Debug)]
struct Cube;

impl CustomOp<f64> for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn arity(&self) -> usize {
        1
    }
    fn out_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        Ok(Shape::from_slice(inputs[0]))
    }
    fn forward(&self, inputs: &[View<'_, f64>], out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(inputs[0].data) {
            *o = x * x * x;
        }
    }
    fn vjp(
        &self,
        g: &mut dyn Graph<f64, V = Value>,
        x: &[Value],
        _y: Value,
        dy: Value,
        _need: [bool; 3],
    ) -> [Option<Value>; 3] {
        // d/dx x³ = 3x²
        let x2 = g.mul(x[0], x[0]);
        let d = g.mul_scalar(x2, 3.0);
        [Some(g.mul(dy, d)), None, None]
    }
}

#[test]
fn custom_op_passes_gradcheck_first_and_second_order() {
    let x = Tensor::new(vec![-1.5, 0.2, 2.0], &[3]);
    let op: Arc<dyn CustomOp<f64>> = Arc::new(Cube);
    gradcheck(|t, v| t.custom(op.clone(), &[v[0]]).mul(v[0].tanh()).sum(), std::slice::from_ref(&x)).unwrap();
    // second order through the custom rule: d²/dx² x³ = 6x
    let tape = Tape::<f64>::new();
    let xv = tape.leaf(&x, true);
    let y = tape.custom(op.clone(), &[xv]).sum();
    let g = tape.grad(y, &[xv])[0];
    assert_eq!(g.value().data(), &[6.75, 0.12000000000000002, 12.0]);
    g.sum().backward();
    for (h, &x) in xv.grad().unwrap().data().iter().zip(x.data()) {
        assert!((h - 6.0 * x).abs() < 1e-12);
    }
    // listed under its own name
    assert!(tape.to_string().contains("cube(%0)"));
}

/// `a * b` as a user-defined op that keeps the `need` flags each backward call asked for.
#[derive(Debug, Default)]
struct Product {
    asked: std::sync::Mutex<Vec<[bool; 3]>>,
}

impl CustomOp<f64> for Product {
    fn name(&self) -> &'static str {
        "product"
    }
    fn arity(&self) -> usize {
        2
    }
    fn out_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        Ok(Shape::from_slice(inputs[0]))
    }
    fn forward(&self, inputs: &[View<'_, f64>], out: &mut [f64]) {
        for ((o, &a), &b) in out.iter_mut().zip(inputs[0].data).zip(inputs[1].data) {
            *o = a * b;
        }
    }
    fn vjp(
        &self,
        g: &mut dyn Graph<f64, V = Value>,
        x: &[Value],
        _y: Value,
        dy: Value,
        need: [bool; 3],
    ) -> [Option<Value>; 3] {
        self.asked.lock().unwrap().push(need);
        // d/da (a b) = b, d/db (a b) = a
        let da = need[0].then(|| g.mul(dy, x[1]));
        let db = need[1].then(|| g.mul(dy, x[0]));
        [da, db, None]
    }
}

/// A backward rule is asked only for the inputs that require grad (PyTorch's
/// `needs_input_grad`), in the plain pass and in `Tape::grad` alike.
#[test]
fn a_rule_is_asked_only_for_inputs_that_require_grad() {
    let op = Arc::new(Product::default());
    let dyn_op: Arc<dyn CustomOp<f64>> = op.clone();
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::new(vec![2.0, -3.0], &[2]), true);
    let c = tape.input(Tensor::new(vec![5.0, 7.0], &[2]));
    tape.custom(dyn_op.clone(), &[a, c]).sum().backward();
    tape.custom(dyn_op.clone(), &[c, a]).sum().backward();
    tape.custom(dyn_op.clone(), &[a, a]).sum().backward();
    let y = tape.custom(dyn_op.clone(), &[c, a]).sum();
    let g = tape.grad(y, &[a])[0];
    assert_eq!(g.value().data(), &[5.0, 7.0]);
    let asked = op.asked.lock().unwrap().clone();
    let want = [[true, false, false], [false, true, false], [true, true, false], [false, true, false]];
    assert_eq!(asked, want);
    // d/da of a·c + c·a + a·a = 2c + 2a
    assert_eq!(a.grad().unwrap().data(), &[14.0, 8.0]);
}

/// Every op is profiled (and listed, and named in messages) under its own name, the
/// backward-only ops of the fused rules included (recorded by `Tape::grad`).
#[test]
fn every_op_is_profiled_under_its_own_name() {
    let tape = Tape::<f64>::new();
    tape.set_profiling(true);
    let x = tape.leaf(Tensor::new(vec![0.5, -1.0, 2.0, 0.25, 1.5, -0.75], &[2, 3]), true);
    let w = tape.leaf(Tensor::new(vec![0.1, 0.2, -0.3, 0.4, 0.5, -0.6], &[2, 3]), true);
    let b = tape.leaf(Tensor::new(vec![0.1, -0.2], &[2]), true);
    let rows = tape.input(Tensor::new(vec![1.0, 0.0], &[2]));
    let pos = x.abs().add_scalar(0.5);
    let mut parts = vec![
        x.add(w),
        x.sub(w),
        x.mul(w),
        x.div(pos),
        x.neg(),
        x.mul_scalar(2.0),
        x.relu(),
        x.exp(),
        pos.log(),
        x.tanh(),
        x.sigmoid(),
        x.softplus(),
        pos.sqrt(),
        pos.powf(1.7),
        x.sin(),
        x.cos(),
        x.sign(),
        x.log_softmax(1),
        x.softmax(1),
        x.reshape(&[3, 2]).reshape(&[2, 3]),
        x.t().t(),
        x.matmul(w.t()).sum().expand(&[2, 3]),
        x.sum_to(&[3]).expand(&[2, 3]),
    ];
    parts.push(x.matmul_t(w).sum_axis(1, true).expand(&[2, 3]));
    let losses = [
        x.linear(w, b).mean(),
        x.linear_relu(w, b).sum(),
        x.logsumexp(1, false).sum(),
        x.take(vec![0, 5], &[2]).sum(),
        x.scatter_add(vec![0, 1, 0, 1, 0, 1], &[2]).sum(),
        x.l1_loss_sum(w),
        x.l1_loss_mean(w),
        x.log_softmax(1).nll_loss_sum(rows),
        x.log_softmax(1).nll_loss_mean(rows),
        w.embedding(rows).sum(),
        x.argmax(1).sum(),
    ];
    let total = losses.iter().fold(Var::stack(&parts, 0).sum(), |acc, l| acc + l);
    let _ = tape.grad(total, &[x, w, b]);
    // the profile names every recorded op (the listing shows an op of constants as a leaf)
    let ops: std::collections::BTreeSet<&str> = tape.profile().rows().iter().map(|(name, _)| *name).collect();
    let want = [
        "abs",
        "add",
        "add_scalar",
        "argmax",
        "cos",
        "div",
        "embedding",
        "embedding_backward",
        "exp",
        "expand",
        "l1_loss_backward",
        "l1_loss_mean",
        "l1_loss_sum",
        "linear",
        "linear_relu",
        "log",
        "log_softmax",
        "log_softmax_backward",
        "logsumexp",
        "matmul",
        "mean",
        "mul",
        "mul_scalar",
        "neg",
        "nll_loss_backward",
        "nll_loss_mean",
        "nll_loss_sum",
        "permute",
        "powf",
        "relu",
        "relu_mask",
        "reshape",
        "scatter_add",
        "sigmoid",
        "sign",
        "sign_mul",
        "sin",
        "softmax",
        "softmax_backward",
        "softplus",
        "sqrt",
        "sub",
        "sum",
        "sum_to",
        "take",
        "tanh",
    ];
    let missing: Vec<&str> = want.iter().copied().filter(|n| !ops.contains(n)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in {ops:?}");
    assert!(ops.is_subset(&want.into_iter().collect()), "unexpected names in {ops:?}");
    // the listing shows each recorded op with its inputs (an op of constants is a leaf)
    let arity = |name: &str| match name {
        "linear" | "linear_relu" | "l1_loss_backward" | "nll_loss_backward" => 3,
        "add"
        | "sub"
        | "mul"
        | "div"
        | "relu_mask"
        | "sign_mul"
        | "matmul"
        | "l1_loss_sum"
        | "l1_loss_mean"
        | "nll_loss_sum"
        | "nll_loss_mean"
        | "embedding"
        | "embedding_backward"
        | "log_softmax_backward"
        | "softmax_backward" => 2,
        _ => 1,
    };
    let listing = tape.to_string();
    let listed: Vec<(&str, usize)> = listing
        .lines()
        .filter_map(|l| l.split_once(" = ")?.1.split_once('('))
        .map(|(name, args)| {
            (name.trim(), args[..args.find(')').unwrap()].split(", ").filter(|a| !a.is_empty()).count())
        })
        .collect();
    for (name, n) in &listed {
        assert_eq!(*n, arity(name), "{name} listed with {n} inputs:\n{listing}");
    }
    let families = ["add", "exp", "sum", "matmul", "linear", "reshape", "take", "l1_loss_sum", "nll_loss_sum"];
    for name in families.iter().chain(&["embedding", "log_softmax", "logsumexp", "log_softmax_backward"]) {
        assert!(listed.iter().any(|(n, _)| n == name), "{name} not listed:\n{listing}");
    }
}

/// `y = 3 (a + b)`, whose rule hands one scratch value to both inputs.
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
        Ok(Shape::from_slice(inputs[0]))
    }
    fn forward(&self, inputs: &[View<'_, f64>], out: &mut [f64]) {
        for ((o, &a), &b) in out.iter_mut().zip(inputs[0].data).zip(inputs[1].data) {
            *o = 3.0 * (a + b);
        }
    }
    fn vjp(
        &self,
        g: &mut dyn Graph<f64, V = Value>,
        _x: &[Value],
        _y: Value,
        dy: Value,
        _need: [bool; 3],
    ) -> [Option<Value>; 3] {
        // d/da = d/db = 3: one value for both
        let d = g.mul_scalar(dy, 3.0);
        [Some(d), Some(d), None]
    }
}

/// A rule may give one value to several inputs: each gets its own copy (the backward pass
/// moves a scratch value into a gradient only when no other input shares it).
#[test]
fn a_value_shared_by_two_inputs_reaches_both() {
    let op: Arc<dyn CustomOp<f64>> = Arc::new(ScaledSum);
    let tape = Tape::<f64>::new();
    let a = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
    let b = tape.leaf(Tensor::new(vec![3.0, 4.0], &[2]), true);
    let y = tape.custom(op.clone(), &[a, b]);
    assert_eq!(y.value().data(), &[12.0, 18.0]);
    y.backward_with(&Tensor::new(vec![1.0, -2.0], &[2]));
    assert_eq!(a.grad().unwrap().data(), &[3.0, -6.0]);
    assert_eq!(b.grad().unwrap().data(), &[3.0, -6.0]);
    // and the same input twice: both contributions add up
    let c = tape.leaf(Tensor::new(vec![5.0], &[1]), true);
    tape.custom(op, &[c, c]).sum().backward();
    assert_eq!(c.grad().unwrap().data(), &[6.0]);
}
