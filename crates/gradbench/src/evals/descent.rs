//! What particle and saddle share: the gradient-descent solver of GradBench
//! (`cpp/gradbench/gd.hpp`) and gradients in either mode of AD, recorded so they nest.
//!
//! The solver works on plain vectors (the outermost optimisation) and on variables of a
//! tape (an optimisation inside a function that is differentiated again: every step is
//! recorded, and the derivative of the result goes through all of them).

use tapegrad::{Tape, Tensor, Var};

/// A mode of automatic differentiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward: one JVP per input coordinate.
    Forward,
    /// Reverse: one VJP.
    Reverse,
}

impl Mode {
    /// The outer and inner modes of a function name (`"rf"`: reverse outside, forward
    /// inside).
    pub fn pair(function: &str) -> Option<(Mode, Mode)> {
        let mode = |c| match c {
            'f' => Some(Mode::Forward),
            'r' => Some(Mode::Reverse),
            _ => None,
        };
        let mut cs = function.chars();
        let (outer, inner) = (mode(cs.next()?)?, mode(cs.next()?)?);
        cs.next().is_none().then_some((outer, inner))
    }
}

/// `∇y` with respect to the 1-d variable `x`, recorded on the tape (so it can be
/// differentiated again), in `mode`. `x` is taken as a point of differentiation even when
/// it does not require grad itself (a constant starting point).
pub fn gradient<'t>(
    tape: &'t Tape<f64>,
    mode: Mode,
    y: impl Fn(Var<'t, f64>) -> Var<'t, f64>,
    x: Var<'t, f64>,
) -> Var<'t, f64> {
    // x + 0, with the 0 a leaf that requires grad: a node to differentiate with respect to
    let n = x.shape()[0];
    let x = x + tape.leaf(Tensor::zeros(&[n]), true);
    let out = y(x);
    match mode {
        Mode::Reverse => tape.grad(out, &[x])[0],
        Mode::Forward => {
            let columns: Vec<Var<'t, f64>> = (0..n)
                .map(|i| {
                    let e = tape.input(Tensor::from_fn(&[n], |j| if i == j { 1.0 } else { 0.0 }));
                    tape.jvp(out, &[x], &[e]).reshape(&[1])
                })
                .collect();
            Var::cat(&columns, 0)
        }
    }
}

/// A point the solver moves.
pub trait Point: Clone {
    /// `self - eta g`.
    fn step(&self, eta: f64, g: &Self) -> Self;
    /// `-self`.
    fn neg(&self) -> Self;
    /// The coordinates.
    fn values(&self) -> Vec<f64>;
}

impl Point for Vec<f64> {
    fn step(&self, eta: f64, g: &Self) -> Self {
        self.iter().zip(g).map(|(x, g)| x - eta * g).collect()
    }
    fn neg(&self) -> Self {
        self.iter().map(|x| -x).collect()
    }
    fn values(&self) -> Vec<f64> {
        self.clone()
    }
}

impl<'t> Point for Var<'t, f64> {
    fn step(&self, eta: f64, g: &Self) -> Self {
        *self - *g * eta
    }
    fn neg(&self) -> Self {
        -*self
    }
    fn values(&self) -> Vec<f64> {
        self.value().into_vec()
    }
}

fn magnitude(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn distance(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt()
}

/// `argmin f` by gradient descent from `x`: steps of `η` (from 1e-5) along `-∇f`, `η`
/// halved after a step that does not decrease `f` and doubled after ten that do; stops
/// when `|∇f| <= 1e-5` or a step would move less than 1e-5.
pub fn argmin<P: Point>(x: P, mut f: impl FnMut(&P) -> f64, mut grad: impl FnMut(&P) -> P) -> P {
    let (mut x, mut fx, mut gx) = (x.clone(), f(&x), grad(&x));
    let (mut eta, mut i) = (1e-5, 0);
    loop {
        if magnitude(&gx.values()) <= 1e-5 {
            return x;
        } else if i == 10 {
            eta *= 2.0;
            i = 0;
        } else {
            let x_prime = x.step(eta, &gx);
            if distance(&x.values(), &x_prime.values()) <= 1e-5 {
                return x;
            }
            let fx_prime = f(&x_prime);
            if fx_prime < fx {
                gx = grad(&x_prime);
                x = x_prime;
                fx = fx_prime;
                i += 1;
            } else {
                eta /= 2.0;
                i = 0;
            }
        }
    }
}

/// `argmax f`: [`argmin`] of `-f`.
pub fn argmax<P: Point>(x: P, mut f: impl FnMut(&P) -> f64, mut grad: impl FnMut(&P) -> P) -> P {
    argmin(x, |p| -f(p), |p| grad(p).neg())
}
