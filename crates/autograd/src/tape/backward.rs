//! The reverse pass: backward rules run eagerly into reusable scratch buffers.
//!
//! A pass visits only the nodes that lead to its output: the output is *reached*, and every
//! input of a reached node that requires grad is reached. A reached interior node's
//! gradient is overwritten by the pass (its first contribution replaces the old one); a
//! reached leaf's or parameter's gradient accumulates. Nodes the pass does not reach keep
//! what they had. An input that is reached but gets no contribution (the rule of `sign`,
//! say, has none) gets zeros, as in PyTorch.
//!
//! Gradients move as little data as they can: a scratch result is moved into an empty
//! gradient, a gradient passed through unchanged is shared, and a rule's last elementwise
//! op on forward values and the incoming gradient (`dy * b` of a product) is computed
//! straight into (or added onto) the gradient it is for ([`Pending`]).

use std::mem;
use std::time::Instant;

use super::{non_finite, resize, Id, Inner, Node, Slot, Tape, Temp, NO_ALIAS};
use crate::float::Float;
use crate::ops::{Binary, Graph, Op, Unary, View};
use crate::profile::BackwardStats;
use crate::shape::{numel, Shape};

/// A value seen by a backward rule during the eager pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum H {
    /// A forward value (node or parameter).
    Val(Id),
    /// The incoming gradient of a node.
    Grad(u32),
    /// A scratch result.
    Tmp(u32),
}

/// An elementwise result a rule asked for, not computed yet. When it is a gradient
/// contribution it is computed straight into the gradient (written, or added to what is
/// there) with no scratch buffer written and read back; anything else that reads it
/// computes it first. Its inputs are forward values and the incoming gradient, never
/// scratch values: a move may hand those to a gradient before the result is computed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pending<T> {
    Unary(Unary<T>, H),
    Binary(Binary, H, H),
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

impl<T: Float> Tape<T> {
    /// The reverse pass from `root` with upstream gradient `seed` (ones when `None`).
    #[track_caller]
    pub(crate) fn backward_from(&self, root: Id, seed: Option<&[T]>) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        assert!(
            inner.requires_grad(root),
            "backward: the output does not require grad (no parameter or leaf with \
             requires_grad leads to it, or it was made under no_grad) (at {})",
            std::panic::Location::caller()
        );
        let n = numel(inner.shape(root));
        if let Some(s) = seed {
            assert_eq!(
                s.len(),
                n,
                "backward: upstream gradient of {} elements for an output of shape {:?} (at {})",
                s.len(),
                inner.shape(root),
                std::panic::Location::caller()
            );
        }
        inner.next_pass();
        inner.temps_used = 0;
        inner.stats = BackwardStats::default();
        if root.is_param() || matches!(inner.nodes[root.index()].op, Op::Leaf) {
            // differentiating a leaf by itself: its gradient is the seed
            let k = seed_temp(inner, root, seed);
            inner.accumulate(root, k, true);
            return;
        }
        let last = root.index();
        {
            let node = &mut inner.nodes[last];
            let grad = &mut node.slot.grad;
            grad.clear();
            inner.stats.grown += u64::from(grad.capacity() < n);
            match seed {
                Some(s) => grad.extend_from_slice(s),
                None => grad.resize(n, T::ONE),
            }
            node.slot.has_grad = true;
            node.grad_from = NO_ALIAS;
            node.pass = inner.pass;
        }
        for i in (0..=last).rev() {
            let node = &inner.nodes[i];
            // only reached nodes with a rule (a node that records an op requires grad)
            if node.pass != inner.pass || matches!(node.op, Op::Leaf) {
                continue;
            }
            let arity = node.arity as usize;
            let inputs = node.inputs;
            let need = inner.need(node);
            inner.stats.rules += 1;
            let op = mem::replace(&mut inner.nodes[i].op, Op::Leaf);
            let t0 = inner.profile.is_some().then(Instant::now);
            let xs = [H::Val(inputs[0]), H::Val(inputs[1]), H::Val(inputs[2])];
            let grads = {
                let mut eager = Eager { inner: &mut *inner };
                op.vjp(&mut eager, &xs[..arity], H::Val(Id::node(i)), H::Grad(i as u32), need)
            };
            if inner.anomaly {
                for h in grads[..arity].iter().flatten() {
                    inner.compute_pending(*h);
                }
                inner.check_backward(i, &op, &grads[..arity]);
            }
            for j in 0..arity {
                match grads[j] {
                    Some(h) => {
                        let shared = (j + 1..arity).any(|l| grads[l] == Some(h));
                        inner.accumulate(inputs[j], h, !shared);
                    }
                    None if need[j] => inner.reach_with_zeros(inputs[j]),
                    None => {}
                }
            }
            if let (Some(t0), Some(p)) = (t0, inner.profile.as_mut()) {
                p.add_backward(op.name(), t0.elapsed());
            }
            inner.nodes[i].op = op;
        }
    }
}

