//! Shapes (small inline vectors of dimension sizes) and the broadcasting rules.

pub use tapegrad_kernels::layout::{broadcast_strides, numel, strides, Shape};

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
}
