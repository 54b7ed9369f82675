//! Math functions that vectorise: branch-free `f32` code that the compiler turns into SIMD
//! lanes in a loop (see [`crate::cpu::vectorized`]), where the C library's scalar calls cost
//! 20 ns an element or more.

// The polynomials' constants are Cephes', digit for digit.
#![allow(clippy::excessive_precision)]

/// `tanh(x)` in float32, within 1 ulp of the correctly rounded value (every 16th float in
/// `[-10, 10]` checked once, every 1024th by the test). Cephes' `tanhf`: `x + x³ P(x²)` below `|x| = 0.625`, else
/// `1 - 2 / (e^{2|x|} + 1)` with the sign of `x`, both computed and one selected, so a loop
/// of it vectorises. NaN stays NaN; beyond `|x| = 10` the result is ±1.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs().min(10.0);
    let big = 1.0 - 2.0 / (exp_f32(a + a) + 1.0);
    let z = a * a;
    let p = (-5.70498872745e-3_f32).mul_add(z, 2.06390887954e-2);
    let p = p.mul_add(z, -5.37397155531e-2);
    let p = p.mul_add(z, 1.33314422036e-1);
    let p = p.mul_add(z, -3.33332819422e-1);
    let small = (p * z).mul_add(a, a);
    let t = if a < 0.625 { small } else { big };
    if x.is_nan() {
        x
    } else {
        t.copysign(x)
    }
}

/// `e^x` for `x` in `[0, 20]` (what [`tanh_f32`] needs): Cephes' `expf`, `x = n ln 2 + r`,
/// `e^r` by a degree-6 polynomial, times `2^n` built from its exponent bits.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let n = x.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    let r = n.mul_add(-0.693359375, x);
    let r = n.mul_add(2.12194440e-4, r);
    let z = r * r;
    let p = 1.9875691500e-4_f32.mul_add(r, 1.3981999507e-3);
    let p = p.mul_add(r, 8.3334519073e-3);
    let p = p.mul_add(r, 4.1665795894e-2);
    let p = p.mul_add(r, 1.6666665459e-1);
    let p = p.mul_add(r, 5.0000001201e-1);
    let e = p.mul_add(z, r) + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn tanh_is_within_one_ulp() {
        let mut worst = (0, 0.0f32);
        let mut x = -10.0f32;
        while x <= 10.0 {
            let want = (x as f64).tanh() as f32;
            let got = tanh_f32(x);
            let d = if want == 0.0 { u32::from(got != 0.0) } else { ulps(got, want) };
            if d > worst.0 {
                worst = (d, x);
            }
            x = f32::from_bits(if x < 0.0 {
                x.to_bits() - 1024
            } else if x == 0.0 {
                1
            } else {
                x.to_bits() + 1024
            });
            if x < 0.0 && x > -1e-30 {
                x = 0.0;
            }
        }
        assert!(worst.0 <= 1, "{} ulp at {}", worst.0, worst.1);
        for (x, want) in
            [(0.0f32, 0.0f32), (-0.0, -0.0), (20.0, 1.0), (-1e30, -1.0), (f32::INFINITY, 1.0), (1e-30, 1e-30)]
        {
            assert_eq!(tanh_f32(x).to_bits(), want.to_bits(), "tanh({x})");
        }
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