/// Marks `target` reached by the pass numbered `pass`; returns its slot when it requires
/// grad, with whether this is its first contribution of the pass: an interior gradient
/// left by an earlier pass, or a leaf gradient zeroed since, is then replaced rather than
/// added to.
#[inline]
fn reach_slot<'a, T: Float>(
    nodes: &'a mut [Node<T>],
    params: &'a mut [Slot<T>],
    pass: u32,
    target: Id,
) -> Option<(&'a mut Slot<T>, bool)> {
    let (slot, first) = if target.is_param() {
        let p = &mut params[target.index()];
        let first = !p.has_grad;
        (p, first)
    } else {
        let n = &mut nodes[target.index()];
        let first = if matches!(n.op, Op::Leaf) { !n.slot.has_grad } else { n.pass != pass };
        n.pass = pass;
        (&mut n.slot, first)
    };
    slot.requires_grad.then_some((slot, first))
}

/// The slot of a node or parameter, borrowing only the two arenas.
#[inline]
fn slot_of<'a, T: Float>(nodes: &'a mut [Node<T>], params: &'a mut [Slot<T>], id: Id) -> &'a mut Slot<T> {
    if id.is_param() {
        &mut params[id.index()]
    } else {
        &mut nodes[id.index()].slot
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

impl<T: Float> Inner<T> {
    /// Starts a new backward pass (no node is reached by it yet).
    fn next_pass(&mut self) {
        self.pass = self.pass.wrapping_add(1);
        if self.pass == 0 {
            // the counter wrapped: forget every old mark
            for n in &mut self.nodes {
                n.pass = 0;
            }
            self.pass = 1;
        }
    }

    /// Marks `target` reached by this pass (see [`reach_slot`]).
    #[inline]
    fn reach(&mut self, target: Id) -> Option<(&mut Slot<T>, bool)> {
        reach_slot(&mut self.nodes, &mut self.params, self.pass, target)
    }

    /// A needed input that a rule gave no contribution: reached, with a zero gradient if
    /// nothing else has arrived.
    fn reach_with_zeros(&mut self, target: Id) {
        let Inner { nodes, params, pass, stats, .. } = self;
        if let Some((slot, true)) = reach_slot(nodes, params, *pass, target) {
            let n = numel(&slot.shape);
            size_to(&mut slot.grad, n, &mut stats.grown);
            slot.grad.fill(T::ZERO);
            slot.has_grad = true;
            stats.zeros += 1;
            self.own_grad(target);
        }
    }

    /// Marks the gradient of `target` as held in its own buffer.
    #[inline]
    fn own_grad(&mut self, target: Id) {
        if !target.is_param() {
            self.nodes[target.index()].grad_from = NO_ALIAS;
        }
    }

    /// Adds `h` (a value of the eager backward pass) into the gradient of `target`.
    ///
    /// A first contribution costs no copy when it can be avoided: a scratch value no one
    /// else reads is moved in (a buffer swap); the gradient of a node passed through
    /// unchanged (`h` is `dy`, as `a + b` gives it to both inputs) is shared with an interior
    /// `target` (its [`Node::grad_from`] names the buffer's owner; a leaf or parameter, whose
    /// gradient outlives the pass, gets a copy). Sharing is safe: the owner's gradient is
    /// final once its rule runs, and a later pass that overwrites it reaches `target` too
    /// (every input of a node the pass visits is reached) and replaces the shared gradient
    /// before anything reads it. Later contributions are added; one to a shared gradient
    /// writes the sum into `target`'s own buffer.
    fn accumulate(&mut self, target: Id, h: H, movable: bool) {
        if !movable {
            self.compute_pending(h);
        }
        let Some((slot, first)) = self.reach(target) else { return };
        slot.has_grad = true;
        let n = numel(&slot.shape);
        if let H::Tmp(k) = h {
            if let Some(p) = self.temps[k as usize].pending.take() {
                // computed straight into the gradient
                let mut buf = mem::take(&mut self.slot_mut(target).grad);
                let shared = !first && !target.is_param() && self.nodes[target.index()].grad_from != NO_ALIAS;
                self.stats.fused += 1;
                if first {
                    size_to(&mut buf, n, &mut self.stats.grown);
                    self.run_pending(p, &mut buf, Base::None);
                } else if shared {
                    size_to(&mut buf, n, &mut self.stats.grown);
                    self.run_pending(p, &mut buf, Base::Other(self.grad_buffer(target.index())));
                } else {
                    self.run_pending(p, &mut buf, Base::Out);
                }
                debug_assert_eq!(buf.len(), n, "backward produced a gradient of the wrong size");
                self.slot_mut(target).grad = buf;
                self.own_grad(target);
                return;
            }
        }
        if first {
            match (h, movable) {
                (H::Tmp(k), true) => {
                    // the common case: a scratch value moved into an empty slot; the
                    // slot's old buffer becomes the scratch buffer, so the first pass sizes
                    // (and writes, so the next pass finds its pages mapped) a new one
                    let Inner { nodes, params, temps, stats, .. } = self;
                    let grad = &mut slot_of(nodes, params, target).grad;
                    if grad.capacity() < n {
                        stats.grown += 1;
                        grad.clear();
                        grad.resize(n, T::ZERO);
                    }
                    mem::swap(grad, &mut temps[k as usize].data);
                    stats.moved += 1;
                    debug_assert_eq!(grad.len(), n, "backward produced a gradient of the wrong size");
                    self.own_grad(target);
                    return;
                }
                (H::Grad(i), _) if !target.is_param() && !matches!(self.nodes[target.index()].op, Op::Leaf) => {
                    let from = self.nodes[i as usize].grad_from;
                    self.nodes[target.index()].grad_from = if from == NO_ALIAS { i } else { from };
                    self.stats.shared += 1;
                    return;
                }
                _ => {}
            }
        }
        let shared = !target.is_param() && self.nodes[target.index()].grad_from != NO_ALIAS;
        // the value is copied in (a first contribution) or added, into the target's own
        // buffer, taken out of its slot meanwhile as `h` may be read from the same arena
        let mut buf = mem::take(&mut self.slot_mut(target).grad);
        let grows = buf.capacity() < n;
        let src = self.resolve(h).data;
        if first {
            buf.clear();
            buf.extend_from_slice(src);
        } else if shared {
            let before = self.grad_buffer(target.index());
            resize(&mut buf, n);
            crate::kernels::cpu::vectorized(|| {
                for ((g, &a), &b) in buf.iter_mut().zip(before).zip(src) {
                    *g = a + b;
                }
            });
        } else {
            crate::kernels::cpu::vectorized(|| {
                for (g, &d) in buf.iter_mut().zip(src) {
                    *g += d;
                }
            });
        }
        let stats = &mut self.stats;
        stats.grown += u64::from(grows);
        if first {
            stats.copied += 1;
        } else {
            stats.added += 1;
        }
        debug_assert_eq!(buf.len(), n, "backward produced a gradient of the wrong size");
        self.slot_mut(target).grad = buf;
        self.own_grad(target);
    }

    fn slot_mut(&mut self, id: Id) -> &mut Slot<T> {
        slot_of(&mut self.nodes, &mut self.params, id)
    }

    /// The next scratch buffer of this backward pass, sized to `n` (contents stale). Scratch
    /// buffers are numbered in the order a pass takes them, so a repeated pass reuses each
    /// one at the same size and allocates nothing.
    fn take_temp(&mut self, n: usize) -> (usize, Vec<T>) {
        let k = self.new_temp();
        self.temps[k].pending = None;
        let mut data = mem::take(&mut self.temps[k].data);
        size_to(&mut data, n, &mut self.stats.grown);
        self.stats.scratch += 1;
        (k, data)
    }

    /// The number of the next scratch slot of this pass (its buffer not touched).
    fn new_temp(&mut self) -> usize {
        let k = self.temps_used;
        self.temps_used += 1;
        if k == self.temps.len() {
            self.stats.grown += u64::from(self.temps.len() == self.temps.capacity());
            self.temps.push(Temp::default());
        }
        k
    }

    /// Returns a scratch buffer taken with [`Inner::take_temp`], now holding a value.
    fn put_temp(&mut self, k: usize, shape: Shape, data: Vec<T>) -> H {
        let t = &mut self.temps[k];
        t.data = data;
        t.shape = shape;
        t.pending = None;
        H::Tmp(k as u32)
    }

    /// A scratch handle for `p`, of `shape`, computed later (see [`Pending`]).
    fn defer(&mut self, shape: Shape, p: Pending<T>) -> H {
        let k = self.new_temp();
        let t = &mut self.temps[k];
        t.shape = shape;
        t.pending = Some(p);
        H::Tmp(k as u32)
    }

    /// Computes `h` into its scratch buffer if it is pending.
    #[inline(always)]
    fn compute_pending(&mut self, h: H) {
        if let H::Tmp(k) = h {
            if self.temps[k as usize].pending.is_some() {
                self.compute_temp(k as usize);
            }
        }
    }

    /// Computes the pending scratch value `k` into its buffer.
    #[inline(never)]
    fn compute_temp(&mut self, k: usize) {
        let Some(p) = self.temps[k].pending.take() else { return };
        let mut data = mem::take(&mut self.temps[k].data);
        size_to(&mut data, numel(&self.temps[k].shape), &mut self.stats.grown);
        self.stats.scratch += 1;
        self.run_pending(p, &mut data, Base::None);
        self.temps[k].data = data;
    }

    /// `out = base + p` elementwise (see [`Base`]): written, the ops' own kernels; added,
    /// a loop per op for the common ones.
    fn run_pending(&self, p: Pending<T>, out: &mut [T], base: Base<'_, T>) {
        let v = |h| self.resolve(h).data;
        match (p, base) {
            (Pending::Unary(op, a), Base::None) => op.map(v(a), out),
            (Pending::Binary(op, a, b), Base::None) => {
                let (a, b) = (self.resolve(a), self.resolve(b));
                op.map(a, b, a.shape, out)
            }
            (Pending::Unary(Unary::MulScalar(c), a), base) => run(out, base, v(a), |x| x * c),
            (Pending::Unary(Unary::Neg, a), base) => run(out, base, v(a), |x| -x),
            (Pending::Unary(op, a), base) => run(out, base, v(a), |x| op.eval(x)),
            (Pending::Binary(Binary::Mul, a, b), base) => run2(out, base, v(a), v(b), |x, y| x * y),
            (Pending::Binary(Binary::ReluMask, a, b), base) => {
                run2(out, base, v(a), v(b), |x, y| Binary::ReluMask.eval(x, y))
            }
            (Pending::Binary(op, a, b), base) => run2(out, base, v(a), v(b), |x, y| op.eval(x, y)),
        }
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
                    node.slot.shape.as_slice(),
                    node.loc,
                    node.inputs[j]
                );
            }
        }
    }

    #[inline(always)]
    fn resolve(&self, h: H) -> View<'_, T> {
        match h {
            H::Val(id) => self.view(id),
            H::Grad(i) => View { shape: &self.nodes[i as usize].slot.shape, data: self.grad_buffer(i as usize) },
            H::Tmp(k) => {
                let t = &self.temps[k as usize];
                debug_assert!(t.pending.is_none(), "a pending scratch value read before it is computed");
                View { shape: &t.shape, data: &t.data }
            }
        }
    }
}

