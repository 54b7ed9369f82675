//! The scalar engine: micrograd's `Value` API on a flat, specialised tape of `f64`s.
//!
//! One node per scalar op. A node is a few entries in flat arrays: its value, its
//! gradient, its (at most two) input ids and the local partial derivatives with respect to
//! them, computed when the node is recorded. Backward is then one tight reverse loop,
//! `grad[input] += partial * grad[node]`, over the nodes that lead to the output: node 0
//! is a *sink* that one-input ops and leaves use as their unused input (with partial 0).
//!
//! The ops are the tensor engine's elementwise ops ([`Unary`], [`Binary`]) and so are their
//! derivatives: a local partial is the tensor engine's backward rule evaluated on plain
//! `f64`s with an upstream gradient of 1, and [`ScalarTape::grad`] runs the same rules on
//! the tape itself (recording them) to differentiate a gradient again.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::panic::Location;

use crate::ops::{Binary, Graph, Handle, Op, ShapeOp, Unary};
use crate::shape::Shape;

/// A scalar op: one of the tensor engine's elementwise ops on single values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarOp {
    /// The sink (node 0) that absorbs gradients of unused inputs.
    Sink,
    /// A leaf (input, parameter or constant).
    Leaf,
    /// A function of one input.
    Unary(Unary<f64>),
    /// A function of two inputs.
    Binary(Binary),
}

impl ScalarOp {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        match self {
            ScalarOp::Sink => "sink",
            ScalarOp::Leaf => "leaf",
            ScalarOp::Unary(u) => u.name(),
            ScalarOp::Binary(b) => b.name(),
        }
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        match self {
            ScalarOp::Sink | ScalarOp::Leaf => 0,
            ScalarOp::Unary(_) => 1,
            ScalarOp::Binary(_) => 2,
        }
    }

    /// The forward value (`b` is ignored by one-input ops).
    #[inline(always)]
    pub fn eval(&self, a: f64, b: f64) -> f64 {
        match self {
            ScalarOp::Sink | ScalarOp::Leaf => unreachable!("leaves are not computed"),
            ScalarOp::Unary(u) => u.eval(a),
            ScalarOp::Binary(op) => op.eval(a, b),
        }
    }

    /// The local partial derivatives `[∂y/∂a, ∂y/∂b]` of `y = op(a, b)`: the tensor
    /// engine's backward rule of the op with an upstream gradient of 1 (0 where the rule
    /// gives no contribution, and for the unused input of a one-input op).
    #[inline(always)]
    pub fn partials(&self, a: f64, b: f64, y: f64) -> [f64; 2] {
        match self {
            ScalarOp::Sink | ScalarOp::Leaf => [0.0, 0.0],
            ScalarOp::Unary(u) => [u.vjp(&mut Numbers, a, y, 1.0).unwrap_or(0.0), 0.0],
            ScalarOp::Binary(op) => {
                let [da, db] = op.vjp_elementwise(&mut Numbers, a, b, y, 1.0, [true, true]);
                [da.unwrap_or(0.0), db.unwrap_or(0.0)]
            }
        }
    }
}

