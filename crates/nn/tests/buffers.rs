//! Buffers (BatchNorm's running statistics and `num_batches_tracked`) saved and loaded with
//! the parameters, against the state dict PyTorch wrote (`fixtures/bn_model.safetensors`,
//! made by `fixtures/make_norm_reference.py`: `Sequential(Linear(4, 8, bias=False),
//! BatchNorm1d(8), ReLU, Linear(8, 2))` trained 3 steps, so the buffers are not their init).

use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;
use tapegrad::{Float, Tape, Tensor, TorchRng};
use tapegrad_nn::{load_from_bytes, save_to_bytes, Buffer, Module, Norm, Sequential, StateDictErrorKind};

const PYTORCH: &[u8] = include_bytes!("fixtures/bn_model.safetensors");
const NORM: &str = include_str!("fixtures/norm.json");

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn model<T: Float>(seed: u64) -> (Tape<T>, Sequential<T>) {
    let tape = Tape::new();
    let model = Sequential::mlp_norm(&tape, &[4, 8, 2], Norm::Batch, &mut TorchRng::manual_seed(seed));
    (tape, model)
}

/// Every buffer's name and values.
fn buffers<T: Float>(model: &Sequential<T>) -> Vec<(String, Vec<f64>)> {
    model.named_buffers().into_iter().map(|(n, b)| (n, b.to_f64_vec())).collect()
}

#[test]
fn pytorch_state_dict_with_batch_norm_loads() {
    let fixture: Value = serde_json::from_str(NORM).unwrap();
    let sd = &fixture["state_dict"];
    let (mut tape, mut model) = model::<f32>(0);
    load_from_bytes(&mut tape, &model, PYTORCH).unwrap();
    let b = buffers(&model);
    assert_eq!(b[0].0, "1.running_mean");
    assert_eq!(b[0].1, f32s(&sd["running_mean"]).iter().map(|&x| x as f64).collect::<Vec<_>>());
    assert_eq!(b[1].1, f32s(&sd["running_var"]).iter().map(|&x| x as f64).collect::<Vec<_>>());
    assert_eq!((b[2].0.as_str(), b[2].1[0]), ("1.num_batches_tracked", 3.0));
    // the model PyTorch trained, in evaluation mode, gives PyTorch's output
    model.set_training(false);
    let y = model.forward(tape.input(Tensor::new(f32s(&sd["x"]), &[5, 4]))).value();
    for (g, w) in y.data().iter().zip(f32s(&sd["y_eval"])) {
        assert!((g - w).abs() <= 1e-6, "{g} vs PyTorch {w}");
    }
    // and writes the same bytes back: int64 num_batches_tracked, tensors in PyTorch's order
    assert_eq!(save_to_bytes(&tape, &model).unwrap(), PYTORCH);
}

#[test]
fn round_trip_f64_moves_buffers_too() {
    let (tape, model_a) = model::<f64>(1);
    model_a.forward(tape.input(Tensor::from_fn(&[3, 4], |i| (i * 7 % 5) as f64)));
    let bytes = save_to_bytes(&tape, &model_a).unwrap();
    let (mut tape_b, model_b) = model::<f64>(2);
    assert_ne!(buffers(&model_b), buffers(&model_a));
    load_from_bytes(&mut tape_b, &model_b, &bytes).unwrap();
    assert_eq!(buffers(&model_b), buffers(&model_a));
    assert_eq!(buffers(&model_b)[2].1, [1.0]);
}

/// PyTorch's file with tensor `key` dropped or replaced by `replace`.
fn edited(key: &str, replace: Option<(Dtype, Vec<u8>)>) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(PYTORCH).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec())).collect();
    tensors.retain(|t| t.0 != key);
    if let Some((dtype, data)) = replace {
        tensors.push((key.to_string(), dtype, Vec::new(), data));
    }
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn missing_or_mistyped_buffers_change_nothing() {
    let (mut tape, model) = model::<f32>(0);
    model.forward(tape.input(Tensor::from_fn(&[2, 4], |i| i as f32)));
    let before = buffers(&model);
    let err = load_from_bytes(&mut tape, &model, &edited("1.num_batches_tracked", None)).unwrap_err();
    assert!(matches!(err.kind(), StateDictErrorKind::MissingKeys(k) if k == &["1.num_batches_tracked"]), "{err}");
    let float_count = Some((Dtype::F32, 3f32.to_le_bytes().to_vec()));
    let err = load_from_bytes(&mut tape, &model, &edited("1.num_batches_tracked", float_count)).unwrap_err();
    assert_eq!(err.to_string(), "tensor `1.num_batches_tracked` has dtype F32 in the file, the model expects I64");
    assert_eq!(buffers(&model), before, "a failed load changes no buffer");
    // a plain MLP's file has no buffers: the batch-norm model misses them
    let plain_tape = Tape::<f32>::new();
    let mlp = Sequential::mlp(&plain_tape, &[4, 8, 2], &mut TorchRng::manual_seed(0));
    let err = load_from_bytes(&mut tape, &model, &save_to_bytes(&plain_tape, &mlp).unwrap()).unwrap_err();
    assert!(err.to_string().starts_with("missing tensors `1.weight`"), "{err}");
    assert!(matches!(model.named_buffers()[2].1, Buffer::Int64(c) if c.get() == 1));
}
