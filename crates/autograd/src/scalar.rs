//! The scalar engine: micrograd's `Value` API on a flat, specialised tape of `f64`s.
//!
//! One node per scalar op. A node is a few entries in flat arrays: its value, its
//! gradient, its (at most two) input ids and the local partial derivatives with respect to
//! them, computed when the node is recorded. Backward is then one tight reverse loop,
//! `grad[input] += partial * grad[node]`, with no branches: node 0 is a *sink* that
//! one-input ops and leaves use as their unused input (with partial 0), so every node is
//! processed the same way.
//!
//! The local derivatives of every op are written once, in [`local_partials`], generically
//! over a [`ScalarAlgebra`]: with plain `f64` they are the numbers stored at record time;
//! with [`Scalar`] variables they are recorded on the tape, which is how
//! [`ScalarTape::grad`] differentiates a gradient again.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::panic::Location;

/// A scalar op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarOp {
    /// The sink (node 0) that absorbs gradients of unused inputs.
    Sink,
    /// A leaf (input, parameter or constant).
    Leaf,
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `-a`
    Neg,
    /// `a^p`
    Powf(f64),
    /// `e^a`
    Exp,
    /// `ln a`
    Log,
    /// `tanh a`
    Tanh,
    /// `max(a, 0)`
    Relu,
    /// `|a|`
    Abs,
    /// `a + c`
    AddConst(f64),
    /// `a * c`
    MulConst(f64),
}

impl ScalarOp {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        match self {
            ScalarOp::Sink => "sink",
            ScalarOp::Leaf => "leaf",
            ScalarOp::Add => "add",
            ScalarOp::Sub => "sub",
            ScalarOp::Mul => "mul",
            ScalarOp::Div => "div",
            ScalarOp::Neg => "neg",
            ScalarOp::Powf(_) => "powf",
            ScalarOp::Exp => "exp",
            ScalarOp::Log => "log",
            ScalarOp::Tanh => "tanh",
            ScalarOp::Relu => "relu",
            ScalarOp::Abs => "abs",
            ScalarOp::AddConst(_) => "add_const",
            ScalarOp::MulConst(_) => "mul_const",
        }
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        match self {
            ScalarOp::Sink | ScalarOp::Leaf => 0,
            ScalarOp::Add | ScalarOp::Sub | ScalarOp::Mul | ScalarOp::Div => 2,
            _ => 1,
        }
    }

    /// The forward value.
    #[inline(always)]
    pub fn eval(&self, a: f64, b: f64) -> f64 {
        match *self {
            ScalarOp::Sink | ScalarOp::Leaf => unreachable!("leaves are not computed"),
            ScalarOp::Add => a + b,
            ScalarOp::Sub => a - b,
            ScalarOp::Mul => a * b,
            ScalarOp::Div => a / b,
            ScalarOp::Neg => -a,
            ScalarOp::Powf(p) => a.powf(p),
            ScalarOp::Exp => a.exp(),
            ScalarOp::Log => a.ln(),
            ScalarOp::Tanh => a.tanh(),
            ScalarOp::Relu => a.max(0.0),
            ScalarOp::Abs => a.abs(),
            ScalarOp::AddConst(c) => a + c,
            ScalarOp::MulConst(c) => a * c,
        }
    }
}

/// What the local-derivative rules need: constants and a few ops on values of type `V`.
pub trait ScalarAlgebra {
    /// A value.
    type V: Copy;
    /// A constant.
    fn c(&mut self, x: f64) -> Self::V;
    /// The numeric value of `v`.
    fn value(&self, v: Self::V) -> f64;
    /// Applies a scalar op.
    fn apply(&mut self, op: ScalarOp, a: Self::V, b: Self::V) -> Self::V;
}

