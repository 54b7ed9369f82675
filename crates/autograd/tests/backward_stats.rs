//! `Tape::backward_stats`: what a backward pass did with gradient data, counted exactly.
//!
//! Each graph below is small enough to follow by hand; the comments derive every count
//! from the rules. These counts are how the engine's data movement is pinned down: a pass
//! that copied where it should share or move, computed a value into scratch where it should
//! compute it straight into the gradient, or grew a buffer in its steady state, gives the
//! same gradients (checked too) but other counts.
//!
//! `grown` counts allocations: every gradient and scratch buffer that had to grow, and the
//! list of scratch slots, which grows as a `Vec` does (room for 4, then 8). On a pass after
//! the first, nothing grows.

use tapegrad::{BackwardStats, Reduction, Tape, Tensor, DEFAULT_IGNORE_INDEX};

const X3: [f64; 3] = [0.5, -1.0, 2.0];

fn stats(rules: u64, scratch: u64, moved: u64, shared: u64, fused: u64, copied: u64, added: u64) -> BackwardStats {
    BackwardStats { rules, scratch, moved, shared, fused, copied, added, zeros: 0, grown: 0 }
}

fn grown(s: BackwardStats, grown: u64) -> BackwardStats {
    BackwardStats { grown, ..s }
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn nothing_is_counted_before_the_first_pass() {
    let tape = Tape::<f64>::new();
    assert_eq!(tape.backward_stats(), BackwardStats::default());
}

/// `l = sum(2x + 3x)`: `sum`'s rule expands `dy` into scratch, moved into `c`'s gradient;
/// `a + b` passes `dy` to both (shared: `a`, `b` are interior); `x * 2` and `x * 3` compute
/// `2 dy`, `3 dy` straight into `x`'s gradient (written, then added).
#[test]
fn a_sum_passes_its_gradient_through_shared() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&X3, &[3]), true);
    let c = x * 2.0 + x * 3.0;
    let l = c.sum();
    let each = stats(4, 1, 1, 2, 2, 0, 0);
    // pass 1 grows: the root's gradient, the slot list, the expand's scratch, `c`'s
    // gradient (sized before the move: the scratch buffer swapped out is reused), `x`'s
    l.backward();
    assert_eq!(tape.backward_stats(), grown(each, 5));
    close("x", &x.grad().unwrap().into_vec(), &[5.0; 3]);
    for pass in 2..=3 {
        l.backward();
        assert_eq!(tape.backward_stats(), each, "pass {pass}");
        close("x", &x.grad().unwrap().into_vec(), &[5.0 * pass as f64; 3]);
    }
}

/// `l = sum(x + x)`: `x` is a leaf, whose gradient outlives the pass, so the first of the
/// two `dy`s is copied (not shared), the second added; from the second pass both are added.
#[test]
fn a_leaf_gets_a_copy_of_a_passed_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&X3, &[3]), true);
    let l = (x + x).sum();
    // pass 1 grows: the root, the slot list, the expand's scratch, the sum node's
    // gradient, the copy into `x`
    l.backward();
    assert_eq!(tape.backward_stats(), grown(stats(2, 1, 1, 0, 0, 1, 1), 5));
    close("x", &x.grad().unwrap().into_vec(), &[2.0; 3]);
    l.backward();
    assert_eq!(tape.backward_stats(), stats(2, 1, 1, 0, 0, 0, 2));
    close("x", &x.grad().unwrap().into_vec(), &[4.0; 3]);
}

/// `l = sum(sign(x))`: `sign`'s rule gives no contribution, so `x` is given zeros; once
/// `x` has a gradient, nothing is added to it.
#[test]
fn an_input_without_a_contribution_gets_zeros_once() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&X3, &[3]), true);
    let l = x.sign().sum();
    l.backward();
    // grows: the root, the slot list, the expand's scratch, `sign`'s gradient, `x`'s zeros
    assert_eq!(tape.backward_stats(), BackwardStats { zeros: 1, ..grown(stats(2, 1, 1, 0, 0, 0, 0), 5) });
    close("x", &x.grad().unwrap().into_vec(), &[0.0; 3]);
    l.backward();
    assert_eq!(tape.backward_stats(), stats(2, 1, 1, 0, 0, 0, 0));
}

