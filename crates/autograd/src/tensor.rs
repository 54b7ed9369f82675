//! [`Tensor`]: an owned, contiguous, row-major n-dimensional array of `f32` or `f64`.

use crate::float::Float;
use crate::rng::TorchRng;
use crate::shape::{numel, Shape};

/// An owned n-dimensional array, row-major and contiguous.
///
/// Tensors are plain values; the tape ([`crate::Tape`]) records operations on them.
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Float> {
    shape: Shape,
    data: Vec<T>,
}

impl<T: Float> Tensor<T> {
    /// A tensor from row-major data.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn new(data: Vec<T>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            checked_len::<T>("Tensor::new", shape),
            "Tensor::new: {} values do not fill shape {:?}",
            data.len(),
            shape
        );
        Tensor { shape: Shape::from_slice(shape), data }
    }

    /// A tensor copied from a slice.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_slice(data: &[T], shape: &[usize]) -> Self {
        Self::new(data.to_vec(), shape)
    }

    /// A 0-dimensional tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Tensor { shape: Shape::new(), data: vec![value] }
    }

    /// A tensor filled with `value`.
    ///
    /// # Panics
    /// If the shape's byte size does not fit in memory's address range (names the shape).
    #[track_caller]
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::filled("Tensor::full", shape, value)
    }

    /// [`full`](Self::full) for the constructor `op` (named in the size panic).
    #[track_caller]
    fn filled(op: &str, shape: &[usize], value: T) -> Self {
        Tensor { shape: Shape::from_slice(shape), data: vec![value; checked_len::<T>(op, shape)] }
    }

    /// A tensor of zeros.
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::filled("Tensor::zeros", shape, T::ZERO)
    }

    /// A tensor of ones.
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::filled("Tensor::ones", shape, T::ONE)
    }

    /// A tensor whose element at flat (row-major) index `i` is `f(i)`.
    ///
    /// # Panics
    /// If the shape's byte size does not fit in memory's address range (names the shape).
    #[track_caller]
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> T) -> Self {
        Self::generate("Tensor::from_fn", shape, f)
    }

    /// [`from_fn`](Self::from_fn) for the constructor `op` (named in the size panic).
    #[track_caller]
    fn generate(op: &str, shape: &[usize], f: impl FnMut(usize) -> T) -> Self {
        let n = checked_len::<T>(op, shape);
        Tensor { shape: Shape::from_slice(shape), data: (0..n).map(f).collect() }
    }

    /// Uniform values on `[0, 1)`, bit for bit what `torch.rand(shape)` gives after the same
    /// `torch.manual_seed` (elements drawn in row-major order).
    #[track_caller]
    pub fn rand(shape: &[usize], rng: &mut TorchRng) -> Self {
        Self::generate("Tensor::rand", shape, |_| T::rand_unit(rng))
    }

    /// Standard normal values (mean 0, variance 1), reproducible from the seed: the
    /// Box-Muller transform of pairs of uniform `f64` draws
    /// ([`TorchRng::uniform_f64_unit`]), `sqrt(-2 ln(1 - u1))` times `cos` and `sin` of
    /// `2π u2`, rounded to the element type. Not the stream of `torch.randn`, which draws
    /// in blocks of 16 with its own approximations.
    ///
    /// ```
    /// use tapegrad::{Tensor, TorchRng};
    /// let x = Tensor::<f64>::randn(&[10_000], &mut TorchRng::manual_seed(0));
    /// let mean = x.data().iter().sum::<f64>() / 1e4;
    /// let var = x.data().iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 1e4;
    /// assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{mean} {var}");
    /// ```
    #[track_caller]
    pub fn randn(shape: &[usize], rng: &mut TorchRng) -> Self {
        let mut pair: Option<f64> = None;
        Self::generate("Tensor::randn", shape, |_| {
            let z = match pair.take() {
                Some(z) => z,
                None => {
                    let r = (-2.0 * (1.0 - rng.uniform_f64_unit()).ln()).sqrt();
                    let (sin, cos) = (std::f64::consts::TAU * rng.uniform_f64_unit()).sin_cos();
                    pair = Some(r * sin);
                    r * cos
                }
            };
            T::from_f64(z)
        })
    }

    /// Uniform values on `[from, to)`, bit for bit what `tensor.uniform_(from, to)` gives.
    #[track_caller]
    pub fn uniform(shape: &[usize], from: T, to: T, rng: &mut TorchRng) -> Self {
        Self::generate("Tensor::uniform", shape, |_| T::torch_uniform(rng, from, to))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The element buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The single value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor does not have exactly one element.
    #[track_caller]
    pub fn item(&self) -> T {
        assert_eq!(self.data.len(), 1, "item: tensor of shape {:?} is not a single value", self.shape);
        self.data[0]
    }

    /// The element at a multi-index.
    ///
    /// # Panics
    /// If the index has the wrong length or is out of bounds.
    #[track_caller]
    pub fn at(&self, index: &[usize]) -> T {
        assert_eq!(index.len(), self.ndim(), "at: index {index:?} for shape {:?}", self.shape);
        let mut flat = 0;
        for (d, (&i, &n)) in index.iter().zip(self.shape.iter()).enumerate() {
            assert!(i < n, "at: index {i} out of bounds for dimension {d} of shape {:?}", self.shape);
            flat = flat * n + i;
        }
        self.data[flat]
    }

    /// The same data with another shape.
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(mut self, shape: &[usize]) -> Self {
        assert_eq!(
            numel(shape),
            self.data.len(),
            "reshape: {:?} ({} elements) into {:?}",
            self.shape,
            self.data.len(),
            shape
        );
        self.shape = Shape::from_slice(shape);
        self
    }

    /// Rows `start..start + len` along the first dimension, as a new tensor.
    ///
    /// # Panics
    /// If the tensor is 0-d or the rows are out of range.
    #[track_caller]
    pub fn rows(&self, start: usize, len: usize) -> Self {
        assert!(
            !self.shape.is_empty() && start + len <= self.shape[0],
            "rows: {start}..{} out of range for shape {:?}",
            start + len,
            self.shape
        );
        let row: usize = numel(&self.shape[1..]);
        let mut shape = self.shape.clone();
        shape[0] = len;
        Tensor { shape, data: self.data[start * row..(start + len) * row].to_vec() }
    }

    /// Converts every element to another float type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect() }
    }

    /// Largest absolute difference to another tensor of the same shape.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Self) -> T {
        assert_eq!(self.shape, other.shape, "max_abs_diff: shapes {:?} and {:?}", self.shape, other.shape);
        self.data.iter().zip(&other.data).fold(T::ZERO, |m, (&a, &b)| m.max((a - b).abs()))
    }

    /// `torch.allclose`: `|a - b| <= atol + rtol * |b|` everywhere (NaN is never close).
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn allclose(&self, other: &Self, rtol: f64, atol: f64) -> bool {
        assert_eq!(self.shape, other.shape, "allclose: shapes {:?} and {:?}", self.shape, other.shape);
        self.data.iter().zip(&other.data).all(|(&a, &b)| {
            let (a, b) = (a.to_f64(), b.to_f64());
            (a - b).abs() <= atol + rtol * b.abs()
        })
    }

    pub(crate) fn from_parts(shape: Shape, data: Vec<T>) -> Self {
        debug_assert_eq!(numel(&shape), data.len());
        Tensor { shape, data }
    }
}

