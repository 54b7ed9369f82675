//! Saving and loading a module's parameters and buffers as a [safetensors] file,
//! interchangeable with PyTorch's `safetensors.torch.save_file(model.state_dict())` /
//! `load_file`.
//!
//! - Names are the module's [`Module::named_parameters`] then [`Module::named_buffers`]
//!   (PyTorch's state-dict names: `0.weight`, `0.bias`, `1.running_mean`,
//!   `1.num_batches_tracked`, ... for a [`Sequential`](crate::Sequential)).
//! - Element type `F32` for a `Tape<f32>`, `F64` for a `Tape<f64>`, `I64` for an integer
//!   buffer (a 0-d `num_batches_tracked`, as PyTorch writes it); shapes as on the tape (a
//!   `Linear` weight is `[out, in]`, as in PyTorch); little-endian, row-major.
//! - The bytes are written by the `safetensors` crate, the same code PyTorch's Python
//!   package runs, so a file tapegrad writes is byte for byte the one PyTorch writes for the
//!   same tensors (no `__metadata__`). Files with metadata are accepted on load.
//!
//! Loading is all or nothing: every name, shape and element type is checked, and the file's
//! layout validated, before the first parameter changes. [`load`] opens regular files only
//! (never waits on a FIFO or reads a device), checks the header and the data size it
//! declares against the file's length and the model before reading the data, and reads no
//! more than the header promises. [`check_finite`] reports NaN or infinite weights by
//! tensor. Saving goes through [`files::write_atomic`](crate::files::write_atomic): the
//! target is never half written.
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, View};
use safetensors::SafeTensors;
use tapegrad::{Float, Param, Tape, Tensor};

use crate::module::Buffer;
use crate::module::Module;

/// Bytes of the header-length prefix.
const N_LEN: u64 = 8;
/// The largest header the safetensors reader accepts.
const MAX_HEADER: u64 = 100_000_000;

/// Why saving or loading parameters failed: [`kind`](Self::kind) says what, and
/// [`path`](Self::path) which file (for [`save`] and [`load`]).
///
/// Its `Display` is one line, e.g. `model.safetensors: tensor \`0.weight\` has shape [8, 4]
/// in the file, the model expects [16, 4]`.
#[derive(Debug)]
pub struct StateDictError {
    path: Option<PathBuf>,
    kind: StateDictErrorKind,
}

