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
    /// micro-batch sizes when every sample contributes one loss term.
    SizeOverBatch,
    /// Each micro-batch's **summed** loss ([`Loss::forward_sum`]) divided by the number of
    /// loss terms of the whole batch ([`Loss::loss_terms`], counted before the first
    /// backward): exact for a mean loss whatever the micro-batches hold, token losses over
    /// sequences of different lengths with padding ignored included. Averaging token means
    /// (`DivideByK`) or weighting by sequences (`SizeOverBatch`) over-weights the tokens of
    /// short micro-batches: the 2024 gradient-accumulation bug of Hugging Face
    /// transformers, fixed there the same way (`num_items_in_batch`).
    PerLossTerm,
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

    /// Scale factor of a micro-batch of `size` rows out of `batch` whose whole batch holds
    /// `terms` loss terms, in the element type (as PyTorch multiplies a float32 loss by a
    /// Python float: rounded to float32 first). For [`LossScale::PerLossTerm`] it scales
    /// the micro-batch's summed loss, for the others its loss as the loss function
    /// reduces it.
    pub fn factor<T: Float>(&self, size: usize, batch: usize, terms: usize) -> T {
        match self.scale {
            LossScale::None => T::ONE,
            LossScale::DivideByK => T::from_f64(1.0 / self.micro_batches as f64),
            LossScale::SizeOverBatch => T::from_f64(size as f64 / batch as f64),
            LossScale::PerLossTerm => T::from_f64(1.0 / terms as f64),
        }
    }

    /// Zeroes the gradients, accumulates `loss_fn` over the micro-batches of
    /// `input`/`target` (split along the first dimension as [`split_sizes`]), then steps
    /// with `optimizer` (any [`Optimizer`]: `Some(&mut sgd)`, `Some(&mut adam)`). Returns each
    /// micro-batch's loss before scaling (with [`LossScale::PerLossTerm`], its summed loss
    /// over its own term count: the mean, NaN for a micro-batch without loss terms, whose
    /// gradients are zero). Without `optimizer`, stops before the step (the gradients stay
    /// on the tape for inspection).
    ///
    /// # Panics
    /// If the micro-batch count does not fit the batch, input and target have different
    /// batch sizes, or with [`LossScale::PerLossTerm`] the batch holds no loss term.
    pub fn run<T: Float, M: Module<T> + ?Sized, L: Loss<T> + ?Sized>(
        &self,
        tape: &mut Tape<T>,
        model: &M,
        loss_fn: &L,
        input: &Tensor<T>,
        target: &Tensor<T>,
        optimizer: Option<&mut dyn Optimizer<T>>,
    ) -> Vec<T> {
        let mut losses = Vec::with_capacity(self.micro_batches);
        self.run_into((tape, model, loss_fn), (input, target), optimizer, &mut losses);
        losses
    }

    /// [`Accumulation::run`] on `(input, target)`, writing the micro-batches' losses into
    /// `losses` (cleared first): once the tape's buffers and `losses` have grown, a step
    /// allocates nothing.
    ///
    /// # Panics
    /// As [`Accumulation::run`].
    pub fn run_into<T: Float, M: Module<T> + ?Sized, L: Loss<T> + ?Sized>(
        &self,
        (tape, model, loss_fn): (&mut Tape<T>, &M, &L),
        (input, target): (&Tensor<T>, &Tensor<T>),
        optimizer: Option<&mut dyn Optimizer<T>>,
        losses: &mut Vec<T>,
    ) {
        let batch = input.shape()[0];
        assert_eq!(target.shape()[0], batch, "accumulate: input batch {batch} but target batch {}", target.shape()[0]);
        let k = self.micro_batches;
        assert!(k >= 1 && k <= batch, "split_sizes: {k} micro-batches of a batch of {batch}");
        let per_term = self.scale == LossScale::PerLossTerm;
        let terms = if per_term { loss_fn.loss_terms(target.data()) } else { 0 };
        assert!(!per_term || terms > 0, "accumulate: the batch holds no loss term to divide by");
        tape.zero_grad();
        losses.clear();
        let mut start = 0;
        let row: usize = target.shape()[1..].iter().product();
        for i in 0..k {
            let size = batch / k + usize::from(i < batch % k); // as split_sizes
            tape.reset();
            let x = micro_batch(tape, input, start, size);
            let t = micro_batch(tape, target, start, size);
            let loss = if per_term {
                let sum = loss_fn.forward_sum(model.forward(x), t);
                let n = loss_fn.loss_terms(&target.data()[start * row..(start + size) * row]);
                losses.push(sum.item() / T::from_usize(n));
                sum
            } else {
                let loss = loss_fn.forward(model.forward(x), t);
                losses.push(loss.item());
                loss
            };
            let factor = self.factor::<T>(size, batch, terms);
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
    }
}

/// Rows `start..start + size` of `data` as an input leaf, copied straight into the tape's
/// reused node buffer (no intermediate tensor).
fn micro_batch<'t, T: Float>(tape: &'t Tape<T>, data: &Tensor<T>, start: usize, size: usize) -> tapegrad::Var<'t, T> {
    let row: usize = data.shape()[1..].iter().product();
    let mut shape = tapegrad::shape::from_dims(data.shape());
    shape[0] = size;
    tape.leaf_from_slice(&data.data()[start * row..(start + size) * row], &shape, false)
}
