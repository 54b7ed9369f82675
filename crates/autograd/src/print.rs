//! Printing tensors and variables as PyTorch prints tensors (`torch._tensor_str`, default
//! print options), followed by the shape and dtype:
//!
//! ```text
//! tensor([[ 0.5000, -1.2500],
//!         [ 3.0000,  0.1250]], shape=[2, 2], dtype=f32)
//! ```
//!
//! - All shown values share one format: integers as `3.` when every finite value is an
//!   integer, scientific `1.2340e+04` when the nonzero magnitudes span more than 1000x, exceed
//!   1e8 or go below 1e-4, else fixed with 4 decimals (another precision with `{:.2}`);
//!   values are right-aligned to one width.
//! - More than 1000 elements are summarised: 3 items at each end of every dimension, `...`
//!   between.
//! - Rows wrap at 80 columns.
//!
//! A [`Var`] prints its value the same way, adding whether it requires grad and whether a
//! gradient has arrived.

use std::fmt;

use crate::float::Float;
use crate::tensor::Tensor;
use crate::var::Var;

/// Elements above which a tensor is summarised (PyTorch's `threshold`).
const THRESHOLD: usize = 1000;
/// Items kept at each end of a summarised dimension (PyTorch's `edgeitems`).
const EDGE: usize = 3;
/// Line width (PyTorch's `linewidth`).
const LINEWIDTH: usize = 80;
/// Decimals by default (PyTorch's `precision`).
const PRECISION: usize = 4;

/// How every shown element is formatted.
struct ElementFormat {
    precision: usize,
    int_mode: bool,
    sci_mode: bool,
    width: usize,
}

impl ElementFormat {
    /// Decides the format from the values that will be shown.
    fn new(values: &[f64], precision: usize) -> Self {
        let mut f = ElementFormat { precision, int_mode: true, sci_mode: false, width: 1 };
        let nz: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v != 0.0).collect();
        if nz.is_empty() {
            // zeros and non-finite values only: printed as they are (`0.`, `nan`, `inf`)
            return f;
        }
        let (min, max) = nz.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v.abs()), hi.max(v.abs())));
        f.int_mode = nz.iter().all(|v| v.fract() == 0.0);
        f.sci_mode = max / min > 1000.0 || max > 1e8 || (!f.int_mode && min < 1e-4);
        for &v in &nz {
            f.width = f.width.max(f.raw(v).len());
        }
        f
    }

    /// One value, unpadded.
    fn raw(&self, v: f64) -> String {
        if self.sci_mode {
            sci(v, self.precision)
        } else if self.int_mode {
            if v.is_finite() {
                format!("{v:.0}.")
            } else {
                non_finite(v)
            }
        } else if v.is_finite() {
            format!("{v:.p$}", p = self.precision)
        } else {
            non_finite(v)
        }
    }

    /// One value, right-aligned to the common width.
    fn format(&self, v: f64) -> String {
        let s = self.raw(v);
        format!("{s:>w$}", w = self.width)
    }
}

/// Python's spelling of a non-finite float.
fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// Python's `{:.pe}`: a mantissa, `e`, a sign and at least two exponent digits.
fn sci(v: f64, p: usize) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    let s = format!("{v:.p$e}");
    let (mantissa, exp) = s.split_once('e').expect("Rust's {:e} has an exponent");
    let e: i32 = exp.parse().expect("an integer exponent");
    format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Flat indices of the elements shown (all, or the summarised edges of each dimension).
fn shown(shape: &[usize], summarize: bool, base: usize, out: &mut Vec<usize>) {
    let Some((&n, rest)) = shape.split_first() else {
        out.push(base);
        return;
    };
    let step: usize = rest.iter().product();
    for i in kept(n, summarize) {
        shown(rest, summarize, base + i * step, out);
    }
}

/// Indices kept along a dimension of size `n`.
fn kept(n: usize, summarize: bool) -> Vec<usize> {
    if summarize && n > 2 * EDGE {
        (0..EDGE).chain(n - EDGE..n).collect()
    } else {
        (0..n).collect()
    }
}