/// The number of elements of `shape`, for a constructor (`op`) that allocates them: panics
/// naming the op and the shape when the count or its byte size overflows (more than
/// `isize::MAX` bytes), instead of Rust's bare "capacity overflow".
#[track_caller]
fn checked_len<T>(op: &str, shape: &[usize]) -> usize {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n.checked_mul(std::mem::size_of::<T>()).is_some_and(|b| b <= isize::MAX as usize))
        .unwrap_or_else(|| {
            panic!(
                "{op}: shape {shape:?} has more elements than memory can hold ({} bytes each)",
                std::mem::size_of::<T>()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_access() {
        let t = Tensor::<f32>::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(t.at(&[1, 2]), 6.0);
        assert_eq!(t.to_string(), "tensor([[1., 2., 3.],\n        [4., 5., 6.]], shape=[2, 3], dtype=f32)");
        assert_eq!(Tensor::<f64>::zeros(&[3]).data(), &[0.0; 3]);
        assert_eq!(Tensor::<f64>::ones(&[]).item(), 1.0);
        let r = t.clone().reshape(&[3, 2]);
        assert_eq!(r.shape(), &[3, 2]);
        assert!(t.cast::<f64>().cast::<f32>() == t);
    }

    #[test]
    #[should_panic(expected = "Tensor::new: 3 values do not fill shape [2, 2]")]
    fn new_checks_length() {
        let _ = Tensor::<f32>::new(vec![1.0; 3], &[2, 2]);
    }

    #[test]
    #[should_panic(expected = "Tensor::rand: shape [18446744073709551615, 2] has more elements than memory can hold")]
    fn impossible_sizes_name_the_op_and_shape() {
        let _ = Tensor::<f32>::rand(&[usize::MAX, 2], &mut TorchRng::manual_seed(0));
    }

    #[test]
    fn byte_sizes_over_isize_max_are_refused_for_every_constructor() {
        let huge = [1usize << 31, 1 << 31]; // 2^62 elements: 2^64 bytes of f32
        for (op, f) in [
            ("Tensor::zeros", Box::new(|| drop(Tensor::<f32>::zeros(&huge))) as Box<dyn Fn()>),
            ("Tensor::full", Box::new(|| drop(Tensor::<f64>::full(&huge, 1.0)))),
            ("Tensor::from_fn", Box::new(|| drop(Tensor::<f32>::from_fn(&huge, |_| 0.0)))),
            ("Tensor::new", Box::new(|| drop(Tensor::<f32>::new(vec![], &huge)))),
        ] {
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.starts_with(op) && msg.contains("[2147483648, 2147483648]"), "{msg}");
        }
    }
}