/// What went wrong (see [`StateDictError`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StateDictErrorKind {
    /// Reading or writing the file failed; `action` says which step.
    Io {
        /// The step that failed, e.g. `"cannot read the file"`.
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file ends before the end its header (or the 8-byte length prefix) announces.
    Truncated {
        /// Bytes in the file.
        len: u64,
        /// Bytes the header describes (length prefix + header + tensor data).
        expected: u64,
    },
    /// Not a valid safetensors file (header not JSON, inconsistent offsets, trailing bytes,
    /// ...); the text says why.
    Invalid(String),
    /// Parameters (or buffers) of the model that the file does not have, in the model's
    /// order.
    MissingKeys(Vec<String>),
    /// Tensors in the file that the model has no parameter or buffer for, sorted.
    UnexpectedKeys(Vec<String>),
    /// A tensor whose shape differs from its parameter's.
    ShapeMismatch {
        /// The tensor's name.
        key: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor whose element type differs from the tape's (`F32` for `f32`, `F64` for
    /// `f64`; `I64` for an integer buffer).
    DtypeMismatch {
        /// The tensor's name.
        key: String,
        /// The tape's element type as safetensors spells it.
        expected: String,
        /// The element type in the file.
        found: String,
    },
    /// Two parameters of the model have the same name, so no file can describe it.
    DuplicateName(String),
    /// The tape's element type has no safetensors dtype (only `f32` and `f64` do).
    UnsupportedElementType(&'static str),
    /// The safetensors writer refused the tensors (e.g. a header over its 100 MB limit).
    Serialize(String),
    /// A tensor holding NaN or infinite values ([`check_finite`]).
    NonFinite {
        /// The tensor's name.
        key: String,
        /// How many of its values are not finite.
        count: usize,
        /// The flat (row-major) index of the first.
        index: usize,
        /// The first non-finite value.
        value: f64,
    },
}

impl StateDictError {
    /// What went wrong.
    pub fn kind(&self) -> &StateDictErrorKind {
        &self.kind
    }

    /// The file being read or written, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The same error, naming the file `path`.
    pub fn at(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }
}

impl From<StateDictErrorKind> for StateDictError {
    fn from(kind: StateDictErrorKind) -> Self {
        StateDictError { path: None, kind }
    }
}

/// `` `a`, `b` ``
fn quoted(keys: &[String]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl fmt::Display for StateDictErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StateDictErrorKind::*;
        match self {
            Io { action, source } => write!(f, "{action}: {source}"),
            Truncated { len, expected } => {
                write!(f, "truncated file: it has {len} bytes, its safetensors layout needs {expected}")
            }
            Invalid(why) => write!(f, "not a valid safetensors file: {why}"),
            MissingKeys(keys) => write!(
                f,
                "missing tensor{} {} (the model has {}, the file does not)",
                plural(keys.len()),
                quoted(keys),
                if keys.len() == 1 { "this parameter" } else { "these parameters" }
            ),
            UnexpectedKeys(keys) => write!(
                f,
                "unexpected tensor{} {} (the model has no parameter of {})",
                plural(keys.len()),
                quoted(keys),
                if keys.len() == 1 { "this name" } else { "these names" }
            ),
            ShapeMismatch { key, expected, found } => {
                write!(f, "tensor `{key}` has shape {found:?} in the file, the model expects {expected:?}")
            }
            DtypeMismatch { key, expected, found } => {
                write!(f, "tensor `{key}` has dtype {found} in the file, the model expects {expected}")
            }
            DuplicateName(name) => write!(f, "the model has more than one parameter named `{name}`"),
            UnsupportedElementType(name) => write!(f, "element type {name} has no safetensors dtype"),
            Serialize(why) => write!(f, "cannot encode the tensors: {why}"),
            NonFinite { key, count, index, value } => write!(
                f,
                "tensor `{key}` holds {count} non-finite value{} (the first, {value}, at flat index {index})",
                plural(*count)
            ),
        }
    }
}

impl fmt::Display for StateDictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", crate::files::escaped(path), self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for StateDictError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            StateDictErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The safetensors dtype of the tape's element type.
fn dtype_of<T: Float>() -> Result<Dtype, StateDictErrorKind> {
    match T::NAME {
        "f32" => Ok(Dtype::F32),
        "f64" => Ok(Dtype::F64),
        other => Err(StateDictErrorKind::UnsupportedElementType(other)),
    }
}

/// Little-endian bytes of `values` as `dtype` (F32 or F64; the conversion through `f64` is
/// exact).
fn encode<T: Float>(dtype: Dtype, values: &[T]) -> Vec<u8> {
    if dtype == Dtype::F32 {
        values.iter().flat_map(|v| (v.to_f64() as f32).to_le_bytes()).collect()
    } else {
        values.iter().flat_map(|v| v.to_f64().to_le_bytes()).collect()
    }
}

/// The inverse of [`encode`]; `bytes` holds whole elements (checked by the reader).
fn decode<T: Float>(dtype: Dtype, bytes: &[u8]) -> Vec<T> {
    if dtype == Dtype::F32 {
        bytes
            .chunks_exact(4)
            .map(|c| {
                let mut a = [0u8; 4];
                a.copy_from_slice(c);
                T::from_f64(f32::from_le_bytes(a) as f64)
            })
            .collect()
    } else {
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                T::from_f64(f64::from_le_bytes(a))
            })
            .collect()
    }
}

/// One tensor ready for the writer.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// One tensor of a state dict: a parameter on the tape or a module's buffer.
#[derive(Clone, Copy)]
enum Entry<'a, T: Float> {
    Param(Param),
    Buffer(&'a Buffer<T>),
}

/// A checked value of an [`Entry`], ready to be set.
enum Value<T: Float> {
    Float(Tensor<T>),
    Int64(i64),
}

impl<T: Float> Entry<'_, T> {
    /// The element type and shape the file must hold.
    fn layout(&self, tape: &Tape<T>, float: Dtype) -> (Dtype, Vec<usize>) {
        match self {
            Entry::Param(p) => (float, tape.with_param(*p, |shape, _, _| shape.to_vec())),
            Entry::Buffer(b @ Buffer::Float(_)) => (float, b.shape()),
            Entry::Buffer(Buffer::Int64(_)) => (Dtype::I64, Vec::new()),
        }
    }

    /// The tensor for the writer.
    fn encode(&self, tape: &Tape<T>, float: Dtype) -> Encoded {
        let (dtype, shape) = self.layout(tape, float);
        let data = match self {
            Entry::Param(p) => tape.with_param(*p, |_, value, _| encode(dtype, value)),
            Entry::Buffer(Buffer::Float(t)) => encode(dtype, t.borrow().data()),
            Entry::Buffer(Buffer::Int64(c)) => c.get().to_le_bytes().to_vec(),
        };
        Encoded { dtype, shape, data }
    }

    /// The value of the file's bytes (of the checked layout).
    fn decode(&self, dtype: Dtype, shape: &[usize], bytes: &[u8]) -> Value<T> {
        if dtype == Dtype::I64 {
            let mut a = [0u8; 8];
            a.copy_from_slice(bytes);
            Value::Int64(i64::from_le_bytes(a))
        } else {
            Value::Float(Tensor::new(decode(dtype, bytes), shape))
        }
    }

    /// Sets the entry to `value`.
    fn set(&self, tape: &mut Tape<T>, value: &Value<T>) {
        match (self, value) {
            (Entry::Param(p), Value::Float(v)) => tape.set_param_value(*p, v),
            (Entry::Buffer(Buffer::Float(t)), Value::Float(v)) => t.borrow_mut().data_mut().copy_from_slice(v.data()),
            (Entry::Buffer(Buffer::Int64(c)), Value::Int64(v)) => c.set(*v),
            _ => unreachable!("values are decoded for their entry's layout"),
        }
    }
}

