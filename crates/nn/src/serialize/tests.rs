//! Unit tests of the reading steps a file on disk cannot drive deterministically.

use super::*;

/// A file that ends before the bytes its length promised (it shrank while being read) is
/// truncated, whether it stops in the header or in the data.
#[test]
fn a_file_that_shrinks_while_read_is_truncated() {
    for (have, n) in [(0, 4), (3, 4), (3, 300)] {
        let source = vec![1u8; have];
        let mut bytes = vec![9u8; 8];
        let err = read_exactly(&mut &source[..], &mut bytes, n, 8 + n).unwrap_err();
        match err {
            StateDictErrorKind::Truncated { len, expected } => assert_eq!((len, expected), (8 + have as u64, 8 + n)),
            other => panic!("{other:?}"),
        }
    }
    // exactly the bytes promised: appended, none more read
    let source = [1u8, 2, 3, 4, 5];
    let mut reader = &source[..];
    let mut bytes = vec![9u8];
    read_exactly(&mut reader, &mut bytes, 3, 4).unwrap();
    assert_eq!((bytes.as_slice(), reader), (&[9u8, 1, 2, 3][..], &[4u8, 5][..]));
}
