//! User-defined ops: forward kernel and backward rule supplied from outside the crate.
//!
//! A [`CustomOp`] gives its name, result shape, forward kernel and VJP. The VJP is written
//! with the same [`Graph`] ops as the built-in rules (through `dyn Graph`), so a custom
//! op also works for higher-order gradients. See `examples/custom_op.rs`.

use std::fmt;
use std::sync::Arc;

use super::{Graph, Op, OpFamily, View};
use crate::float::Float;
use crate::shape::Shape;

/// A value handle that fits in 64 bits, so rules can run behind `dyn Graph`.
pub trait Handle: Copy {
    /// Encodes the handle.
    fn pack(self) -> u64;
    /// Decodes a handle made by [`Handle::pack`].
    fn unpack(bits: u64) -> Self;
}

/// An opaque value handle seen by a [`CustomOp`]'s backward rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value(u64);

impl Handle for Value {
    fn pack(self) -> u64 {
        self.0
    }
    fn unpack(bits: u64) -> Self {
        Value(bits)
    }
}

/// An op defined outside the crate.
pub trait CustomOp<T: Float>: fmt::Debug + Send + Sync {
    /// Name used in listings, profiles and messages.
    fn name(&self) -> &'static str;
    /// Number of inputs (1 to 3).
    fn arity(&self) -> usize;
    /// Result shape, or a message naming the op and the shapes.
    fn out_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String>;
    /// Computes the result into `out` (sized to the result shape).
    fn forward(&self, inputs: &[View<'_, T>], out: &mut [T]);
    /// Backward: gradients of the inputs `x` (those with `need[i]`) from the output's
    /// gradient `dy` (`y` is the output), written with the ops of `g`.
    fn vjp(
        &self,
        g: &mut dyn Graph<T, V = Value>,
        x: &[Value],
        y: Value,
        dy: Value,
        need: [bool; 3],
    ) -> [Option<Value>; 3];
}

/// Runs a generic graph behind `dyn Graph<V = Value>`.
struct DynGraph<'a, G> {
    g: &'a mut G,
}

impl<T: Float, G: Graph<T>> Graph<T> for DynGraph<'_, G> {
    type V = Value;
    fn apply(&mut self, op: Op<T>, inputs: &[Value]) -> Value {
        let ins: smallvec::SmallVec<[G::V; 3]> = inputs.iter().map(|v| G::V::unpack(v.0)).collect();
        Value(self.g.apply(op, &ins).pack())
    }
    fn shape(&self, v: Value) -> Shape {
        self.g.shape(G::V::unpack(v.0))
    }
}

/// A custom op is its own family: each question goes to the [`CustomOp`], the VJP through
/// `dyn Graph`.
impl<T: Float> OpFamily<T> for Arc<dyn CustomOp<T>> {
    fn name(&self) -> &'static str {
        CustomOp::name(self.as_ref())
    }
    fn arity(&self) -> usize {
        CustomOp::arity(self.as_ref())
    }
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        CustomOp::out_shape(self.as_ref(), ins)
    }
    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        CustomOp::forward(self.as_ref(), ins, out)
    }
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        custom_vjp(self.as_ref(), g, x, y, gy, need)
    }
}

/// The VJP of a custom op on any graph.
fn custom_vjp<T: Float, G: Graph<T>>(
    op: &dyn CustomOp<T>,
    g: &mut G,
    x: &[G::V],
    y: G::V,
    dy: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    let xs: smallvec::SmallVec<[Value; 3]> = x.iter().map(|v| Value(v.pack())).collect();
    let mut dg = DynGraph { g };
    let r = op.vjp(&mut dg, &xs, Value(y.pack()), Value(dy.pack()), need);
    r.map(|o| o.map(|v| G::V::unpack(v.0)))
}
