//! Saving and loading parameters as safetensors, against the file PyTorch wrote
//! (`fixtures/seed_model.safetensors`: `torch.manual_seed(2)`, `Sequential(Linear(4, 8),
//! ReLU, Linear(8, 2))`, `safetensors.torch.save_file(model.state_dict())`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, View};
use serde_json::Value;
use tapegrad::{Float, Tape, TorchRng};
use tapegrad_nn::{
    load, load_from_bytes, save, save_to_bytes, Linear, Module, ReLU, Sequential, StateDictError, StateDictErrorKind,
};

const PYTORCH: &[u8] = include_bytes!("fixtures/seed_model.safetensors");

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_model.safetensors")
}

fn mlp<T: Float>(sizes: &[usize], seed: u64) -> (Tape<T>, Sequential<T>) {
    let tape = Tape::new();
    let model = Sequential::mlp(&tape, sizes, &mut TorchRng::manual_seed(seed));
    (tape, model)
}

/// Every parameter's name, shape and value bits.
fn snapshot<T: Float>(tape: &Tape<T>, model: &dyn Module<T>) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| {
            let v = tape.param_value(p);
            (name, v.shape().to_vec(), v.data().iter().map(|x| x.to_f64().to_bits()).collect())
        })
        .collect()
}

/// A folder of its own under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tapegrad-st-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One tensor of a safetensors file, read by hand from the format's definition.
#[derive(Debug, PartialEq)]
struct RawTensor {
    dtype: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// An independent reader of the format that also checks the layout rules the Python
/// writer follows: 8-byte little-endian header length N, N bytes of JSON padded with
/// spaces to a multiple of 8, tensors contiguous in offset order covering the data section
/// exactly, each `prod(shape) * size(dtype)` bytes.
fn parse_raw(bytes: &[u8]) -> (Value, BTreeMap<String, RawTensor>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header length {n} is a multiple of 8");
    let text = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(text.starts_with('{'), "{text}");
    let json = text.trim_end_matches(' ');
    assert!(json.ends_with('}'), "{text}");
    assert!(n - json.len() < 8, "padding of {} spaces", n - json.len());
    let header: Value = serde_json::from_str(json).unwrap();
    let data = &bytes[8 + n..];
    let mut entries: Vec<(String, RawTensor, [usize; 2])> = Vec::new();
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap().to_string();
        let shape: Vec<usize> =
            info["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let off: Vec<usize> =
            info["data_offsets"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(info.as_object().unwrap().len(), 3, "{name}: only dtype, shape, data_offsets");
        let size = match dtype.as_str() {
            "F32" => 4,
            "F64" => 8,
            other => panic!("{name}: dtype {other}"),
        };
        assert_eq!(off[1] - off[0], shape.iter().product::<usize>() * size, "{name}: offsets fit shape and dtype");
        let t = RawTensor { dtype, shape, data: data[off[0]..off[1]].to_vec() };
        entries.push((name.clone(), t, [off[0], off[1]]));
    }
    entries.sort_by_key(|e| e.2);
    let mut end = 0;
    for (name, _, [start, stop]) in &entries {
        assert_eq!(*start, end, "{name}: contiguous");
        end = *stop;
    }
    assert_eq!(end, data.len(), "the tensors cover the data section exactly");
    (header, entries.into_iter().map(|(n, t, _)| (n, t)).collect())
}

/// The file with its header text rewritten by `edit` and padded again to a multiple of 8.
fn with_header(bytes: &[u8], edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header = edit(std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end()).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(&bytes[8 + n..]);
    out
}

/// A safetensors file of the given tensors (values taken as f64, stored as `dtype`).
fn file_of(tensors: &[(&str, Dtype, Vec<usize>, Vec<f64>)]) -> Vec<u8> {
    struct T(Dtype, Vec<usize>, Vec<u8>);
    impl View for &T {
        fn dtype(&self) -> Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> std::borrow::Cow<'_, [u8]> {
            (&self.2[..]).into()
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }
    let ts: Vec<(&str, T)> = tensors
        .iter()
        .map(|(name, dtype, shape, values)| {
            let data = match dtype {
                Dtype::F32 => values.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
                _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            (*name, T(*dtype, shape.clone(), data))
        })
        .collect();
    safetensors::serialize(ts.iter().map(|(n, t)| (*n, t)), None).unwrap()
}

/// The seed-2 4-8-2 tensors as (name, shape, values), in `named_parameters` order.
fn seed2_tensors() -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let (tape, model) = mlp::<f32>(&[4, 8, 2], 2);
    model
        .named_parameters()
        .into_iter()
        .map(|(n, p)| {
            let v = tape.param_value(p);
            (n, v.shape().to_vec(), v.data().iter().map(|&x| x as f64).collect())
        })
        .collect()
}

#[test]
fn pytorch_file_loads_bit_identical_to_seed_2_init() {
    let (ref_tape, reference) = mlp::<f32>(&[4, 8, 2], 2);
    let want = snapshot(&ref_tape, &reference);

    // the bytes themselves: PyTorch's values are tapegrad's init, bit for bit
    let (_, raw) = parse_raw(PYTORCH);
    for (name, shape, bits) in &want {
        let t = &raw[name];
        assert_eq!((&t.dtype[..], &t.shape), ("F32", shape), "{name}");
        let got: Vec<u64> =
            t.data.chunks(4).map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_bits()).collect();
        assert_eq!(&got, bits, "{name}");
    }

    // and through load, from the path and from the bytes
    let (mut tape, model) = mlp::<f32>(&[4, 8, 2], 0);
    assert_ne!(snapshot(&tape, &model), want);
    load(&mut tape, &model, fixture_path()).unwrap();
    assert_eq!(snapshot(&tape, &model), want);
    let (mut tape, model) = mlp::<f32>(&[4, 8, 2], 7);
    load_from_bytes(&mut tape, &model, PYTORCH).unwrap();
    assert_eq!(snapshot(&tape, &model), want);
}

#[test]
fn written_file_is_the_one_pytorch_writes() {
    let (tape, model) = mlp::<f32>(&[4, 8, 2], 2);
    let ours = save_to_bytes(&tape, &model).unwrap();

    let (our_header, our_tensors) = parse_raw(&ours);
    let (their_header, their_tensors) = parse_raw(PYTORCH);
    assert_eq!(our_tensors, their_tensors, "names, dtypes, shapes and values");
    assert_eq!(our_header, their_header, "same offsets (same tensor order in the data section)");
    assert!(our_header.get("__metadata__").is_none());
    let names: Vec<&String> = our_tensors.keys().collect();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    // same writer as PyTorch's save_file: byte for byte the same file
    assert_eq!(ours, PYTORCH);

    // the safetensors reader (what PyTorch's load_file runs) accepts it
    let st = safetensors::SafeTensors::deserialize(&ours).unwrap();
    assert_eq!(st.tensor("0.weight").unwrap().shape(), &[8, 4]);
    assert_eq!(st.tensor("2.bias").unwrap().dtype(), Dtype::F32);
}

#[test]
fn round_trip_f32_and_f64_through_files() {
    let dir = TempDir::new("round-trip");
    for sizes in [&[4, 8, 2][..], &[3, 16, 16, 2], &[1, 1]] {
        let (tape, model) = mlp::<f32>(sizes, 3);
        let path = dir.join("f32.safetensors");
        save(&tape, &model, &path).unwrap();
        let (mut tape2, model2) = mlp::<f32>(sizes, 4);
        load(&mut tape2, &model2, &path).unwrap();
        assert_eq!(snapshot(&tape2, &model2), snapshot(&tape, &model), "{sizes:?}");

        let (tape, model) = mlp::<f64>(sizes, 5);
        let path = dir.join("f64.safetensors");
        save(&tape, &model, &path).unwrap();
        let (header, tensors) = parse_raw(&std::fs::read(&path).unwrap());
        assert!(tensors.values().all(|t| t.dtype == "F64"), "{header}");
        let (mut tape2, model2) = mlp::<f64>(sizes, 6);
        load(&mut tape2, &model2, &path).unwrap();
        assert_eq!(snapshot(&tape2, &model2), snapshot(&tape, &model), "{sizes:?}");
    }
    assert_eq!(dir.entries(), ["f32.safetensors", "f64.safetensors"], "no temporary files left");
}

#[test]
fn values_that_are_not_ordinary_numbers_round_trip() {
    let tape = Tape::<f32>::new();
    let w = tapegrad::Tensor::new(vec![-0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE / 4.0], &[2, 2]);
    let lin = Linear::from_tensors(&tape, w.clone(), tapegrad::Tensor::new(vec![f32::MAX, f32::MIN], &[2]));
    let bytes = save_to_bytes(&tape, &lin).unwrap();
    let mut tape2 = Tape::<f32>::new();
    let lin2 = Linear::from_tensors(&tape2, tapegrad::Tensor::zeros(&[2, 2]), tapegrad::Tensor::zeros(&[2]));
    load_from_bytes(&mut tape2, &lin2, &bytes).unwrap();
    assert_eq!(snapshot(&tape2, &lin2), snapshot(&tape, &lin));
    assert!(tape2.param_value(lin2.weight).data()[0].is_sign_negative());
}

#[test]
fn saving_over_an_existing_file_replaces_it_whole() {
    let dir = TempDir::new("overwrite");
    let path = dir.join("model.safetensors");
    std::fs::write(&path, b"an old file, longer than the new one will be? no: just old bytes").unwrap();
    let (tape, model) = mlp::<f32>(&[4, 8, 2], 2);
    save(&tape, &model, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), PYTORCH);
    let (tape, model) = mlp::<f32>(&[4, 8, 2], 9);
    save(&tape, &model, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save_to_bytes(&tape, &model).unwrap());
    assert_eq!(dir.entries(), ["model.safetensors"], "no temporary files left");

