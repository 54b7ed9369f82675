//! Softmax family along one axis: `log_softmax`, `softmax` (each with a fused gradient op,
//! so its backward is one pass and can itself be differentiated), and `argmax` (no
//! gradient), as `torch.log_softmax`, `torch.softmax` and `torch.argmax` with a `dim`.
//!
//! The values along the axis form a *lane*; a tensor of shape `[outer.., n, inner..]` has
//! `outer·inner` lanes of `n` elements, `inner` apart in memory. Both forwards subtract
//! the lane's maximum before exponentiating, so no finite input overflows (`|x|` of 1e4
//! in f64, where `e^x` is infinite, gives the exact result). A NaN in a lane makes the
//! whole lane NaN; a lane whose maximum is infinite gives NaN, as PyTorch's does.

use super::{Graph, Op, OpFamily, Reduce, View};
use crate::float::Float;
use crate::shape::Shape;

/// An op along one axis of the softmax family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxOp {
    /// `x - max - ln Σ e^(x - max)` along an axis.
    LogSoftmax {
        /// The axis of the lanes.
        axis: usize,
    },
    /// `e^(x - max) / Σ e^(x - max)` along an axis.
    Softmax {
        /// The axis of the lanes.
        axis: usize,
    },
    /// The gradient of [`SoftmaxOp::LogSoftmax`] in one pass: `dy - e^y Σ dy` of `dy` and
    /// the output `y`.
    LogSoftmaxGrad {
        /// The axis of the lanes.
        axis: usize,
    },
    /// The gradient of [`SoftmaxOp::Softmax`] in one pass: `y (dy - Σ dy y)` of `dy` and
    /// the output `y`.
    SoftmaxGrad {
        /// The axis of the lanes.
        axis: usize,
    },
    /// Index of the largest element along an axis (the axis removed); no gradient.
    Argmax {
        /// The axis reduced.
        axis: usize,
    },
}

