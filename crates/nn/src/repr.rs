//! Numbers as Python writes them, for printouts and files compared with PyTorch's.

/// `x` as Python's `repr` writes a float (what PyTorch's layer printouts and reference
/// generators show): the shortest digits that read back as `x`, positional for exponents
/// -4 to 15 (`0.001`, `1.0`, `-0.0`), else in exponent form with a sign and at least two
/// exponent digits (`1e-05`, `1.5e+16`); `inf`, `-inf`, `nan`.
pub fn py_float(x: f64) -> String {
    if !x.is_finite() {
        // Rust writes the infinities as Python does (`inf`, `-inf`), NaN as `NaN`
        return if x.is_nan() { "nan".into() } else { format!("{x}") };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` writes an exponent");
    let e: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    if x == 0.0 || (-4..16).contains(&e) {
        let plain = format!("{x}");
        if plain.contains('.') {
            plain
        } else {
            plain + ".0"
        }
    } else {
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::py_float;

    /// Each `want` is Python 3's `repr(x)`.
    #[test]
    fn python_float_repr() {
        for (x, want) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.0, "-2.0"),
            (1e-05, "1e-05"),
            (-1e-05, "-1e-05"),
            (0.0001, "0.0001"),
            (0.001, "0.001"),
            (1.5e-7, "1.5e-07"),
            (123456.0, "123456.0"),
            (2.5e15, "2500000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678e20, "1.2345678e+20"),
            (1e-100, "1e-100"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.7576315999031067, "0.7576315999031067"),
            (-0.00083808228, "-0.00083808228"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(py_float(x), want, "{x}");
        }
    }
}
