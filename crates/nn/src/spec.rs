//! [`OptimizerSpec`]: which optimizer and its hyper-parameters as plain data, checked in
//! one place and built into a `Box<dyn Optimizer<T>>`, so a program that lets its user
//! choose an optimizer (a command line, a config file) declares and validates the choice
//! once.

use std::fmt;
use std::str::FromStr;

use tapegrad::Float;

use crate::{Adam, AdamW, Optimizer, Sgd};

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    /// [`Sgd`]: `torch.optim.SGD` (momentum, L2 weight decay; no dampening, no Nesterov).
    Sgd,
    /// [`Adam`]: `torch.optim.Adam` (L2 weight decay added to the gradient).
    Adam,
    /// [`AdamW`]: `torch.optim.AdamW` (decoupled weight decay).
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the order of their names in [`OptimizerKind::NAMES`].
    pub const ALL: [OptimizerKind; 3] = [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW];
    /// The names [`FromStr`] takes, as a message lists them.
    pub const NAMES: &'static str = "sgd, adam or adamw";

    /// The lower-case name: `sgd`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = String;

    /// `sgd`, `adam` or `adamw` (exactly; no other spelling).
    fn from_str(s: &str) -> Result<Self, String> {
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("the optimizer must be {}", OptimizerKind::NAMES))
    }
}

/// An optimizer and its hyper-parameters. Those that do not apply to the kind must keep
/// their default (`momentum` 0 for Adam and AdamW); betas and eps are ignored by SGD.
///
/// ```
/// use tapegrad_nn::{OptimizerKind, OptimizerSpec};
///
/// let spec = OptimizerSpec { momentum: 0.9, ..OptimizerSpec::new(OptimizerKind::Sgd, 0.05) };
/// let mut opt = spec.build::<f32>().unwrap();
/// assert_eq!(opt.lr(), 0.05);
///
/// // 1e39 is a finite f64 but overflows float32: refused, naming the hyper-parameter
/// let err = OptimizerSpec::new(OptimizerKind::Adam, 1e39).validate::<f32>().unwrap_err();
/// assert_eq!(err.param, "lr");
/// assert!(err.to_string().contains("finite in float32"), "{err}");
/// assert!(OptimizerSpec::new(OptimizerKind::Adam, 1e39).validate::<f64>().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSpec {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate: greater than 0 and finite in the element type.
    pub lr: f64,
    /// SGD momentum: at least 0 (0 for Adam and AdamW).
    pub momentum: f64,
    /// Adam(W) betas: each in `[0, 1)`.
    pub betas: (f64, f64),
    /// Adam(W) eps: at least 0.
    pub eps: f64,
    /// Weight decay: at least 0 (L2 for SGD and Adam, decoupled for AdamW).
    pub weight_decay: f64,
}

impl OptimizerSpec {
    /// `kind` with learning rate `lr` and PyTorch's other defaults: momentum 0, betas
    /// (0.9, 0.999), eps 1e-8, weight decay 0 (0.01 for AdamW).
    pub fn new(kind: OptimizerKind, lr: f64) -> Self {
        OptimizerSpec {
            kind,
            lr,
            momentum: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: if kind == OptimizerKind::AdamW { 0.01 } else { 0.0 },
        }
    }

    /// The same spec with learning rate `lr`.
    pub fn with_lr(self, lr: f64) -> Self {
        OptimizerSpec { lr, ..self }
    }

    /// Checks every hyper-parameter in the element type `T` the optimizer will run in (a
    /// value finite in `f64` may overflow `f32`): the learning rate is greater than 0,
    /// momentum, eps and weight decay are at least 0, all finite in `T`; each beta is in
    /// `[0, 1)`; momentum is 0 unless the kind is SGD.
    ///
    /// # Errors
    /// The first hyper-parameter that fails, named as the field is.
    pub fn validate<T: Float>(&self) -> Result<(), SpecError> {
        let finite = |x: f64| x.is_finite() && T::from_f64(x).is_finite();
        let ty = float_name::<T>();
        let num = |x: f64| if x == 0.0 || (1e-4..1e16).contains(&x.abs()) { format!("{x}") } else { format!("{x:e}") };
        if !(finite(self.lr) && T::from_f64(self.lr) > T::ZERO) {
            let why = format!("must be greater than 0 and finite in {ty}, got {}", num(self.lr));
            return Err(SpecError::new("lr", why));
        }
        for (param, value) in [("momentum", self.momentum), ("eps", self.eps), ("weight_decay", self.weight_decay)] {
            if !(finite(value) && value >= 0.0) {
                let why = format!("must be a non-negative number finite in {ty}, got {}", num(value));
                return Err(SpecError::new(param, why));
            }
        }
        for (i, b) in [(1, self.betas.0), (2, self.betas.1)] {
            if !(0.0..1.0).contains(&b) {
                return Err(SpecError::new("betas", format!("need each beta in [0, 1), got beta{i} {}", num(b))));
            }
        }
        if self.kind != OptimizerKind::Sgd && self.momentum != 0.0 {
            return Err(SpecError::new("momentum", format!("applies to sgd only, not {}", self.kind)));
        }
        Ok(())
    }

