//! A Hessian-vector product by double backward: H·v = ∇(∇L · v).
//!
//! `cargo run --example hessian_vector`

use std::process::ExitCode;

use tapegrad::{Tape, Tensor};
use tapegrad_demo::output;

fn main() -> ExitCode {
    if let Err(end) = output::parse_none("hessian_vector", "A Hessian-vector product by double backward") {
        return end;
    }
    let tape = Tape::<f64>::new();
    let w = tape.leaf(&Tensor::new(vec![0.5, -1.0, 2.0], &[3]), true);
    let v = tape.input(Tensor::new(vec![1.0, 0.0, -1.0], &[3]));
    let loss = (w * w * w).sum(); // L(w) = Σ w³, so ∇L = 3w² and H = diag(6w)
    let g = tape.grad(loss, &[w])[0]; // ∇L, recorded on the tape
    let hv = tape.grad((g * v).sum(), &[w])[0]; // ∇(∇L·v) = H·v
    assert_eq!(hv.value().data(), &[3.0, 0.0, -12.0]);
    output::print(&format!("∇L  = {}\nH·v = {}  (6 w ⊙ v = [3, 0, -12])\n", g.value(), hv.value()))
}
