//! # tapegrad-nn
//!
//! Layers, loss, optimizer and gradient accumulation on the [`tapegrad`] tape, with
//! PyTorch's semantics and numerics:
//!
//! - [`Module`], [`Linear`] (PyTorch's default init, bit for bit; with or without bias),
//!   [`Embedding`] (its `normal_` init, bit for bit), [`ReLU`], [`Tanh`], [`Sigmoid`],
//!   [`Flatten`], [`Sequential`] (parameters named `0.weight`, `0.bias`, `2.weight`, ... as
//!   `nn.Sequential` names them; [`Sequential::mlp_with`] builds a perceptron with any
//!   [`Activation`]), training and evaluation mode;
//! - [`BatchNorm1d`] (running statistics as [`Buffer`]s) and [`LayerNorm`], differentiable
//!   twice;
//! - the [`Loss`] trait: [`L1Loss`] and [`MSELoss`], and [`CrossEntropyLoss`] (on class
//!   indices, with `ignore_index`), with [`Reduction::None`], [`Reduction::Sum`] or
//!   [`Reduction::Mean`] (the `Default`, as PyTorch);
//! - [`names`]: the 1990 US Census surnames, encoded for a character-level language model;
//! - [`data`]: a labelled [`Dataset`] (the bundled 8x8 digits, any CSV), a seeded random
//!   split, and a [`DataLoader`] whose shuffled epochs are PyTorch's, with micro-batches;
//! - the [`Optimizer`] trait (step, zero_grad, learning rate, resettable state):
//!   [`Sgd`] (lr, momentum, dampening, weight decay, nesterov), [`Adam`] (L2 weight decay)
//!   and [`AdamW`] (decoupled weight decay), each with PyTorch's operations and roundings,
//!   over every parameter of the tape or over [`ParamGroup`]s with their own learning rate
//!   and weight decay (`torch.optim`'s `param_groups`; a parameter in no group is frozen);
//!   [`OptimizerSpec`]: the choice of one and its hyper-parameters as data, validated in
//!   the element type and built into a `Box<dyn Optimizer<T>>`;
//! - [`train_step`]: zero the gradients, forward and backward in a [`tapegrad::Tape::scope`]
//!   that resets the tape, step — a training loop that cannot grow the tape;
//! - gradient accumulation: gradients add up across backward calls until
//!   [`Optimizer::zero_grad`]; [`Accumulation`] runs k micro-batches with any loss, then
//!   one step of any optimizer, with a [`LossScale`] policy;
//! - gradient clipping: [`clip_grad_norm`] (2-norm or infinity norm, [`ClipGradNorm`] for
//!   `error_if_nonfinite`) and [`clip_grad_value`], as `torch.nn.utils` computes them;
//! - [`save`] and [`load`]: parameters and buffers as a safetensors file under their
//!   state-dict names, interchangeable with PyTorch's `safetensors.torch.save_file` /
//!   `load_file`.

#![warn(missing_docs)]

mod accumulate;
mod adam;
mod clip;
pub mod data;
mod embedding;
pub mod files;
mod flatten;
mod groups;
mod loss;
mod module;
pub mod names;
mod norm;
mod optim;
mod repr;
mod sequential;
mod serialize;
mod spec;

pub use accumulate::{split_sizes, Accumulation, LossScale};
pub use adam::{Adam, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value, ClipGradNorm, NonFiniteNorm, NormType};
pub use data::{Batch, DataError, DataLoader, Dataset};
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use groups::ParamGroup;
pub use loss::{CrossEntropyLoss, L1Loss, Loss, MSELoss, Reduction};
pub use module::{Activation, Buffer, Linear, Module, ReLU, Sigmoid, Tanh};
pub use norm::{batch_norm, layer_norm, BatchNorm1d, LayerNorm};
pub use optim::{train_step, Optimizer, Sgd};
pub use repr::py_float;
pub use sequential::{Norm, Sequential};
pub use serialize::{check_finite, load, load_from_bytes, save, save_to_bytes, StateDictError, StateDictErrorKind};
pub use spec::{OptimizerKind, OptimizerSpec, SpecError};