/// Sizes `buf` to `n` elements (contents stale), counting in `grown` a buffer that must
/// grow, an allocation.
#[inline]
fn size_to<T: Float>(buf: &mut Vec<T>, n: usize, grown: &mut u64) {
    *grown += u64::from(buf.capacity() < n);
    resize(buf, n);
}

/// What a pending result is added to when it is computed: nothing, the output's own
/// contents, or another buffer.
#[derive(Clone, Copy)]
enum Base<'a, T> {
    None,
    Out,
    Other(&'a [T]),
}

/// `out = base + f(a)` elementwise, one loop per kind of base.
fn run<T: Float>(out: &mut [T], base: Base<'_, T>, a: &[T], f: impl Fn(T) -> T + Sync) {
    assert_eq!(a.len(), out.len(), "pending result of the wrong size");
    use crate::kernels::par_chunks_mut as par;
    match base {
        Base::None => par(out, |at, out| {
            for (o, &x) in out.iter_mut().zip(&a[at..]) {
                *o = f(x);
            }
        }),
        Base::Out => par(out, |at, out| {
            for (o, &x) in out.iter_mut().zip(&a[at..]) {
                *o += f(x);
            }
        }),
        Base::Other(c) => par(out, |at, out| {
            for ((o, &x), &c) in out.iter_mut().zip(&a[at..]).zip(&c[at..]) {
                *o = c + f(x);
            }
        }),
    }
}

