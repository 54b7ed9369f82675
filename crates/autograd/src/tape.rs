//! The tape (Wengert list): an arena of nodes indexed by integer ids, and its public API.
//!
//! Every op on a variable appends one node holding its op, its inputs' ids, its value and
//! (after a backward pass) its gradient. Values are computed eagerly when the node is
//! recorded. [`Tape::reset`] forgets the nodes but keeps their buffers, so recording the
//! same computation again (a training step) reuses every buffer and allocates nothing.
//!
//! Parameters live in a second arena that `reset` keeps: their values persist across steps
//! and their gradients accumulate across backward calls until [`Tape::zero_grad`], as in
//! PyTorch. Nodes and parameters store their data in the same `Slot`.
//!
//! The reverse pass is in `backward.rs`; the recorder behind [`Tape::grad`] (gradients as
//! variables, for higher orders) is in `grad.rs`; the parameters' API in `params.rs`.

mod backward;
mod grad;
mod params;

use std::cell::RefCell;
use std::fmt;
use std::mem;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::float::Float;
use crate::ops::{Op, View};
use crate::profile::{BackwardStats, Profile};
use crate::shape::{numel, Shape};

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

impl fmt::Display for Id {
    /// `%3` for node 3, `p1` for parameter 1 (as in the tape's listing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_param() {
            write!(f, "p{}", self.index())
        } else {
            write!(f, "%{}", self.index())
        }
    }
}

/// A persistent parameter of a tape: a leaf whose value survives [`Tape::reset`] and whose
/// gradient accumulates across backward calls until zeroed. Cheap to copy; get a variable
/// for it with `Tape::var`.
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

/// A scratch value of the backward pass: `data`, or an elementwise result not computed
/// yet (`pending`, see `backward.rs`).
#[derive(Default)]
struct Temp<T> {
    shape: Shape,
    data: Vec<T>,
    pending: Option<backward::Pending<T>>,
}

/// The data of a value on the tape, node or parameter alike.
pub(crate) struct Slot<T: Float> {
    pub(crate) shape: Shape,
    pub(crate) value: Vec<T>,
    /// The gradient; meaningful only when `has_grad`.
    pub(crate) grad: Vec<T>,
    pub(crate) has_grad: bool,
    pub(crate) requires_grad: bool,
}

impl<T: Float> Slot<T> {
    fn new(shape: Shape, value: Vec<T>, requires_grad: bool) -> Self {
        Slot { shape, value, grad: Vec::new(), has_grad: false, requires_grad }
    }

    /// The gradient, if one has arrived.
    pub(crate) fn grad(&self) -> Option<&[T]> {
        self.has_grad.then_some(self.grad.as_slice())
    }
}

/// One recorded operation.
pub(crate) struct Node<T: Float> {
    pub(crate) slot: Slot<T>,
    pub(crate) op: Op<T>,
    pub(crate) inputs: [Id; 3],
    /// How many of `inputs` the op reads (its arity, kept so the passes need not ask `op`).
    pub(crate) arity: u8,
    pub(crate) loc: &'static Location<'static>,
    /// The last backward pass that reached this node (see [`Inner::pass`]).
    pub(crate) pass: u32,
    /// The node whose gradient buffer holds this node's gradient ([`NO_ALIAS`]: its own):
    /// an interior node whose gradient was passed through unchanged (`a + b` gives `dy` to
    /// both) shares the buffer instead of copying it. See `backward.rs`.
    pub(crate) grad_from: u32,
}

/// [`Node::grad_from`] of a node whose gradient is in its own buffer.
pub(crate) const NO_ALIAS: u32 = u32::MAX;

/// Default number of nodes past which a tape warns once that it keeps growing.
pub const DEFAULT_NODE_WARNING: usize = 1 << 20;

pub(crate) struct Inner<T: Float> {
    /// Node storage; `nodes[..len]` is the live tape, the rest are kept for their buffers.
    pub(crate) nodes: Vec<Node<T>>,
    pub(crate) len: usize,
    pub(crate) params: Vec<Slot<T>>,
    /// Backward scratch buffers, numbered in the order a pass uses them.
    temps: Vec<Temp<T>>,
    temps_used: usize,
    /// Number of the current (or last) backward pass: a node is reached by it when its
    /// `pass` equals this.
    pass: u32,
    no_grad: u32,
    /// Node count at which the tape warns (once) that it keeps growing; 0 for never.
    warn_at: usize,
    /// Opt-in diagnostics (one branch per node when both are off).
    pub(crate) profile: Option<Profile>,
    pub(crate) anomaly: bool,
    /// What the last backward pass did (see `backward.rs`).
    stats: BackwardStats,
}

