//! Matrix products: `matmul` (either operand read transposed, never copied) and the fused
//! `linear` layer `x·Wᵀ + b`.

use super::{Graph, OpFamily, View};
use crate::float::Float;
use crate::shape::Shape;

/// A matrix product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulOp {
    /// `op(A)·op(B)` of two 2-d inputs; `ta`/`tb` read an operand as transposed.
    Matmul {
        /// Read A as transposed.
        ta: bool,
        /// Read B as transposed.
        tb: bool,
    },
    /// `x·Wᵀ + b` in one node (x: `[batch, in]`, W: `[out, in]`, b: `[out]`), with
    /// `relu` followed by a fused ReLU.
    Linear {
        /// Apply `max(·, 0)` to the result.
        relu: bool,
    },
}

impl<T: Float> OpFamily<T> for MatmulOp {
    fn name(&self) -> &'static str {
        match self {
            MatmulOp::Matmul { .. } => "matmul",
            MatmulOp::Linear { relu: false } => "linear",
            MatmulOp::Linear { relu: true } => "linear_relu",
        }
    }

    fn arity(&self) -> usize {
        match self {
            MatmulOp::Matmul { .. } => 2,
            MatmulOp::Linear { .. } => 3,
        }
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match *self {
            MatmulOp::Matmul { ta, tb } => matmul_shape(ins[0], ins[1], ta, tb),
            MatmulOp::Linear { .. } => linear_shape(ins[0], ins[1], ins[2]),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        match *self {
            MatmulOp::Matmul { ta, tb } => matmul_forward(ins[0], ins[1], ta, tb, out),
            MatmulOp::Linear { relu } => linear_forward(ins[0], ins[1], ins[2], relu, out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, need: [bool; 3]) -> [Option<G::V>; 3] {
        match *self {
            MatmulOp::Matmul { ta, tb } => {
                let [ga, gb] = matmul_vjp(g, x[0], x[1], ta, tb, gy, [need[0], need[1]]);
                [ga, gb, None]
            }
            MatmulOp::Linear { relu } => linear_vjp(g, x[0], x[1], x[2], relu, y, gy, need),
        }
    }
}

fn dims(s: &[usize], t: bool) -> (usize, usize) {
    if t {
        (s[1], s[0])
    } else {
        (s[0], s[1])
    }
}

fn show(s: &[usize], t: bool) -> String {
    format!("{s:?}{}", if t { "ᵀ" } else { "" })
}

/// Result shape of `op(A)·op(B)`.
///
/// # Errors
/// `matmul: [2, 4] x [8, 2]: inner dimensions 4 and 8 differ` (or an operand not 2-d).
pub fn matmul_shape(a: &[usize], b: &[usize], ta: bool, tb: bool) -> Result<Shape, String> {
    ensure!(a.len() == 2 && b.len() == 2, "matmul: {} x {}: both operands must be 2-d", show(a, ta), show(b, tb));
    let ((m, k1), (k2, n)) = (dims(a, ta), dims(b, tb));
    ensure!(k1 == k2, "matmul: {} x {}: inner dimensions {k1} and {k2} differ", show(a, ta), show(b, tb));
    Ok(smallvec::smallvec![m, n])
}

/// Row and column strides of a row-major `[r, c]` matrix read as `op(M)`.
fn strides(s: &[usize], t: bool) -> (usize, usize) {
    if t {
        (1, s[1])
    } else {
        (s[1], 1)
    }
}

/// `out = op(A)·op(B)`.
pub fn matmul_forward<T: Float>(a: View<'_, T>, b: View<'_, T>, ta: bool, tb: bool, out: &mut [T]) {
    let ((m, k), (_, n)) = (dims(a.shape, ta), dims(b.shape, tb));
    let (rsa, csa) = strides(a.shape, ta);
    let (rsb, csb) = strides(b.shape, tb);
    T::gemm(m, k, n, a.data, rsa, csa, b.data, rsb, csb, out, false);
}

/// Backward of `C = op(A)·op(B)` given `dC`: each operand's gradient is again one matmul.
pub fn matmul_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    a: G::V,
    b: G::V,
    ta: bool,
    tb: bool,
    dc: G::V,
    need: [bool; 2],
) -> [Option<G::V>; 2] {
    // d/dA (A·B) : dA = dC·op(B)ᵀ, or (for A read transposed) dA = op(B)·dCᵀ
    let da = need[0].then(|| if ta { g.matmul(b, dc, tb, true) } else { g.matmul(dc, b, false, !tb) });
    // d/dB (A·B) : dB = op(A)ᵀ·dC, or (for B read transposed) dB = dCᵀ·op(A)
    let db = need[1].then(|| if tb { g.matmul(dc, a, true, ta) } else { g.matmul(a, dc, !ta, false) });
    [da, db]
}

/// Result shape of `x·Wᵀ + b`.
///
/// # Errors
/// `linear: x [2, 4], weight [8, 3], bias [8]: ...` when the shapes do not fit.
pub fn linear_shape(x: &[usize], w: &[usize], b: &[usize]) -> Result<Shape, String> {
    let ok = x.len() == 2 && w.len() == 2 && b.len() == 1 && x[1] == w[1] && b[0] == w[0];
    ensure!(ok, "linear: x {x:?}, weight {w:?}, bias {b:?}: need x [batch, in], weight [out, in], bias [out]");
    Ok(smallvec::smallvec![x[0], w[0]])
}

/// `out = x·Wᵀ + b` (then [`relu`](crate::Element::relu) with `relu`): the product, with the bias and the
/// ReLU added in registers before each tile is stored where the GEMM's panel path runs,
/// else in one pass over the result (`acc + b` is the same float as `b + acc`).
pub fn linear_forward<T: Float>(x: View<'_, T>, w: View<'_, T>, b: View<'_, T>, relu: bool, out: &mut [T]) {
    let (batch, inp, outp) = (x.shape[0], x.shape[1], w.shape[0]);
    T::gemm_bias(batch, inp, outp, x.data, inp, 1, w.data, 1, inp, out, b.data, relu);
}

/// Backward of `y = x·Wᵀ + b` (or `y = relu(x·Wᵀ + b)`) given `dy`.
#[allow(clippy::too_many_arguments)]
pub fn linear_vjp<T: Float, G: Graph<T>>(
    g: &mut G,
    x: G::V,
    w: G::V,
    b: G::V,
    relu: bool,
    y: G::V,
    dy: G::V,
    need: [bool; 3],
) -> [Option<G::V>; 3] {
    // d/dz relu(z) = 0 where z <= 0, i.e. where y <= 0, else 1 (`Element::relu_backward`)
    let dy = if relu { g.binary(super::Binary::ReluMask, dy, y) } else { dy };
    // d/dx (x Wᵀ) : dx = dy·W
    let dx = need[0].then(|| g.matmul(dy, w, false, false));
    // d/dW (x Wᵀ) : dW = dyᵀ·x
    let dw = need[1].then(|| g.matmul(dy, x, true, false));
    // d/db (.. + b) : db = dy summed over the batch
    let db = need[2].then(|| {
        let s = g.shape(b);
        g.sum_to(dy, &s)
    });
    [dx, dw, db]
}
