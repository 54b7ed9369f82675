//! Reading eval inputs out of JSON, with a clear message for anything missing or ill-formed.

use serde_json::Value;

/// The field `name` of an object.
pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("input has no field {name:?}"))
}

/// A number.
pub fn number(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{what}: expected a number"))
}

/// A non-negative integer field.
pub fn count(v: &Value, name: &str) -> Result<usize, String> {
    let f = field(v, name)?;
    f.as_u64().map(|n| n as usize).ok_or_else(|| format!("{name}: expected a non-negative integer"))
}

/// A number field.
pub fn float(v: &Value, name: &str) -> Result<f64, String> {
    number(field(v, name)?, name)
}

/// A list of numbers.
pub fn vector(v: &Value, what: &str) -> Result<Vec<f64>, String> {
    let list = v.as_array().ok_or_else(|| format!("{what}: expected a list of numbers"))?;
    list.iter().enumerate().map(|(i, x)| x.as_f64().ok_or_else(|| format!("{what}[{i}]: expected a number"))).collect()
}

/// `v` repeated `times` times, or an error (not an abort) when that does not fit in memory.
pub fn repeated(v: &[f64], times: usize, name: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    v.len()
        .checked_mul(times)
        .and_then(|len| out.try_reserve_exact(len).ok())
        .ok_or_else(|| format!("{name}: {times} copies of {} numbers do not fit in memory", v.len()))?;
    for _ in 0..times {
        out.extend_from_slice(v);
    }
    Ok(out)
}

/// A list-of-numbers field.
pub fn vector_field(v: &Value, name: &str) -> Result<Vec<f64>, String> {
    vector(field(v, name)?, name)
}

/// A rectangular list of lists of numbers: the rows flattened, and the row length (0 for
/// no rows).
pub fn matrix(v: &Value, what: &str) -> Result<(Vec<f64>, usize), String> {
    let rows = v.as_array().ok_or_else(|| format!("{what}: expected a list of lists of numbers"))?;
    let mut data = Vec::new();
    let mut cols = None;
    for (i, r) in rows.iter().enumerate() {
        let row = vector(r, &format!("{what}[{i}]"))?;
        match cols {
            None => cols = Some(row.len()),
            Some(c) if c != row.len() => {
                return Err(format!("{what}: row {i} has {} entries, row 0 has {c}", row.len()));
            }
            _ => {}
        }
        data.extend(row);
    }
    Ok((data, cols.unwrap_or(0)))
}

/// A matrix field with exactly `rows` rows of `cols` entries.
pub fn matrix_field(v: &Value, name: &str, rows: usize, cols: usize) -> Result<Vec<f64>, String> {
    let (data, c) = matrix(field(v, name)?, name)?;
    if data.len() != rows * cols || (rows > 0 && c != cols) {
        return Err(format!("{name}: expected {rows} rows of {cols} numbers"));
    }
    Ok(data)
}

/// Numbers as a JSON list.
pub fn to_json(x: &[f64]) -> Value {
    Value::Array(x.iter().map(|&v| Value::from(v)).collect())
}

/// Row-major numbers as a JSON list of `rows` rows of `cols`.
pub fn to_json_rows(x: &[f64], rows: usize, cols: usize) -> Value {
    Value::Array((0..rows).map(|r| to_json(&x[r * cols..(r + 1) * cols])).collect())
}