/// `out = base + f(a, b)` elementwise, one loop per kind of base.
fn run2<T: Float>(out: &mut [T], base: Base<'_, T>, a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) {
    assert!(a.len() == out.len() && b.len() == out.len(), "pending result of the wrong size");
    use crate::kernels::par_chunks_mut as par;
    match base {
        Base::None => par(out, |at, out| {
            for ((o, &x), &y) in out.iter_mut().zip(&a[at..]).zip(&b[at..]) {
                *o = f(x, y);
            }
        }),
        Base::Out => par(out, |at, out| {
            for ((o, &x), &y) in out.iter_mut().zip(&a[at..]).zip(&b[at..]) {
                *o += f(x, y);
            }
        }),
        Base::Other(c) => par(out, |at, out| {
            for (((o, &x), &y), &c) in out.iter_mut().zip(&a[at..]).zip(&b[at..]).zip(&c[at..]) {
                *o = c + f(x, y);
            }
        }),
    }
}

/// The eager backward pass as a [`Graph`]: rules compute straight into scratch buffers.
struct Eager<'a, T: Float> {
    inner: &'a mut Inner<T>,
}

impl<T: Float> Graph<T> for Eager<'_, T> {
    type V = H;

    fn apply(&mut self, op: Op<T>, inputs: &[H]) -> H {
        let inner = &mut *self.inner;
        for &h in inputs {
            inner.compute_pending(h);
        }
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
        crate::shape::from_dims(self.shape_of(v))
    }

    fn has_shape(&self, v: H, shape: &[usize]) -> bool {
        crate::shape::same(self.shape_of(v), shape)
    }

    // The primitives below run the same kernels as `apply`, without building an `Op` and
    // re-validating shapes: backward rules only make well-shaped calls (the general path
    // checks them in the gradcheck tests), and these are the hot ones of a backward pass.

    fn unary(&mut self, op: Unary<T>, a: H) -> H {
        let shape = crate::shape::from_dims(self.shape_of(a));
        if !matches!(a, H::Tmp(_)) {
            return self.inner.defer(shape, Pending::Unary(op, a));
        }
        self.compute(shape, &[a], |v, _, out| op.map(v[0].data, out))
    }

    fn binary(&mut self, op: Binary, a: H, b: H) -> H {
        let (sa, sb) = (self.shape_of(a), self.shape_of(b));
        if !matches!(a, H::Tmp(_)) && !matches!(b, H::Tmp(_)) && crate::shape::same(sa, sb) {
            let shape = crate::shape::from_dims(sa);
            return self.inner.defer(shape, Pending::Binary(op, a, b));
        }
        match crate::shape::broadcast_shapes(sa, sb) {
            Some(shape) => self.compute(shape, &[a, b], |v, shape, out| op.map(v[0], v[1], shape, out)),
            // not broadcastable: `apply` names the op and the shapes
            None => self.apply(Op::Binary(op), &[a, b]),
        }
    }

    fn matmul(&mut self, a: H, b: H, ta: bool, tb: bool) -> H {
        let (sa, sb) = (self.shape_of(a), self.shape_of(b));
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
    /// The shape of a value, pending or not.
    #[inline(always)]
    fn shape_of(&self, h: H) -> &[usize] {
        match h {
            H::Tmp(k) => &self.inner.temps[k as usize].shape,
            h => self.inner.resolve(h).shape,
        }
    }

    /// A scratch value of `shape` computed by `f(input views, shape, output buffer)`.
    #[inline]
    fn compute(&mut self, shape: Shape, inputs: &[H], f: impl FnOnce(&[View<'_, T>], &[usize], &mut [T])) -> H {
        let inner = &mut *self.inner;
        for &h in inputs {
            inner.compute_pending(h);
        }
        let (k, mut out) = inner.take_temp(numel(&shape));
        {
            let mut views = [View { shape: &[], data: &[] }; 3];
            for (v, &h) in views.iter_mut().zip(inputs) {
                *v = inner.resolve(h);
            }
            if !out.is_empty() {
                f(&views[..inputs.len()], &shape, &mut out);
            }
        }
        inner.put_temp(k, shape, out)
    }
}
