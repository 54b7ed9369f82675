//! The tape (Wengert list): an arena of nodes indexed by integer ids, and the reverse pass.
//!
//! Every op on a [`Var`] appends one node holding its op, its inputs' ids, its value and
//! (after a backward pass) its gradient. Values are computed eagerly when the node is
//! recorded. [`Tape::reset`] forgets the nodes but keeps their buffers, so recording the
//! same computation again (a training step) reuses every buffer and allocates nothing.
//!
//! Parameters live in a second arena that `reset` keeps: their values persist across steps
//! and their gradients accumulate across backward calls until [`Tape::zero_grad`], as in
//! PyTorch.

use std::cell::RefCell;
use std::mem;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, Ordering};

use smallvec::SmallVec;

use std::time::Instant;

use crate::float::Float;
use crate::ops::{Binary, Graph, Op, Unary, View};
use crate::profile::Profile;
use crate::shape::{numel, Shape};
use crate::tensor::Tensor;
use crate::var::Var;

/// Id of a value on a tape: a node, or (top bit set) a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id(u32);

impl crate::ops::Handle for Id {
    fn pack(self) -> u64 {
        self.0 as u64
    }
    fn unpack(bits: u64) -> Self {
        Id(bits as u32)
    }
}

impl crate::ops::Handle for H {
    fn pack(self) -> u64 {
        match self {
            H::Val(id) => id.0 as u64,
            H::Grad(i) => (1 << 32) | i as u64,
            H::Tmp(k) => (2 << 32) | k as u64,
        }
    }
    fn unpack(bits: u64) -> Self {
        let low = bits as u32;
        match bits >> 32 {
            0 => H::Val(Id(low)),
            1 => H::Grad(low),
            _ => H::Tmp(low),
        }
    }
}

impl Id {
    const PARAM: u32 = 1 << 31;
    pub(crate) fn node(i: usize) -> Id {
        Id(i as u32)
    }
    pub(crate) fn param(i: usize) -> Id {
        Id(i as u32 | Self::PARAM)
    }
    pub(crate) fn is_param(self) -> bool {
        self.0 & Self::PARAM != 0
    }
    pub(crate) fn index(self) -> usize {
        (self.0 & !Self::PARAM) as usize
    }
}

/// A persistent parameter of a tape: a leaf whose value survives [`Tape::reset`] and whose
/// gradient accumulates across backward calls until zeroed. Cheap to copy; get a [`Var`]
/// for it with [`Tape::var`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    index: u32,
    tape: u32,
}

impl Param {
    /// Position of the parameter in creation order.
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

/// One recorded operation.
pub(crate) struct Node<T: Float> {
    pub(crate) op: Op<T>,
    pub(crate) inputs: [Id; 3],
    pub(crate) requires_grad: bool,
    pub(crate) shape: Shape,
    pub(crate) value: Vec<T>,
    pub(crate) grad: Vec<T>,
    pub(crate) has_grad: bool,
    pub(crate) loc: &'static Location<'static>,
}

pub(crate) struct ParamSlot<T: Float> {
    pub(crate) shape: Shape,
    pub(crate) value: Vec<T>,
    pub(crate) grad: Vec<T>,
    pub(crate) has_grad: bool,
    pub(crate) requires_grad: bool,
}

/// A scratch value of the backward pass.
#[derive(Default)]
struct Temp<T> {
    shape: Shape,
    data: Vec<T>,
}

pub(crate) struct Inner<T: Float> {
    /// Node storage; `nodes[..len]` is the live tape, the rest are kept for their buffers.
    pub(crate) nodes: Vec<Node<T>>,
    pub(crate) len: usize,
    pub(crate) params: Vec<ParamSlot<T>>,
    /// Backward scratch buffers, numbered in the order a pass uses them.
    temps: Vec<Temp<T>>,
    temps_used: usize,
    no_grad: u32,
    /// Opt-in diagnostics (one branch per node when both are off).
    pub(crate) profile: Option<Profile>,
    pub(crate) anomaly: bool,
}

impl<T: Float> Inner<T> {
    #[inline]
    pub(crate) fn shape(&self, id: Id) -> &[usize] {
        if id.is_param() {
            &self.params[id.index()].shape
        } else {
            &self.nodes[id.index()].shape
        }
    }

