//! The JSON writer of every `--json`: the layout of the PyTorch reference generators (keys
//! in order, numbers as Python's `repr`), so a script can compare any run with PyTorch's.
//! JSON has no NaN or infinity: such values are written as `null`.

use std::fmt::Write;

/// A float as Python's `json.dumps` writes it: finite values as `repr`
/// ([`tapegrad_nn::py_float`]), NaN and the infinities as `NaN`, `Infinity`, `-Infinity`.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    tapegrad_nn::py_float(x)
}

/// A JSON value in the reference generators' layout (see [`to_text`]).
pub(crate) enum J {
    /// A number (or `null`), already formatted.
    Num(String),
    /// A string (the project's keys and names need no escaping).
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A list.
    List(Vec<J>),
    /// An object, keys in order.
    Obj(Vec<(&'static str, J)>),
}

/// A number for JSON: Python's repr, or `null` for NaN and infinities (JSON has neither).
pub(crate) fn num(x: f64) -> J {
    J::Num(if x.is_finite() { py_float(x) } else { "null".into() })
}

/// `null`.
pub(crate) fn null() -> J {
    J::Num("null".into())
}

/// A string.
pub(crate) fn string(s: &str) -> J {
    J::Str(s.into())
}

/// A list of floats ([`num`] each).
pub(crate) fn floats<T: Copy + Into<f64>>(v: &[T]) -> J {
    J::List(v.iter().map(|&x| num(x.into())).collect())
}

/// A list of whole numbers.
pub(crate) fn ints(v: &[usize]) -> J {
    J::List(v.iter().map(|x| J::Num(x.to_string())).collect())
}

/// A matrix as the list of its rows.
pub(crate) fn rows(t: &tapegrad::Tensor<f32>) -> J {
    let w = t.shape()[1];
    J::List(t.data().chunks(w.max(1)).map(floats).collect())
}

/// Which lists the writer spreads over several lines (one element a line); every other
/// list is written on one line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Lists holding lists or objects (`make_reference.py`'s `dumps`).
    Nested,
    /// Lists holding objects only (`make_fixes_reference.py`'s `dumps`).
    Objects,
}

/// `doc` as the reference generator's `dumps` writes it (one key per line, lists of
/// numbers on one line), with a trailing newline.
pub(crate) fn to_text(doc: &J, layout: Layout) -> String {
    let mut out = String::new();
    write(&mut out, doc, 0, layout);
    out.push('\n');
    out
}

fn write(out: &mut String, v: &J, indent: usize, layout: Layout) {
    let pad = " ".repeat(indent);
    let inner = " ".repeat(indent + 1);
    let spread = |v: &J| match v {
        J::Obj(_) => true,
        J::List(_) => layout == Layout::Nested,
        _ => false,
    };
    match v {
        J::Num(s) => out.push_str(s),
        J::Str(s) => {
            let _ = write!(out, "\"{s}\"");
        }
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Obj(items) => {
            out.push_str("{\n");
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                let _ = write!(out, "{inner}\"{k}\": ");
                write(out, v, indent + 1, layout);
            }
            let _ = write!(out, "\n{pad}}}");
        }
        J::List(items) if items.iter().any(spread) => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&inner);
                write(out, v, indent + 1, layout);
            }
            let _ = write!(out, "\n{pad}]");
        }
        J::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, v, indent + 1, layout);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::py_float;

    /// Python's `json.dumps` of each value (finite ones are `repr`, tested in tapegrad-nn).
    #[test]
    fn python_json_floats() {
        for (x, want) in [
            (1e-05, "1e-05"),
            (-0.0, "-0.0"),
            (0.001, "0.001"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(py_float(x), want, "{x}");
        }
    }
}