/// The model's named parameters then buffers; an error if a name repeats.
fn unique_entries<T: Float, M: Module<T> + ?Sized>(
    model: &M,
) -> Result<Vec<(String, Entry<'_, T>)>, StateDictErrorKind> {
    let params = model.named_parameters().into_iter().map(|(n, p)| (n, Entry::Param(p)));
    let entries: Vec<_> = params.chain(model.named_buffers().into_iter().map(|(n, b)| (n, Entry::Buffer(b)))).collect();
    let mut seen = HashSet::new();
    for (name, _) in &entries {
        if !seen.insert(name.as_str()) {
            return Err(StateDictErrorKind::DuplicateName(name.clone()));
        }
    }
    Ok(entries)
}

/// The model's parameters and buffers as the bytes of a safetensors file (what [`save`]
/// writes).
///
/// # Errors
/// [`StateDictErrorKind::DuplicateName`] if two parameters share a name.
///
/// # Panics
/// If the model's parameters belong to another tape.
pub fn save_to_bytes<T: Float, M: Module<T> + ?Sized>(tape: &Tape<T>, model: &M) -> Result<Vec<u8>, StateDictError> {
    let dtype = dtype_of::<T>()?;
    let tensors: Vec<(String, Encoded)> =
        unique_entries(model)?.into_iter().map(|(name, e)| (name, e.encode(tape, dtype))).collect();
    safetensors::serialize(tensors.iter().map(|(name, t)| (name.as_str(), t)), None)
        .map_err(|e| StateDictErrorKind::Serialize(e.to_string()).into())
}

/// The header length the 8-byte prefix of a file of `len` bytes gives, checked against the
/// format's limit and the file's length.
fn header_len(prefix: [u8; N_LEN as usize], len: u64) -> Result<u64, StateDictErrorKind> {
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER {
        return Err(StateDictErrorKind::Invalid(format!(
            "the first 8 bytes give a header length of {n} bytes, over the format's limit of {MAX_HEADER}"
        )));
    }
    if N_LEN + n > len {
        return Err(StateDictErrorKind::Truncated { len, expected: N_LEN + n });
    }
    Ok(n)
}

/// The header's tensor table, and the file length it implies (prefix + header + data),
/// checked against the actual length `len`.
fn parse_header(header: &[u8], len: u64) -> Result<Metadata, StateDictErrorKind> {
    use StateDictErrorKind::{Invalid, Truncated};
    let metadata: Metadata = serde_json::from_slice(header).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Invalid(format!("bad header: {e}")),
        _ => Invalid(format!("the header is not valid JSON: {e}")),
    })?;
    let expected = (N_LEN + header.len() as u64).saturating_add(metadata.data_len() as u64);
    if len < expected {
        return Err(Truncated { len, expected });
    }
    if len > expected {
        return Err(Invalid(format!("{} bytes after the end of the last tensor", len - expected)));
    }
    Ok(metadata)
}

/// Checks the layout of a whole safetensors file, with precise messages for the common
/// failures, then hands it to the safetensors reader.
fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, StateDictErrorKind> {
    let len = bytes.len() as u64;
    let Some(prefix) = bytes.get(..N_LEN as usize) else {
        return Err(StateDictErrorKind::Truncated { len, expected: N_LEN });
    };
    let mut p = [0u8; N_LEN as usize];
    p.copy_from_slice(prefix);
    let n = header_len(p, len)?;
    parse_header(&bytes[N_LEN as usize..(N_LEN + n) as usize], len)?;
    SafeTensors::deserialize(bytes).map_err(|e| StateDictErrorKind::Invalid(e.to_string()))
}