/// `l = sum(x / w)`: `dx = dy / w` is computed straight into `x`'s gradient; `dw = -(dy *
/// (y / w))` needs `y / w` in scratch first (a pending value read by the product), then the
/// product and the negation: three scratch values, the last moved into `w`'s gradient.
#[test]
fn a_pending_value_read_by_another_rule_is_computed_into_scratch() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&X3, &[3]), true);
    let wv = [2.0, 4.0, -0.5];
    let w = tape.var(tape.parameter(Tensor::from_slice(&wv, &[3])));
    let l = (x / w).sum();
    l.backward();
    // grows: the root, the slot list twice (five slots: expand, dx, y / w, product,
    // negation), the four scratch buffers (all but dx's), the division's gradient, `x`'s,
    // `w`'s
    assert_eq!(tape.backward_stats(), grown(stats(2, 4, 2, 0, 1, 0, 0), 10));
    let dx: Vec<f64> = wv.iter().map(|w| 1.0 / w).collect();
    let dw: Vec<f64> = X3.iter().zip(&wv).map(|(x, w)| -x / (w * w)).collect();
    close("x", &x.grad().unwrap().into_vec(), &dx);
    close("w", &w.grad().unwrap().into_vec(), &dw);
    l.backward();
    // `dx` added in place, `dw` added from scratch
    assert_eq!(tape.backward_stats(), stats(2, 4, 1, 0, 1, 0, 1));
}

/// `l = sum(x * b)` with `b` broadcast along the rows: `dx = dy * b` broadcasts (scratch,
/// moved), `db = dy * x` is summed back to `b`'s shape (computed into scratch, then the
/// sum: moved).
#[test]
fn broadcast_gradients_are_summed_back_through_scratch() {
    let tape = Tape::<f64>::new();
    let xv = [0.5, -1.0, 2.0, 1.0, 0.0, 3.0];
    let x = tape.leaf(Tensor::from_slice(&xv, &[2, 3]), true);
    let b = tape.leaf(Tensor::from_slice(&X3, &[3]), true);
    let l = (x * b).sum();
    l.backward();
    // grows: the root, the slot list, the expand's, `dx`'s, `dy * x`'s and the sum's
    // scratch, the product's, `x`'s and `b`'s gradients
    assert_eq!(tape.backward_stats(), grown(stats(2, 4, 3, 0, 0, 0, 0), 9));
    close("x", &x.grad().unwrap().into_vec(), &[0.5, -1.0, 2.0, 0.5, -1.0, 2.0]);
    close("b", &b.grad().unwrap().into_vec(), &[1.5, -1.0, 5.0]);
    l.backward();
    assert_eq!(tape.backward_stats(), stats(2, 4, 1, 0, 0, 0, 2));
}

/// A layer: `l = sum(h * h)`, `h = relu(x w + bias)`. `sum` moves its scratch into the
/// product's gradient; the product's two contributions to `h` and `relu`'s mask are
/// computed straight into gradients; `+ bias` shares `dy` with the matmul node and sums it
/// into scratch for `bias`; the matmul's two products are moved into `x` and `w`.
#[test]
fn a_layer_moves_shares_and_computes_in_place() {
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&[0.5, -1.0, 2.0, 1.0, 0.0, 3.0], &[2, 3]), true);
    let w = tape.var(tape.parameter(Tensor::from_slice(&[0.5, -1.0, 2.0, 1.0, 0.0, 3.0], &[3, 2])));
    let bias = tape.var(tape.parameter(Tensor::from_slice(&[0.1, 0.2], &[2])));
    let h = (x.matmul(w) + bias).relu();
    let l = (h * h).sum();
    l.backward();
    // grows: the root; the slot list twice (5 slots); scratch: expand, the bias sum, the
    // two matmul products; gradients: the product's, `h`'s, the sum node's, `bias`'s,
    // `x`'s, `w`'s
    assert_eq!(tape.backward_stats(), grown(stats(5, 4, 4, 1, 3, 0, 0), 13));
    let first = (x.grad().unwrap().into_vec(), w.grad().unwrap().into_vec(), bias.grad().unwrap().into_vec());
    for pass in 2..=3 {
        l.backward();
        // `x`, `w`, `bias` have gradients now: added
        assert_eq!(tape.backward_stats(), stats(5, 4, 1, 1, 3, 0, 3), "pass {pass}");
    }
    let k = 3.0;
    close("x", &x.grad().unwrap().into_vec(), &first.0.iter().map(|g| k * g).collect::<Vec<_>>());
    close("w", &w.grad().unwrap().into_vec(), &first.1.iter().map(|g| k * g).collect::<Vec<_>>());
    close("bias", &bias.grad().unwrap().into_vec(), &first.2.iter().map(|g| k * g).collect::<Vec<_>>());
}