impl<T: Float> OpFamily<T> for SoftmaxOp {
    fn name(&self) -> &'static str {
        match self {
            SoftmaxOp::LogSoftmax { .. } => "log_softmax",
            SoftmaxOp::Softmax { .. } => "softmax",
            SoftmaxOp::LogSoftmaxGrad { .. } => "log_softmax_backward",
            SoftmaxOp::SoftmaxGrad { .. } => "softmax_backward",
            SoftmaxOp::Argmax { .. } => "argmax",
        }
    }

    fn arity(&self) -> usize {
        match self {
            SoftmaxOp::LogSoftmaxGrad { .. } | SoftmaxOp::SoftmaxGrad { .. } => 2,
            _ => 1,
        }
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        let name = OpFamily::<f64>::name(self);
        match *self {
            SoftmaxOp::LogSoftmax { axis } | SoftmaxOp::Softmax { axis } => same_shape(name, ins[0], axis),
            SoftmaxOp::LogSoftmaxGrad { axis } | SoftmaxOp::SoftmaxGrad { axis } => {
                grad_shape(name, ins[0], ins[1], axis)
            }
            SoftmaxOp::Argmax { axis } => argmax_shape(ins[0], axis),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        match *self {
            SoftmaxOp::LogSoftmax { axis } => log_softmax_forward(ins[0], axis, out),
            SoftmaxOp::Softmax { axis } => softmax_forward(ins[0], axis, out),
            SoftmaxOp::LogSoftmaxGrad { axis } => log_softmax_grad_forward(ins[0], ins[1], axis, out),
            SoftmaxOp::SoftmaxGrad { axis } => softmax_grad_forward(ins[0], ins[1], axis, out),
            SoftmaxOp::Argmax { axis } => argmax_forward(ins[0], axis, out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match *self {
            SoftmaxOp::LogSoftmax { axis } => [Some(log_softmax_vjp(g, y, gy, axis)), None, None],
            SoftmaxOp::Softmax { axis } => [Some(softmax_vjp(g, y, gy, axis)), None, None],
            SoftmaxOp::LogSoftmaxGrad { axis } => log_softmax_grad_vjp(g, x[0], x[1], gy, axis, need),
            SoftmaxOp::SoftmaxGrad { axis } => softmax_grad_vjp(g, x[0], x[1], gy, axis, need),
            SoftmaxOp::Argmax { .. } => [None; 3],
        }
    }
}

/// `(outer, n, inner)` of a shape cut at `axis`: lanes of `n` elements `inner` apart.
fn lanes(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Calls `f(first, stride, n)` for every lane along `axis`.
fn for_each_lane(shape: &[usize], axis: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (outer, n, inner) = lanes(shape, axis);
    for o in 0..outer {
        for i in 0..inner {
            f(o * n * inner + i, inner, n);
        }
    }
}

/// The largest element of a lane, ignoring NaN (a NaN still poisons the lane's sum).
#[inline]
fn lane_max<T: Float>(x: &[T], first: usize, stride: usize, n: usize) -> T {
    let mut m = T::from_f64(f64::NEG_INFINITY);
    for k in 0..n {
        let v = x[first + k * stride];
        if v > m {
            m = v;
        }
    }
    m
}

/// Result shape of a softmax-family op that keeps its input's shape.
///
/// # Panics
/// `log_softmax: axis 2 out of range for shape [3, 4]`.
pub fn same_shape(name: &str, x: &[usize], axis: usize) -> Result<Shape, String> {
    ensure!(axis < x.len(), "{name}: axis {axis} out of range for shape {x:?}");
    Ok(crate::shape::from_dims(x))
}

/// Result shape of `argmax` along `axis`: the axis removed.
///
/// # Panics
/// `argmax: axis 1 out of range for shape [3]`, or `argmax: axis 0 of shape [0, 2] is empty`.
pub fn argmax_shape(x: &[usize], axis: usize) -> Result<Shape, String> {
    ensure!(axis < x.len(), "argmax: axis {axis} out of range for shape {x:?}");
    ensure!(x[axis] > 0, "argmax: axis {axis} of shape {x:?} is empty");
    let mut s = crate::shape::from_dims(x);
    s.remove(axis);
    Ok(s)
}

/// Result shape of the fused gradients `(dy, y) -> dx`: `y`'s, which `dy` must share.
///
/// # Panics
/// `log_softmax_backward: dy [2, 3] and y [2, 4] differ in shape`.
pub fn grad_shape(name: &str, dy: &[usize], y: &[usize], axis: usize) -> Result<Shape, String> {
    ensure!(crate::shape::same(dy, y), "{name}: dy {dy:?} and y {y:?} differ in shape");
    same_shape(name, y, axis)
}

/// `y = x - max - ln Σ e^(x - max)` along each lane.
pub fn log_softmax_forward<T: Float>(x: View<'_, T>, axis: usize, out: &mut [T]) {
    for_each_lane(x.shape, axis, |first, stride, n| {
        let m = lane_max(x.data, first, stride, n);
        let mut s = T::ZERO;
        for k in 0..n {
            let at = first + k * stride;
            let d = x.data[at] - m;
            out[at] = d;
            s += d.exp();
        }
        let l = s.ln();
        for k in 0..n {
            out[first + k * stride] -= l;
        }
    });
}

/// `y = e^(x - max) / Σ e^(x - max)` along each lane.
pub fn softmax_forward<T: Float>(x: View<'_, T>, axis: usize, out: &mut [T]) {
    for_each_lane(x.shape, axis, |first, stride, n| {
        let m = lane_max(x.data, first, stride, n);
        let mut s = T::ZERO;
        for k in 0..n {
            let at = first + k * stride;
            let e = (x.data[at] - m).exp();
            out[at] = e;
            s += e;
        }
        for k in 0..n {
            out[first + k * stride] /= s;
        }
    });
}

/// The index of each lane's largest element (the first one on ties; a NaN counts as the
/// largest, as in PyTorch), as a value of the element type.
pub fn argmax_forward<T: Float>(x: View<'_, T>, axis: usize, out: &mut [T]) {
    let mut lane = 0;
    for_each_lane(x.shape, axis, |first, stride, n| {
        let mut best = 0;
        let mut m = x.data[first];
        for k in 1..n {
            let v = x.data[first + k * stride];
            if m.is_nan() {
                break;
            }
            if v > m || v.is_nan() {
                best = k;
                m = v;
            }
        }
        out[lane] = T::from_usize(best);
        lane += 1;
    });
}

/// `dx = dy - e^y · Σ dy` along each lane (`y` the log-softmax output): the VJP of
/// log-softmax in one pass.
pub fn log_softmax_grad_forward<T: Float>(dy: View<'_, T>, y: View<'_, T>, axis: usize, out: &mut [T]) {
    for_each_lane(y.shape, axis, |first, stride, n| {
        let mut s = T::ZERO;
        for k in 0..n {
            s += dy.data[first + k * stride];
        }
        for k in 0..n {
            let at = first + k * stride;
            out[at] = dy.data[at] - y.data[at].exp() * s;
        }
    });
}

/// `dx = y · (dy - Σ dy·y)` along each lane (`y` the softmax output): the VJP of softmax
/// in one pass.
pub fn softmax_grad_forward<T: Float>(dy: View<'_, T>, y: View<'_, T>, axis: usize, out: &mut [T]) {
    for_each_lane(y.shape, axis, |first, stride, n| {
        let mut s = T::ZERO;
        for k in 0..n {
            let at = first + k * stride;
            s += dy.data[at] * y.data[at];
        }
        for k in 0..n {
            let at = first + k * stride;
            out[at] = y.data[at] * (dy.data[at] - s);
        }
    });
}

/// `Σ` along `axis`, keeping it with size 1 (for broadcasting back over the lane).
fn lane_sum<T: Float, G: Graph<T>>(g: &mut G, v: G::V, axis: usize) -> G::V {
    g.apply(Op::Reduce(Reduce { mean: false, axis: Some(axis), keepdim: true }), &[v])
}

/// Backward of `y = log_softmax(x)`.
pub fn log_softmax_vjp<T: Float, G: Graph<T>>(g: &mut G, y: G::V, dy: G::V, axis: usize) -> G::V {
    // d/dx_j y_i = δij - softmax_j, so dx = dy - e^y Σ dy
    g.apply(Op::Softmax(SoftmaxOp::LogSoftmaxGrad { axis }), &[dy, y])
}

/// Backward of `y = softmax(x)`.
pub fn softmax_vjp<T: Float, G: Graph<T>>(g: &mut G, y: G::V, dy: G::V, axis: usize) -> G::V {
    // d/dx_j y_i = y_i (δij - y_j), so dx = y (dy - Σ dy y)
    g.apply(Op::Softmax(SoftmaxOp::SoftmaxGrad { axis }), &[dy, y])
}

/// Backward of `d = dy - e^y S` (`S = Σ dy` along the lane) given its gradient `gd`, for
/// gradients of gradients.
pub fn log_softmax_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    y: G::V,
    gd: G::V,
    axis: usize,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // ∂d_i/∂dy_j = δij - e^y_i, so g_dy = gd - Σ gd e^y; ∂d_i/∂y_i = -e^y_i S, so g_y = -gd e^y S
    let e = g.unary(super::Unary::Exp, y);
    let ge = g.mul(gd, e);
    let gdy = need[0].then(|| {
        let s = lane_sum(g, ge, axis);
        g.binary(super::Binary::Sub, gd, s)
    });
    let gy = need[1].then(|| {
        let s = lane_sum(g, dy, axis);
        let t = g.mul(ge, s);
        g.neg(t)
    });
    [gdy, gy, None]
}

/// Backward of `d = y (dy - S)` (`S = Σ dy y` along the lane) given its gradient `gd`, for
/// gradients of gradients.
pub fn softmax_grad_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    dy: G::V,
    y: G::V,
    gd: G::V,
    axis: usize,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // ∂d_i/∂dy_j = y_i δij - y_i y_j, so g_dy = y (gd - Σ gd y), the same fused op
    let gdy = need[0].then(|| g.apply(Op::Softmax(SoftmaxOp::SoftmaxGrad { axis }), &[gd, y]));
    // ∂d_i/∂y_j = δij (dy_i - S) - y_i dy_j, so g_y = gd (dy - S) - dy Σ gd y
    let gy = need[1].then(|| {
        let dyy = g.mul(dy, y);
        let s = lane_sum(g, dyy, axis);
        let c = g.binary(super::Binary::Sub, dy, s);
        let a = g.mul(gd, c);
        let gdyy = g.mul(gd, y);
        let r = lane_sum(g, gdyy, axis);
        let b = g.mul(dy, r);
        g.binary(super::Binary::Sub, a, b)
    });
    [gdy, gy, None]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_of_a_middle_axis() {
        // shape [2, 3, 2], axis 1: lanes start at 0, 1, 6, 7 with stride 2
        let mut seen = Vec::new();
        for_each_lane(&[2, 3, 2], 1, |first, stride, n| seen.push((first, stride, n)));
        assert_eq!(seen, [(0, 2, 3), (1, 2, 3), (6, 2, 3), (7, 2, 3)]);
    }

    #[test]
    fn argmax_ties_and_nan() {
        let x = [1.0, 3.0, 3.0, f64::NAN, 2.0, 5.0];
        let mut out = [0.0; 2];
        argmax_forward(View { shape: &[2, 3], data: &x }, 1, &mut out);
        assert_eq!(out, [1.0, 0.0]);
    }
}