    #[inline]
    pub(crate) fn view(&self, id: Id) -> View<'_, T> {
        if id.is_param() {
            let p = &self.params[id.index()];
            View { shape: &p.shape, data: &p.value }
        } else {
            let n = &self.nodes[id.index()];
            View { shape: &n.shape, data: &n.value }
        }
    }

    #[inline]
    pub(crate) fn requires_grad(&self, id: Id) -> bool {
        if id.is_param() {
            self.params[id.index()].requires_grad
        } else {
            self.nodes[id.index()].requires_grad
        }
    }

    /// Which inputs of `node` need a gradient.
    fn need(&self, node: &Node<T>) -> [bool; 3] {
        let mut need = [false; 3];
        for (n, &input) in need.iter_mut().zip(&node.inputs[..node.op.arity()]) {
            *n = self.requires_grad(input);
        }
        need
    }

    /// Gradient buffer and its "filled" flag of a node or parameter.
    fn grad_slot(&mut self, id: Id) -> (&mut Vec<T>, &mut bool) {
        if id.is_param() {
            let p = &mut self.params[id.index()];
            (&mut p.grad, &mut p.has_grad)
        } else {
            let n = &mut self.nodes[id.index()];
            (&mut n.grad, &mut n.has_grad)
        }
    }

    /// The next node slot, reusing a kept one when there is one.
    fn push_node(&mut self, loc: &'static Location<'static>) -> usize {
        let i = self.len;
        if i == self.nodes.len() {
            self.nodes.push(Node {
                op: Op::Leaf,
                inputs: [Id(0); 3],
                requires_grad: false,
                shape: Shape::new(),
                value: Vec::new(),
                grad: Vec::new(),
                has_grad: false,
                loc,
            });
        }
        self.len += 1;
        i
    }

    /// Records `op` on `inputs`, computing its value.
    fn record(&mut self, op: Op<T>, inputs: &[Id], loc: &'static Location<'static>) -> Id {
        let shape = {
            let mut shapes: [&[usize]; 3] = [&[]; 3];
            for (s, &i) in shapes.iter_mut().zip(inputs) {
                *s = self.shape(i);
            }
            op.out_shape(&shapes[..inputs.len()]).unwrap_or_else(|e| panic!("{e} (at {loc})"))
        };
        let requires_grad = self.no_grad == 0 && inputs.iter().any(|&i| self.requires_grad(i));
        let idx = self.push_node(loc);
        let mut out = mem::take(&mut self.nodes[idx].value);
        resize(&mut out, numel(&shape));
        let t0 = self.profile.is_some().then(Instant::now);
        {
            let mut views = [View { shape: &[], data: &[] }; 3];
            for (v, &i) in views.iter_mut().zip(inputs) {
                *v = self.view(i);
            }
            op.forward(&views[..inputs.len()], &shape, &mut out);
        }
        if let (Some(t0), Some(p)) = (t0, self.profile.as_mut()) {
            p.add_forward(op.name(), t0.elapsed());
        }
        if self.anomaly {
            if let Some(what) = non_finite(&out) {
                panic!(
                    "anomaly: forward of '{}' (node %{idx}, shape {:?}, recorded at {loc}) produced {what} values",
                    op.name(),
                    shape.as_slice()
                );
            }
        }
        let node = &mut self.nodes[idx];
        node.value = out;
        node.shape = shape;
        node.requires_grad = requires_grad;
        node.has_grad = false;
        node.loc = loc;
        if requires_grad {
            node.op = op;
            node.inputs[..inputs.len()].copy_from_slice(inputs);
        } else {
            // nothing to differentiate through: keep the value, record no edges
            node.op = Op::Leaf;
        }
        Id::node(idx)
    }

    fn leaf(&mut self, shape: &[usize], data: &[T], requires_grad: bool, loc: &'static Location<'static>) -> Id {
        let idx = self.push_node(loc);
        let node = &mut self.nodes[idx];
        node.op = Op::Leaf;
        node.shape = crate::shape::from_dims(shape);
        node.value.clear();
        node.value.extend_from_slice(data);
        node.requires_grad = requires_grad && self.no_grad == 0;
        node.has_grad = false;
        node.loc = loc;
        Id::node(idx)
    }