/// Entries with their names and the element type and shape the file holds for them.
type Checked<'m, T> = Vec<(String, Entry<'m, T>, Dtype, Vec<usize>)>;

/// Checks the file's tensor table against the model: the same names, and for each its
/// element type and shape.
fn check_table<'m, T: Float, M: Module<T> + ?Sized>(
    tape: &Tape<T>,
    model: &'m M,
    table: &Metadata,
) -> Result<Checked<'m, T>, StateDictErrorKind> {
    let float = dtype_of::<T>()?;
    let params = unique_entries(model)?;
    let in_file = table.tensors();
    let missing: Vec<String> =
        params.iter().filter(|(n, _)| !in_file.contains_key(n.as_str())).map(|(n, _)| n.clone()).collect();
    if !missing.is_empty() {
        return Err(StateDictErrorKind::MissingKeys(missing));
    }
    let in_model: HashSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let mut unexpected: Vec<String> = in_file.keys().filter(|n| !in_model.contains(n.as_str())).cloned().collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(StateDictErrorKind::UnexpectedKeys(unexpected));
    }
    let mut out = Vec::with_capacity(params.len());
    for (key, p) in params {
        let info = in_file[&key];
        let (dtype, expected) = p.layout(tape, float);
        if info.dtype != dtype {
            return Err(StateDictErrorKind::DtypeMismatch {
                key,
                expected: dtype.to_string(),
                found: info.dtype.to_string(),
            });
        }
        if info.shape != expected {
            return Err(StateDictErrorKind::ShapeMismatch { key, expected, found: info.shape.clone() });
        }
        out.push((key, p, dtype, expected));
    }
    Ok(out)
}

/// An entry and its new value.
type EntryValue<'m, T> = (Entry<'m, T>, Value<T>);

/// Every entry's new value, after checking names, element types and shapes.
fn check<'m, T: Float, M: Module<T> + ?Sized>(
    tape: &Tape<T>,
    model: &'m M,
    bytes: &[u8],
) -> Result<Vec<EntryValue<'m, T>>, StateDictErrorKind> {
    let file = parse(bytes)?;
    let (_, table) = SafeTensors::read_metadata(bytes).map_err(|e| StateDictErrorKind::Invalid(e.to_string()))?;
    let mut values = Vec::new();
    for (key, e, dtype, shape) in check_table(tape, model, &table)? {
        let view = file.tensor(&key).map_err(|e| StateDictErrorKind::Invalid(e.to_string()))?;
        values.push((e, e.decode(dtype, &shape, view.data())));
    }
    Ok(values)
}

/// Checks that every parameter and float buffer of the model is finite (no NaN, no
/// infinity), e.g. after [`load`] of a file from elsewhere.
///
/// # Errors
/// [`StateDictErrorKind::NonFinite`] naming the first parameter or buffer (parameters
/// first, in the model's order) with a non-finite value, how many it has and where the
/// first is.
///
/// # Panics
/// If the model's parameters belong to another tape.
pub fn check_finite<T: Float, M: Module<T> + ?Sized>(tape: &Tape<T>, model: &M) -> Result<(), StateDictError> {
    let first_bad = |value: &[T]| {
        let mut it = value.iter().enumerate().filter(|(_, v)| !v.to_f64().is_finite());
        it.next().map(|(index, v)| (index, v.to_f64(), 1 + it.count()))
    };
    for (key, e) in unique_entries(model)? {
        let bad = match e {
            Entry::Param(p) => tape.with_param(p, |_, value, _| first_bad(value)),
            Entry::Buffer(Buffer::Float(t)) => first_bad(t.borrow().data()),
            Entry::Buffer(Buffer::Int64(_)) => None,
        };
        if let Some((index, value, count)) = bad {
            return Err(StateDictErrorKind::NonFinite { key, count, index, value }.into());
        }
    }
    Ok(())
}

/// Sets the model's parameters and buffers from the bytes of a safetensors file (what
/// [`load`] reads). All or nothing: on error nothing has changed. Gradients are left as
/// they are.
///
/// # Errors
/// A truncated or invalid file, a missing or unexpected tensor, a shape or element type that
/// differs from the parameter's (see [`StateDictErrorKind`]).
///
/// # Panics
/// If the model's parameters belong to another tape.
pub fn load_from_bytes<T: Float, M: Module<T> + ?Sized>(
    tape: &mut Tape<T>,
    model: &M,
    bytes: &[u8],
) -> Result<(), StateDictError> {
    for (e, value) in &check(tape, model, bytes)? {
        e.set(tape, value);
    }
    Ok(())
}

