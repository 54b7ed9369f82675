//! Data sets and batches: a labelled [`Dataset`] (read from a CSV file, e.g. the bundled
//! 8x8 [digits](Dataset::digits)), a seeded [random split](Dataset::random_split), and a
//! [`DataLoader`] that cuts a data set into batches, reshuffled each epoch, with
//! [micro-batches](Batch::micro_batches) of a batch for gradient accumulation.
//!
//! Shuffling reproduces PyTorch exactly: `random_split` is
//! `torch.utils.data.random_split(ds, lengths, generator=torch.Generator().manual_seed(seed))`,
//! and a shuffling loader's epochs are those of
//! `DataLoader(ds, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))`
//! (single process), both checked against PyTorch 2.15 in the tests.

use std::fmt;
use std::path::Path;

use tapegrad::{Float, Tensor, TorchRng};

use crate::split_sizes;

/// Samples with a feature vector and a class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T: Float> {
    features: Tensor<T>,
    labels: Vec<usize>,
    classes: usize,
}

/// Why a data file could not be read: its path, and the line and reason when its content
/// is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file.
    pub path: String,
    /// 1-based line number, when a line is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path, self.reason),
            None => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

impl std::error::Error for DataError {}

impl<T: Float> Dataset<T> {
    /// A data set of `features` `[n, f]` and `n` labels in `0..classes`.
    ///
    /// # Panics
    /// If the features are not 2-d, the counts differ, or a label is not below `classes`.
    #[track_caller]
    pub fn new(features: Tensor<T>, labels: Vec<usize>, classes: usize) -> Self {
        assert!(
            features.ndim() == 2 && features.shape()[0] == labels.len(),
            "Dataset: features {:?} for {} labels (need [n, f] and n labels)",
            features.shape(),
            labels.len()
        );
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            panic!("Dataset: label {bad} is not below the class count {classes}");
        }
        Dataset { features, labels, classes }
    }

    /// Reads a CSV file without header: each line holds the features, then the class label
    /// (a non-negative integer). Features are multiplied by `scale`; the class count is the
    /// largest label plus one.
    ///
    /// # Errors
    /// If the file cannot be read (or is not a regular file), is empty, or a line has another field count than the
    /// first, a field that is not a number, or a label that is not a non-negative integer.
    pub fn from_csv(path: impl AsRef<Path>, scale: f64) -> Result<Self, DataError> {
        let path = path.as_ref();
        let err = |line: Option<usize>, reason: String| DataError { path: crate::files::escaped(path), line, reason };
        // a regular file only: a FIFO or device is refused, not waited on
        let (mut file, _) = crate::files::open_regular(path).map_err(|e| err(None, e.to_string()))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| err(None, e.to_string()))?;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        let mut width = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let w = *width.get_or_insert(fields.len());
            if w < 2 || fields.len() != w {
                let why = format!("{} fields (need at least two, the same on every line: {w})", fields.len());
                return Err(err(Some(i + 1), why));
            }
            for f in &fields[..w - 1] {
                let v: f64 = f.parse().map_err(|_| err(Some(i + 1), format!("feature {f:?} is not a number")))?;
                data.push(T::from_f64(v * scale));
            }
            let l = fields[w - 1];
            let label =
                l.parse::<usize>().map_err(|_| err(Some(i + 1), format!("label {l:?} is not a class index")))?;
            labels.push(label);
        }
        let Some(w) = width else { return Err(err(None, "no samples".into())) };
        let classes = labels.iter().max().map_or(0, |m| m + 1);
        let n = labels.len();
        Ok(Dataset { features: Tensor::new(data, &[n, w - 1]), labels, classes })
    }

    /// The 8x8 handwritten digits bundled with this crate (`data/digits.csv`, 1,797
    /// samples, 64 features, 10 classes; source and licence in `data/README.md`), pixels
    /// scaled from `0..=16` to `[0, 1]`.
    ///
    /// # Errors
    /// If the file is missing or damaged.
    pub fn digits() -> Result<Self, DataError> {
        Self::from_csv(Self::DIGITS_CSV, 1.0 / 16.0)
    }

    /// Where the bundled digits file is (in this crate's source tree).
    pub const DIGITS_CSV: &'static str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv");

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Features per sample.
    pub fn num_features(&self) -> usize {
        self.features.shape()[1]
    }

    /// All features, `[n, f]`.
    pub fn features(&self) -> &Tensor<T> {
        &self.features
    }

    /// All labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The samples at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> Self {
        let b = self.batch(indices);
        Dataset { features: b.inputs, labels: b.labels, classes: self.classes }
    }

    /// The samples at `indices` as a batch.
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn batch(&self, indices: &[usize]) -> Batch<T> {
        let f = self.num_features();
        let mut x = Vec::with_capacity(indices.len() * f);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            assert!(i < self.len(), "Dataset::batch: index {i} out of range for {} samples", self.len());
            x.extend_from_slice(&self.features.data()[i * f..(i + 1) * f]);
            labels.push(self.labels[i]);
        }
        Batch { inputs: Tensor::new(x, &[indices.len(), f]), labels }
    }

    /// Disjoint random subsets of the given sizes, as
    /// `torch.utils.data.random_split(ds, lengths, generator=torch.Generator().manual_seed(seed))`:
    /// a permutation `torch.randperm(n)` of the samples, cut into consecutive pieces.
    ///
    /// # Panics
    /// If the lengths do not add up to the sample count.
    #[track_caller]
    pub fn random_split(&self, lengths: &[usize], seed: u64) -> Vec<Self> {
        let total: usize = lengths.iter().sum();
        assert_eq!(total, self.len(), "random_split: lengths {lengths:?} for {} samples", self.len());
        let perm = TorchRng::manual_seed(seed).randperm(self.len());
        let mut start = 0;
        lengths
            .iter()
            .map(|&l| {
                let part = self.subset(&perm[start..start + l]);
                start += l;
                part
            })
            .collect()
    }

    /// The split the examples use: `(train, test)` with `ceil(test_fraction·n)` test samples
    /// and the rest for training, by [`Dataset::random_split`] with `seed` (train first).
    ///
    /// # Panics
    /// If `test_fraction` is not within `[0, 1]`.
    #[track_caller]
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> (Self, Self) {
        assert!((0.0..=1.0).contains(&test_fraction), "train_test_split: test fraction {test_fraction} not in [0, 1]");
        let n_test = (test_fraction * self.len() as f64).ceil() as usize;
        let mut parts = self.random_split(&[self.len() - n_test, n_test], seed);
        let test = parts.pop().expect("two parts");
        (parts.pop().expect("two parts"), test)
    }
}

