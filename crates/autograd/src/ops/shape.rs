//! Shape ops: reshape, permute (transpose), expand (broadcast), sum_to (its adjoint) and
//! pad (a constant border along one axis; negative widths crop, which is narrow). Their
//! backward rules are each other: reshape ↔ reshape, permute ↔ inverse permute, expand ↔
//! sum_to, pad ↔ pad by the opposite widths.

use super::{Graph, Op, OpFamily, View};
use crate::float::Float;
use crate::shape::{broadcasts_to, numel, Shape};

/// A shape op of one input.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeOp {
    /// Same data, new shape.
    Reshape(Shape),
    /// Dimensions reordered: output dimension `d` is input dimension `perm[d]`.
    Permute(Shape),
    /// Broadcast to a larger shape.
    Expand(Shape),
    /// Sum over broadcast dimensions down to a smaller shape (the adjoint of `Expand`).
    SumTo(Shape),
    /// `before` entries of `value` added in front along `axis` and `after` at the end;
    /// a negative width removes that many instead (PyTorch's constant `F.pad` on one
    /// dimension). The value is kept as `f64`, which holds every `f32` and `f64` exactly.
    Pad {
        /// The dimension padded.
        axis: usize,
        /// Entries added in front (removed when negative).
        before: isize,
        /// Entries added at the end (removed when negative).
        after: isize,
        /// The value of the added entries.
        value: f64,
    },
}

impl<T: Float> OpFamily<T> for ShapeOp {
    fn name(&self) -> &'static str {
        match self {
            ShapeOp::Reshape(_) => "reshape",
            ShapeOp::Permute(_) => "permute",
            ShapeOp::Expand(_) => "expand",
            ShapeOp::SumTo(_) => "sum_to",
            ShapeOp::Pad { .. } => "pad",
        }
    }

    fn arity(&self) -> usize {
        1
    }

    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        match self {
            ShapeOp::Reshape(s) => reshape_shape(ins[0], s),
            ShapeOp::Permute(p) => permute_shape(ins[0], p),
            ShapeOp::Expand(s) => expand_shape(ins[0], s),
            ShapeOp::SumTo(s) => sum_to_shape(ins[0], s),
            ShapeOp::Pad { axis, before, after, .. } => pad_shape(ins[0], *axis, *before, *after),
        }
    }

    fn forward(&self, ins: &[View<'_, T>], out_shape: &[usize], out: &mut [T]) {
        let x = ins[0];
        match self {
            ShapeOp::Reshape(_) => out.copy_from_slice(x.data),
            ShapeOp::Permute(p) => crate::kernels::permute(x.data, x.shape, p, out),
            ShapeOp::Expand(_) => crate::kernels::expand(x.data, x.shape, out_shape, out),
            ShapeOp::SumTo(_) => crate::kernels::sum_to(x.data, x.shape, out_shape, out, false),
            ShapeOp::Pad { axis, before, value, .. } => pad(x, out_shape, *axis, *before, T::from_f64(*value), out),
        }
    }

    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        let d = match self {
            // d/dx reshape(x) = reshape back
            ShapeOp::Reshape(_) => {
                let s = g.shape(x[0]);
                g.reshape(gy, &s)
            }
            // d/dx permute(x, p) = permute by p⁻¹
            ShapeOp::Permute(p) => g.permute(gy, &inverse_perm(p)),
            // d/dx expand(x) = sum back over the broadcast dimensions
            ShapeOp::Expand(_) => {
                let s = g.shape(x[0]);
                g.sum_to(gy, &s)
            }
            // d/dx sum_to(x) = broadcast back
            ShapeOp::SumTo(_) => {
                let s = g.shape(x[0]);
                g.expand(gy, &s)
            }
            // d/dx pad(x, b, a, v) = pad(dy, -b, -a, 0): the entries x went to, cut back out
            &ShapeOp::Pad { axis, before, after, .. } => {
                g.apply(Op::Shape(ShapeOp::Pad { axis, before: -before, after: -after, value: 0.0 }), &[gy])
            }
        };
        [Some(d), None, None]
    }
}

