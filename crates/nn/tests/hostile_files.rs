//! `load` on files that are not what they claim: special files, huge or lying headers,
//! non-finite weights. Each is refused without reading more than the header promises (the
//! bytes read are counted by the kernel: Linux's per-thread I/O accounting), and the model
//! is left as it was.

use std::path::{Path, PathBuf};

use tapegrad::{Tape, TorchRng};
use tapegrad_nn::{check_finite, load, save_to_bytes, Sequential, StateDictErrorKind};

const PYTORCH: &[u8] = include_bytes!("fixtures/seed_model.safetensors");

fn mlp(seed: u64) -> (Tape<f32>, Sequential<f32>) {
    let tape = Tape::new();
    let model = Sequential::mlp(&tape, &[4, 8, 2], &mut TorchRng::manual_seed(seed));
    (tape, model)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tapegrad-hostile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes this thread has read so far through `read(2)` and its relatives (`rchar` of
/// `/proc/thread-self/io`), and the length of that file's text (whose own reading the next
/// call counts); `None` where the kernel does not keep the count.
fn rchar() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    let n = text.lines().find_map(|l| l.strip_prefix("rchar: "))?.parse().ok()?;
    Some((n, text.len() as u64))
}

/// Runs `f` and returns its result with the number of bytes it read on this thread, or
/// says on stderr that the count is not available here.
fn counting_reads<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    let before = rchar();
    let result = f();
    match (before, rchar()) {
        (Some((b, own)), Some((a, _))) => (result, Some(a - b - own)),
        _ => {
            eprintln!("SKIPPED: bytes read not counted (no /proc/thread-self/io on this system)");
            (result, None)
        }
    }
}

/// The counter sees a read of a known size, and nothing else.
#[test]
fn the_read_counter_counts() {
    let dir = TempDir::new("counter");
    let path = dir.0.join("bytes");
    std::fs::write(&path, [7u8; 12345]).unwrap();
    let (bytes, read) = counting_reads(|| std::fs::read(&path).unwrap());
    assert_eq!(bytes.len(), 12345);
    if let Some(read) = read {
        assert_eq!(read, 12345);
    }
    let (_, read) = counting_reads(|| ());
    assert!(read.is_none_or(|r| r == 0), "{read:?}");
}

/// Loads `path` into a fresh model: the error text, after checking the model is unchanged
/// and no more than `allowed` bytes of the file were read.
#[track_caller]
fn refused(path: &Path, allowed: u64) -> String {
    let (mut tape, model) = mlp(2);
    let before = save_to_bytes(&tape, &model).unwrap();
    let (err, read) = counting_reads(|| load(&mut tape, &model, path).unwrap_err());
    if let Some(read) = read {
        assert!(read <= allowed, "{path:?}: read {read} bytes, at most {allowed} allowed ({err})");
    }
    assert_eq!(save_to_bytes(&tape, &model).unwrap(), before, "the model changed");
    err.to_string()
}

/// The length prefix and the header of a safetensors file.
fn header_bytes(file: &[u8]) -> u64 {
    8 + u64::from_le_bytes(file[..8].try_into().unwrap())
}

