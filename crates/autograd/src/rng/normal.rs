//! PyTorch's float32 CPU `normal_` (what `nn.Embedding` and `nn.init.normal_` draw), bit
//! for bit.
//!
//! - **16 values or more**: `n` float32 uniforms (as `torch.rand`), then Box-Muller in
//!   blocks of 16: the first 8 values `u` of a block give `r = sqrt(-2 log(1 - u))`, the
//!   next 8 give `theta = f32(2 pi) u`; value `j` is `r cos theta`, value `j + 8` is
//!   `r sin theta`. When `n` is not a multiple of 16, 16 more uniforms are drawn and the
//!   last 16 values are recomputed from them (`n + 16` raw outputs). This is the AVX2
//!   kernel PyTorch runs on every x86-64 CPU with AVX2 (AVX-512 ones included): `log`,
//!   `sin` and `cos` are the float32 Cephes polynomials of `avx_mathfun.h` (`log256_ps`,
//!   `sincos256_ps`), and every multiply that feeds an add is a fused multiply-add, as the
//!   wheel's compiler emitted them. Correctly rounded functions miss about one value in six.
//! - **Fewer than 16 values**: the scalar path in double precision: per pair, two float64
//!   uniforms `u1`, `u2`, `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`, values
//!   `f32(r cos theta)` then `f32(r sin theta)`. The sine of a pair whose second value is
//!   not used stays cached in the generator and the next scalar-path value takes it.

// The constants are avx_mathfun.h's, digit for digit.
#![allow(clippy::excessive_precision)]

use super::TorchRng;

/// `fma(a, b, c)`: `a·b + c` rounded once.
#[inline]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// `log256_ps` of `avx_mathfun.h` for `x` in `(0, 1]` (the only inputs `normal_` gives it).
fn log256(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0; // exponent + 1
    let mut x = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000); // mantissa in [0.5, 1)
    let small = x < std::f32::consts::FRAC_1_SQRT_2; // sqrt(1/2), as avx_mathfun.h writes it
    x = (x - 1.0) + if small { x } else { 0.0 }; // x - 1 (+ x below sqrt(1/2))
    e -= if small { 1.0 } else { 0.0 };
    let z = x * x;
    let mut y = 7.0376836292e-2_f32;
    for c in [
        -1.1514610310e-1_f32,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    ] {
        y = fma(y, x, c); // Horner steps
    }
    y *= x;
    y = fma(y, z, e * -2.12194440e-4_f32); // y z + e q1: the product e q1 rounded first
    y -= z * 0.5;
    (x + y) + e * 0.693_359_375 // e q2 is exact
}

/// `sincos256_ps` of `avx_mathfun.h` for `x` in `[0, 2 pi)`: `(sin x, cos x)`.
fn sincos256(x: f32) -> (f32, f32) {
    let mut j = (x * 1.27323954473516_f32) as i32; // truncate x 4/pi
    j = (j + 1) & !1;
    let y = j as f32;
    let sin_neg = j & 4 != 0;
    let cos_neg = !(j - 2) & 4 != 0;
    let first = j & 2 == 0; // sin from the sine polynomial
    let mut x = fma(y, -0.785_156_25, x); // x - y pi/4 in three parts
    x = fma(y, -2.4187564849853515625e-4, x);
    x = fma(y, -3.77489497744594108e-8, x);
    let z = x * x;
    let mut yc = fma(2.443315711809948e-5, z, -1.388731625493765e-3);
    yc = fma(yc, z, 4.166664568298827e-2);
    yc *= z;
    yc = fma(yc, z, -(z * 0.5));
    yc += 1.0;
    let mut ys = fma(-1.9515295891e-4, z, 8.3321608736e-3);
    ys = fma(ys, z, -1.6666654611e-1);
    ys *= z;
    ys = fma(ys, x, x);
    let (s, c) = if first { (ys, yc) } else { (yc, ys) };
    (if sin_neg { -s } else { s }, if cos_neg { -c } else { c })
}

/// Box-Muller on one block of 16 uniforms, in place (PyTorch's `normal_fill_16_AVX2`).
fn fill16(d: &mut [f32], mean: f32, std: f32) {
    let two_pi = std::f64::consts::TAU as f32;
    for j in 0..8 {
        let r = (-2.0 * log256(1.0 - d[j])).sqrt();
        let (s, c) = sincos256(two_pi * d[j + 8]);
        d[j] = fma(r * c, std, mean);
        d[j + 8] = fma(r * s, std, mean);
    }
}

impl TorchRng {
    /// Fills `out` as `torch.empty(n).normal_(mean, std)` does on a float32 tensor (the
    /// module documentation gives both paths). Bit for bit PyTorch's for `mean = 0`,
    /// `std = 1` (`nn.Embedding`, `nn.init.normal_`; tested); other moments follow the
    /// same formulas (`value · std + mean`, fused in the vector path).
    pub fn fill_normal_f32(&mut self, out: &mut [f32], mean: f32, std: f32) {
        let n = out.len();
        if n < 16 {
            for v in out {
                *v = self.normal_f64(f64::from(mean), f64::from(std)) as f32;
            }
            return;
        }
        for v in out.iter_mut() {
            *v = self.uniform_f32_unit();
        }
        for block in out.chunks_exact_mut(16) {
            fill16(block, mean, std);
        }
        if !n.is_multiple_of(16) {
            let mut tail = [0f32; 16];
            for v in &mut tail {
                *v = self.uniform_f32_unit();
            }
            fill16(&mut tail, mean, std);
            out[n - 16..].copy_from_slice(&tail);
        }
    }

    /// One value of PyTorch's scalar `normal_distribution<double>`: the cached sine of the
    /// previous pair if there is one, else `r cos theta` of a new pair (`u1`, `u2` float64
    /// uniforms, `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`), caching `r sin theta`;
    /// times `std` plus `mean`.
    pub fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        let z = match self.next_normal.take() {
            Some(bits) => f64::from_bits(bits),
            None => {
                let u1 = self.uniform_f64_unit();
                let u2 = self.uniform_f64_unit();
                let r = (-2.0 * (-u2).ln_1p()).sqrt();
                let theta = 2.0 * std::f64::consts::PI * u1;
                self.next_normal = Some((r * theta.sin()).to_bits());
                r * theta.cos()
            }
        };
        z * std + mean
    }
}