    /// Adds `h` (a value of the eager backward pass) into the gradient of `target`.
    /// The first contribution is moved in (a buffer swap) when `h` is a scratch value no
    /// one else reads; later contributions are added.
    fn accumulate(&mut self, target: Id, h: H, movable: bool) {
        // the common case first, with one lookup: a scratch value moved into an empty slot
        let Inner { nodes, params, temps, .. } = self;
        let (requires_grad, shape, grad, has) = if target.is_param() {
            let p = &mut params[target.index()];
            (p.requires_grad, &p.shape, &mut p.grad, &mut p.has_grad)
        } else {
            let n = &mut nodes[target.index()];
            (n.requires_grad, &n.shape, &mut n.grad, &mut n.has_grad)
        };
        if !requires_grad {
            return;
        }
        if let (false, H::Tmp(k), true) = (*has, h, movable) {
            *has = true;
            let n = numel(shape);
            if grad.capacity() < n {
                grad.reserve_exact(n - grad.len());
            }
            mem::swap(grad, &mut temps[k as usize].data);
            debug_assert_eq!(grad.len(), n, "backward produced a gradient of the wrong size");
            return;
        }
        // otherwise the value is copied in (first contribution) or added; the buffer is
        // taken out of its slot meanwhile, as `h` may be read from the same arena
        let n = numel(self.shape(target));
        let (buf, has) = self.grad_slot(target);
        let first = !mem::replace(has, true);
        let mut buf = mem::take(buf);
        let src = self.resolve(h).data;
        if first {
            buf.clear();
            buf.extend_from_slice(src);
        } else {
            for (g, &d) in buf.iter_mut().zip(src) {
                *g += d;
            }
        }
        debug_assert_eq!(buf.len(), n, "backward produced a gradient of the wrong size");
        *self.grad_slot(target).0 = buf;
    }

    /// The next scratch buffer of this backward pass, sized to `n` (contents stale). Scratch
    /// buffers are numbered in the order a pass takes them, so a repeated pass reuses each
    /// one at the same size and allocates nothing.
    fn take_temp(&mut self, n: usize) -> (usize, Vec<T>) {
        let k = self.temps_used;
        self.temps_used += 1;
        if k == self.temps.len() {
            self.temps.push(Temp::default());
        }
        let mut data = mem::take(&mut self.temps[k].data);
        resize(&mut data, n);
        (k, data)
    }

    /// Returns a scratch buffer taken with [`Inner::take_temp`], now holding a value.
    fn put_temp(&mut self, k: usize, shape: Shape, data: Vec<T>) -> H {
        let t = &mut self.temps[k];
        t.data = data;
        t.shape = shape;
        H::Tmp(k as u32)
    }

    /// Anomaly mode: panics if a backward rule produced a non-finite gradient.
    fn check_backward(&self, i: usize, op: &Op<T>, grads: &[Option<H>]) {
        for (j, h) in grads.iter().enumerate() {
            let Some(h) = *h else { continue };
            if let Some(what) = non_finite(self.resolve(h).data) {
                let node = &self.nodes[i];
                panic!(
                    "anomaly: backward of '{}' (node %{i}, shape {:?}, recorded at {}) returned {what} values \
                     in the gradient of its input {j} ({})",
                    op.name(),
                    node.shape.as_slice(),
                    node.loc,
                    crate::introspect::id_name(node.inputs[j])
                );
            }
        }
    }

    #[inline(always)]
    fn resolve(&self, h: H) -> View<'_, T> {
        match h {
            H::Val(id) => self.view(id),
            H::Grad(i) => {
                let n = &self.nodes[i as usize];
                View { shape: &n.shape, data: &n.grad }
            }
            H::Tmp(k) => {
                let t = &self.temps[k as usize];
                View { shape: &t.shape, data: &t.data }
            }
        }
    }
}

/// `Some("nan")` or `Some("inf")` if a value is not finite.
fn non_finite<T: Float>(v: &[T]) -> Option<&'static str> {
    if v.iter().all(|x| x.is_finite()) {
        None
    } else if v.iter().any(|x| x.is_nan()) {
        Some("nan")
    } else {
        Some("inf")
    }
}

/// Sets a buffer's length to `n`; in a steady state the length already matches and this
/// does nothing (the op overwrites every element).
#[inline]
fn resize<T: Float>(buf: &mut Vec<T>, n: usize) {
    if buf.len() != n {
        buf.resize(n, T::ZERO);
    }
}