/// Result shape of a reshape.
///
/// # Errors
/// `reshape: [2, 3] (6 elements) into [4, 2] (8 elements)`.
pub fn reshape_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(numel(x) == numel(to), "reshape: {x:?} ({} elements) into {to:?} ({} elements)", numel(x), numel(to));
    Ok(crate::shape::from_dims(to))
}

/// Result shape of a permutation.
///
/// # Errors
/// `permute: [1, 1] is not a permutation of the 2 dimensions of [2, 3]`.
pub fn permute_shape(x: &[usize], perm: &[usize]) -> Result<Shape, String> {
    let mut seen: Shape = smallvec::smallvec![0; x.len()];
    let ok = perm.len() == x.len()
        && perm.iter().all(|&p| {
            p < x.len() && {
                seen[p] += 1;
                seen[p] == 1
            }
        });
    ensure!(ok, "permute: {perm:?} is not a permutation of the {} dimensions of {x:?}", x.len());
    Ok(perm.iter().map(|&p| x[p]).collect())
}

/// The permutation that undoes `perm`.
pub fn inverse_perm(perm: &[usize]) -> Shape {
    let mut inv: Shape = smallvec::smallvec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Result shape of an expand.
///
/// # Errors
/// `expand: [3, 2] cannot be broadcast to [3, 4]`.
pub fn expand_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(broadcasts_to(x, to), "expand: {x:?} cannot be broadcast to {to:?}");
    Ok(crate::shape::from_dims(to))
}

/// Result shape of a sum_to.
///
/// # Errors
/// `sum_to: [3, 4] cannot be summed to [2]` unless `to` broadcasts to `x`.
pub fn sum_to_shape(x: &[usize], to: &[usize]) -> Result<Shape, String> {
    ensure!(broadcasts_to(to, x), "sum_to: {x:?} cannot be summed to {to:?}");
    Ok(crate::shape::from_dims(to))
}

/// Result shape of a pad.
///
/// # Errors
/// `pad: axis 2 of [3, 4]`, or `pad: [3, 4] along axis 1 by -3 and -2 leaves -1 entries`.
pub fn pad_shape(x: &[usize], axis: usize, before: isize, after: isize) -> Result<Shape, String> {
    ensure!(axis < x.len(), "pad: axis {axis} of {x:?}");
    let len = x[axis] as isize + before + after;
    ensure!(len >= 0, "pad: {x:?} along axis {axis} by {before} and {after} leaves {len} entries");
    let mut out = crate::shape::from_dims(x);
    out[axis] = len as usize;
    Ok(out)
}

/// `out` = `x` padded along `axis` (`before` entries of `value` in front, negative: cut),
/// `out_shape` its shape: per outer row, a fill, one copy of the kept block, a fill.
fn pad<T: Float>(x: View<'_, T>, out_shape: &[usize], axis: usize, before: isize, value: T, out: &mut [T]) {
    let inner: usize = out_shape[axis + 1..].iter().product();
    let (len_in, len_out) = (x.shape[axis] as isize, out_shape[axis] as isize);
    // output positions [lo, hi) along the axis come from input positions [lo - before, ..)
    let lo = before.clamp(0, len_out);
    let hi = (len_in + before).clamp(lo, len_out);
    let (lo, hi, from) = (lo as usize * inner, hi as usize * inner, (lo - before) as usize * inner);
    let (row_in, row_out) = (len_in as usize * inner, len_out as usize * inner);
    for (o, row) in out.chunks_exact_mut(row_out).enumerate() {
        row[..lo].fill(value);
        if hi > lo {
            row[lo..hi].copy_from_slice(&x.data[o * row_in + from..][..hi - lo]);
        }
        row[hi..].fill(value);
    }
}