/// The bracketed body of a (sub-)tensor starting at flat index `base`.
fn body(shape: &[usize], data: &[f64], base: usize, indent: usize, summarize: bool, f: &ElementFormat) -> String {
    match shape {
        [] => f.raw(data[base]),
        [n] => {
            let mut items: Vec<String> = Vec::new();
            for (j, i) in kept(*n, summarize).into_iter().enumerate() {
                if summarize && *n > 2 * EDGE && j == EDGE {
                    items.push(" ...".into());
                }
                items.push(f.format(data[base + i]));
            }
            let per_line = ((LINEWIDTH.saturating_sub(indent)) / (f.width + 2)).max(1);
            let lines: Vec<String> = items.chunks(per_line).map(|c| c.join(", ")).collect();
            format!("[{}]", lines.join(&format!(",\n{}", " ".repeat(indent + 1))))
        }
        [n, rest @ ..] => {
            let step: usize = rest.iter().product();
            let mut slices = Vec::new();
            for (j, i) in kept(*n, summarize).into_iter().enumerate() {
                if summarize && *n > 2 * EDGE && j == EDGE {
                    slices.push("...".to_string());
                }
                slices.push(body(rest, data, base + i * step, indent + 1, summarize, f));
            }
            let sep = format!(",{}{}", "\n".repeat(shape.len() - 1), " ".repeat(indent + 1));
            format!("[{}]", slices.join(&sep))
        }
    }
}

/// Writes `tensor(<values>, <suffixes>)` with PyTorch's layout and suffix wrapping.
pub(crate) fn write_tensor(
    out: &mut fmt::Formatter<'_>,
    shape: &[usize],
    data: &[f64],
    precision: usize,
    suffixes: &[String],
) -> fmt::Result {
    const PREFIX: &str = "tensor(";
    let indent = PREFIX.len();
    let summarize = data.len() > THRESHOLD;
    let mut idx = Vec::new();
    if !data.is_empty() {
        shown(shape, summarize, 0, &mut idx);
    }
    let values: Vec<f64> = idx.iter().map(|&i| data[i]).collect();
    let f = ElementFormat::new(&values, precision);
    let text = if data.is_empty() { "[]".to_string() } else { body(shape, data, 0, indent, summarize, &f) };
    let mut s = format!("{PREFIX}{text}");
    let mut last_line = s.len() - s.rfind('\n').map_or(0, |i| i + 1);
    for suffix in suffixes {
        if last_line + suffix.len() + 2 > LINEWIDTH {
            s.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
            last_line = indent + suffix.len();
        } else {
            s.push_str(&format!(", {suffix}"));
            last_line += suffix.len() + 2;
        }
    }
    s.push(')');
    out.write_str(&s)
}

fn shape_and_dtype<T: Float>(shape: &[usize]) -> [String; 2] {
    [format!("shape={shape:?}"), format!("dtype={}", T::NAME)]
}

impl<T: Float> fmt::Display for Tensor<T> {
    /// PyTorch's layout, then the shape and dtype (see the [module](crate::print)
    /// documentation); `{:.2}` sets the decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data: Vec<f64> = self.data().iter().map(|v| v.to_f64()).collect();
        write_tensor(f, self.shape(), &data, f.precision().unwrap_or(PRECISION), &shape_and_dtype::<T>(self.shape()))
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    /// The same as [`Display`](fmt::Display) (summarised, never every element of a large
    /// tensor).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T: Float> fmt::Display for Var<'_, T> {
    /// The value as a tensor prints, then `requires_grad` and whether a gradient has
    /// arrived (`has_grad`), e.g.
    /// `tensor([1.0000, 2.0000], shape=[2], dtype=f32, requires_grad=true, has_grad=false)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value();
        let data: Vec<f64> = value.data().iter().map(|v| v.to_f64()).collect();
        let [shape, dtype] = shape_and_dtype::<T>(value.shape());
        let flags = [
            shape,
            dtype,
            format!("requires_grad={}", self.requires_grad()),
            format!("has_grad={}", self.grad().is_some()),
        ];
        write_tensor(f, value.shape(), &data, f.precision().unwrap_or(PRECISION), &flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_scientific_notation() {
        assert_eq!(sci(12340.0, 4), "1.2340e+04");
        assert_eq!(sci(-0.000012, 2), "-1.20e-05");
        assert_eq!(sci(1e100, 1), "1.0e+100");
    }

    #[test]
    fn summarised_integers() {
        // as torch.arange(1000., 3000.) prints
        let t = Tensor::<f32>::from_fn(&[2000], |i| 1000.0 + i as f32);
        assert_eq!(t.to_string(), "tensor([1000., 1001., 1002.,  ..., 2997., 2998., 2999.], shape=[2000], dtype=f32)");
    }
}
