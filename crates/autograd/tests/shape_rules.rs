//! Shape rules that the `Var` methods never feed some shapes (they check first, or never
//! ask): called directly, each misfit is refused on its own, with the op's message.

use tapegrad::ops::matmul::linear_shape;
use tapegrad::ops::reduce::Reduce;
use tapegrad::ops::shape::permute_shape;

#[test]
fn linear_needs_a_batch_a_weight_and_a_bias_that_fit() {
    assert_eq!(linear_shape(&[2, 4], &[8, 4], &[8]).unwrap().as_slice(), &[2, 8]);
    let e = linear_shape(&[2, 4], &[8, 3], &[8]).unwrap_err();
    assert_eq!(e, "linear: x [2, 4], weight [8, 3], bias [8]: need x [batch, in], weight [out, in], bias [out]");
    // each condition alone: x of rank 1 or 3, weight of rank 1 or 3, bias of rank 0 or 2,
    // in sizes that differ, a bias of another out size
    let misfits: [(&[usize], &[usize], &[usize]); 8] = [
        (&[4], &[8, 4], &[8]),
        (&[2, 4, 1], &[8, 4], &[8]),
        (&[2, 4], &[4], &[8]),
        (&[2, 4], &[8, 4, 1], &[8]),
        (&[2, 4], &[8, 4], &[]),
        (&[2, 4], &[8, 4], &[8, 1]),
        (&[2, 5], &[8, 4], &[8]),
        (&[2, 4], &[8, 4], &[7]),
    ];
    for (x, w, b) in misfits {
        assert!(linear_shape(x, w, b).is_err(), "x {x:?}, w {w:?}, b {b:?}");
    }
}

#[test]
fn permute_needs_each_dimension_once() {
    assert_eq!(permute_shape(&[2, 3, 4], &[2, 0, 1]).unwrap().as_slice(), &[4, 2, 3]);
    assert_eq!(permute_shape(&[], &[]).unwrap().as_slice(), &[] as &[usize]);
    let e = permute_shape(&[2, 3], &[1, 1]).unwrap_err();
    assert_eq!(e, "permute: [1, 1] is not a permutation of the 2 dimensions of [2, 3]");
    // too few, too many, out of range (by one and more), repeated
    for perm in [&[0][..], &[0, 1, 2], &[0, 2], &[5, 0], &[0, 0]] {
        assert!(permute_shape(&[2, 3], perm).is_err(), "{perm:?}");
    }
}

#[test]
fn reductions_over_every_element_keep_or_drop_all_dimensions() {
    for mean in [false, true] {
        let all = |keepdim| Reduce { mean, axis: None, keepdim };
        assert_eq!(all(true).shape_of(&[2, 3, 4]).unwrap().as_slice(), &[1, 1, 1]);
        assert_eq!(all(false).shape_of(&[2, 3, 4]).unwrap().as_slice(), &[] as &[usize]);
        let one = |keepdim| Reduce { mean, axis: Some(1), keepdim };
        assert_eq!(one(true).shape_of(&[2, 3, 4]).unwrap().as_slice(), &[2, 1, 4]);
        assert_eq!(one(false).shape_of(&[2, 3, 4]).unwrap().as_slice(), &[2, 4]);
        let e = Reduce { mean, axis: Some(3), keepdim: false }.shape_of(&[2, 3, 4]).unwrap_err();
        assert_eq!(e, format!("{}: axis 3 out of range for shape [2, 3, 4]", if mean { "mean" } else { "sum" }));
    }
}