/// A batch: inputs `[b, f]` and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T: Float> {
    /// Features, `[b, f]`.
    pub inputs: Tensor<T>,
    /// Class labels, `b` of them.
    pub labels: Vec<usize>,
}

impl<T: Float> Batch<T> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels as values of the element type, `[b]` (the targets of
    /// [`crate::CrossEntropyLoss`]).
    pub fn targets(&self) -> Tensor<T> {
        Tensor::from_fn(&[self.len()], |i| T::from_usize(self.labels[i]))
    }

    /// `k` consecutive micro-batches of sizes [`split_sizes`] (as `torch.tensor_split`:
    /// sizes differ by at most one, earlier ones larger).
    ///
    /// # Panics
    /// If `k` is 0 or larger than the batch.
    #[track_caller]
    pub fn micro_batches(&self, k: usize) -> Vec<Batch<T>> {
        let mut start = 0;
        split_sizes(self.len(), k)
            .into_iter()
            .map(|size| {
                let b =
                    Batch { inputs: self.inputs.rows(start, size), labels: self.labels[start..start + size].to_vec() };
                start += size;
                b
            })
            .collect()
    }
}

/// Cuts a data set into batches of `batch_size` samples (the last one smaller unless
/// `drop_last`), in order or reshuffled every epoch.
///
/// A shuffling loader draws each epoch's order as `torch.utils.data.DataLoader(ds,
/// batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))` does (one
/// process, PyTorch 2.15): per epoch it takes a 64-bit worker base seed from the generator
/// (two raw outputs), then the order `torch.randperm(n)`, and its `RandomSampler` then draws
/// one more `torch.randperm(n)` that it discards (for its `num_samples % n` tail). The
/// orders equal PyTorch's, epoch after epoch.
#[derive(Clone, Debug)]
pub struct DataLoader {
    batch_size: usize,
    drop_last: bool,
    rng: Option<TorchRng>,
    order: Vec<usize>,
    discarded: Vec<usize>,
}

impl DataLoader {
    /// A loader that keeps the data set's order.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn new(batch_size: usize) -> Self {
        assert!(batch_size > 0, "DataLoader: batch size 0");
        DataLoader { batch_size, drop_last: false, rng: None, order: Vec::new(), discarded: Vec::new() }
    }

    /// Reshuffles every epoch with a generator seeded with `seed`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.rng = Some(TorchRng::manual_seed(seed));
        self
    }

    /// Drops the last batch of an epoch when it is smaller than the batch size.
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches in an epoch over `n` samples.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The sample order of the next epoch over `n` samples (advancing the generator when
    /// shuffling).
    pub fn next_order(&mut self, n: usize) -> &[usize] {
        self.order.resize(n, 0);
        match &mut self.rng {
            None => self.order.iter_mut().enumerate().for_each(|(i, v)| *v = i),
            Some(rng) => {
                rng.next_u64(); // the worker base seed
                rng.randperm_into(&mut self.order);
                // the sampler's discarded tail permutation
                self.discarded.resize(n, 0);
                rng.randperm_into(&mut self.discarded);
            }
        }
        &self.order
    }

    /// The batches of the next epoch over `data`.
    pub fn epoch<'a, T: Float>(&'a mut self, data: &'a Dataset<T>) -> impl Iterator<Item = Batch<T>> + 'a {
        let (bs, count) = (self.batch_size, self.batches_per_epoch(data.len()));
        let order = self.next_order(data.len());
        order.chunks(bs).take(count).map(move |idx| data.batch(idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset<f32> {
        Dataset::new(Tensor::from_fn(&[n, 2], |i| i as f32), (0..n).map(|i| i % 3).collect(), 3)
    }

    #[test]
    fn sequential_batches_and_the_last_partial_one() {
        let data = toy(10);
        let mut loader = DataLoader::new(4);
        let sizes: Vec<usize> = loader.epoch(&data).map(|b| b.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let first = loader.epoch(&data).next().unwrap();
        assert_eq!(first.labels, [0, 1, 2, 0]);
        assert_eq!(first.inputs.data(), &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let mut dl = DataLoader::new(4).drop_last(true);
        assert_eq!(dl.epoch(&data).count(), 2);
    }

    #[test]
    fn micro_batches_split_like_tensor_split() {
        let b = toy(10).batch(&[9, 8, 7, 6, 5, 4, 3]);
        let mbs = b.micro_batches(3);
        assert_eq!(mbs.iter().map(Batch::len).collect::<Vec<_>>(), [3, 2, 2]);
        assert_eq!(mbs[1].labels, [0, 2]);
        assert_eq!(mbs[2].inputs.data(), &[8., 9., 6., 7.]);
        assert_eq!(b.targets().data(), &[0., 2., 1., 0., 2., 1., 0.]);
    }
}