impl ScalarAlgebra for () {
    type V = f64;
    #[inline(always)]
    fn c(&mut self, x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn value(&self, v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn apply(&mut self, op: ScalarOp, a: f64, b: f64) -> f64 {
        op.eval(a, b)
    }
}

/// The local partial derivatives `[∂y/∂a, ∂y/∂b]` of `y = op(a, b)`: the calculus of the
/// scalar engine, in one place. (For one-input ops the second is 0.)
#[inline(always)]
pub fn local_partials<A: ScalarAlgebra>(alg: &mut A, op: ScalarOp, a: A::V, b: A::V, y: A::V) -> [A::V; 2] {
    use ScalarOp as S;
    let zero = alg.c(0.0);
    match op {
        S::Sink | S::Leaf => [zero, zero],
        // d/da (a + b) = 1, d/db (a + b) = 1
        S::Add => [alg.c(1.0), alg.c(1.0)],
        // d/da (a - b) = 1, d/db (a - b) = -1
        S::Sub => [alg.c(1.0), alg.c(-1.0)],
        // d/da (a b) = b, d/db (a b) = a
        S::Mul => [b, a],
        // d/da (a / b) = 1/b, d/db (a / b) = -a/b² = -y/b
        S::Div => {
            let one = alg.c(1.0);
            let da = alg.apply(S::Div, one, b);
            let t = alg.apply(S::Div, y, b);
            [da, alg.apply(S::Neg, t, zero)]
        }
        // d/da (-a) = -1
        S::Neg => [alg.c(-1.0), zero],
        // d/da a^p = p a^(p-1)
        S::Powf(p) => {
            let t = alg.apply(S::Powf(p - 1.0), a, zero);
            [alg.apply(S::MulConst(p), t, zero), zero]
        }
        // d/da e^a = e^a = y
        S::Exp => [y, zero],
        // d/da ln a = 1/a
        S::Log => {
            let one = alg.c(1.0);
            [alg.apply(S::Div, one, a), zero]
        }
        // d/da tanh a = 1 - y²
        S::Tanh => {
            let y2 = alg.apply(S::Mul, y, y);
            let t = alg.apply(S::Neg, y2, zero);
            [alg.apply(S::AddConst(1.0), t, zero), zero]
        }
        // d/da relu(a) = 1 if a > 0 else 0 (a constant: its own derivative is 0)
        S::Relu => [alg.c(if alg.value(a) > 0.0 { 1.0 } else { 0.0 }), zero],
        // d/da |a| = sign(a) (a constant: its own derivative is 0)
        S::Abs => {
            let v = alg.value(a);
            [
                alg.c(if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }),
                zero,
            ]
        }
        // d/da (a + c) = 1
        S::AddConst(_) => [alg.c(1.0), zero],
        // d/da (a c) = c
        S::MulConst(c) => [alg.c(c), zero],
    }
}

pub(crate) struct SInner {
    pub(crate) val: Vec<f64>,
    pub(crate) grad: Vec<f64>,
    pub(crate) ins: Vec<[u32; 2]>,
    pub(crate) part: Vec<[f64; 2]>,
    pub(crate) op: Vec<ScalarOp>,
    pub(crate) loc: Vec<&'static Location<'static>>,
}

impl SInner {
    #[inline(always)]
    fn push(&mut self, op: ScalarOp, v: f64, ins: [u32; 2], part: [f64; 2], loc: &'static Location<'static>) -> u32 {
        let id = self.val.len() as u32;
        self.val.push(v);
        self.grad.push(0.0);
        self.ins.push(ins);
        self.part.push(part);
        self.op.push(op);
        self.loc.push(loc);
        id
    }

