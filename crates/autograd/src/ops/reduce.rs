//! Reductions: sum and mean, over all elements or along one axis.

use super::{Graph, OpFamily, View};
use crate::float::Float;
use crate::kernels::reduce_axis;
use crate::shape::{numel, Shape};

/// A sum or mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reduce {
    /// Mean instead of sum.
    pub mean: bool,
    /// The axis to reduce, or `None` for all elements.
    pub axis: Option<usize>,
    /// Keep the reduced axis (or axes) with size 1.
    pub keepdim: bool,
}

impl Reduce {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        if self.mean {
            "mean"
        } else {
            "sum"
        }
    }

    /// Result shape.
    ///
    /// # Errors
    /// `sum: axis 2 out of range for shape [3, 4]`.
    pub fn shape_of(&self, x: &[usize]) -> Result<Shape, String> {
        Ok(match self.axis {
            None if self.keepdim => smallvec::smallvec![1; x.len()],
            None => Shape::new(),
            Some(a) => {
                ensure!(a < x.len(), "{}: axis {a} out of range for shape {x:?}", self.name());
                let mut s = crate::shape::from_dims(x);
                if self.keepdim {
                    s[a] = 1;
                } else {
                    s.remove(a);
                }
                s
            }
        })
    }

    /// Number of elements averaged into each output.
    fn count(&self, x: &[usize]) -> usize {
        match self.axis {
            None => numel(x),
            Some(a) => x[a],
        }
    }

    /// The reduction.
    pub fn map<T: Float>(&self, x: View<'_, T>, out: &mut [T]) {
        if self.mean && self.count(x.shape) == 0 {
            // the mean of nothing is 0/0, as in PyTorch
            out.fill(T::from_f64(f64::NAN));
            return;
        }
        match self.axis {
            None => {
                let s = crate::kernels::sum(x.data);
                out[0] = if self.mean { s / T::from_usize(x.data.len()) } else { s };
            }
            Some(a) => reduce_axis(x.data, x.shape, a, self.mean, out),
        }
    }

    /// Backward: `dy` broadcast back over the reduced elements (divided by their count for
    /// a mean).
    pub fn vjp_one<T: Float, G: Graph<T>>(&self, g: &mut G, x: G::V, dy: G::V) -> G::V {
        let xs = g.shape(x);
        // d/dx_i sum(x) = 1 ; d/dx_i mean(x) = 1/n
        let mut d = dy;
        if let (Some(a), false) = (self.axis, self.keepdim) {
            let mut keep = xs.clone();
            keep[a] = 1;
            d = g.reshape(d, &keep);
        }
        if self.mean {
            d = g.mul_scalar(d, T::ONE / T::from_usize(self.count(&xs)));
        }
        g.expand(d, &xs)
    }
}

/// Reductions of one input; the rules are [`Reduce::map`] and [`Reduce::vjp_one`].
impl<T: Float> OpFamily<T> for Reduce {
    fn name(&self) -> &'static str {
        Reduce::name(self)
    }
    fn arity(&self) -> usize {
        1
    }
    fn out_shape(&self, ins: &[&[usize]]) -> Result<Shape, String> {
        self.shape_of(ins[0])
    }
    fn forward(&self, ins: &[View<'_, T>], _: &[usize], out: &mut [T]) {
        self.map(ins[0], out)
    }
    fn vjp<G: Graph<T>>(&self, g: &mut G, x: &[G::V], _: G::V, gy: G::V, _: [bool; 3]) -> [Option<G::V>; 3] {
        [Some(self.vjp_one(g, x[0], gy)), None, None]
    }
}
