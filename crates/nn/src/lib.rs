//! # tapegrad-nn
//!
//! Layers, loss, optimizer and gradient accumulation on the [`tapegrad`] tape, with
//! PyTorch's semantics and numerics:
//!
//! - [`Module`], [`Linear`] (PyTorch's default init, bit for bit), [`Embedding`] (its
//!   `normal_` init, bit for bit), [`ReLU`], [`Tanh`],
//!   [`Sigmoid`], [`Sequential`] (parameters named `0.weight`, `0.bias`, `2.weight`, ... as
//!   `nn.Sequential` names them);
//! - the [`Loss`] trait: [`L1Loss`] and [`MSELoss`], and [`CrossEntropyLoss`] (on class
//!   indices, with `ignore_index`), with [`Reduction::None`], [`Reduction::Sum`] or
//!   [`Reduction::Mean`];
//! - [`names`]: the 1990 US Census surnames, encoded for a character-level language model;
//! - [`data`]: a labelled [`Dataset`] (the bundled 8x8 digits, any CSV), a seeded random
//!   split, and a [`DataLoader`] whose shuffled epochs are PyTorch's, with micro-batches;
//! - the [`Optimizer`] trait (step, zero_grad, learning rate, resettable state):
//!   [`Sgd`] (lr, momentum, dampening, weight decay, nesterov), [`Adam`] (L2 weight decay)
//!   and [`AdamW`] (decoupled weight decay), each with PyTorch's operations and roundings;
//!   [`OptimizerSpec`]: the choice of one and its hyper-parameters as data, validated in
//!   the element type and built into a `Box<dyn Optimizer<T>>`;
//! - gradient accumulation: gradients add up across backward calls until
//!   [`Optimizer::zero_grad`]; [`Accumulation`] runs k micro-batches with any loss, then
//!   one step of any optimizer, with a [`LossScale`] policy;
//! - [`save`] and [`load`]: parameters as a safetensors file under their state-dict names,
//!   interchangeable with PyTorch's `safetensors.torch.save_file` / `load_file`.

#![warn(missing_docs)]

mod accumulate;
mod adam;
pub mod data;
mod embedding;
pub mod files;
mod flatten;
mod loss;
mod module;
pub mod names;
mod optim;
mod serialize;
mod spec;

pub use accumulate::{split_sizes, Accumulation, LossScale};
pub use adam::{Adam, AdamW};
pub use data::{Batch, DataError, DataLoader, Dataset};
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use loss::{CrossEntropyLoss, L1Loss, Loss, MSELoss, Reduction};
pub use module::{Linear, Module, ReLU, Sequential, Sigmoid, Tanh};
pub use optim::{Optimizer, Sgd};
pub use serialize::{check_finite, load, load_from_bytes, save, save_to_bytes, StateDictError, StateDictErrorKind};
pub use spec::{OptimizerKind, OptimizerSpec, SpecError};
