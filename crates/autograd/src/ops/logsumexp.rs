//! `logsumexp` along an axis: `y = m + ln Σ_j e^(x_j - m)`, `m = max_j x_j` (the shift
//! keeps every exponent at most 0, so nothing overflows). Backward:
//! `dx_j = dy · e^(x_j - y)` (the softmax of the lane).

use super::{Binary, Graph, OpFamily, Unary, View};
use crate::float::Float;
use crate::shape::Shape;

/// Log-sum-exp along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSumExp {
    /// The axis reduced.
    pub axis: usize,
    /// Keep the reduced axis with size 1.
    pub keepdim: bool,
}

impl<T: Float> OpFamily<T> for LogSumExp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }

    fn arity(&self) -> usize {
        1
    }

    /// The axis removed (or kept with size 1); an error such as
    /// `logsumexp: axis 2 out of range for shape [3, 4]`.
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        let x = ins[0];
        ensure!(self.axis < x.len(), "logsumexp: axis {} out of range for shape {x:?}", self.axis);
        let mut s = crate::shape::from_dims(x);
        if self.keepdim {
            s[self.axis] = 1;
        } else {
            s.remove(self.axis);
        }
        Ok(s)
    }

    /// `out[lane] = m + ln Σ e^(x - m)` for every lane along the axis (`-inf` for an empty
    /// lane, and for a lane of `-inf`s).
    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        let x = ins[0];
        let len = x.shape[self.axis];
        let inner: usize = x.shape[self.axis + 1..].iter().product();
        for (o, y) in out.iter_mut().enumerate() {
            let (outer, i) = (o / inner.max(1), o % inner.max(1));
            let at = |j: usize| x.data[(outer * len + j) * inner + i];
            let m = (0..len).map(at).fold(T::from_f64(f64::NEG_INFINITY), |a, b| if b > a { b } else { a });
            if !m.is_finite() {
                // all -inf (or empty): -inf; +inf or NaN: itself
                *y = m;
                continue;
            }
            let s = (0..len).fold(T::ZERO, |s, j| s + (at(j) - m).exp());
            *y = m + s.ln();
        }
    }

    /// `dx = dy · e^(x - y)`, `dy` and `y` broadcast along the axis.
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, dy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        let x = x[0];
        let xs = g.shape(x);
        let mut keep = xs.clone();
        keep[self.axis] = 1;
        // d/dx_j (m + ln Σ e^(x - m)) = e^(x_j - y)
        let (y, dy) = (g.reshape(y, &keep), g.reshape(dy, &keep));
        let y = g.expand(y, &xs);
        let dy = g.expand(dy, &xs);
        let p = g.binary(Binary::Sub, x, y);
        let p = g.unary(Unary::Exp, p);
        [Some(g.mul(dy, p)), None, None]
    }
}