/// A file that fits the model is read once, exactly: no byte twice, none past its end.
#[test]
fn a_good_file_is_read_exactly_once() {
    let dir = TempDir::new("good");
    let path = dir.0.join("good.safetensors");
    std::fs::write(&path, PYTORCH).unwrap();
    let (mut tape, model) = mlp(2);
    let (result, read) = counting_reads(|| load(&mut tape, &model, &path));
    result.unwrap();
    if let Some(read) = read {
        assert_eq!(read, PYTORCH.len() as u64);
    }
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_folders_are_refused_without_reading() {
    let dir = TempDir::new("special");
    let fifo = dir.0.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let msg = refused(&fifo, 0);
    assert!(msg.contains("not a regular file but a FIFO"), "{msg}");
    for dev in ["/dev/zero", "/dev/urandom", "/dev/null"] {
        let msg = refused(dev.as_ref(), 0);
        assert!(msg.contains("character device"), "{msg}");
    }
    let msg = refused(&dir.0, 0);
    assert!(msg.contains("it is a folder"), "{msg}");
}

#[test]
fn a_huge_file_with_a_small_header_is_refused_before_its_data_is_read() {
    let dir = TempDir::new("huge");
    let path = dir.0.join("huge.safetensors");
    std::fs::write(&path, PYTORCH).unwrap();
    // 6 GB, sparse: only its length changes
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(6 << 30).unwrap();
    let msg = refused(&path, header_bytes(PYTORCH));
    assert!(msg.contains("bytes after the end of the last tensor"), "{msg}");
}

#[test]
fn a_header_length_past_the_end_of_the_file_is_truncation() {
    let dir = TempDir::new("lying");
    let path = dir.0.join("lying.safetensors");
    let mut bytes = PYTORCH.to_vec();
    bytes[..8].copy_from_slice(&50_000_000u64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let msg = refused(&path, 8);
    assert!(msg.contains("truncated file"), "{msg}");
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let msg = refused(&path, 8);
    assert!(msg.contains("over the format's limit"), "{msg}");
}

/// A header whose data sizes fit the file but not the model: refused by names and shapes
/// before a byte of the data is read (the data of 100 MB would otherwise be read whole).
#[test]
fn a_file_for_another_model_is_refused_from_its_header() {
    let dir = TempDir::new("other");
    let path = dir.0.join("other.safetensors");
    let header = br#"{"big":{"dtype":"F32","shape":[25000000],"data_offsets":[0,100000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(&path, &bytes).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(bytes.len() as u64 + 100_000_000).unwrap();
    let msg = refused(&path, header_bytes(&bytes));
    assert!(msg.contains("missing tensors `0.weight`"), "{msg}");
}

#[test]
fn non_finite_weights_are_reported_by_tensor() {
    let (mut tape, model) = mlp(2);
    assert!(check_finite(&tape, &model).is_ok());
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut bytes = PYTORCH.to_vec();
        // the last value of the last tensor in the file's data
        let at = bytes.len() - 4;
        bytes[at..].copy_from_slice(&bad.to_le_bytes());
        let dir = TempDir::new("nan");
        let path = dir.0.join("nan.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        load(&mut tape, &model, &path).unwrap();
        let err = check_finite(&tape, &model).unwrap_err();
        let StateDictErrorKind::NonFinite { key, count, value, .. } = err.kind() else { panic!("{err}") };
        assert_eq!((*count, value.to_bits()), (1, (bad as f64).to_bits()));
        let want = format!("tensor `{key}` holds 1 non-finite value");
        let msg = err.at(&path).to_string();
        assert!(msg.starts_with(path.to_str().unwrap()) && msg.contains(&want), "{msg}");
    }
}

/// A file cut anywhere (in the length prefix, the header, the data) or grown by a byte is
/// refused from its path with the same verdict as from its bytes: `load` checks the file's
/// length before reading it as `load_from_bytes` checks the bytes' length.
#[test]
fn a_cut_file_is_refused_from_its_path_as_from_its_bytes() {
    let dir = TempDir::new("cut");
    let path = dir.0.join("cut.safetensors");
    let len = PYTORCH.len();
    let header = header_bytes(PYTORCH) as usize;
    let mut grown = PYTORCH.to_vec();
    grown.push(0);
    let cuts = [0, 1, 7, 8, 9, header - 1, header, header + 1, len - 1];
    for bytes in cuts.iter().map(|&cut| &PYTORCH[..cut]).chain([&grown[..]]) {
        std::fs::write(&path, bytes).unwrap();
        let from_path = refused(&path, bytes.len() as u64);
        let (mut tape, model) = mlp(2);
        let from_bytes = tapegrad_nn::load_from_bytes(&mut tape, &model, bytes).unwrap_err();
        assert_eq!(from_path, format!("{}: {from_bytes}", path.display()), "{} bytes", bytes.len());
    }
}

/// `check_finite` counts every non-finite value of the first tensor that has one and
/// locates the first of them.
#[test]
fn every_non_finite_value_is_counted_and_the_first_located() {
    let tape = Tape::<f32>::new();
    let weight = vec![1.0, f32::NAN, 2.0, f32::INFINITY, f32::NAN, 3.0];
    let lin = tapegrad_nn::Linear::from_tensors(
        &tape,
        tapegrad::Tensor::new(weight, &[2, 3]),
        tapegrad::Tensor::new(vec![f32::NEG_INFINITY, 0.0], &[2]),
    );
    let err = check_finite(&tape, &lin).unwrap_err();
    let StateDictErrorKind::NonFinite { key, count, index, value } = err.kind() else { panic!("{err}") };
    assert_eq!((key.as_str(), *count, *index), ("weight", 3, 1), "{err}");
    assert!(value.is_nan(), "{err}");
    assert!(err.to_string().contains("holds 3 non-finite values (the first, NaN, at flat index 1)"), "{err}");
}