    // a relative path (the temporary file goes to the current folder)
    let (tape, model) = mlp::<f32>(&[2, 2], 1);
    let rel = format!("tapegrad-st-{}-relative.safetensors", std::process::id());
    save(&tape, &model, &rel).unwrap();
    let bytes = std::fs::read(&rel).unwrap();
    std::fs::remove_file(&rel).unwrap();
    assert_eq!(bytes, save_to_bytes(&tape, &model).unwrap());
}

#[test]
fn failed_saves_leave_no_temporary_file_and_name_the_path() {
    let dir = TempDir::new("failed-save");
    let (tape, model) = mlp::<f32>(&[4, 8, 2], 2);

    // the target is a folder: the rename fails, the temporary file is removed
    let target = dir.join("a-folder");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), b"kept").unwrap();
    let err = save(&tape, &model, &target).unwrap_err();
    assert!(
        matches!(err.kind(), StateDictErrorKind::Io { source, .. } if source.kind() == std::io::ErrorKind::IsADirectory),
        "{err}"
    );
    assert!(err.to_string().ends_with("cannot save: it is a folder, not a file"), "{err}");
    assert_eq!(err.path(), Some(target.as_path()));
    assert!(err.to_string().starts_with(&target.display().to_string()), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(dir.entries(), ["a-folder"]);
    assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"kept");

    // a path ending in a separator names a folder even when there is none
    let slash = format!("{}/", dir.join("new-folder").display());
    let err = save(&tape, &model, &slash).unwrap_err();
    assert!(err.to_string().contains("it is a folder"), "{err}");
    assert_eq!(dir.entries(), ["a-folder"]);

    // the folder does not exist
    let missing = dir.join("no-such-folder").join("model.safetensors");
    let err = save(&tape, &model, &missing).unwrap_err();
    assert!(matches!(err.kind(), StateDictErrorKind::Io { .. }), "{err}");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
    assert_eq!(dir.entries(), ["a-folder"]);
}

