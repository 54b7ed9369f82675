//! Indexing as methods of [`Var`] ([`crate::ops::index`]): `take`, `scatter_add`, and the
//! views built on them: `index_select`, `gather`, `min_axis`/`max_axis`, `cat` and
//! `stack`; `narrow`, a [`Var::pad`] by negative widths.

use std::borrow::Borrow;
use std::panic::Location;
use std::sync::Arc;

use super::Var;
use crate::float::Float;
use crate::ops::{IndexOp, Op};
use crate::shape::{numel, Shape};

/// Checks that every index is below `bound`, naming the op and the caller.
#[track_caller]
fn check_bounds(op: &str, index: &[usize], bound: usize) {
    if let Some((at, &i)) = index.iter().enumerate().find(|(_, &i)| i >= bound) {
        panic!("{op}: index {i} (position {at}) out of range for {bound} elements (at {})", Location::caller());
    }
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = smallvec::smallvec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Flat positions in a tensor of shape `shape` of the elements whose coordinate along
/// `axis` is `pick(flat position of the result, its coordinate along axis)`, for a result
/// of shape `out` (equal to `shape` except along `axis`).
fn positions(shape: &[usize], out: &[usize], axis: usize, mut pick: impl FnMut(usize, usize) -> usize) -> Vec<usize> {
    let (src, dst) = (strides(shape), strides(out));
    (0..numel(out))
        .map(|o| {
            let mut flat = 0;
            for d in 0..out.len() {
                let c = (o / dst[d]) % out[d];
                flat += if d == axis { pick(o, c) } else { c } * src[d];
            }
            flat
        })
        .collect()
}

impl<'t, T: Float> Var<'t, T> {
    /// `y[i] = self[index[i]]` (flat, row-major positions), shaped `shape`.
    ///
    /// # Panics
    /// If `index` does not fill `shape` or an index is out of range.
    #[track_caller]
    pub fn take(&self, index: impl Into<Arc<[usize]>>, shape: &[usize]) -> Var<'t, T> {
        let index = index.into();
        let src = numel(&self.shape());
        assert_eq!(
            index.len(),
            numel(shape),
            "take: {} indices for shape {shape:?} (at {})",
            index.len(),
            Location::caller()
        );
        check_bounds("take", &index, src);
        let op = IndexOp::Take { index, shape: crate::shape::from_dims(shape), src };
        Var::new(self.tape, self.tape.record(Op::Index(op), &[self.id], Location::caller()))
    }

    /// Zeros of shape `shape` with `self[i]` added at flat position `index[i]` (repeated
    /// positions add up).
    ///
    /// # Panics
    /// If there is not one index per element or an index is out of range.
    #[track_caller]
    pub fn scatter_add(&self, index: impl Into<Arc<[usize]>>, shape: &[usize]) -> Var<'t, T> {
        let index = index.into();
        let n = numel(&self.shape());
        assert_eq!(index.len(), n, "scatter_add: {} indices for {n} elements (at {})", index.len(), Location::caller());
        check_bounds("scatter_add", &index, numel(shape));
        let op = IndexOp::ScatterAdd { index, shape: crate::shape::from_dims(shape) };
        Var::new(self.tape, self.tape.record(Op::Index(op), &[self.id], Location::caller()))
    }

    /// The entries `index` along `axis` (PyTorch's `index_select`).
    ///
    /// # Panics
    /// If `axis` or an index is out of range.
    #[track_caller]
    pub fn index_select(&self, axis: usize, index: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        assert!(axis < shape.len(), "index_select: axis {axis} for shape {shape:?} (at {})", Location::caller());
        check_bounds("index_select", index, shape[axis]);
        let mut out = shape.clone();
        out[axis] = index.len();
        self.take(positions(&shape, &out, axis, |_, c| index[c]), &out)
    }

    /// `len` entries from `start` along `axis` (PyTorch's `narrow`).
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Var<'t, T> {
        let shape = self.shape();
        let fits = axis < shape.len() && start.checked_add(len).is_some_and(|end| end <= shape[axis]);
        assert!(fits, "narrow: {len} entries from {start} along axis {axis} of {shape:?} (at {})", Location::caller());
        // a pad by negative widths: one block copy per row, and a pad back for the gradient
        self.pad(axis, -(start as isize), -((shape[axis] - start - len) as isize), T::ZERO)
    }

    /// `y[.., j, ..] = self[.., index[.., j, ..], ..]` along `axis` (PyTorch's `gather`):
    /// `index` has the result's shape `index_shape`, equal to `self`'s but along `axis`.
    ///
    /// # Panics
    /// If the shapes do not fit or an index is out of range.
    #[track_caller]
    pub fn gather(&self, axis: usize, index: &[usize], index_shape: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        let fits = axis < shape.len()
            && index_shape.len() == shape.len()
            && (0..shape.len()).all(|d| d == axis || index_shape[d] == shape[d])
            && index.len() == numel(index_shape);
        assert!(
            fits,
            "gather: index of shape {index_shape:?} along axis {axis} of {shape:?} (at {})",
            Location::caller()
        );
        check_bounds("gather", index, shape[axis]);
        self.take(positions(&shape, index_shape, axis, |o, _| index[o]), index_shape)
    }

    /// The smallest entry along `axis` (the axis removed), as PyTorch's `min(dim)`
    /// values: a [`Var::gather`] of the first position of the minimum, so its gradient goes
    /// to that entry (NaN counts as smallest, as in PyTorch).
    ///
    /// # Panics
    /// If `axis` is out of range or has size 0.
    #[track_caller]
    pub fn min_axis(&self, axis: usize) -> Var<'t, T> {
        self.extreme_axis(axis, "min_axis", |a, b| a < b)
    }

    /// The largest entry along `axis` (the axis removed); see [`Var::min_axis`].
    ///
    /// # Panics
    /// If `axis` is out of range or has size 0.
    #[track_caller]
    pub fn max_axis(&self, axis: usize) -> Var<'t, T> {
        self.extreme_axis(axis, "max_axis", |a, b| a > b)
    }

    /// The entry along `axis` that no other `beats` (the first of equals), gathered.
    #[track_caller]
    fn extreme_axis(&self, axis: usize, op: &str, beats: fn(T, T) -> bool) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            axis < shape.len() && shape[axis] > 0,
            "{op}: axis {axis} of shape {shape:?} (at {})",
            Location::caller()
        );
        let (len, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
        let mut out = shape.clone();
        out[axis] = 1;
        let index: Vec<usize> = self.with_value(|v| {
            (0..numel(&out))
                .map(|o| {
                    let (outer, i) = (o / inner, o % inner);
                    let at = |j: usize| v[(outer * len + j) * inner + i];
                    let mut best = 0;
                    for j in 1..len {
                        if !at(best).is_nan() && (at(j).is_nan() || beats(at(j), at(best))) {
                            best = j;
                        }
                    }
                    best
                })
                .collect()
        });
        let picked = self.gather(axis, &index, &out);
        out.remove(axis);
        picked.reshape(&out)
    }

    /// The variables joined along `axis` (PyTorch's `cat`): every other dimension must agree.
    ///
    /// # Panics
    /// If `parts` is empty, the shapes do not fit, or the variables are on different tapes.
    #[track_caller]
    pub fn cat(parts: &[impl Borrow<Var<'t, T>>], axis: usize) -> Var<'t, T> {
        let first = parts.first().unwrap_or_else(|| panic!("cat: no variables (at {})", Location::caller())).borrow();
        let shapes: Vec<Shape> = parts.iter().map(|p| p.borrow().shape()).collect();
        let s0 = &shapes[0];
        let fits = axis < s0.len()
            && shapes.iter().all(|s| s.len() == s0.len() && (0..s.len()).all(|d| d == axis || s[d] == s0[d]));
        assert!(fits, "cat: shapes {shapes:?} along axis {axis} (at {})", Location::caller());
        let mut out = s0.clone();
        out[axis] = shapes.iter().map(|s| s[axis]).sum();
        let mut offset = 0;
        let mut total: Option<Var<'t, T>> = None;
        for (p, s) in parts.iter().zip(&shapes) {
            let p = p.borrow();
            first.check_same_tape(p, "cat");
            let at = offset;
            let placed = p.scatter_add(positions(&out, s, axis, |_, c| at + c), &out);
            total = Some(match total {
                None => placed,
                Some(t) => t + placed,
            });
            offset += s[axis];
        }
        total.expect("at least one part")
    }

    /// The variables (all of one shape) stacked along a new dimension `axis`
    /// (PyTorch's `stack`).
    ///
    /// # Panics
    /// As [`Var::cat`].
    #[track_caller]
    pub fn stack(parts: &[impl Borrow<Var<'t, T>>], axis: usize) -> Var<'t, T> {
        let lifted: Vec<Var<'t, T>> = parts
            .iter()
            .map(|p| {
                let p = p.borrow();
                let mut s = p.shape();
                assert!(axis <= s.len(), "stack: axis {axis} for shape {s:?} (at {})", Location::caller());
                s.insert(axis, 1);
                p.reshape(&s)
            })
            .collect();
        Var::cat(&lifted, axis)
    }
}