    #[inline(always)]
    fn record(&mut self, op: ScalarOp, a: u32, b: u32, loc: &'static Location<'static>) -> u32 {
        let (va, vb) = (self.val[a as usize], self.val[b as usize]);
        let y = op.eval(va, vb);
        let part = local_partials(&mut (), op, va, vb, y);
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

    /// Reverse pass from `root`: interior gradients are recomputed, leaf gradients
    /// accumulate.
    fn backward_from(&self, root: u32) {
        let mut inner = self.inner.borrow_mut();
        let SInner { grad, ins, part, .. } = &mut *inner;
        let root = root as usize;
        for i in 1..=root {
            if ins[i][0] != 0 {
                grad[i] = 0.0; // interior: fresh on every pass (leaves keep accumulating)
            }
        }
        grad[root] += 1.0;
        for i in (1..=root).rev() {
            let g = grad[i];
            let [a, b] = ins[i];
            let [pa, pb] = part[i];
            grad[a as usize] += pa * g;
            grad[b as usize] += pb * g;
        }
        grad[0] = 0.0;
    }

    /// Gradients of `output` with respect to `wrt`, **recorded on the tape** so they can be
    /// differentiated again (create_graph). The same [`local_partials`] rules as the plain
    /// backward pass. Inputs `output` does not depend on get a zero constant.
    #[track_caller]
    pub fn grad<'t>(&'t self, output: Scalar<'t>, wrt: &[Scalar<'t>]) -> Vec<Scalar<'t>> {
        for w in wrt {
            output.check(w, "grad");
        }
        let root = output.id as usize;
        let mut gv: Vec<Option<u32>> = vec![None; root + 1];
        gv[root] = Some(self.leaf(1.0).id);
        let mut alg = Recorder { tape: self, loc: Location::caller() };
        for i in (1..=root).rev() {
            let Some(g) = gv[i] else { continue };
            let (op, [a, b]) = {
                let inner = self.inner.borrow();
                (inner.op[i], inner.ins[i])
            };
            if op.arity() == 0 {
                continue;
            }
            let parts = local_partials(&mut alg, op, a, b, i as u32);
            for (j, &input) in [a, b].iter().take(op.arity()).enumerate() {
                let contrib = alg.apply(ScalarOp::Mul, parts[j], g);
                let slot = &mut gv[input as usize];
                *slot = Some(match *slot {
                    None => contrib,
                    Some(prev) => alg.apply(ScalarOp::Add, prev, contrib),
                });
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

/// Records the partials as tape nodes (for [`ScalarTape::grad`]).
struct Recorder<'t> {
    tape: &'t ScalarTape,
    loc: &'static Location<'static>,
}

impl ScalarAlgebra for Recorder<'_> {
    type V = u32;
    fn c(&mut self, x: f64) -> u32 {
        self.tape.inner.borrow_mut().push(ScalarOp::Leaf, x, [0, 0], [0.0, 0.0], self.loc)
    }
    fn value(&self, v: u32) -> f64 {
        self.tape.inner.borrow().val[v as usize]
    }
    fn apply(&mut self, op: ScalarOp, a: u32, b: u32) -> u32 {
        let b = if op.arity() == 2 { b } else { 0 };
        self.tape.inner.borrow_mut().record(op, a, b, self.loc)
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
    /// The gradient from the last backward pass (accumulated for leaves).
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
    #[inline]
    fn op1(self, op: ScalarOp) -> Scalar<'t> {
        let id = self.tape.inner.borrow_mut().record(op, self.id, 0, Location::caller());
        Scalar { tape: self.tape, id }
    }

    #[track_caller]
    #[inline]
    fn op2(self, op: ScalarOp, other: Scalar<'t>) -> Scalar<'t> {
        self.check(&other, op.name());
        let id = self.tape.inner.borrow_mut().record(op, self.id, other.id, Location::caller());
        Scalar { tape: self.tape, id }
    }

    /// `self^p`.
    #[track_caller]
    pub fn powf(self, p: f64) -> Scalar<'t> {
        self.op1(ScalarOp::Powf(p))
    }
    /// `e^self`.
    #[track_caller]
    pub fn exp(self) -> Scalar<'t> {
        self.op1(ScalarOp::Exp)
    }
    /// `ln self`.
    #[track_caller]
    pub fn log(self) -> Scalar<'t> {
        self.op1(ScalarOp::Log)
    }
    /// `tanh self`.
    #[track_caller]
    pub fn tanh(self) -> Scalar<'t> {
        self.op1(ScalarOp::Tanh)
    }
    /// `max(self, 0)`.
    #[track_caller]
    pub fn relu(self) -> Scalar<'t> {
        self.op1(ScalarOp::Relu)
    }
    /// `|self|`.
    #[track_caller]
    pub fn abs(self) -> Scalar<'t> {
        self.op1(ScalarOp::Abs)
    }
}

macro_rules! scalar_ops {
    ($trait:ident, $method:ident, $op:ident, $constop:expr) => {
        impl<'t> $trait for Scalar<'t> {
            type Output = Scalar<'t>;
            #[track_caller]
            fn $method(self, rhs: Scalar<'t>) -> Scalar<'t> {
                self.op2(ScalarOp::$op, rhs)
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

scalar_ops!(Add, add, Add, ScalarOp::AddConst);
scalar_ops!(Sub, sub, Sub, |c: f64| ScalarOp::AddConst(-c));
scalar_ops!(Mul, mul, Mul, ScalarOp::MulConst);
scalar_ops!(Div, div, Div, |c: f64| ScalarOp::MulConst(1.0 / c));

impl<'t> Add<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn add(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::AddConst(self))
    }
}

impl<'t> Sub<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn sub(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Neg).op1(ScalarOp::AddConst(self))
    }
}

impl<'t> Mul<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn mul(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::MulConst(self))
    }
}

impl<'t> Div<Scalar<'t>> for f64 {
    type Output = Scalar<'t>;
    #[track_caller]
    fn div(self, rhs: Scalar<'t>) -> Scalar<'t> {
        rhs.op1(ScalarOp::Powf(-1.0)).op1(ScalarOp::MulConst(self))
    }
}

impl<'t> Neg for Scalar<'t> {
    type Output = Scalar<'t>;
    #[track_caller]
    fn neg(self) -> Scalar<'t> {
        self.op1(ScalarOp::Neg)
    }
}
