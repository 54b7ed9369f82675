//! Seeing inside a tape: the Wengert-list listing ([`Listing`], `Display` on [`Tape`]) and
//! a Graphviz picture ([`Tape::to_dot`]).

use std::fmt::{self, Write};

use crate::float::Float;
use crate::ops::Op;
use crate::tape::{Id, Inner, Param, Tape};

/// A short summary of values: all of them when few, else mean/min/max.
fn summary<T: Float>(v: &[T]) -> String {
    if v.len() <= 4 {
        let items: Vec<String> = v.iter().map(|x| format!("{:.4}", x.to_f64())).collect();
        return format!("[{}]", items.join(", "));
    }
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for x in v {
        let x = x.to_f64();
        lo = lo.min(x);
        hi = hi.max(x);
        sum += x;
    }
    format!("mean {:.4} min {:.4} max {:.4}", sum / v.len() as f64, lo, hi)
}

/// A printable Wengert list of a tape: one line per parameter and per node with id, op,
/// input ids and shape; optionally value and gradient summaries and source locations.
pub struct Listing<'a, T: Float> {
    tape: &'a Tape<T>,
    values: bool,
    grads: bool,
    locations: bool,
}

impl<'a, T: Float> Listing<'a, T> {
    /// Also print a summary of each value.
    pub fn values(mut self, on: bool) -> Self {
        self.values = on;
        self
    }
    /// Also print a summary of each gradient.
    pub fn grads(mut self, on: bool) -> Self {
        self.grads = on;
        self
    }
    /// Also print the source location that recorded each node.
    pub fn locations(mut self, on: bool) -> Self {
        self.locations = on;
        self
    }
}

impl<T: Float> fmt::Display for Listing<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.tape.inner.borrow();
        let inner: &Inner<T> = &inner;
        writeln!(f, "tape<{}>: {} nodes, {} parameters", T::NAME, inner.len, inner.params.len())?;
        for (i, p) in inner.params.iter().enumerate() {
            let line =
                format!("  p{i:<4} = parameter{:<18} {:?}", if p.requires_grad { "" } else { " (no grad)" }, p.shape);
            writeln!(f, "{}", self.with_slot(line, &p.value, p.grad()))?;
        }
        for (i, n) in inner.nodes[..inner.len].iter().enumerate() {
            let rhs = match &n.op {
                Op::Leaf => if n.slot.requires_grad { "leaf (requires grad)" } else { "input" }.to_string(),
                op => {
                    let args: Vec<String> = n.inputs[..op.arity()].iter().map(|id| id.to_string()).collect();
                    format!("{}({})", op.name(), args.join(", "))
                }
            };
            let line = format!("  %{i:<4} = {rhs:<26} {:?}", n.slot.shape);
            let mut line = self.with_slot(line, &n.slot.value, inner.grad(Id::node(i)));
            if self.locations {
                let _ = write!(line, "  @ {}", n.loc);
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

impl<T: Float> Listing<'_, T> {
    /// `line` followed by the value and gradient summaries that are switched on.
    fn with_slot(&self, mut line: String, value: &[T], grad: Option<&[T]>) -> String {
        if self.values {
            let _ = write!(line, "  value {}", summary(value));
        }
        if self.grads {
            let _ = write!(line, "  grad {}", grad.map_or_else(|| "-".into(), summary));
        }
        line
    }
}

impl<T: Float> Tape<T> {
    /// The tape as a Wengert list, with options (`tape.listing().values(true)`).
    pub fn listing(&self) -> Listing<'_, T> {
        Listing { tape: self, values: false, grads: false, locations: false }
    }

    /// The tape as a Graphviz DOT graph: ops as boxes labelled with the op and the result
    /// shape, inputs as ellipses, parameters as filled boxes (named by `names`, e.g. a
    /// module's `named_parameters()`, else `p0`, `p1`, ...). Solid arrows carry values
    /// forward; dashed red arrows show where gradients flow in the backward pass (only along
    /// edges that need a gradient). Render with `dot -Tsvg`.
    pub fn to_dot(&self, names: &[(String, Param)]) -> String {
        let inner = self.inner.borrow();
        let mut s = String::new();
        let _ = writeln!(s, "digraph tape {{");
        let _ = writeln!(s, "  rankdir=LR;");
        let _ = writeln!(s, "  node [fontname=\"Helvetica\", fontsize=11];");
        let _ = writeln!(s, "  edge [fontname=\"Helvetica\", fontsize=9];");
        let used_params: Vec<usize> = {
            let mut v: Vec<usize> = inner.nodes[..inner.len]
                .iter()
                .flat_map(|n| n.inputs[..n.op.arity()].iter().filter(|i| i.is_param()).map(|i| i.index()))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        for &i in &used_params {
            let p = &inner.params[i];
            let name =
                names.iter().find(|(_, q)| q.index() == i).map(|(n, _)| n.clone()).unwrap_or_else(|| format!("p{i}"));
            let _ = writeln!(
                s,
                "  p{i} [shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2ff\", label=\"{name}\\n{:?}{}\"];",
                p.shape.as_slice(),
                if p.requires_grad { "\\nparameter" } else { "\\nconstant" }
            );
        }
        let last = inner.len.saturating_sub(1);
        for (i, n) in inner.nodes[..inner.len].iter().enumerate() {
            let shape = format!("{:?}", n.slot.shape.as_slice());
            let attrs = match &n.op {
                Op::Leaf if n.slot.requires_grad => {
                    format!("shape=ellipse, style=filled, fillcolor=\"#fff3cd\", label=\"leaf %{i}\\n{shape}\"")
                }
                Op::Leaf => format!("shape=ellipse, label=\"input %{i}\\n{shape}\""),
                op => {
                    let fill = if i == last { ", style=filled, fillcolor=\"#f8d7da\"" } else { "" };
                    format!("shape=box{fill}, label=\"{} %{i}\\n{shape}\"", op.name())
                }
            };
            let _ = writeln!(s, "  n{i} [{attrs}];");
            for &input in &n.inputs[..n.op.arity()] {
                let src = if input.is_param() { format!("p{}", input.index()) } else { format!("n{}", input.index()) };
                let _ = writeln!(s, "  {src} -> n{i};");
                if n.slot.requires_grad && inner.requires_grad(input) {
                    let _ = writeln!(s, "  n{i} -> {src} [style=dashed, color=\"#c0392b\", constraint=false];");
                }
            }
        }
        let _ =
            writeln!(s, "  legend [shape=note, label=\"solid: values (forward)\\ndashed red: gradients (backward)\"];");
        let _ = writeln!(s, "}}");
        s
    }
}

impl<T: Float> fmt::Display for Tape<T> {
    /// The Wengert list (ids, ops, inputs, shapes); see [`Tape::listing`] for more.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.listing().fmt(f)
    }
}
