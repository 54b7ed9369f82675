//! Elementwise ops of one input: `y = f(x)`, backward `dx = dy * f'(x)`.
//!
//! Each rule below is written with ops of the same tape (see [`super::Graph`]), so it can
//! itself be differentiated.

use super::{Binary, Graph, OpFamily, View};
use crate::float::Float;
use crate::shape::Shape;

/// An elementwise function of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary<T> {
    /// `-x`
    Neg,
    /// `max(x, 0)`, NaN passing (see `Element::relu` in tapegrad-kernels)
    Relu,
    /// `|x|`
    Abs,
    /// `e^x`
    Exp,
    /// `ln x`
    Log,
    /// `tanh x`
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)` (no overflow)
    Softplus,
    /// `√x`
    Sqrt,
    /// `x^p` for a constant `p` (see [`powf`])
    Powf(T),
    /// `x + c` for a constant `c`
    AddScalar(T),
    /// `x * c` for a constant `c`
    MulScalar(T),
    /// `sign(x)` (−1, 0 or 1): derivative zero
    Sign,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
}

impl<T: Float> Unary<T> {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Relu => "relu",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Softplus => "softplus",
            Unary::Sqrt => "sqrt",
            Unary::Powf(_) => "powf",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
            Unary::Sign => "sign",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
        }
    }

    /// `f(x)` for one element.
    #[inline(always)]
    pub fn eval(&self, x: T) -> T {
        match *self {
            Unary::Neg => -x,
            Unary::Relu => x.relu(),
            Unary::Abs => x.abs(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => T::ONE / (T::ONE + (-x).exp()),
            Unary::Softplus => x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
            Unary::Sqrt => x.sqrt(),
            Unary::Powf(p) => powf(x, p),
            Unary::AddScalar(c) => x + c,
            Unary::MulScalar(c) => x * c,
            Unary::Sign => sign(x),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
        }
    }

    /// `out[i] = f(a[i])`.
    pub fn map(&self, a: &[T], out: &mut [T]) {
        // one match per call, a tight loop per op
        macro_rules! map {
            ($f:expr) => {
                crate::kernels::par_chunks_mut(out, |at, out| {
                    for (o, &x) in out.iter_mut().zip(&a[at..]) {
                        *o = $f(x);
                    }
                })
            };
        }
        match *self {
            Unary::Neg => map!(|x: T| -x),
            Unary::Relu => map!(|x: T| x.relu()),
            Unary::AddScalar(c) => map!(|x: T| x + c),
            Unary::MulScalar(c) => map!(|x: T| x * c),
            Unary::Abs => map!(|x: T| x.abs()),
            // branch-free for f32: SIMD lanes in the AVX2 build of the loop
            Unary::Tanh => crate::kernels::cpu::vectorized(|| map!(|x: T| x.tanh())),
            op => map!(|x| op.eval(x)),
        }
    }

    /// Backward: `dx` from `dy` (`x` the input, `y` the output).
    pub fn vjp<G: Graph<T>>(&self, g: &mut G, x: G::V, y: G::V, dy: G::V) -> Option<G::V> {
        Some(match *self {
            // d/dx (-x) = -1
            Unary::Neg => g.neg(dy),
            // d/dx relu(x) = 0 if x <= 0 else 1 (see `Element::relu_backward`)
            Unary::Relu => g.binary(Binary::ReluMask, dy, x),
            // d/dx |x| = sign(x)
            Unary::Abs => g.binary(Binary::SignMul, dy, x),
            // d/dx e^x = e^x = y
            Unary::Exp => g.mul(dy, y),
            // d/dx ln x = 1/x
            Unary::Log => g.div(dy, x),
            // d/dx tanh x = 1 - y²
            Unary::Tanh => {
                let y2 = g.mul(y, y);
                let d = one_minus(g, y2);
                g.mul(dy, d)
            }
            // d/dx σ(x) = y (1 - y)
            Unary::Sigmoid => {
                let d = one_minus(g, y);
                let d = g.mul(y, d);
                g.mul(dy, d)
            }
            // d/dx ln(1 + e^x) = σ(x)
            Unary::Softplus => {
                let s = g.unary(Unary::Sigmoid, x);
                g.mul(dy, s)
            }
            // d/dx √x = 1 / (2 √x) = 0.5 / y
            Unary::Sqrt => {
                let half = g.mul_scalar(dy, T::from_f64(0.5));
                g.div(half, y)
            }
            // d/dx x^0 = 0 (zeros, even where x^-1 is infinite, as in PyTorch)
            Unary::Powf(p) if p == T::ZERO => return None,
            // d/dx x^p = p x^(p-1)
            Unary::Powf(p) => {
                let d = g.unary(Unary::Powf(p - T::ONE), x);
                let d = g.mul_scalar(d, p);
                g.mul(dy, d)
            }
            // d/dx (x + c) = 1
            Unary::AddScalar(_) => dy,
            // d/dx (x c) = c
            Unary::MulScalar(c) => g.mul_scalar(dy, c),
            // d/dx sign(x) = 0 (almost everywhere)
            Unary::Sign => return None,
            // d/dx sin x = cos x
            Unary::Sin => {
                let d = g.unary(Unary::Cos, x);
                g.mul(dy, d)
            }
            // d/dx cos x = -sin x
            Unary::Cos => {
                let d = g.unary(Unary::Sin, x);
                let d = g.mul(dy, d);
                g.neg(d)
            }
        })
    }
}

/// Elementwise ops keep their input's shape; the rules are [`Unary::map`] and
/// [`Unary::vjp`].
impl<T: Float> OpFamily<T> for Unary<T> {
    fn name(&self) -> &'static str {
        Unary::name(self)
    }
    fn arity(&self) -> usize {
        1
    }
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        Ok(crate::shape::from_dims(ins[0]))
    }
    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        self.map(ins[0].data, out)
    }
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], y: G::V, gy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        [Unary::vjp(self, g, x[0], y, gy), None, None]
    }
}

/// `1 - v`.
fn one_minus<T: Float, G: Graph<T>>(g: &mut G, v: G::V) -> G::V {
    let n = g.neg(v);
    g.add_scalar(n, T::ONE)
}

/// −1, 0 or 1 (0 for ±0 and NaN).
#[inline(always)]
pub(crate) fn sign<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else {
        T::ZERO
    }
}

/// `x^p`, as PyTorch computes a tensor to a constant power: exponents 0, 1, 2, 3, 0.5,
/// -0.5, -1 and -2 are the exact operations `1`, `x`, `x·x`, `x·x·x`, `√x`, `1/√x`, `1/x`
/// and `1/(x·x)` (so `(-0.0)^0.5 = -0.0` and `(-∞)^0.5 = NaN`, as `√` gives), any
/// other the C library's `pow`.
#[inline(always)]
pub fn powf<T: Float>(x: T, p: T) -> T {
    let f = p.to_f64();
    if f == 0.0 {
        T::ONE
    } else if f == 1.0 {
        x
    } else if f == 2.0 {
        x * x
    } else if f == 3.0 {
        x * x * x
    } else if f == 0.5 {
        x.sqrt()
    } else if f == -0.5 {
        T::ONE / x.sqrt()
    } else if f == -1.0 {
        T::ONE / x
    } else if f == -2.0 {
        T::ONE / (x * x)
    } else {
        x.powf(p)
    }
}
