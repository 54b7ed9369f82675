//! Gradient accumulation: k micro-batches, one optimizer step.
//!
//! Gradients add up across backward calls until zeroed (PyTorch semantics), so running
//! backward on k micro-batches and then stepping once sums their gradients. Whether that
//! equals one step on the whole batch depends on how each micro-batch's loss is
//! normalised ([`LossScale`]).

use tapegrad::{Float, Tape, Tensor};

use crate::{Loss, Module, Optimizer};

/// How each micro-batch's loss is scaled before its backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossScale {
    /// Unscaled: right for a **sum** loss (the summed micro-batch gradients are the batch
    /// gradient).
    None,
    /// Divided by the number of micro-batches k (what PyTorch Lightning does): exact for a
    /// **mean** loss when all micro-batches have the same size.
    DivideByK,
    /// Multiplied by (micro-batch size / batch size): exact for a **mean** loss with any
    /// micro-batch sizes (its absence caused the 2024 gradient-accumulation bug in Hugging
    /// Face transformers).
    SizeOverBatch,
}

/// Sizes of `k` consecutive chunks of `batch` rows as `torch.tensor_split` makes them:
/// they differ by at most 1, earlier chunks larger.
///
/// # Panics
/// If `k` is 0 or larger than `batch`.
pub fn split_sizes(batch: usize, k: usize) -> Vec<usize> {
    assert!(k >= 1 && k <= batch, "split_sizes: {k} micro-batches of a batch of {batch}");
    let (q, r) = (batch / k, batch % k);
    (0..k).map(|i| q + usize::from(i < r)).collect()
}

/// Runs k micro-batches (forward, loss, scaled backward) and then one optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accumulation {
    /// Number of micro-batches k.
    pub micro_batches: usize,
    /// Loss normalisation.
    pub scale: LossScale,
}

impl Accumulation {
    /// k micro-batches with the given policy.
    pub fn new(micro_batches: usize, scale: LossScale) -> Self {
        Accumulation { micro_batches, scale }
    }

    /// Scale factor of a micro-batch of `size` rows out of `batch`, in the element type
    /// (as PyTorch multiplies a float32 loss by a Python float: rounded to float32 first).
    pub fn factor<T: Float>(&self, size: usize, batch: usize) -> T {
        match self.scale {
            LossScale::None => T::ONE,
            LossScale::DivideByK => T::from_f64(1.0 / self.micro_batches as f64),
            LossScale::SizeOverBatch => T::from_f64(size as f64 / batch as f64),
        }
    }

    /// Zeroes the gradients, accumulates `loss_fn` over the micro-batches of
    /// `input`/`target` (split along the first dimension as [`split_sizes`]), then steps
    /// with `optimizer` (any [`Optimizer`]: `Some(&mut sgd)`, `Some(&mut adam)`). Returns each
    /// micro-batch's loss before scaling. Without `optimizer`, stops before the step (the
    /// gradients stay on the tape for inspection).
    ///
    /// # Panics
    /// If the micro-batch count does not fit the batch, or input and target have different
    /// batch sizes.
    pub fn run<T: Float, M: Module<T> + ?Sized, L: Loss<T> + ?Sized>(
        &self,
        tape: &mut Tape<T>,
        model: &M,
        loss_fn: &L,
        input: &Tensor<T>,
        target: &Tensor<T>,
        optimizer: Option<&mut dyn Optimizer<T>>,
    ) -> Vec<T> {
        let batch = input.shape()[0];
        assert_eq!(target.shape()[0], batch, "accumulate: input batch {batch} but target batch {}", target.shape()[0]);
        tape.zero_grad();
        let mut losses = Vec::with_capacity(self.micro_batches);
        let mut start = 0;
        for size in split_sizes(batch, self.micro_batches) {
            tape.reset();
            let x = micro_batch(tape, input, start, size);
            let t = micro_batch(tape, target, start, size);
            let loss = loss_fn.forward(model.forward(x), t);
            losses.push(loss.item());
            let factor = self.factor::<T>(size, batch);
            if factor == T::ONE {
                loss.backward();
            } else {
                loss.mul_scalar(factor).backward();
            }
            start += size;
        }
        tape.reset();
        if let Some(opt) = optimizer {
            opt.step(tape);
        }
        losses
    }
}

/// Rows `start..start + size` of `data` as an input leaf, copied straight into the tape's
/// reused node buffer (no intermediate tensor).
fn micro_batch<'t, T: Float>(tape: &'t Tape<T>, data: &Tensor<T>, start: usize, size: usize) -> tapegrad::Var<'t, T> {
    let row: usize = data.shape()[1..].iter().product();
    let mut shape = data.shape().to_vec();
    shape[0] = size;
    tape.leaf_from_slice(&data.data()[start * row..(start + size) * row], &shape, false)
}