/// A training step recorded again each time (`Tape::scope`): the tape keeps every buffer,
/// so from the second step no backward pass grows one, and each step does the same.
#[test]
fn training_steps_grow_no_buffer_after_the_first() {
    let mut tape = Tape::<f64>::new();
    let w1 = tape.parameter(Tensor::from_slice(&[0.3, -0.2, 0.5, 0.1, -0.4, 0.6, 0.2, 0.7], &[2, 4]));
    let w2 =
        tape.parameter(Tensor::from_slice(&[0.5, -0.6, 0.1, 0.3, -0.2, 0.4, 0.9, -0.1, 0.2, 0.8, -0.5, 0.0], &[4, 3]));
    let b1 = tape.parameter(Tensor::from_slice(&[0.01, -0.02, 0.03, 0.0], &[4]));
    let mut seen = Vec::new();
    for step in 0..4 {
        tape.zero_grad();
        let s = tape.scope(|tape| {
            let x = tape.input(Tensor::from_slice(&[1.0, 2.0, -1.0, 0.5, 0.0, -2.0], &[3, 2]));
            let target = tape.input(Tensor::from_slice(&[0.0, 2.0, 1.0], &[3]));
            let h = (x.matmul(tape.var(w1)) + tape.var(b1)).tanh();
            let loss = h.matmul(tape.var(w2)).cross_entropy(target, Reduction::Mean, DEFAULT_IGNORE_INDEX);
            loss.backward();
            tape.backward_stats()
        });
        if step == 0 {
            assert!(s.grown > 0, "the first pass sizes its buffers: {s:?}");
        } else {
            assert_eq!(s.grown, 0, "step {step} grew a buffer: {s:?}");
            assert_eq!(s, seen[0], "step {step} differs from step 1");
        }
        if step > 0 {
            seen.push(s);
        } else {
            seen.push(BackwardStats { grown: 0, ..s });
        }
    }
}

/// A pass from an interior node with an upstream gradient of four elements: the seed is
/// copied into the root's gradient (which then has room for exactly four, so a second pass
/// grows nothing); `x * x` computes both contributions straight into `x`'s gradient. A
/// pass from the leaf itself moves a scratch copy of the seed into its gradient.
#[test]
fn seeded_passes_from_an_interior_node_and_from_a_leaf() {
    let tape = Tape::<f64>::new();
    let xv = [0.5, -1.0, 2.0, 3.0];
    let x = tape.leaf(Tensor::from_slice(&xv, &[4]), true);
    let y = x * x;
    let seed = Tensor::from_slice(&[1.0, 2.0, -1.0, 0.5], &[4]);
    y.backward_with(&seed);
    // grows: the root, the slot list, `x`'s gradient
    assert_eq!(tape.backward_stats(), grown(stats(1, 0, 0, 0, 2, 0, 0), 3));
    close("x", &x.grad().unwrap().into_vec(), &[1.0, -4.0, -4.0, 3.0]);
    y.backward_with(&seed);
    assert_eq!(tape.backward_stats(), stats(1, 0, 0, 0, 2, 0, 0));
    close("x", &x.grad().unwrap().into_vec(), &[2.0, -8.0, -8.0, 6.0]);

    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_slice(&xv, &[4]), true);
    x.backward_with(&seed);
    // grows: the slot list, the scratch copy of the seed, `x`'s gradient
    assert_eq!(tape.backward_stats(), grown(stats(0, 1, 1, 0, 0, 0, 0), 3));
    close("x", &x.grad().unwrap().into_vec(), seed.data());
    x.backward_with(&seed);
    assert_eq!(tape.backward_stats(), stats(0, 1, 0, 0, 0, 0, 1));
    close("x", &x.grad().unwrap().into_vec(), &seed.data().iter().map(|s| 2.0 * s).collect::<Vec<_>>());
}