impl<T: Float> Inner<T> {
    /// The slot of a node or parameter.
    #[inline]
    pub(crate) fn slot(&self, id: Id) -> &Slot<T> {
        if id.is_param() {
            &self.params[id.index()]
        } else {
            &self.nodes[id.index()].slot
        }
    }

    /// The gradient of a node or parameter, if one has arrived (read through the buffer it
    /// shares, see [`Node::grad_from`]).
    #[inline]
    pub(crate) fn grad(&self, id: Id) -> Option<&[T]> {
        let s = self.slot(id);
        if !s.has_grad {
            return None;
        }
        Some(match id.is_param() {
            true => &s.grad,
            false => self.grad_buffer(id.index()),
        })
    }

    /// The buffer holding node `i`'s gradient: its own, or the one it shares.
    #[inline]
    pub(crate) fn grad_buffer(&self, i: usize) -> &[T] {
        let from = self.nodes[i].grad_from;
        let owner = if from == NO_ALIAS { i } else { from as usize };
        &self.nodes[owner].slot.grad
    }

    #[inline]
    pub(crate) fn shape(&self, id: Id) -> &[usize] {
        &self.slot(id).shape
    }

    #[inline]
    pub(crate) fn view(&self, id: Id) -> View<'_, T> {
        let s = self.slot(id);
        View { shape: &s.shape, data: &s.value }
    }

    #[inline]
    pub(crate) fn requires_grad(&self, id: Id) -> bool {
        self.slot(id).requires_grad
    }

    /// Which inputs of `node` need a gradient.
    fn need(&self, node: &Node<T>) -> [bool; 3] {
        let mut need = [false; 3];
        for (n, &input) in need.iter_mut().zip(&node.inputs[..node.arity as usize]) {
            *n = self.requires_grad(input);
        }
        need
    }

    /// The next node slot, reusing a kept one when there is one.
    fn push_node(&mut self, loc: &'static Location<'static>) -> usize {
        let i = self.len;
        if i == self.nodes.len() {
            if i + 1 == self.warn_at {
                self.warn_at = 0;
                warn_growth(i + 1, loc, "tape.reset()");
            }
            self.nodes.push(Node {
                slot: Slot::new(Shape::new(), Vec::new(), false),
                op: Op::Leaf,
                inputs: [Id(0); 3],
                arity: 0,
                loc,
                pass: 0,
                grad_from: NO_ALIAS,
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
        let mut out = mem::take(&mut self.nodes[idx].slot.value);
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
        node.slot.value = out;
        node.slot.shape = shape;
        node.slot.requires_grad = requires_grad;
        node.slot.has_grad = false;
        node.grad_from = NO_ALIAS;
        node.loc = loc;
        if requires_grad {
            node.op = op;
            node.inputs[..inputs.len()].copy_from_slice(inputs);
            node.arity = inputs.len() as u8;
        } else {
            // nothing to differentiate through: keep the value, record no edges
            node.op = Op::Leaf;
        }
        Id::node(idx)
    }

    pub(crate) fn leaf(
        &mut self,
        shape: &[usize],
        data: &[T],
        requires_grad: bool,
        loc: &'static Location<'static>,
    ) -> Id {
        let requires_grad = requires_grad && self.no_grad == 0;
        let idx = self.push_node(loc);
        let node = &mut self.nodes[idx];
        node.op = Op::Leaf;
        node.loc = loc;
        node.grad_from = NO_ALIAS;
        let s = &mut node.slot;
        s.shape = crate::shape::from_dims(shape);
        s.value.clear();
        s.value.extend_from_slice(data);
        s.requires_grad = requires_grad;
        s.has_grad = false;
        Id::node(idx)
    }
}

/// The one-time message of a tape that has grown to `n` nodes; `reset` names the call
/// that forgets them.
#[cold]
pub(crate) fn warn_growth(n: usize, loc: &'static Location<'static>, reset: &str) {
    tapegrad_kernels::cpu::warn(format_args!(
        "warning: the tape now holds {n} nodes (the last recorded at {loc}); a training \
         loop must call {reset} after each step, or the tape grows without bound. \
         set_node_warning(None) on the tape turns this message off, set_node_warning(Some(n)) moves it."
    ));
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
                pass: 0,
                no_grad: 0,
                warn_at: DEFAULT_NODE_WARNING,
                profile: None,
                anomaly: false,
                stats: BackwardStats::default(),
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
    /// values and gradients). Taking `&mut self` guarantees no variable outlives it.
    ///
    /// A training loop that forgets it grows the tape by a step's nodes each step;
    /// [`Tape::scope`] (or `tapegrad_nn::train_step`) resets for you.
    pub fn reset(&mut self) {
        self.inner.get_mut().len = 0;
    }

    /// Runs `f` on the tape (the forward and backward pass of one step), then resets it
    /// ([`Tape::reset`]), and returns what `f` returned: the shape of a training step
    /// that cannot grow the tape. Every variable recorded in `f` ends with it: returning
    /// one does not compile, so read what you need (`loss.item()`) inside.
    ///
    /// ```
    /// use tapegrad::{Tape, Tensor};
    /// let mut tape = Tape::<f64>::new();
    /// let w = tape.parameter(Tensor::new(vec![1.0, -2.0], &[2]));
    /// for _ in 0..3 {
    ///     tape.zero_grad();
    ///     let loss = tape.scope(|tape| {
    ///         let loss = (tape.var(w) * tape.var(w)).sum();
    ///         loss.backward();
    ///         loss.item()
    ///     });
    ///     assert_eq!((loss, tape.len()), (5.0, 0));
    /// }
    /// ```
    ///
    /// ```compile_fail
    /// # use tapegrad::{Tape, Tensor};
    /// let mut tape = Tape::<f64>::new();
    /// let x = tape.scope(|tape| tape.input(Tensor::scalar(1.0))); // a Var cannot leave the scope
    /// ```
    pub fn scope<R>(&mut self, f: impl FnOnce(&Tape<T>) -> R) -> R {
        let r = f(self);
        self.reset();
        r
    }

    /// Clears the gradient of every parameter and of every recorded leaf (PyTorch's
    /// `zero_grad(set_to_none=True)` over all of them: the buffers are kept, the next
    /// backward writes them afresh). Interior gradients are left alone: each pass that
    /// reaches a node overwrites its gradient anyway.
    pub fn zero_grad(&self) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        for p in inner.params.iter_mut() {
            p.has_grad = false;
        }
        for n in inner.nodes[..inner.len].iter_mut().filter(|n| matches!(n.op, Op::Leaf)) {
            n.slot.has_grad = false;
        }
    }

    /// Sets the node count at which the tape prints a one-time warning to stderr that it
    /// keeps growing (the sign of a training loop that forgets [`Tape::reset`]); `None`
    /// turns the warning off. The default is [`DEFAULT_NODE_WARNING`]. The check runs only
    /// when the node arena grows, so it costs nothing in a steady state.
    pub fn set_node_warning(&self, at: Option<usize>) {
        self.inner.borrow_mut().warn_at = at.unwrap_or(0);
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

    /// What the last [`Var::backward`](crate::Var::backward) did with gradient data: the
    /// rules it ran, the scratch values they made, how each contribution reached its
    /// gradient (moved, shared, computed in place, copied, added) and the buffers it grew.
    /// Always collected (a few counters per node); all zero before the first pass.
    /// [`Tape::grad`] records its gradients as ops instead and is not counted.
    pub fn backward_stats(&self) -> BackwardStats {
        self.inner.borrow().stats
    }

    /// Anomaly detection (PyTorch's `detect_anomaly`): when on, every forward value and
    /// every gradient a backward rule returns is checked for NaN and infinity, and the first
    /// offending node panics with its op, shape and the source location that recorded it.
    pub fn set_detect_anomaly(&self, on: bool) {
        self.inner.borrow_mut().anomaly = on;
    }

    pub(crate) fn uid(&self) -> u32 {
        self.uid
    }

    /// Records `op` on `inputs` (crate-internal entry point of every op).
    #[inline]
    pub(crate) fn record(&self, op: Op<T>, inputs: &[Id], loc: &'static Location<'static>) -> Id {
        self.inner.borrow_mut().record(op, inputs, loc)
    }
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