/// A value seen by a backward rule during the eager pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H {
    /// A forward value (node or parameter).
    Val(Id),
    /// The incoming gradient of a node.
    Grad(u32),
    /// A scratch result.
    Tmp(u32),
}

/// The eager backward pass as a [`Graph`]: rules compute straight into scratch buffers.
struct Eager<'a, T: Float> {
    inner: &'a mut Inner<T>,
}

impl<T: Float> Graph<T> for Eager<'_, T> {
    type V = H;

    fn apply(&mut self, op: Op<T>, inputs: &[H]) -> H {
        let inner = &mut *self.inner;
        let shape = {
            let mut shapes: [&[usize]; 3] = [&[]; 3];
            for (s, &h) in shapes.iter_mut().zip(inputs) {
                *s = inner.resolve(h).shape;
            }
            op.out_shape(&shapes[..inputs.len()]).unwrap_or_else(|e| panic!("backward rule: {e}"))
        };
        let (k, mut out) = inner.take_temp(numel(&shape));
        {
            let mut views = [View { shape: &[], data: &[] }; 3];
            for (v, &h) in views.iter_mut().zip(inputs) {
                *v = inner.resolve(h);
            }
            op.forward(&views[..inputs.len()], &shape, &mut out);
        }
        inner.put_temp(k, shape, out)
    }

    fn shape(&self, v: H) -> Shape {
        crate::shape::from_dims(self.inner.resolve(v).shape)
    }

    fn has_shape(&self, v: H, shape: &[usize]) -> bool {
        crate::shape::same(self.inner.resolve(v).shape, shape)
    }

    // The primitives below run the same kernels as `apply`, without building an `Op` and
    // re-validating shapes: backward rules only make well-shaped calls (the general path
    // checks them in the gradcheck tests), and these are the hot ones of a backward pass.

    fn unary(&mut self, op: Unary<T>, a: H) -> H {
        let shape = crate::shape::from_dims(self.inner.resolve(a).shape);
        self.compute(shape, &[a], |v, _, out| op.forward(v[0].data, out))
    }

    fn binary(&mut self, op: Binary, a: H, b: H) -> H {
        let (sa, sb) = (self.inner.resolve(a).shape, self.inner.resolve(b).shape);
        // equal shapes, or a one-element operand of no more dimensions than the other
        // (a scalar broadcast): the result has the other's shape
        let shape = if crate::shape::same(sa, sb) || (numel(sa) == 1 && sa.len() <= sb.len()) {
            crate::shape::from_dims(sb)
        } else if numel(sb) == 1 && sb.len() <= sa.len() {
            crate::shape::from_dims(sa)
        } else {
            return self.apply(Op::Binary(op), &[a, b]);
        };
        self.compute(shape, &[a, b], |v, shape, out| op.forward(v[0], v[1], shape, out))
    }

    fn matmul(&mut self, a: H, b: H, ta: bool, tb: bool) -> H {
        let (sa, sb) = (self.inner.resolve(a).shape, self.inner.resolve(b).shape);
        let m = if ta { sa[1] } else { sa[0] };
        let n = if tb { sb[0] } else { sb[1] };
        self.compute(smallvec::smallvec![m, n], &[a, b], |v, _, out| {
            crate::ops::matmul::matmul_forward(v[0], v[1], ta, tb, out)
        })
    }

    fn expand(&mut self, a: H, shape: &[usize]) -> H {
        if self.has_shape(a, shape) {
            return a;
        }
        self.compute(crate::shape::from_dims(shape), &[a], |v, _, out| {
            crate::kernels::expand(v[0].data, v[0].shape, shape, out)
        })
    }

    fn sum_to(&mut self, a: H, shape: &[usize]) -> H {
        if self.has_shape(a, shape) {
            return a;
        }
        self.compute(crate::shape::from_dims(shape), &[a], |v, _, out| {
            crate::kernels::sum_to(v[0].data, v[0].shape, shape, out, false)
        })
    }
}

