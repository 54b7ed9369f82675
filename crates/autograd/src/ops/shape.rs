//! Shape ops: reshape, permute (transpose), expand (broadcast) and sum_to (its adjoint).
//! Their backward rules are each other: reshape ↔ reshape, permute ↔ inverse permute,
//! expand ↔ sum_to. The rules themselves are in [`super::Op::vjp`].

use crate::shape::{broadcasts_to, numel, Shape};

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