/// Saves the model's parameters and buffers to a safetensors file at `path`, replacing any
/// file there.
///
/// The bytes go through [`files::write_atomic`](crate::files::write_atomic): a temporary
/// file in the same folder renamed over `path` (readers see the old file or the new one,
/// never a half-written one); a symbolic link is kept and its target replaced, the
/// target's permissions are kept. On error the target is unchanged and no temporary file
/// remains.
///
/// ```no_run
/// use tapegrad::{Tape, TorchRng};
/// use tapegrad_nn::Sequential;
///
/// let tape = Tape::<f32>::new();
/// let model = Sequential::mlp(&tape, &[4, 8, 2], &mut TorchRng::manual_seed(2));
/// tapegrad_nn::save(&tape, &model, "model.safetensors")?;
/// # Ok::<(), tapegrad_nn::StateDictError>(())
/// ```
///
/// # Errors
/// The file cannot be written, or [`save_to_bytes`] fails; the message names `path`.
///
/// # Panics
/// If the model's parameters belong to another tape.
pub fn save<T: Float, M: Module<T> + ?Sized>(
    tape: &Tape<T>,
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), StateDictError> {
    let path = path.as_ref();
    let bytes = save_to_bytes(tape, model).map_err(|e| e.at(path))?;
    crate::files::write_atomic(path, &bytes)
        .map_err(|source| StateDictError::from(StateDictErrorKind::Io { action: "cannot save", source }).at(path))
}

/// Loads the model's parameters and buffers from the safetensors file at `path` (written by
/// [`save`] or by PyTorch's `safetensors.torch.save_file(model.state_dict())`). All or
/// nothing: on error nothing has changed.
///
/// ```no_run
/// use tapegrad::{Tape, TorchRng};
/// use tapegrad_nn::Sequential;
///
/// let mut tape = Tape::<f32>::new();
/// let model = Sequential::mlp(&tape, &[4, 8, 2], &mut TorchRng::manual_seed(0));
/// tapegrad_nn::load(&mut tape, &model, "model.safetensors")?;
/// # Ok::<(), tapegrad_nn::StateDictError>(())
/// ```
///
/// # Errors
/// The file cannot be read, or [`load_from_bytes`] fails; the message names `path`.
///
/// # Panics
/// If the model's parameters belong to another tape.
pub fn load<T: Float, M: Module<T> + ?Sized>(
    tape: &mut Tape<T>,
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), StateDictError> {
    let path = path.as_ref();
    let bytes = read_checked(tape, model, path).map_err(|e| StateDictError::from(e).at(path))?;
    load_from_bytes(tape, model, &bytes).map_err(|e| e.at(path))
}

/// The bytes of the safetensors file at `path`, read only after its header has been
/// checked against the file's length and the model (so the data read is the model's size).
fn read_checked<T: Float, M: Module<T> + ?Sized>(
    tape: &Tape<T>,
    model: &M,
    path: &Path,
) -> Result<Vec<u8>, StateDictErrorKind> {
    let io = |action| move |source| StateDictErrorKind::Io { action, source };
    let (file, len) = crate::files::open_regular(path).map_err(io("cannot read the file"))?;
    let mut file = file.take(len);
    let mut prefix = [0u8; N_LEN as usize];
    if len < N_LEN {
        return Err(StateDictErrorKind::Truncated { len, expected: N_LEN });
    }
    file.read_exact(&mut prefix).map_err(io("cannot read the file"))?;
    let n = header_len(prefix, len)?;
    let mut bytes = prefix.to_vec();
    read_exactly(&mut file, &mut bytes, n, len)?;
    let table = parse_header(&bytes[N_LEN as usize..], len)?;
    check_table(tape, model, &table)?;
    read_exactly(&mut file, &mut bytes, table.data_len() as u64, len)?;
    Ok(bytes)
}

/// Appends exactly `n` more bytes of `file` to `bytes` (a file that shrank while being read
/// is reported as truncated).
fn read_exactly(file: &mut impl Read, bytes: &mut Vec<u8>, n: u64, len: u64) -> Result<(), StateDictErrorKind> {
    let want = bytes.len() as u64 + n;
    bytes.try_reserve_exact(n as usize).map_err(|_| StateDictErrorKind::Io {
        action: "cannot read the file",
        source: io::Error::new(io::ErrorKind::OutOfMemory, format!("no memory for its {n} bytes")),
    })?;
    file.take(n)
        .read_to_end(bytes)
        .map_err(|source| StateDictErrorKind::Io { action: "cannot read the file", source })?;
    if (bytes.len() as u64) < want {
        return Err(StateDictErrorKind::Truncated { len: bytes.len() as u64, expected: len });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
