//! Shapes (small inline vectors of dimension sizes) and the broadcasting rules.

use smallvec::SmallVec;

/// A tensor shape: dimension sizes, outermost first (row-major). Up to four dimensions live
/// inline, so making or copying a shape does not touch the heap.
pub type Shape = SmallVec<[usize; 4]>;

/// Number of elements of a shape (1 for a scalar shape `[]`).
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A shape with these dimensions. The same as `Shape::from_slice`, without its `memcpy`
/// call for the usual one to four dimensions (a shape is made on every op).
#[inline]
pub fn from_dims(dims: &[usize]) -> Shape {
    let (buf, len) = match *dims {
        [] => ([0; 4], 0),
        [a] => ([a, 0, 0, 0], 1),
        [a, b] => ([a, b, 0, 0], 2),
        [a, b, c] => ([a, b, c, 0], 3),
        [a, b, c, d] => ([a, b, c, d], 4),
        _ => return Shape::from_slice(dims),
    };
    Shape::from_buf_and_len(buf, len)
}

/// Whether two shapes are equal. The same as `a == b`, written as a loop: shapes have a
/// handful of dimensions, and slice equality calls `memcmp`, which costs more than the
/// comparison on the per-op hot path.
#[inline]
pub fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Row-major strides of a contiguous tensor of this shape.
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = smallvec::smallvec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The broadcast shape of `a` and `b` (NumPy/PyTorch rules: align trailing dimensions; each
/// pair must be equal or contain a 1), or `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let n = a.len().max(b.len());
    let mut out: Shape = smallvec::smallvec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() { 1 } else { a[i - (n - a.len())] };
        let db = if i < n - b.len() { 1 } else { b[i - (n - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Whether `from` can be broadcast (expanded) to `to`.
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    // align trailing dimensions: each of `from` must be 1 or equal
    from.len() <= to.len() && from.iter().rev().zip(to.iter().rev()).all(|(&f, &t)| f == 1 || f == t)
}

/// Strides with which to read a tensor of shape `from` as if it had the (broadcast) shape
/// `to`: 0 along every broadcast dimension.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> Shape {
    let own = strides(from);
    let off = to.len() - from.len();
    let mut s: Shape = smallvec::smallvec![0; to.len()];
    for i in 0..from.len() {
        if from[i] != 1 {
            s[off + i] = own[i];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_dims_and_same_agree_with_smallvec() {
        let dims = [3, 1, 4, 1, 5, 9];
        for len in 0..=dims.len() {
            let d = &dims[..len];
            let s = from_dims(d);
            assert_eq!(s.as_slice(), d);
            assert_eq!(s, Shape::from_slice(d));
            for other in 0..=dims.len() {
                assert_eq!(same(d, &dims[..other]), d == &dims[..other]);
            }
            assert!(!same(d, &[7; 6][..len]) || len == 0);
        }
    }

    #[test]
    fn broadcasting_rules() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]).unwrap().as_slice(), &[2, 3]);
        assert_eq!(broadcast_shapes(&[4, 1, 3], &[2, 1]).unwrap().as_slice(), &[4, 2, 3]);
        assert_eq!(broadcast_shapes(&[], &[5]).unwrap().as_slice(), &[5]);
        assert!(broadcast_shapes(&[2, 3], &[2]).is_none());
        assert!(broadcasts_to(&[1, 3], &[4, 3]));
        assert!(!broadcasts_to(&[4, 3], &[3]));
    }

    #[test]
    fn strided_walk_matches_index_arithmetic() {
        let shape = [2, 3, 4];
        let st = broadcast_strides(&[3, 1], &shape);
        let mut seen = vec![];
        crate::kernels::for_each_strided2(&shape, &st, &st, |o, i, _| seen.push((o, i)));
        assert_eq!(seen.len(), 24);
        for (o, i) in seen {
            let j = (o / 4) % 3; // the middle index
            assert_eq!(i, j);
        }
    }
}
