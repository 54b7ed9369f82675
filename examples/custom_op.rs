//! Adding an op from outside the crate: softplus(x) = ln(1 + e^x), its forward kernel and
//! its backward rule (VJP), checked with gradcheck and gradgradcheck.
//!
//! `cargo run --example custom_op`
//!
//! Inside the crate an op goes in the file of its family under
//! `crates/autograd/src/ops/` (a variant, its kernel and its VJP side by side). From
//! outside, implement [`CustomOp`]: the VJP is written with the same graph ops as the
//! built-in rules, so it runs in the plain backward pass *and* can be differentiated again.

use std::fmt::Write;
use std::process::ExitCode;
use std::sync::Arc;

use tapegrad::ops::{CustomOp, Graph, Unary, Value, View};
use tapegrad::{gradcheck, gradgradcheck, Shape, Tape, Tensor};
use tapegrad_demo::output;

#[derive(Debug)]
struct Softplus;

impl CustomOp<f64> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn arity(&self) -> usize {
        1
    }
    fn out_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        Ok(Shape::from_slice(inputs[0]))
    }
    // y = ln(1 + e^x)
    fn forward(&self, inputs: &[View<'_, f64>], out: &mut [f64]) {
        for (y, &x) in out.iter_mut().zip(inputs[0].data) {
            *y = if x > 20.0 { x } else { x.exp().ln_1p() };
        }
    }
    // d/dx softplus(x) = sigmoid(x)
    fn vjp(
        &self,
        g: &mut dyn Graph<f64, V = Value>,
        x: &[Value],
        _y: Value,
        dy: Value,
        _need: [bool; 3],
    ) -> [Option<Value>; 3] {
        let s = g.unary(Unary::Sigmoid, x[0]);
        [Some(g.mul(dy, s)), None, None]
    }
}

fn main() -> ExitCode {
    if let Err(end) = output::parse_none("custom_op", "Adding softplus from outside the crate, checked with gradcheck")
    {
        return end;
    }
    let op: Arc<dyn CustomOp<f64>> = Arc::new(Softplus);
    let x = Tensor::new(vec![-2.0, -0.5, 0.0, 0.7, 3.0], &[5]);

    let tape = Tape::<f64>::new();
    let xv = tape.leaf(&x, true);
    let y = tape.custom(op.clone(), &[xv]);
    y.sum().backward();
    let mut text = String::new();
    let _ = writeln!(text, "softplus(x)      = {}", y.value());
    let _ = writeln!(text, "d/dx sum         = {}  (sigmoid(x))", xv.grad().unwrap());
    let _ = write!(text, "\n{tape}");

    let report = gradcheck(|t, v| t.custom(op.clone(), &[v[0]]), std::slice::from_ref(&x)).expect("first order");
    let _ = writeln!(text, "\ngradcheck: {} Jacobian entries, max error {:.2e}", report.entries, report.max_abs_err);
    let report = gradgradcheck(|t, v| t.custom(op.clone(), &[v[0]]), &[x]).expect("second order");
    let _ = writeln!(text, "gradgradcheck: {} entries, max error {:.2e}", report.entries, report.max_abs_err);
    output::print(&text)
}