impl<T: Float> Eager<'_, T> {
    /// A scratch value of `shape` computed by `f(input views, shape, output buffer)`.
    #[inline]
    fn compute(&mut self, shape: Shape, inputs: &[H], f: impl FnOnce(&[View<'_, T>], &[usize], &mut [T])) -> H {
        let inner = &mut *self.inner;
        let (k, mut out) = inner.take_temp(numel(&shape));
        {
            let mut views = [View { shape: &[], data: &[] }; 3];
            for (v, &h) in views.iter_mut().zip(inputs) {
                *v = inner.resolve(h);
            }
            f(&views[..inputs.len()], &shape, &mut out);
        }
        inner.put_temp(k, shape, out)
    }
}

/// The tape itself as a [`Graph`]: rules record ops, so gradients become variables.
struct Recorder<'t, T: Float> {
    tape: &'t Tape<T>,
    loc: &'static Location<'static>,
}

impl<T: Float> Graph<T> for Recorder<'_, T> {
    type V = Id;

    fn apply(&mut self, op: Op<T>, inputs: &[Id]) -> Id {
        self.tape.inner.borrow_mut().record(op, inputs, self.loc)
    }

    fn shape(&self, v: Id) -> Shape {
        crate::shape::from_dims(self.tape.inner.borrow().shape(v))
    }
}

static NEXT_TAPE: AtomicU32 = AtomicU32::new(1);

/// A Wengert list: the record of a computation, for reverse-mode differentiation.
///
/// ```
/// use tapegrad::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let w = tape.parameter(Tensor::new(vec![1.0, -2.0, 3.0, 0.5], &[2, 2]));
/// let b = tape.parameter(Tensor::new(vec![0.1, 0.2], &[2]));
/// let x = tape.input(Tensor::new(vec![1.0, 2.0], &[1, 2]));
/// let (w, b) = (tape.var(w), tape.var(b));
/// let y = (&x.matmul_t(&w) + &b).relu().sum();
/// y.backward();
/// assert_eq!(w.grad().unwrap().data(), &[0.0, 0.0, 1.0, 2.0]);
/// ```
pub struct Tape<T: Float = f32> {
    pub(crate) inner: RefCell<Inner<T>>,
    uid: u32,
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            inner: RefCell::new(Inner {
                nodes: Vec::new(),
                len: 0,
                params: Vec::new(),
                temps: Vec::new(),
                temps_used: 0,
                no_grad: 0,
                profile: None,
                anomaly: false,
            }),
            uid: NEXT_TAPE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Number of recorded nodes (parameters not counted).
    pub fn len(&self) -> usize {
        self.inner.borrow().len
    }

    /// Whether no node is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every recorded node but keeps their memory (and the parameters, with their
    /// values and gradients). Taking `&mut self` guarantees no [`Var`] outlives it.
    pub fn reset(&mut self) {
        self.inner.get_mut().len = 0;
    }

