//! The recorder behind `Tape::grad`: backward rules run on the tape itself, so the
//! gradients are recorded values that can be differentiated again.

use std::panic::Location;

use super::{Id, Tape};
use crate::float::Float;
use crate::ops::{Graph, Op};
use crate::shape::Shape;
use crate::tensor::Tensor;

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

impl<T: Float> Recorder<'_, T> {
    /// A recorded constant of zeros shaped like `like`.
    fn zeros(&mut self, like: Id) -> Id {
        let shape = self.shape(like);
        let zeros = Tensor::zeros(&shape);
        self.tape.inner.borrow_mut().leaf(&shape, zeros.data(), false, self.loc)
    }
}

/// Where the recorded gradients of one call gather: one optional variable per node from
/// `lo` on and per parameter (`None`: not reached).
struct Grads {
    lo: usize,
    nodes: Vec<Option<Id>>,
    params: Vec<Option<Id>>,
    /// Stands in for the gradient of a node below `lo` (never read).
    below: Option<Id>,
}

impl Grads {
    fn at(&mut self, id: Id) -> &mut Option<Id> {
        if id.is_param() {
            &mut self.params[id.index()]
        } else if id.index() < self.lo {
            self.below = None;
            &mut self.below
        } else {
            &mut self.nodes[id.index() - self.lo]
        }
    }

    /// Adds `g` into the gradient of `at` (a recorded add after the first contribution).
    fn add<T: Float>(&mut self, rec: &mut Recorder<'_, T>, at: Id, g: Id) {
        let slot = self.at(at);
        *slot = Some(match *slot {
            None => g,
            Some(prev) => rec.add(prev, g),
        });
    }
}

impl<T: Float> Tape<T> {
    /// The recorded gradients of `root` with respect to `wrt` for the upstream gradient
    /// `seed` (see `Tape::grad_with`, which checks the arguments): `None` for a value the
    /// pass does not reach. Recorded ops carry the location `loc`.
    pub(crate) fn grad_ids(&self, root: Id, seed: Id, wrt: &[Id], loc: &'static Location<'static>) -> Vec<Option<Id>> {
        let (n_nodes, n_params) = {
            let inner = self.inner.borrow();
            (if root.is_param() { 0 } else { root.index() + 1 }, inner.params.len())
        };
        // No node recorded before every `wrt` variable leads to one of them: the pass
        // stops at the earliest (parameters can be used anywhere: then it goes to 0).
        let lo = wrt.iter().map(|&id| if id.is_param() { 0 } else { id.index() }).min().unwrap_or(n_nodes).min(n_nodes);
        let mut grads = Grads { lo, nodes: vec![None; n_nodes - lo], params: vec![None; n_params], below: None };
        let mut rec = Recorder { tape: self, loc };
        grads.add(&mut rec, root, seed);
        for i in (lo..n_nodes).rev() {
            let Some(gy) = grads.nodes[i - lo] else { continue };
            let (op, inputs, need, arity) = {
                let inner = self.inner.borrow();
                let node = &inner.nodes[i];
                if !node.slot.requires_grad || matches!(node.op, Op::Leaf) {
                    continue;
                }
                (node.op.clone(), node.inputs, inner.need(node), node.arity as usize)
            };
            let contributions = op.vjp(&mut rec, &inputs[..arity], Id::node(i), gy, need);
            for j in 0..arity {
                match contributions[j] {
                    Some(g) => grads.add(&mut rec, inputs[j], g),
                    // a needed input without a contribution is reached with zeros
                    None if need[j] && grads.at(inputs[j]).is_none() => {
                        let z = rec.zeros(inputs[j]);
                        *grads.at(inputs[j]) = Some(z);
                    }
                    None => {}
                }
            }
        }
        wrt.iter()
            .map(|&id| {
                if id.is_param() {
                    grads.params[id.index()]
                } else {
                    id.index().checked_sub(lo).and_then(|i| grads.nodes.get(i).copied().flatten())
                }
            })
            .collect()
    }
}
