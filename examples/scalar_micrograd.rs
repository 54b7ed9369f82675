//! micrograd's example on the scalar engine, with its tape listing.
//!
//! `cargo run --example scalar_micrograd`

use std::process::ExitCode;

use tapegrad::ScalarTape;
use tapegrad_demo::output;

fn main() -> ExitCode {
    if let Err(end) = output::parse_none("scalar_micrograd", "micrograd's example on the scalar engine, with its tape")
    {
        return end;
    }
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
    output::print(&format!(
        "g = {:.4}  (micrograd and PyTorch: 24.7041)\ndg/da = {:.4}  (138.8338)\ndg/db = {:.4}  (645.5773)\n\n{tape}",
        g.value(),
        a.grad(),
        b.grad()
    ))
}