    /// A leaf holding a copy of `value`; with `requires_grad`, backward fills (and across
    /// backward calls, accumulates) its gradient. Inside [`Tape::no_grad`] it never requires
    /// grad.
    #[track_caller]
    pub fn leaf(&self, value: &Tensor<T>, requires_grad: bool) -> Var<'_, T> {
        let id = self.inner.borrow_mut().leaf(value.shape(), value.data(), requires_grad, Location::caller());
        Var::new(self, id)
    }

    /// A leaf that does not require grad (an input or a constant).
    #[track_caller]
    pub fn input(&self, value: Tensor<T>) -> Var<'_, T> {
        self.leaf(&value, false)
    }

    /// A leaf from a slice and a shape, without building a [`Tensor`] first.
    ///
    /// # Panics
    /// If `data.len()` does not match the shape.
    #[track_caller]
    pub fn leaf_from_slice(&self, data: &[T], shape: &[usize], requires_grad: bool) -> Var<'_, T> {
        assert_eq!(data.len(), numel(shape), "leaf: {} values do not fill shape {shape:?}", data.len());
        let id = self.inner.borrow_mut().leaf(shape, data, requires_grad, Location::caller());
        Var::new(self, id)
    }

    /// A new parameter (requires grad).
    pub fn parameter(&self, value: Tensor<T>) -> Param {
        self.parameter_with(value, true)
    }

    /// A new persistent leaf; with `requires_grad == false` it is a constant that survives
    /// [`Tape::reset`] (like a registered buffer in PyTorch).
    pub fn parameter_with(&self, value: Tensor<T>, requires_grad: bool) -> Param {
        let mut inner = self.inner.borrow_mut();
        let index = inner.params.len() as u32;
        assert!(index < Id::PARAM, "too many parameters");
        let shape = crate::shape::from_dims(value.shape());
        inner.params.push(ParamSlot {
            shape,
            value: value.into_vec(),
            grad: Vec::new(),
            has_grad: false,
            requires_grad,
        });
        Param { index, tape: self.uid }
    }

    /// The variable of a parameter, for use in ops.
    ///
    /// # Panics
    /// If the parameter belongs to another tape.
    #[track_caller]
    pub fn var(&self, p: Param) -> Var<'_, T> {
        self.check_param(p);
        Var::new(self, Id::param(p.index as usize))
    }

    #[track_caller]
    fn check_param(&self, p: Param) {
        assert!(p.tape == self.uid, "parameter {} belongs to tape #{}, used on tape #{}", p.index, p.tape, self.uid);
    }

    /// All parameters, in creation order.
    pub fn params(&self) -> Vec<Param> {
        (0..self.inner.borrow().params.len()).map(|i| Param { index: i as u32, tape: self.uid }).collect()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.inner.borrow().params.len()
    }

    /// A copy of a parameter's value.
    #[track_caller]
    pub fn param_value(&self, p: Param) -> Tensor<T> {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        Tensor::from_parts(s.shape.clone(), s.value.clone())
    }

    /// A copy of a parameter's gradient, `None` if none has arrived since the last zeroing.
    #[track_caller]
    pub fn param_grad(&self, p: Param) -> Option<Tensor<T>> {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        s.has_grad.then(|| Tensor::from_parts(s.shape.clone(), s.grad.clone()))
    }

    /// Replaces a parameter's value.
    ///
    /// # Panics
    /// If the shape differs.
    #[track_caller]
    pub fn set_param_value(&mut self, p: Param, value: &Tensor<T>) {
        self.check_param(p);
        let s = &mut self.inner.get_mut().params[p.index()];
        assert_eq!(
            s.shape.as_slice(),
            value.shape(),
            "set_param_value: parameter of shape {:?} given shape {:?}",
            s.shape,
            value.shape()
        );
        s.value.copy_from_slice(value.data());
    }

    /// Visits every parameter mutably: `f(param, value, gradient)` (gradient `None` when
    /// none has arrived since zeroing, or when the parameter does not require grad). This
    /// is what optimizers use; it allocates nothing.
    pub fn for_each_param_mut(&mut self, mut f: impl FnMut(Param, &mut [T], Option<&[T]>)) {
        let uid = self.uid;
        for (i, s) in self.inner.get_mut().params.iter_mut().enumerate() {
            let grad = (s.has_grad && s.requires_grad).then_some(s.grad.as_slice());
            f(Param { index: i as u32, tape: uid }, &mut s.value, grad);
        }
    }

    /// Reads a parameter's value and gradient without copying.
    #[track_caller]
    pub fn with_param<R>(&self, p: Param, f: impl FnOnce(&[usize], &[T], Option<&[T]>) -> R) -> R {
        self.check_param(p);
        let inner = self.inner.borrow();
        let s = &inner.params[p.index()];
        f(&s.shape, &s.value, s.has_grad.then_some(s.grad.as_slice()))
    }

    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`: the
    /// buffer is kept, the next backward writes it afresh). Recorded leaves keep theirs.
    pub fn zero_grad(&self) {
        for p in self.inner.borrow_mut().params.iter_mut() {
            p.has_grad = false;
        }
    }

    /// Clears one parameter's gradient.
    #[track_caller]
    pub fn zero_grad_of(&self, p: Param) {
        self.check_param(p);
        self.inner.borrow_mut().params[p.index()].has_grad = false;
    }

    /// Starts a no-grad scope: until the guard is dropped, ops compute values but record no
    /// edges (their results do not require grad).
    pub fn no_grad(&self) -> NoGradGuard<'_, T> {
        self.inner.borrow_mut().no_grad += 1;
        NoGradGuard { tape: self }
    }

    /// Whether a no-grad scope is active.
    pub fn is_no_grad(&self) -> bool {
        self.inner.borrow().no_grad > 0
    }

    /// Turns the profiler on (collecting into a fresh [`Profile`]) or off.
    pub fn set_profiling(&self, on: bool) {
        self.inner.borrow_mut().profile = on.then(Profile::default);
    }

    /// The profile collected since profiling was turned on (empty when off).
    pub fn profile(&self) -> Profile {
        self.inner.borrow().profile.clone().unwrap_or_default()
    }

    /// Anomaly detection (PyTorch's `detect_anomaly`): when on, every forward value and
    /// every gradient a backward rule returns is checked for NaN and infinity, and the first
    /// offending node panics with its op, shape and the source location that recorded it.
    pub fn set_detect_anomaly(&self, on: bool) {
        self.inner.borrow_mut().anomaly = on;
    }

    /// Records a user-defined op on `inputs` (see [`crate::ops::CustomOp`]).
    ///
    /// # Panics
    /// If the number of inputs is not the op's arity, the variables come from another tape,
    /// or the op rejects the shapes.
    #[track_caller]
    pub fn custom<'t>(&'t self, op: std::sync::Arc<dyn crate::ops::CustomOp<T>>, inputs: &[Var<'t, T>]) -> Var<'t, T> {
        assert!(
            inputs.len() == op.arity() && (1..=3).contains(&inputs.len()),
            "{}: {} inputs given, the op takes {}",
            op.name(),
            inputs.len(),
            op.arity()
        );
        for v in inputs {
            assert!(std::ptr::eq(v.tape(), self), "{}: operands come from different tapes", op.name());
        }
        let ids: SmallVec<[Id; 3]> = inputs.iter().map(|v| v.id()).collect();
        Var::new(self, self.record(Op::Custom(op), &ids, Location::caller()))
    }

    pub(crate) fn uid(&self) -> u32 {
        self.uid
    }

    /// Records `op` on `inputs` (crate-internal entry point of every op).
    #[inline]
    pub(crate) fn record(&self, op: Op<T>, inputs: &[Id], loc: &'static Location<'static>) -> Id {
        self.inner.borrow_mut().record(op, inputs, loc)
    }

    /// The reverse pass from `root` with upstream gradient `seed` (ones when `None`).
    pub(crate) fn backward_from(&self, root: Id, seed: Option<&[T]>) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        assert!(
            inner.requires_grad(root),
            "backward: the output does not require grad (no parameter or leaf with \
             requires_grad leads to it, or it was made under no_grad)"
        );
        let n = numel(inner.shape(root));
        if let Some(s) = seed {
            assert_eq!(
                s.len(),
                n,
                "backward: upstream gradient of {} elements for an output of shape {:?}",
                s.len(),
                inner.shape(root)
            );
        }
        if root.is_param() || matches!(inner.nodes[root.index()].op, Op::Leaf) {
            // differentiating a leaf by itself: its gradient is the seed
            inner.temps_used = 0;
            let k = seed_temp(inner, root, seed);
            inner.accumulate(root, k, true);
            return;
        }
        let last = root.index();
        for node in &mut inner.nodes[..=last] {
            if !matches!(node.op, Op::Leaf) {
                node.has_grad = false; // interior gradients are fresh on every pass
            }
        }
        {
            let node = &mut inner.nodes[last];
            node.grad.clear();
            match seed {
                Some(s) => node.grad.extend_from_slice(s),
                None => node.grad.resize(n, T::ONE),
            }
            node.has_grad = true;
        }
        inner.temps_used = 0;
        for i in (0..=last).rev() {
            let node = &inner.nodes[i];
            if !node.has_grad || !node.requires_grad || matches!(node.op, Op::Leaf) {
                continue;
            }
            let arity = node.op.arity();
            let inputs = node.inputs;
            let need = inner.need(node);
            let op = mem::replace(&mut inner.nodes[i].op, Op::Leaf);
            let t0 = inner.profile.is_some().then(Instant::now);
            let xs = [H::Val(inputs[0]), H::Val(inputs[1]), H::Val(inputs[2])];
            let grads = {
                let mut eager = Eager { inner: &mut *inner };
                op.vjp(&mut eager, &xs[..arity], H::Val(Id::node(i)), H::Grad(i as u32), need)
            };
            if inner.anomaly {
                inner.check_backward(i, &op, &grads[..arity]);
            }
            for j in 0..arity {
                if let Some(h) = grads[j] {
                    let shared = (j + 1..arity).any(|l| grads[l] == Some(h));
                    inner.accumulate(inputs[j], h, !shared);
                }
            }
            if let (Some(t0), Some(p)) = (t0, inner.profile.as_mut()) {
                p.add_backward(op.name(), t0.elapsed());
            }
            inner.nodes[i].op = op;
        }
    }

    /// Gradients of `output` with respect to `wrt`, **recorded on the tape** (PyTorch's
    /// `torch.autograd.grad(..., create_graph=True)`): the results are variables, so they
    /// can be differentiated again. The upstream gradient is ones (`output` is usually a
    /// scalar). Does not touch any `.grad`. An input `output` does not depend on gets zeros.
    ///
    /// The backward rules are the same ones the plain backward pass runs.
    #[track_caller]
    pub fn grad<'t>(&'t self, output: Var<'t, T>, wrt: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        let ones = Tensor::ones(&output.shape());
        self.grad_with(output, self.leaf(&ones, false), wrt)
    }

    /// Like [`Tape::grad`] with a given upstream gradient `seed` (a vector-Jacobian product;
    /// the seed may itself require grad).
    ///
    /// # Panics
    /// If the seed's shape is not the output's, or a variable is from another tape.
    #[track_caller]
    pub fn grad_with<'t>(&'t self, output: Var<'t, T>, seed: Var<'t, T>, wrt: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        let loc = Location::caller();
        output.check_same_tape(&seed, "grad");
        for w in wrt {
            output.check_same_tape(w, "grad");
        }
        assert_eq!(
            output.shape(),
            seed.shape(),
            "grad: upstream gradient of shape {:?} for an output of shape {:?}",
            seed.shape(),
            output.shape()
        );
        let root = output.id();
        let (n_nodes, n_params) = {
            let inner = self.inner.borrow();
            (if root.is_param() { 0 } else { root.index() + 1 }, inner.params.len())
        };
        let mut node_grads: Vec<Option<Id>> = vec![None; n_nodes];
        let mut param_grads: Vec<Option<Id>> = vec![None; n_params];
        let mut rec = Recorder { tape: self, loc };
        // the gradient of `at` gets `g` added (a recorded add after the first contribution)
        let add_into = |rec: &mut Recorder<'_, T>, ng: &mut [Option<Id>], pg: &mut [Option<Id>], at: Id, g: Id| {
            let slot = if at.is_param() { &mut pg[at.index()] } else { &mut ng[at.index()] };
            *slot = Some(match *slot {
                None => g,
                Some(prev) => rec.add(prev, g),
            });
        };
        add_into(&mut rec, &mut node_grads, &mut param_grads, root, seed.id());
        for i in (0..n_nodes).rev() {
            let Some(gy) = node_grads[i] else { continue };
            let (op, inputs, need) = {
                let inner = self.inner.borrow();
                let node = &inner.nodes[i];
                if !node.requires_grad || matches!(node.op, Op::Leaf) {
                    continue;
                }
                (node.op.clone(), node.inputs, inner.need(node))
            };
            let arity = op.arity();
            let grads = op.vjp(&mut rec, &inputs[..arity], Id::node(i), gy, need);
            for j in 0..arity {
                if let Some(g) = grads[j] {
                    add_into(&mut rec, &mut node_grads, &mut param_grads, inputs[j], g);
                }
            }
        }
        wrt.iter()
            .map(|w| {
                let id = w.id();
                let found =
                    if id.is_param() { param_grads[id.index()] } else { node_grads.get(id.index()).copied().flatten() };
                match found {
                    Some(g) => Var::new(self, g),
                    None => self.leaf(&Tensor::zeros(&w.shape()), false),
                }
            })
            .collect()
    }
}

/// Puts the seed of a backward pass (ones, or the given upstream gradient) into a scratch
/// buffer.
fn seed_temp<T: Float>(inner: &mut Inner<T>, root: Id, seed: Option<&[T]>) -> H {
    let shape = crate::shape::from_dims(inner.shape(root));
    let (k, mut data) = inner.take_temp(numel(&shape));
    match seed {
        Some(s) => data.copy_from_slice(s),
        None => data.fill(T::ONE),
    }
    inner.put_temp(k, shape, data)
}

/// Guard of a no-grad scope; the scope ends when it is dropped.
pub struct NoGradGuard<'t, T: Float> {
    tape: &'t Tape<T>,
}

impl<T: Float> Drop for NoGradGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.inner.borrow_mut().no_grad -= 1;
    }
}
