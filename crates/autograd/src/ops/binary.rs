//! Elementwise ops of two inputs, broadcast against each other (NumPy/PyTorch rules).
//!
//! Backward reduces each gradient back to its input's shape with `sum_to` (a no-op when
//! nothing was broadcast): that is where a bias's gradient gets summed over the batch.

use super::{Graph, OpFamily, View};
use crate::float::Float;
use crate::kernels::binary_broadcast;
use crate::shape::{broadcast_shapes, Shape};

/// An elementwise function of two inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a + c b` for a constant `c` (PyTorch's `torch.add(a, b, alpha=c)`), one pass
    /// instead of a scaled copy and an add; `c` is kept as `f64`, which holds every `f32`
    /// and `f64` exactly
    AddScaled(f64),
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a` gated by `b` with [`relu_backward`](crate::Element::relu_backward): relu's backward
    /// (`dy` masked by the input's sign)
    ReluMask,
    /// `a * sign(b)`: abs's backward
    SignMul,
}

impl Binary {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::AddScaled(_) => "add_scaled",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::ReluMask => "relu_mask",
            Binary::SignMul => "sign_mul",
        }
    }

    /// The broadcast shape, or an error such as `add: shapes [2, 3] and [2] do not
    /// broadcast`.
    pub fn out_shape(&self, a: &[usize], b: &[usize]) -> Result<Shape, String> {
        if crate::shape::same(a, b) {
            return Ok(crate::shape::from_dims(a));
        }
        broadcast_shapes(a, b).ok_or_else(|| format!("{}: shapes {:?} and {:?} do not broadcast", self.name(), a, b))
    }

    /// `out = f(a, b)` with broadcasting.
    pub fn map<T: Float>(&self, a: View<'_, T>, b: View<'_, T>, out_shape: &[usize], out: &mut [T]) {
        let (ad, asz, bd, bsz) = (a.data, a.shape, b.data, b.shape);
        // one loop per op, each with the element function of `eval`
        match self {
            Binary::Add => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::Add.eval(x, y)),
            &Binary::AddScaled(c) => {
                binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::AddScaled(c).eval(x, y))
            }
            Binary::Sub => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::Sub.eval(x, y)),
            Binary::Mul => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::Mul.eval(x, y)),
            Binary::Div => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::Div.eval(x, y)),
            Binary::ReluMask => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::ReluMask.eval(x, y)),
            Binary::SignMul => binary_broadcast(ad, asz, bd, bsz, out_shape, out, |x, y| Binary::SignMul.eval(x, y)),
        }
    }

    /// `f(a, b)` for one pair of elements.
    #[inline(always)]
    pub fn eval<T: Float>(&self, a: T, b: T) -> T {
        match self {
            Binary::Add => a + b,
            &Binary::AddScaled(c) => a + T::from_f64(c) * b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::ReluMask => b.relu_backward(a),
            Binary::SignMul => a * super::unary::sign(b),
        }
    }

    /// Backward: `[da, db]` from `dy` (`y` the output), each summed to its input's shape.
    pub fn vjp<T: Float, G: Graph<T>>(
        &self,
        g: &mut G,
        a: G::V,
        b: G::V,
        y: G::V,
        dy: G::V,
        need: [bool; 2],
    ) -> [Option<G::V>; 2] {
        let grads = self.vjp_elementwise(g, a, b, y, dy, need);
        // undo broadcasting: each gradient summed back to its input's shape
        let mut back = |d: Option<G::V>, x: G::V| {
            d.map(|d| {
                let s = g.shape(x);
                g.sum_to(d, &s)
            })
        };
        [back(grads[0], a), back(grads[1], b)]
    }

    /// The backward rule elementwise, before broadcasting is undone: `[da, db]` shaped like
    /// `dy`. (The scalar engine, where nothing broadcasts, uses this directly.)
    #[inline(always)]
    pub fn vjp_elementwise<T: Float, G: Graph<T>>(
        &self,
        g: &mut G,
        a: G::V,
        b: G::V,
        y: G::V,
        dy: G::V,
        need: [bool; 2],
    ) -> [Option<G::V>; 2] {
        let (da, db) = match self {
            // d/da (a + b) = 1, d/db (a + b) = 1
            Binary::Add => (need[0].then_some(dy), need[1].then_some(dy)),
            // d/da (a + c b) = 1, d/db (a + c b) = c
            &Binary::AddScaled(c) => (need[0].then_some(dy), need[1].then(|| g.mul_scalar(dy, T::from_f64(c)))),
            // d/da (a - b) = 1, d/db (a - b) = -1
            Binary::Sub => (need[0].then_some(dy), need[1].then(|| g.neg(dy))),
            // d/da (a b) = b, d/db (a b) = a
            Binary::Mul => (need[0].then(|| g.mul(dy, b)), need[1].then(|| g.mul(dy, a))),
            // d/da (a / b) = 1/b, d/db (a / b) = -a/b² = -y/b
            Binary::Div => (
                need[0].then(|| g.div(dy, b)),
                need[1].then(|| {
                    let t = g.div(y, b);
                    let t = g.mul(dy, t);
                    g.neg(t)
                }),
            ),
            // d/da mask(a, b) = mask(1, b); d/db = 0 almost everywhere
            Binary::ReluMask => (need[0].then(|| g.binary(Binary::ReluMask, dy, b)), None),
            // d/da (a sign(b)) = sign(b); d/db = 0 almost everywhere
            Binary::SignMul => (need[0].then(|| g.binary(Binary::SignMul, dy, b)), None),
        };
        [da, db]
    }
}

/// Broadcasting elementwise ops; the rules are [`Binary::map`] and [`Binary::vjp`].
impl<T: Float> OpFamily<T> for Binary {
    fn name(&self) -> &'static str {
        Binary::name(self)
    }
    fn arity(&self) -> usize {
        2
    }
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        Binary::out_shape(self, ins[0], ins[1])
    }
    fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]) {
        self.map(ins[0], ins[1], out_shape, out)
    }
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        let [ga, gb] = Binary::vjp(self, g, x[0], x[1], y, gy, [need[0], need[1]]);
        [ga, gb, None]
    }
}
