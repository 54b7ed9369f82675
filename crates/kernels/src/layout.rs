//! Shapes and strides of row-major arrays (the index arithmetic of the strided kernels).

use smallvec::SmallVec;

/// A tensor shape: dimension sizes, outermost first (row-major). Up to four dimensions live
/// inline, so making or copying a shape does not touch the heap.
pub type Shape = SmallVec<[usize; 4]>;

/// Number of elements of a shape (1 for a scalar shape `[]`).
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a contiguous tensor of this shape.
#[inline]
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = smallvec::smallvec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides with which to read a tensor of shape `from` as if it had the (broadcast) shape
/// `to`: 0 along every broadcast dimension.
#[inline]
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
    fn strided_walk_matches_index_arithmetic() {
        let shape = [2, 3, 4];
        let st = broadcast_strides(&[3, 1], &shape);
        let mut seen = vec![];
        crate::elementwise::for_each_strided2(&shape, &st, &st, |o, i, _| seen.push((o, i)));
        assert_eq!(seen.len(), 24);
        for (o, i) in seen {
            let j = (o / 4) % 3; // the middle index
            assert_eq!(i, j);
        }
    }
}