impl Handle for f64 {
    fn pack(self) -> u64 {
        self.to_bits()
    }
    fn unpack(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}

impl Handle for u32 {
    fn pack(self) -> u64 {
        self as u64
    }
    fn unpack(bits: u64) -> Self {
        bits as u32
    }
}

/// Plain numbers as a [`Graph`]: the backward rules evaluated on single `f64`s.
struct Numbers;

impl Graph<f64> for Numbers {
    type V = f64;
    #[inline(always)]
    fn apply(&mut self, op: Op<f64>, inputs: &[f64]) -> f64 {
        match op {
            Op::Unary(u) => u.eval(inputs[0]),
            Op::Binary(b) => b.eval(inputs[0], inputs[1]),
            // a single value has one shape: reshapes, expands and sums to it are identities
            Op::Shape(ShapeOp::Reshape(_) | ShapeOp::Expand(_) | ShapeOp::SumTo(_)) => inputs[0],
            op => unreachable!("scalar rules use elementwise ops only, not {}", op.name()),
        }
    }
    #[inline(always)]
    fn shape(&self, _: f64) -> Shape {
        Shape::new()
    }
    #[inline(always)]
    fn has_shape(&self, _: f64, _: &[usize]) -> bool {
        true
    }
    #[inline(always)]
    fn unary(&mut self, op: Unary<f64>, a: f64) -> f64 {
        op.eval(a)
    }
    #[inline(always)]
    fn binary(&mut self, op: Binary, a: f64, b: f64) -> f64 {
        op.eval(a, b)
    }
}

/// Default number of nodes past which a scalar tape warns once that it keeps growing.
pub const DEFAULT_SCALAR_NODE_WARNING: usize = 1 << 22;

/// The mark of a leaf (and the sink) in `SInner::seen`: no pass number equals it.
const LEAF: u32 = u32::MAX;

pub(crate) struct SInner {
    pub(crate) val: Vec<f64>,
    pub(crate) grad: Vec<f64>,
    pub(crate) ins: Vec<[u32; 2]>,
    pub(crate) part: Vec<[f64; 2]>,
    pub(crate) op: Vec<ScalarOp>,
    pub(crate) loc: Vec<&'static Location<'static>>,
    /// The last backward pass that reached each interior node; [`LEAF`] for leaves.
    seen: Vec<u32>,
    /// Number of the current (or last) backward pass.
    pass: u32,
    /// Node count at which the tape warns (once) that it keeps growing; 0 for never.
    warn_at: usize,
}

impl SInner {
    #[inline(always)]
    fn push(&mut self, op: ScalarOp, v: f64, ins: [u32; 2], part: [f64; 2], loc: &'static Location<'static>) -> u32 {
        let id = self.val.len() as u32;
        if id as usize + 1 == self.warn_at {
            self.warn_at = 0;
            crate::tape::warn_growth(id as usize + 1, loc, "ScalarTape::reset() or truncate()");
        }
        self.val.push(v);
        self.grad.push(0.0);
        self.ins.push(ins);
        self.part.push(part);
        self.op.push(op);
        self.loc.push(loc);
        self.seen.push(if op.arity() == 0 { LEAF } else { 0 });
        id
    }

    #[inline(always)]
    fn record(&mut self, op: ScalarOp, a: u32, b: u32, loc: &'static Location<'static>) -> u32 {
        let (va, vb) = (self.val[a as usize], self.val[b as usize]);
        let y = op.eval(va, vb);
        let part = op.partials(va, vb, y);
        self.push(op, y, [a, b], part, loc)
    }
}

/// A tape for scalar (`f64`) computations, one node per op (micrograd-style).
///
/// ```
/// use tapegrad::ScalarTape;
/// let tape = ScalarTape::new();
/// let a = tape.leaf(-4.0);
/// let b = tape.leaf(2.0);
/// let c = a + b;
/// let d = a * b + b.powf(3.0);
/// let e = (c - d).relu() + (d * 2.0).tanh();
/// e.backward();
/// assert_eq!(a.grad(), 4.0); // relu is off; d/da tanh(2(ab + b³)) = 2b at 0
/// ```
pub struct ScalarTape {
    pub(crate) inner: RefCell<SInner>,
}

impl Default for ScalarTape {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ScalarTape {
    /// One line per node: id, op with inputs, value and gradient (the sink, node 0, is
    /// left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        writeln!(f, "scalar tape: {} nodes", inner.val.len() - 1)?;
        for i in 1..inner.val.len() {
            let op = inner.op[i];
            let [a, b] = inner.ins[i];
            let rhs = match op {
                ScalarOp::Sink | ScalarOp::Leaf => "leaf".to_string(),
                ScalarOp::Unary(Unary::Powf(c) | Unary::AddScalar(c) | Unary::MulScalar(c)) => {
                    format!("{}(%{a}, {c})", op.name())
                }
                ScalarOp::Unary(_) => format!("{}(%{a})", op.name()),
                ScalarOp::Binary(_) => format!("{}(%{a}, %{b})", op.name()),
            };
            writeln!(f, "  %{i:<4} = {rhs:<24} data {:>10.4}  grad {:>10.4}", inner.val[i], inner.grad[i])?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScalarTape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScalarTape({} nodes)", self.len())
    }
}

impl ScalarTape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `n` nodes.
    #[track_caller]
    pub fn with_capacity(n: usize) -> Self {
        let n = n + 1;
        let mut inner = SInner {
            val: Vec::with_capacity(n),
            grad: Vec::with_capacity(n),
            ins: Vec::with_capacity(n),
            part: Vec::with_capacity(n),
            op: Vec::with_capacity(n),
            loc: Vec::with_capacity(n),
            seen: Vec::with_capacity(n),
            pass: 0,
            warn_at: DEFAULT_SCALAR_NODE_WARNING,
        };
        inner.push(ScalarOp::Sink, 0.0, [0, 0], [0.0, 0.0], Location::caller());
        ScalarTape { inner: RefCell::new(inner) }
    }

