//! Tensors print as PyTorch prints them (layout, number format, summarising with `...`,
//! line wrapping), followed by the shape and dtype: compared with `repr(tensor)` from
//! PyTorch 2.15 (`tests/fixtures/print.json`, made by `tests/fixtures/make_print.py`).

use serde_json::Value;
use tapegrad::{Tape, Tensor};

/// Our text without the shape and dtype suffixes: PyTorch's text for a float32 tensor.
fn without_suffixes(s: &str) -> String {
    let at = s.rfind("shape=").expect("a shape suffix");
    let head = s[..at].trim_end();
    format!("{})", head.strip_suffix(',').expect("a comma before the suffix"))
}

#[test]
fn matches_pytorch() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/print.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for c in cases {
        let shape: Vec<usize> = c["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let data: Vec<f32> =
            c["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect();
        let p = c["precision"].as_u64().unwrap() as usize;
        let t = Tensor::new(data, &shape);
        let ours = if p == 4 { t.to_string() } else { format!("{t:.p$}") };
        let want = c["text"].as_str().unwrap();
        assert_eq!(without_suffixes(&ours), want, "shape {shape:?}, precision {p}; ours in full:\n{ours}");
        assert!(ours.contains(&format!("shape={shape:?}")) && ours.contains("dtype=f32"), "{ours}");
    }
}

#[test]
fn shape_and_dtype_suffixes() {
    let t = Tensor::<f64>::new(vec![1.5, -2.0], &[2]);
    assert_eq!(t.to_string(), "tensor([ 1.5000, -2.0000], shape=[2], dtype=f64)");
    assert_eq!(format!("{t:?}"), t.to_string());
    assert_eq!(Tensor::<f32>::scalar(0.25).to_string(), "tensor(0.2500, shape=[], dtype=f32)");
    // a long last line moves the suffix to its own line, aligned under the values
    let long = Tensor::<f32>::from_fn(&[16], |i| i as f32 + 0.5);
    let s = long.to_string();
    assert!(s.ends_with(",\n       shape=[16], dtype=f32)"), "{s}");
    // a large tensor is summarised, never dumped
    let big = Tensor::<f32>::zeros(&[1000, 1000]);
    assert!(big.to_string().len() < 400);
}

#[test]
fn variables_show_their_value_and_gradient_state() {
    let tape = Tape::<f32>::new();
    let x = tape.leaf(Tensor::new(vec![1.0, 2.0], &[2]), true);
    assert_eq!(x.to_string(), "tensor([1., 2.], shape=[2], dtype=f32, requires_grad=true, has_grad=false)");
    let y = (x * x).sum();
    y.backward();
    assert_eq!(x.to_string(), "tensor([1., 2.], shape=[2], dtype=f32, requires_grad=true, has_grad=true)");
    let c = tape.input(Tensor::scalar(3.0));
    assert_eq!(format!("{c:.1}"), "tensor(3., shape=[], dtype=f32, requires_grad=false, has_grad=false)");
    assert_eq!(format!("{y}"), "tensor(5., shape=[], dtype=f32, requires_grad=true, has_grad=true)");
}