#[test]
fn duplicate_parameter_names_cannot_be_saved() {
    let tape = Tape::<f32>::new();
    let mut rng = TorchRng::manual_seed(0);
    struct Twice(Linear, Linear);
    impl std::fmt::Display for Twice {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Twice")
        }
    }
    impl Module<f32> for Twice {
        fn forward<'t>(&self, x: tapegrad::Var<'t, f32>) -> tapegrad::Var<'t, f32> {
            x
        }
        fn named_parameters(&self) -> Vec<(String, tapegrad::Param)> {
            [Module::<f32>::named_parameters(&self.0), Module::<f32>::named_parameters(&self.1)].concat()
        }
    }
    let m = Twice(Linear::new(&tape, 2, 2, &mut rng), Linear::new(&tape, 2, 2, &mut rng));
    let err = save_to_bytes(&tape, &m).unwrap_err();
    assert!(matches!(err.kind(), StateDictErrorKind::DuplicateName(n) if n == "weight"), "{err}");
}

#[test]
fn metadata_is_accepted_and_header_key_order_does_not_matter() {
    let with_meta = with_header(PYTORCH, |h| h.replacen('{', r#"{"__metadata__":{"format":"pt"},"#, 1));
    let (header, _) = parse_raw(&with_meta);
    assert_eq!(header["__metadata__"]["format"], "pt");
    let (mut tape, model) = mlp::<f32>(&[4, 8, 2], 0);
    load_from_bytes(&mut tape, &model, &with_meta).unwrap();
    let (ref_tape, reference) = mlp::<f32>(&[4, 8, 2], 2);
    assert_eq!(snapshot(&tape, &model), snapshot(&ref_tape, &reference));
}

/// Loads `bytes` into a seed-0 model of `sizes`; checks that it fails and changed nothing.
fn load_fails<T: Float>(sizes: &[usize], bytes: &[u8]) -> StateDictError {
    let (mut tape, model) = mlp::<T>(sizes, 0);
    let before = snapshot(&tape, &model);
    let err = load_from_bytes(&mut tape, &model, bytes).unwrap_err();
    assert_eq!(snapshot(&tape, &model), before, "a failed load must leave the parameters unchanged ({err})");
    err
}

#[test]
fn missing_and_unexpected_tensors() {
    let all = seed2_tensors();
    let pick = |skip: &str, extra: Option<(&'static str, Vec<usize>)>| {
        let mut ts: Vec<(&str, Dtype, Vec<usize>, Vec<f64>)> = all
            .iter()
            .filter(|(n, _, _)| n != skip)
            .map(|(n, s, v)| (n.as_str(), Dtype::F32, s.clone(), v.clone()))
            .collect();
        if let Some((name, shape)) = extra {
            let n = shape.iter().product();
            ts.push((name, Dtype::F32, shape, vec![0.5; n]));
        }
        file_of(&ts)
    };

    let err = load_fails::<f32>(&[4, 8, 2], &pick("2.bias", None));
    assert!(matches!(err.kind(), StateDictErrorKind::MissingKeys(k) if k == &["2.bias"]), "{err:?}");
    assert_eq!(err.to_string(), "missing tensor `2.bias` (the model has this parameter, the file does not)");

    let err = load_fails::<f32>(&[4, 8, 8, 2], PYTORCH);
    assert!(matches!(err.kind(), StateDictErrorKind::MissingKeys(k) if k == &["4.weight", "4.bias"]), "{err:?}");
    assert!(err.to_string().contains("`4.weight`, `4.bias`"), "{err}");

    let err = load_fails::<f32>(&[4, 8, 2], &pick("", Some(("3.weight", vec![2, 2]))));
    assert!(matches!(err.kind(), StateDictErrorKind::UnexpectedKeys(k) if k == &["3.weight"]), "{err:?}");
    assert!(err.to_string().contains("unexpected tensor `3.weight`"), "{err}");

    let err = load_fails::<f32>(&[4, 2], PYTORCH);
    assert!(matches!(err.kind(), StateDictErrorKind::UnexpectedKeys(k) if k == &["2.bias", "2.weight"]), "{err:?}");

    let err = load_fails::<f32>(&[4, 8, 2], &file_of(&[]));
    assert!(matches!(err.kind(), StateDictErrorKind::MissingKeys(k) if k.len() == 4), "{err:?}");
}

#[test]
fn wrong_shape() {
    // 0.weight and 0.bias fit, the last layer does not: nothing may be written
    let err = load_fails::<f32>(&[4, 8, 3], PYTORCH);
    match err.kind() {
        StateDictErrorKind::ShapeMismatch { key, expected, found } => {
            assert_eq!((key.as_str(), &expected[..], &found[..]), ("2.weight", &[3, 8][..], &[2, 8][..]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "tensor `2.weight` has shape [2, 8] in the file, the model expects [3, 8]");

    // a transposed weight
    let ts: Vec<_> = seed2_tensors()
        .into_iter()
        .map(|(n, s, v)| {
            let s = if n == "0.weight" { vec![4, 8] } else { s };
            (n, s, v)
        })
        .collect();
    let ts: Vec<_> = ts.iter().map(|(n, s, v)| (n.as_str(), Dtype::F32, s.clone(), v.clone())).collect();
    let err = load_fails::<f32>(&[4, 8, 2], &file_of(&ts));
    assert!(err.to_string().contains("`0.weight` has shape [4, 8] in the file, the model expects [8, 4]"), "{err}");
}

#[test]
fn wrong_dtype() {
    let err = load_fails::<f64>(&[4, 8, 2], PYTORCH);
    match err.kind() {
        StateDictErrorKind::DtypeMismatch { key, expected, found } => {
            assert_eq!((key.as_str(), expected.as_str(), found.as_str()), ("0.weight", "F64", "F32"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "tensor `0.weight` has dtype F32 in the file, the model expects F64");

    // one F64 tensor among F32 ones (the earlier ones fit: still nothing is written)
    let all = seed2_tensors();
    let ts: Vec<_> = all
        .iter()
        .map(|(n, s, v)| (n.as_str(), if n == "2.bias" { Dtype::F64 } else { Dtype::F32 }, s.clone(), v.clone()))
        .collect();
    let err = load_fails::<f32>(&[4, 8, 2], &file_of(&ts));
    assert!(err.to_string().contains("`2.bias` has dtype F64 in the file, the model expects F32"), "{err}");
}

#[test]
fn truncated_files() {
    let len = PYTORCH.len() as u64;
    for (cut, expected) in [(len - 1, len), (300, len), (264, len), (100, 264), (8, 264), (5, 8), (0, 8)] {
        let err = load_fails::<f32>(&[4, 8, 2], &PYTORCH[..cut as usize]);
        match err.kind() {
            StateDictErrorKind::Truncated { len, expected: e } => assert_eq!((*len, *e), (cut, expected)),
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert!(err.to_string().starts_with("truncated file"), "{err}");
    }
}

#[test]
fn header_claiming_more_data_than_the_file_holds() {
    // 2.weight said to be [2, 10] = 80 bytes (offsets consistent), the file holds 64
    let lying = with_header(PYTORCH, |h| {
        h.replace(r#""shape":[2,8],"data_offsets":[168,232]"#, r#""shape":[2,10],"data_offsets":[168,248]"#)
    });
    assert_ne!(lying, PYTORCH);
    assert_eq!(lying.len(), PYTORCH.len(), "same header length after padding");
    let err = load_fails::<f32>(&[4, 8, 2], &lying);
    assert!(
        matches!(err.kind(), StateDictErrorKind::Truncated { len, expected } if *len == 496 && *expected == 512),
        "{err:?}"
    );

    // a length prefix pointing past the end of the file
    let mut long = PYTORCH.to_vec();
    long[..8].copy_from_slice(&1000u64.to_le_bytes());
    let err = load_fails::<f32>(&[4, 8, 2], &long);
    assert!(matches!(err.kind(), StateDictErrorKind::Truncated { expected: 1008, .. }), "{err:?}");

    // an absurd length prefix is not read at all
    let mut huge = PYTORCH.to_vec();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = load_fails::<f32>(&[4, 8, 2], &huge);
    assert!(matches!(err.kind(), StateDictErrorKind::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("header length"), "{err}");
}

#[test]
fn corrupt_files() {
    // header bytes that are not JSON (same length)
    let mut garbage = PYTORCH.to_vec();
    for b in &mut garbage[8..40] {
        *b = b'#';
    }
    let err = load_fails::<f32>(&[4, 8, 2], &garbage);
    assert!(matches!(err.kind(), StateDictErrorKind::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    // not UTF-8
    let mut bad_utf8 = PYTORCH.to_vec();
    bad_utf8[10] = 0xff;
    assert!(matches!(load_fails::<f32>(&[4, 8, 2], &bad_utf8).kind(), StateDictErrorKind::Invalid(_)));

    // JSON, but not a safetensors header
    for header in [
        r#"[1, 2, 3]"#,
        r#"{"0.weight": {"dtype": "F32"}}"#,
        r#"{"0.weight": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}"#,
    ] {
        let bytes = with_header(PYTORCH, |_| header.to_string());
        let err = load_fails::<f32>(&[4, 8, 2], &bytes);
        assert!(matches!(err.kind(), StateDictErrorKind::Invalid(_)), "{header}: {err:?}");
        assert!(err.to_string().contains("bad header"), "{err}");
    }

    // offsets that overlap (0.bias's 32 bytes counted twice)
    let overlap = with_header(PYTORCH, |h| h.replace(r#""data_offsets":[32,160]"#, r#""data_offsets":[0,128]"#));
    assert!(matches!(load_fails::<f32>(&[4, 8, 2], &overlap).kind(), StateDictErrorKind::Invalid(_)));

    // offsets that do not fit the shape
    let misfit = with_header(PYTORCH, |h| h.replace(r#""shape":[8],"#, r#""shape":[9],"#));
    assert!(matches!(load_fails::<f32>(&[4, 8, 2], &misfit).kind(), StateDictErrorKind::Invalid(_)));

    // trailing bytes after the last tensor
    let mut trailing = PYTORCH.to_vec();
    trailing.extend([0u8; 4]);
    let err = load_fails::<f32>(&[4, 8, 2], &trailing);
    assert!(err.to_string().contains("4 bytes after the end of the last tensor"), "{err}");

    // not a safetensors file at all
    let err = load_fails::<f32>(&[4, 8, 2], b"{\"0.weight\": [1, 2, 3]} and some more text");
    assert!(matches!(err.kind(), StateDictErrorKind::Invalid(_)), "{err:?}");
}

#[test]
fn nonexistent_path() {
    let dir = TempDir::new("nonexistent");
    let path = dir.join("nope.safetensors");
    let (mut tape, model) = mlp::<f32>(&[4, 8, 2], 0);
    let before = snapshot(&tape, &model);
    let err = load(&mut tape, &model, &path).unwrap_err();
    assert_eq!(snapshot(&tape, &model), before);
    match err.kind() {
        StateDictErrorKind::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.path(), Some(path.as_path()));
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()) && msg.contains("cannot read"), "{msg}");

    // errors from a file name the file
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, &PYTORCH[..100]).unwrap();
    let err = load(&mut tape, &model, &bad).unwrap_err();
    assert_eq!(snapshot(&tape, &model), before);
    assert_eq!(
        err.to_string(),
        format!("{}: truncated file: it has 100 bytes, its safetensors layout needs 264", bad.display())
    );
}

#[test]
fn models_without_parameters_and_single_layers() {
    // a Linear alone is named `weight`, `bias`
    let tape = Tape::<f32>::new();
    let lin = Linear::new(&tape, 4, 8, &mut TorchRng::manual_seed(1));
    let (_, raw) = parse_raw(&save_to_bytes(&tape, &lin).unwrap());
    assert_eq!(raw.keys().collect::<Vec<_>>(), ["bias", "weight"]);
    assert_eq!(raw["weight"].shape, [8, 4]);

    // no parameters: an empty file round-trips
    let mut tape = Tape::<f32>::new();
    let bytes = save_to_bytes(&tape, &ReLU).unwrap();
    assert_eq!(&bytes[8..16], b"{}      ");
    load_from_bytes(&mut tape, &ReLU, &bytes).unwrap();
}

/// A header of exactly the format's limit (100,000,000 bytes) is allowed, so a file that
/// announces one and ends early is truncated; one byte more is over the limit.
#[test]
fn the_header_length_limit_is_the_formats() {
    for (n, truncated) in [(100_000_000u64, true), (100_000_001, false)] {
        let mut bytes = PYTORCH.to_vec();
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        let err = load_fails::<f32>(&[4, 8, 2], &bytes);
        match err.kind() {
            StateDictErrorKind::Truncated { len, expected } if truncated => {
                assert_eq!((*len, *expected), (PYTORCH.len() as u64, 8 + n))
            }
            StateDictErrorKind::Invalid(why) if !truncated => {
                assert!(why.contains(&format!("header length of {n} bytes, over the format's limit")), "{why}")
            }
            other => panic!("header of {n} bytes: {other:?}"),
        }
    }
}
