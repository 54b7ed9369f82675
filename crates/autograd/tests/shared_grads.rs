//! Interior gradients passed through unchanged (`a + b` gives `dy` to both) share their
//! buffer instead of being copied: every interior gradient must still read as that node's
//! gradient from the last pass that reached it, through chains of sharing, second
//! contributions (products' rules computed straight into a shared or an own gradient),
//! passes from other roots, and a reset tape.
//!
//! The expected gradients come from `Tape::grad` on a fresh tape: it records the same rules
//! as variables and never reads a node's gradient buffer.

use tapegrad::{Tape, Tensor, Var};

const X: [f64; 4] = [0.3, -1.2, 0.8, 2.0];

/// One backward pass: its root (a loss, or with a seed node `root - 2`), the seed, and the
/// interior nodes it reaches.
type Pass<'a> = (usize, Option<&'a [f64]>, &'a [usize]);

/// The graph: eleven interior nodes, most gradients passed through by adds, and two losses.
fn graph<'t>(tape: &'t Tape<f64>) -> (Var<'t, f64>, Vec<Var<'t, f64>>, [Var<'t, f64>; 2]) {
    let x = tape.leaf(Tensor::from_slice(&X, &[4]), true);
    let a = x * 2.0;
    let b = a + x; // a and x get b's gradient
    let c = b + a;
    let d = c.sin();
    let e = d + b;
    let f = e + c; // e gets f's gradient, which is g's: a chain of sharing
    let g = f + d;
    // g and c get a shared gradient first (v passes it through), then products' rules'
    // results, computed straight into the sum
    let u = g * c;
    let r = g * 3.0;
    let m = c * d;
    let v = u + r + g + c + m;
    let l1 = (v * v).sum();
    let l2 = (b * b).sum();
    (x, vec![a, b, c, d, e, f, g, u, r, m, v], [l1, l2])
}

/// The gradients of `x` and of the interior nodes for one pass: from loss `root`, or from
/// node `root - 2` with upstream gradient `seed`.
fn expected(root: usize, seed: Option<&[f64]>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let tape = Tape::<f64>::new();
    let (x, nodes, losses) = graph(&tape);
    let mut wrt = vec![x];
    wrt.extend(&nodes);
    let grads = match seed {
        None => tape.grad(losses[root], &wrt),
        Some(s) => tape.grad_with(nodes[root - 2], tape.input(Tensor::from_slice(s, &[4])), &wrt),
    };
    let mut grads: Vec<Vec<f64>> = grads.iter().map(|g| g.value().into_vec()).collect();
    let x = grads.remove(0);
    (x, grads)
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn shared_interior_gradients_read_as_their_own_across_passes() {
    let mut tape = Tape::<f64>::new();
    for round in 0..2 {
        // the second round reuses every buffer (and stale sharing marks) of the first
        tape.reset();
        let (x, nodes, losses) = graph(&tape);
        let mut want: Vec<Option<Vec<f64>>> = vec![None; nodes.len()];
        let mut want_x = vec![0.0; 4];
        let seed = [1.0, -0.5, 2.0, 0.25];
        // pass 1: l1 reaches every node; pass 2: l2 reaches a and b only (the others keep
        // pass 1's); pass 3: from f (index 5) with a seed: f, e, d, c, b, a, not g on
        let passes: [Pass; 3] =
            [(0, None, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), (1, None, &[0, 1]), (7, Some(&seed), &[0, 1, 2, 3, 4, 5])];
        for (pass, &(root, seed, reached)) in passes.iter().enumerate() {
            match seed {
                None => losses[root].backward(),
                Some(s) => nodes[root - 2].backward_with(&Tensor::from_slice(s, &[4])),
            }
            let (gx, g) = expected(root, seed);
            for &i in reached {
                want[i] = Some(g[i].clone());
            }
            for (v, w) in want_x.iter_mut().zip(&gx) {
                *v += w;
            }
            for (i, (node, w)) in nodes.iter().zip(&want).enumerate() {
                let what = format!("round {round}, pass {}, node {i}", pass + 1);
                close(&what, node.grad().expect("reached").data(), w.as_ref().expect("reached"));
            }
            close(&format!("round {round}, pass {}, leaf x", pass + 1), x.grad().unwrap().data(), &want_x);
        }
        // the listing reads the shared gradients too: e's is f's, the seed of pass 3
        let listing = tape.listing().grads(true).to_string();
        for line in ["%5    = add(%4, %2)", "%6    = add(%5, %3)"] {
            let line = listing.lines().find(|l| l.contains(line)).expect("listed");
            assert!(line.ends_with("grad [1.0000, -0.5000, 2.0000, 0.2500]"), "{line}");
        }
    }
}

/// Leaves and parameters whose only contribution is a gradient passed through (`x + u + w`)
/// get a copy, not a share: their gradients add up over passes with different seeds, where
/// a buffer shared with `y` would read as the last pass's gradient or as twice it. (`w` is
/// parameter 1 and node 1 is an op: a rule that took a parameter's number for a node's
/// would share it.)
#[test]
fn leaves_and_parameters_keep_their_own_copy_of_a_passed_gradient() {
    let mut tape = Tape::<f64>::new();
    let u = tape.parameter(Tensor::from_slice(&[1.0, -2.0], &[2]));
    let w = tape.parameter(Tensor::from_slice(&[0.25, 7.0], &[2]));
    let mut want = [0.0; 2];
    tape.scope(|tape| {
        let x = tape.leaf(Tensor::from_slice(&[0.5, 3.0], &[2]), true);
        // d/dx (x + u + w) = d/du = d/dw = 1: y's gradient passed on to all three
        let y = x + tape.var(u) + tape.var(w);
        for c in [[1.0, 2.0], [-3.0, 0.5], [4.0, 4.0]] {
            (y * tape.input(Tensor::from_slice(&c, &[2]))).sum().backward();
            want = [want[0] + c[0], want[1] + c[1]];
            close("x after a pass", &x.grad().expect("x has a gradient").into_vec(), &want);
            close("y after a pass", &y.grad().expect("y has a gradient").into_vec(), &c);
        }
    });
    close("u", &tape.param_grad(u).expect("u has a gradient").into_vec(), &want);
    close("w", &tape.param_grad(w).expect("w has a gradient").into_vec(), &want);
}