    /// Number of nodes (including the sink, node 0).
    pub fn len(&self) -> usize {
        self.inner.borrow().val.len()
    }

    /// Whether only the sink is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 1
    }

    /// A leaf (differentiable input or parameter).
    #[track_caller]
    pub fn leaf(&self, value: f64) -> Scalar<'_> {
        let id = self.inner.borrow_mut().push(ScalarOp::Leaf, value, [0, 0], [0.0, 0.0], Location::caller());
        Scalar { tape: self, id }
    }

    /// The variable at node index `id` (e.g. a parameter kept across [`ScalarTape::truncate`]).
    ///
    /// # Panics
    /// If there is no such node.
    #[track_caller]
    pub fn at(&self, id: usize) -> Scalar<'_> {
        let n = self.len();
        assert!(id > 0 && id < n, "at: node {id} not on a tape of {n} nodes");
        Scalar { tape: self, id: id as u32 }
    }

    /// Forgets every node from index `len` on, keeping the memory (and the first `len`
    /// nodes, e.g. parameters created first). Steady-state steps then allocate nothing.
    ///
    /// # Panics
    /// If `len` is 0 (the sink stays) or beyond the tape.
    pub fn truncate(&mut self, len: usize) {
        let inner = self.inner.get_mut();
        assert!(len >= 1 && len <= inner.val.len(), "truncate: {len} of {} nodes", inner.val.len());
        inner.val.truncate(len);
        inner.grad.truncate(len);
        inner.ins.truncate(len);
        inner.part.truncate(len);
        inner.op.truncate(len);
        inner.loc.truncate(len);
        inner.seen.truncate(len);
    }

    /// Sets the node count at which the tape prints a one-time warning to stderr that it
    /// keeps growing (the sign of a training loop that forgets [`ScalarTape::reset`] or
    /// [`ScalarTape::truncate`]); `None` turns the warning off. The default is
    /// [`DEFAULT_SCALAR_NODE_WARNING`].
    pub fn set_node_warning(&self, at: Option<usize>) {
        self.inner.borrow_mut().warn_at = at.unwrap_or(0);
    }

    /// Forgets every node but the sink.
    pub fn reset(&mut self) {
        self.truncate(1);
    }

    /// Values and gradients of nodes `range` (e.g. the parameters), mutably: what an
    /// optimizer step and a zero-grad use.
    pub fn values_and_grads_mut(&mut self, range: std::ops::Range<usize>) -> (&mut [f64], &mut [f64]) {
        let inner = self.inner.get_mut();
        (&mut inner.val[range.clone()], &mut inner.grad[range])
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&self) {
        self.inner.borrow_mut().grad.fill(0.0);
    }

    /// Reverse pass from `root` over the nodes that lead to it: a reached interior node's
    /// gradient is overwritten, a reached leaf's accumulates, the rest keep theirs.
    fn backward_from(&self, root: u32) {
        let mut inner = self.inner.borrow_mut();
        inner.pass += 1;
        if inner.pass == LEAF {
            // the counter ran out: forget every old mark
            inner.seen.iter_mut().filter(|s| **s != LEAF).for_each(|s| *s = 0);
            inner.pass = 1;
        }
        let SInner { grad, ins, part, seen, pass, .. } = &mut *inner;
        let pass = *pass;
        let n = root as usize + 1;
        let (grad, ins, part, seen) = (&mut grad[..n], &ins[..n], &part[..n], &mut seen[..n]);
        // a leaf's gradient accumulates; an interior one starts afresh
        if seen[n - 1] == LEAF {
            grad[n - 1] += 1.0;
            return;
        }
        grad[n - 1] = 1.0;
        seen[n - 1] = pass;
        for i in (1..n).rev() {
            if seen[i] != pass {
                continue; // a leaf, or a node that does not lead to the output
            }
            let g = grad[i];
            for (input, p) in ins[i].into_iter().zip(part[i]) {
                let x = input as usize;
                let mark = seen[x];
                if mark != pass && mark != LEAF {
                    seen[x] = pass;
                    grad[x] = 0.0; // an interior gradient from an earlier pass
                }
                grad[x] += p * g;
            }
        }
        grad[0] = 0.0;
    }

    /// Gradients of `output` with respect to `wrt`, **recorded on the tape** so they can be
    /// differentiated again (create_graph): the tensor engine's backward rules run on this
    /// tape, over the nodes that lead to `output`. Inputs `output` does not depend on get a
    /// zero constant.
    #[track_caller]
    pub fn grad<'t>(&'t self, output: Scalar<'t>, wrt: &[Scalar<'t>]) -> Vec<Scalar<'t>> {
        for w in wrt {
            output.check(w, "grad");
        }
        let root = output.id as usize;
        let mut gv: Vec<Option<u32>> = vec![None; root + 1];
        let mut rec = Recorder { tape: self, loc: Location::caller() };
        gv[root] = Some(rec.constant(1.0));
        for i in (1..=root).rev() {
            let Some(g) = gv[i] else { continue };
            let (op, [a, b]) = {
                let inner = self.inner.borrow();
                (inner.op[i], inner.ins[i])
            };
            let y = i as u32;
            let contributions = match op {
                ScalarOp::Sink | ScalarOp::Leaf => continue,
                ScalarOp::Unary(u) => [u.vjp(&mut rec, a, y, g), None],
                ScalarOp::Binary(bop) => bop.vjp(&mut rec, a, b, y, g, [true, true]),
            };
            for (&input, c) in [a, b].iter().zip(contributions).take(op.arity()) {
                let slot = &mut gv[input as usize];
                *slot = match (*slot, c) {
                    (None, Some(c)) => Some(c),
                    (Some(prev), Some(c)) => Some(rec.binary(Binary::Add, prev, c)),
                    // reached without a contribution: zero
                    (None, None) => Some(rec.constant(0.0)),
                    (prev, None) => prev,
                };
            }
        }
        wrt.iter()
            .map(|w| match gv.get(w.id as usize).copied().flatten() {
                Some(id) => Scalar { tape: self, id },
                None => self.leaf(0.0),
            })
            .collect()
    }
}