    /// The optimizer, after [`validate`](OptimizerSpec::validate).
    ///
    /// # Errors
    /// As [`validate`](OptimizerSpec::validate).
    pub fn build<T: Float + 'static>(&self) -> Result<Box<dyn Optimizer<T>>, SpecError> {
        self.validate::<T>()?;
        let (b1, b2) = self.betas;
        Ok(match self.kind {
            OptimizerKind::Sgd => Box::new(Sgd::new(self.lr).momentum(self.momentum).weight_decay(self.weight_decay)),
            OptimizerKind::Adam => {
                Box::new(Adam::new(self.lr).betas(b1, b2).eps(self.eps).weight_decay(self.weight_decay))
            }
            OptimizerKind::AdamW => {
                Box::new(AdamW::new(self.lr).betas(b1, b2).eps(self.eps).weight_decay(self.weight_decay))
            }
        })
    }
}

/// `float32` for `f32`, `float64` for `f64` (PyTorch's names).
fn float_name<T: Float>() -> String {
    format!("float{}", T::NAME.trim_start_matches('f'))
}

/// A hyper-parameter of an [`OptimizerSpec`] that is out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The field: `lr`, `momentum`, `betas`, `eps` or `weight_decay` (a command line maps
    /// it to its option, e.g. `--weight-decay`).
    pub param: &'static str,
    /// What is wrong, e.g. `must be greater than 0 and finite in float32, got 1e39`.
    pub reason: String,
}

impl SpecError {
    fn new(param: &'static str, reason: String) -> Self {
        SpecError { param, reason }
    }
}

impl fmt::Display for SpecError {
    /// `lr must be greater than 0 ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.param, self.reason)
    }
}

impl std::error::Error for SpecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hyper_parameter_is_checked_in_the_element_type() {
        let sgd = OptimizerSpec::new(OptimizerKind::Sgd, 0.1);
        let adam = OptimizerSpec::new(OptimizerKind::Adam, 0.01);
        assert_eq!(sgd.validate::<f32>(), Ok(()));
        assert_eq!(adam.validate::<f32>(), Ok(()));
        let bad = [
            (sgd.with_lr(0.0), "lr"),
            (sgd.with_lr(-0.1), "lr"),
            (sgd.with_lr(f64::NAN), "lr"),
            (sgd.with_lr(f64::INFINITY), "lr"),
            (sgd.with_lr(1e39), "lr"),
            (sgd.with_lr(1e-46), "lr"), // rounds to 0 in float32
            (OptimizerSpec { momentum: -0.5, ..sgd }, "momentum"),
            (OptimizerSpec { momentum: 3.5e38, ..sgd }, "momentum"),
            (OptimizerSpec { weight_decay: f64::NAN, ..sgd }, "weight_decay"),
            (OptimizerSpec { eps: -1e-8, ..adam }, "eps"),
            (OptimizerSpec { betas: (1.0, 0.9), ..adam }, "betas"),
            (OptimizerSpec { betas: (0.9, f64::NAN), ..adam }, "betas"),
            (OptimizerSpec { momentum: 0.9, ..adam }, "momentum"),
        ];
        for (spec, param) in bad {
            let err = spec.validate::<f32>().unwrap_err();
            assert_eq!(err.param, param, "{spec:?}: {err}");
            assert!(spec.build::<f32>().is_err(), "{spec:?}");
        }
        // in float64 the float32 overflows are fine
        for spec in [sgd.with_lr(1e39), sgd.with_lr(1e-46), OptimizerSpec { momentum: 3.5e38, ..sgd }] {
            assert_eq!(spec.validate::<f64>(), Ok(()), "{spec:?}");
        }
        let err = sgd.with_lr(1e39).validate::<f32>().unwrap_err();
        assert_eq!(err.to_string(), "lr must be greater than 0 and finite in float32, got 1e39");
    }

    #[test]
    fn build_gives_the_kind_and_names_parse() {
        for kind in OptimizerKind::ALL {
            assert_eq!(kind.name().parse::<OptimizerKind>(), Ok(kind));
            let opt = OptimizerSpec::new(kind, 0.25).build::<f64>().unwrap();
            assert_eq!(opt.lr(), 0.25);
        }
        assert!("Adam".parse::<OptimizerKind>().unwrap_err().contains("sgd, adam or adamw"));
        // each kind steps as the optimizer built by hand with the same hyper-parameters
        let step = |opt: &mut dyn Optimizer<f32>| {
            let mut tape = tapegrad::Tape::<f32>::new();
            let p = tape.parameter(tapegrad::Tensor::new(vec![1.0, -2.0, 0.5], &[3]));
            for _ in 0..3 {
                opt.zero_grad(&tape);
                let w = tape.var(p);
                (w * w).sum().backward();
                tape.reset();
                opt.step(&mut tape);
            }
            tape.param_value(p).data().to_vec()
        };
        let spec = |kind| OptimizerSpec {
            momentum: 0.0,
            betas: (0.8, 0.99),
            eps: 1e-6,
            weight_decay: 0.1,
            ..OptimizerSpec::new(kind, 0.05)
        };
        let sgd = OptimizerSpec { momentum: 0.9, ..spec(OptimizerKind::Sgd) };
        assert_eq!(step(sgd.build().unwrap().as_mut()), step(&mut Sgd::new(0.05).momentum(0.9).weight_decay(0.1)));
        let by_hand = step(&mut Adam::new(0.05).betas(0.8, 0.99).eps(1e-6).weight_decay(0.1));
        assert_eq!(step(spec(OptimizerKind::Adam).build().unwrap().as_mut()), by_hand);
        let by_hand = step(&mut AdamW::new(0.05).betas(0.8, 0.99).eps(1e-6).weight_decay(0.1));
        assert_eq!(step(spec(OptimizerKind::AdamW).build().unwrap().as_mut()), by_hand);
        assert_eq!(OptimizerSpec::new(OptimizerKind::AdamW, 1.0).weight_decay, 0.01);
    }
}
