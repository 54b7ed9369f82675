//! Parameter groups: an optimizer over a chosen set of a tape's parameters, each group
//! with its own learning rate and weight decay, as `torch.optim`'s `param_groups`.
//!
//! ```
//! use tapegrad::{Tape, Tensor, TorchRng};
//! use tapegrad_nn::{Adam, Module, Optimizer, ParamGroup, Sequential};
//!
//! let tape = Tape::<f32>::new();
//! let mut rng = TorchRng::manual_seed(0);
//! let body = Sequential::mlp(&tape, &[4, 8, 8], &mut rng);
//! let head = Sequential::mlp(&tape, &[8, 2], &mut rng);
//! let frozen = Sequential::mlp(&tape, &[2, 2], &mut rng);
//! // torch.optim.Adam([{"params": body}, {"params": head, "lr": 1e-2}], lr=1e-3)
//! let opt = Adam::<f32>::new(1e-3)
//!     .params(body.parameters())
//!     .group(ParamGroup::new(head.parameters()).lr(1e-2));
//! assert_eq!(opt.param_groups()[1].lr, Some(1e-2));
//! // `frozen` is in no group: the optimizer neither updates nor zeroes it
//! assert!(opt.param_groups().iter().all(|g| !g.params.contains(&frozen.parameters()[0])));
//! ```

use std::borrow::Borrow;

use tapegrad::{Float, Param, Tape};

/// Parameters that share hyper-parameters: a learning rate and weight decay of their own,
/// or (`None`) the optimizer's.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// The parameters.
    pub params: Vec<Param>,
    /// The group's learning rate; `None` for the optimizer's.
    pub lr: Option<f64>,
    /// The group's weight decay; `None` for the optimizer's.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group of `params` (a `Vec<Param>`, a slice of them, ...) with the optimizer's
    /// hyper-parameters.
    pub fn new<P: Borrow<Param>>(params: impl IntoIterator<Item = P>) -> Self {
        ParamGroup { params: params.into_iter().map(|p| *p.borrow()).collect(), lr: None, weight_decay: None }
    }

    /// Gives the group its own learning rate.
    ///
    /// # Panics
    /// If it is negative or not finite.
    #[track_caller]
    pub fn lr(mut self, lr: f64) -> Self {
        check_non_negative("ParamGroup", "learning rate", lr);
        self.lr = Some(lr);
        self
    }

    /// Gives the group its own weight decay (an L2 penalty for [`crate::Sgd`] and
    /// [`crate::Adam`], decoupled for [`crate::AdamW`]).
    ///
    /// # Panics
    /// If it is negative or not finite.
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        check_non_negative("ParamGroup", "weight_decay", weight_decay);
        self.weight_decay = Some(weight_decay);
        self
    }
}

/// Which parameters an optimizer updates and with which learning rate and weight decay:
/// every parameter of the tape with the optimizer's own (no groups), or the groups'.
#[derive(Clone, Debug, Default)]
pub(crate) struct Groups {
    groups: Vec<ParamGroup>,
    /// The group of each parameter by tape index; `NONE` for a parameter in no group.
    of: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Groups {
    /// Adds a group.
    ///
    /// # Panics
    /// If one of its parameters is already in a group (PyTorch refuses it too).
    #[track_caller]
    pub(crate) fn add(&mut self, who: &str, group: ParamGroup) {
        let g = self.groups.len() as u32;
        for p in &group.params {
            let i = p.index();
            if self.of.len() <= i {
                self.of.resize(i + 1, NONE);
            }
            assert!(
                self.of[i] == NONE || self.of[i] == g,
                "{who}: parameter {i} appears in more than one parameter group"
            );
            self.of[i] = g;
        }
        self.groups.push(group);
    }

    /// The groups (empty: every parameter of the tape, with the optimizer's settings).
    pub(crate) fn list(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Sets group `i`'s learning rate.
    #[track_caller]
    pub(crate) fn set_lr(&mut self, who: &str, i: usize, lr: f64) {
        check_non_negative(who, "learning rate", lr);
        let n = self.groups.len();
        let group = self.groups.get_mut(i).unwrap_or_else(|| panic!("{who}: no parameter group {i} (there are {n})"));
        group.lr = Some(lr);
    }

    /// `(lr, weight_decay)` of the parameter at tape index `index`, from `defaults` where
    /// its group has none; `None` if the optimizer does not update it.
    #[inline]
    pub(crate) fn settings(&self, index: usize, defaults: (f64, f64)) -> Option<(f64, f64)> {
        if self.groups.is_empty() {
            return Some(defaults);
        }
        let g = &self.groups[*self.of.get(index).filter(|&&g| g != NONE)? as usize];
        Some((g.lr.unwrap_or(defaults.0), g.weight_decay.unwrap_or(defaults.1)))
    }

    /// Panics unless every grouped parameter belongs to `tape`.
    #[track_caller]
    pub(crate) fn check<T: Float>(&self, who: &str, tape: &Tape<T>) {
        for p in self.groups.iter().flat_map(|g| &g.params) {
            assert!(tape.owns(*p), "{who}: parameter {} of a parameter group belongs to another tape", p.index());
        }
    }

    /// Clears the gradients of the parameters the optimizer updates.
    pub(crate) fn zero_grad<T: Float>(&self, tape: &Tape<T>) {
        if self.groups.is_empty() {
            tape.zero_grad();
        }
        for p in self.groups.iter().flat_map(|g| &g.params) {
            tape.zero_param_grad(*p);
        }
    }
}

/// The builder and accessors of parameter groups, the same for every optimizer (`$who`
/// names it in messages); the optimizer keeps them in a `groups: Groups` field.
macro_rules! group_methods {
    ($who:literal) => {
        /// Updates `params` (with the optimizer's learning rate and weight decay); once an
        /// optimizer has a group, it updates (and zeroes) only its groups' parameters.
        /// PyTorch: `Optimizer([{"params": params}], ...)`.
        ///
        /// # Panics
        /// If a parameter is already in a group.
        #[track_caller]
        pub fn params<P: std::borrow::Borrow<tapegrad::Param>>(self, params: impl IntoIterator<Item = P>) -> Self {
            self.group($crate::ParamGroup::new(params))
        }

        /// Adds a parameter group, with its own learning rate or weight decay if it sets
        /// them. See [`Self::params`].
        ///
        /// # Panics
        /// If a parameter is already in a group.
        #[track_caller]
        pub fn group(mut self, group: $crate::ParamGroup) -> Self {
            self.groups.add($who, group);
            self
        }

        /// The parameter groups, in the order added (empty: every parameter of the tape).
        pub fn param_groups(&self) -> &[$crate::ParamGroup] {
            self.groups.list()
        }

        /// Sets the learning rate of group `i` (for schedules; [`Optimizer::set_lr`] sets the
        /// optimizer's, which groups without their own use).
        ///
        /// # Panics
        /// If there is no group `i`, or `lr` is negative or not finite.
        #[track_caller]
        pub fn set_group_lr(&mut self, i: usize, lr: f64) {
            self.groups.set_lr($who, i, lr);
        }
    };
}

pub(crate) use group_methods;

/// Panics unless `value` is finite and `>= 0` (PyTorch's check of lr, momentum, eps and
/// weight decay), naming the optimizer and the hyper-parameter.
#[track_caller]
pub(crate) fn check_non_negative(who: &str, what: &str, value: f64) {
    assert!(value.is_finite() && value >= 0.0, "{who}: invalid {what} {value} (must be finite and >= 0)");
}