/// The tape as a [`Graph`]: the backward rules record their ops (for [`ScalarTape::grad`]).
struct Recorder<'t> {
    tape: &'t ScalarTape,
    loc: &'static Location<'static>,
}

impl Recorder<'_> {
    fn constant(&mut self, x: f64) -> u32 {
        self.tape.inner.borrow_mut().push(ScalarOp::Leaf, x, [0, 0], [0.0, 0.0], self.loc)
    }
}

impl Graph<f64> for Recorder<'_> {
    type V = u32;
    fn apply(&mut self, op: Op<f64>, inputs: &[u32]) -> u32 {
        let (op, b) = match op {
            Op::Unary(u) => (ScalarOp::Unary(u), 0),
            Op::Binary(b) => (ScalarOp::Binary(b), inputs[1]),
            // a single value has one shape: reshapes, expands and sums to it are identities
            Op::Shape(ShapeOp::Reshape(_) | ShapeOp::Expand(_) | ShapeOp::SumTo(_)) => return inputs[0],
            op => unreachable!("scalar rules use elementwise ops only, not {}", op.name()),
        };
        self.tape.inner.borrow_mut().record(op, inputs[0], b, self.loc)
    }
    fn shape(&self, _: u32) -> Shape {
        Shape::new()
    }
    fn has_shape(&self, _: u32, _: &[usize]) -> bool {
        true
    }
}

/// A scalar on a [`ScalarTape`]: `Copy`, with the ops as methods and operators
/// (`+ - * /` with other scalars or `f64` constants).
#[derive(Clone, Copy)]
pub struct Scalar<'t> {
    tape: &'t ScalarTape,
    id: u32,
}

impl fmt::Debug for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scalar(#{} data={} grad={})", self.id, self.value(), self.grad())
    }
}

