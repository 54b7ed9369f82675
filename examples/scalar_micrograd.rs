//! micrograd's example on the scalar engine, with its tape listing.
//!
//! `cargo run --example scalar_micrograd`

use tapegrad::ScalarTape;

fn main() {
    let tape = ScalarTape::new();
    let a = tape.leaf(-4.0);
    let b = tape.leaf(2.0);
    let mut c = a + b;
    let mut d = a * b + b.powf(3.0);
    c = c + (c + 1.0);
    c = c + (1.0 + c + (-a));
    d = d + (d * 2.0 + (b + a).relu());
    d = d + (3.0 * d + (b - a).relu());
    let e = c - d;
    let f = e.powf(2.0);
    let mut g = f / 2.0;
    g = g + 10.0 / f;
    g.backward();
    println!("g = {:.4}  (micrograd and PyTorch: 24.7041)", g.value());
    println!("dg/da = {:.4}  (138.8338)", a.grad());
    println!("dg/db = {:.4}  (645.5773)", b.grad());
    println!();
    print!("{tape}");
}