impl<'t> Scalar<'t> {
    /// Node index on the tape.
    pub fn index(&self) -> usize {
        self.id as usize
    }
    /// The value.
    pub fn value(&self) -> f64 {
        self.tape.inner.borrow().val[self.id as usize]
    }
    /// The gradient: for a leaf, the sum over the backward passes since zeroing; for an
    /// interior node, the one from the last pass that reached it (0 before any).
    pub fn grad(&self) -> f64 {
        self.tape.inner.borrow().grad[self.id as usize]
    }
    /// The tape.
    pub fn tape(&self) -> &'t ScalarTape {
        self.tape
    }

    #[track_caller]
    fn check(&self, other: &Scalar<'t>, op: &str) {
        assert!(std::ptr::eq(self.tape, other.tape), "{op}: scalars come from different tapes");
    }

    /// Reverse pass with `d self / d self = 1`.
    pub fn backward(&self) {
        self.tape.backward_from(self.id);
    }

    #[track_caller]
    #[inline(always)]
    fn op1(self, op: ScalarOp) -> Scalar<'t> {
        let id = self.tape.inner.borrow_mut().record(op, self.id, 0, Location::caller());
        Scalar { tape: self.tape, id }
    }

    #[track_caller]
    #[inline(always)]
    fn op2(self, op: ScalarOp, other: Scalar<'t>) -> Scalar<'t> {
        self.check(&other, op.name());
        let id = self.tape.inner.borrow_mut().record(op, self.id, other.id, Location::caller());
        Scalar { tape: self.tape, id }
    }

    /// `self^p`.
    #[track_caller]
    pub fn powf(self, p: f64) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Powf(p)))
    }
    /// `e^self`.
    #[track_caller]
    pub fn exp(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Exp))
    }
    /// `ln self`.
    #[track_caller]
    pub fn log(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Log))
    }
    /// `tanh self`.
    #[track_caller]
    pub fn tanh(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Tanh))
    }
    /// `max(self, 0)`, NaN passing (the one definition, [`Element::relu`](crate::Element::relu)).
    #[track_caller]
    pub fn relu(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Relu))
    }
    /// `√self`.
    #[track_caller]
    pub fn sqrt(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Sqrt))
    }
    /// `sin self`.
    #[track_caller]
    pub fn sin(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Sin))
    }
    /// `cos self`.
    #[track_caller]
    pub fn cos(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Cos))
    }
    /// `|self|`.
    #[track_caller]
    pub fn abs(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Abs))
    }
}

macro_rules! scalar_ops {
    ($trait:ident, $method:ident, $op:ident, $constop:expr) => {
        impl<'t> $trait for Scalar<'t> {
            type Output = Scalar<'t>;
            #[track_caller]
            fn $method(self, rhs: Scalar<'t>) -> Scalar<'t> {
                self.op2(ScalarOp::Binary(Binary::$op), rhs)
            }
        }
        impl<'t> $trait<f64> for Scalar<'t> {
            type Output = Scalar<'t>;
            #[track_caller]
            fn $method(self, rhs: f64) -> Scalar<'t> {
                #[allow(clippy::redundant_closure_call)]
                self.op1(($constop)(rhs))
            }
        }
    };
}

scalar_ops!(Add, add, Add, |c: f64| ScalarOp::Unary(Unary::AddScalar(c)));
scalar_ops!(Sub, sub, Sub, |c: f64| ScalarOp::Unary(Unary::AddScalar(-c)));
scalar_ops!(Mul, mul, Mul, |c: f64| ScalarOp::Unary(Unary::MulScalar(c)));
scalar_ops!(Div, div, Div, |c: f64| ScalarOp::Unary(Unary::MulScalar(1.0 / c)));

impl<'t> Add<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn add(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Unary(Unary::AddScalar(self)))
    }
}

impl<'t> Sub<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn sub(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Unary(Unary::Neg)).op1(ScalarOp::Unary(Unary::AddScalar(self)))
    }
}

impl<'t> Mul<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn mul(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Unary(Unary::MulScalar(self)))
    }
}

impl<'t> Div<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn div(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Unary(Unary::Powf(-1.0))).op1(ScalarOp::Unary(Unary::MulScalar(self)))
    }
}

impl<'t> Neg for Scalar<'t> {
    type Output = Scalar<'t>;
    #[track_caller]
    fn neg(self) -> Scalar<'t> {
        self.op1(ScalarOp::Unary(Unary::Neg))
    }
}
