//! A random-number generator that reproduces PyTorch's CPU generator bit for bit.
//!
//! [`TorchRng`] is the standard 32-bit Mersenne Twister (mt19937) used by PyTorch's
//! default CPU generator, plus the transformations PyTorch applies to its raw output.
//! The facts below were checked against PyTorch 2.15 (see the `rng.json` fixture of the
//! integration tests):
//!
//! - **Seeding.** `torch.manual_seed(s)` runs the classic `init_genrand(s & 0xffffffff)`:
//!   the seed is **truncated to its low 32 bits**, so seed `2^32 + 5` gives the same
//!   stream as seed `5` (although `torch.initial_seed()` still reports `2^32 + 5`).
//! - **float32 uniform** (`torch.rand`, `Tensor.uniform_` on float32): **one** raw output
//!   per element, `x = (u & 0xFFFFFF) * 2^-24` (the **low 24 bits**, exact). On
//!   `[from, to)` the result is `x * (to - from) + from` computed with `from`, `to` cast
//!   to `f32`, `to - from` an `f32` subtraction and a **single rounding** of the
//!   multiply-add (an FMA). Rounding the product first differs in about 1 draw in 4.
//! - **float64 uniform**: **two** raw outputs per element, `v = (u0 << 32) | u1`,
//!   `x = (v & (2^53 - 1)) * 2^-53`.
//! - **Order.** Elements are filled serially in memory order from one stream; there is
//!   no size-dependent chunking for uniform draws, so filling `n` elements equals `n`
//!   scalar draws (unlike float32 `normal_`, which takes a 16-value block path from 16
//!   values on: [`TorchRng::fill_normal_f32`]).
//! - **Integers** (`torch.randint(low, high)`): a range below `2^28` takes one raw output,
//!   `u % range + low`; a range of `2^28` or more takes two, `((u0 << 32) | u1) % range + low`.
//! - **Permutations** (`torch.randperm(n)`): Fisher-Yates from the front, one raw output
//!   per swap, `z = u % (n - i)` (see [`TorchRng::randperm_into`]).
//! - **`nn.Linear(in, out)`** draws the weight (row-major `out x in`) then the bias, both
//!   float32 uniform on `(-bound, bound)`; see [`kaiming_uniform_bound`].
//!
//! ```
//! use tapegrad::rng::{kaiming_uniform_bound, TorchRng};
//!
//! // torch.manual_seed(2); nn.Linear(4, 8): first weight element
//! let mut rng = TorchRng::manual_seed(2);
//! let b = kaiming_uniform_bound(4) as f32;
//! assert_eq!(rng.uniform_f32(-b, b), 0.114_695_07_f32);
//! ```

use std::fmt;

use rand::{RngCore, SeedableRng};

mod normal;

/// Number of 32-bit words of mt19937 state.
const N: usize = 624;
/// mt19937 middle-word offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// Ranges at or above this size make [`TorchRng::randint`] consume two raw outputs.
const RANDINT_64_THRESHOLD: u64 = 1 << 28;

/// PyTorch's CPU random-number generator: a 32-bit mt19937 seeded like
/// `torch.manual_seed`, with PyTorch's float and integer transformations.
///
/// Create it with [`TorchRng::manual_seed`] (or, equivalently, `SeedableRng::seed_from_u64`).
/// It also implements [`rand::RngCore`], so the [`rand::Rng`] methods work on it (those
/// methods use `rand`'s own transformations, not PyTorch's; use the inherent draw
/// methods to match PyTorch).
#[derive(Clone, PartialEq, Eq)]
pub struct TorchRng {
    state: [u32; N],
    /// Next word of `state` to temper; `N` means a twist is due.
    index: usize,
    /// The seed as passed in (before truncation), like `torch.initial_seed()`.
    seed: u64,
    /// The cached second value (bits of an `f64`) of the scalar normal path's last pair,
    /// as PyTorch's generator keeps it (`next_double_normal_sample`).
    next_normal: Option<u64>,
}

impl fmt::Debug for TorchRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorchRng").field("seed", &self.seed).field("index", &self.index).finish_non_exhaustive()
    }
}

impl TorchRng {
    /// A generator in the state `torch.manual_seed(seed)` leaves PyTorch's CPU generator
    /// in: mt19937 `init_genrand(seed & 0xffffffff)`. Only the low 32 bits of `seed`
    /// matter (`manual_seed(2^32 + 5)` equals `manual_seed(5)`).
    pub fn manual_seed(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32; // truncation to the low 32 bits is PyTorch's behaviour
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        TorchRng { state, index: N, seed, next_normal: None }
    }

    /// The seed given to [`TorchRng::manual_seed`], untruncated (like `torch.initial_seed()`).
    pub fn initial_seed(&self) -> u64 {
        self.seed
    }

    /// Regenerates the whole state block (the mt19937 "twist").
    fn twist(&mut self) {
        let mt = &mut self.state;
        for i in 0..N {
            let y = (mt[i] & UPPER_MASK) | (mt[(i + 1) % N] & LOWER_MASK);
            let mut v = mt[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            mt[i] = v;
        }
        self.index = 0;
    }

    /// The next raw 32-bit mt19937 output (PyTorch's `random()`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Two raw outputs combined as PyTorch's `random64()`: `(u0 << 32) | u1`.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }

    /// A float32 in `[0, 1)` as `torch.rand` makes it: one raw output,
    /// `(u & 0xFFFFFF) * 2^-24` (exact).
    #[inline]
    pub fn uniform_f32_unit(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        (self.next_u32() & 0x00ff_ffff) as f32 * SCALE
    }

    /// A float64 in `[0, 1)` as `torch.rand(dtype=float64)` makes it: two raw outputs,
    /// `((u0 << 32) | u1) & (2^53 - 1)` times `2^-53` (exact).
    #[inline]
    pub fn uniform_f64_unit(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() & ((1u64 << 53) - 1)) as f64 * SCALE
    }

    /// One float32 draw of `Tensor.uniform_(from, to)`: `x * (to - from) + from` with
    /// `x` from [`TorchRng::uniform_f32_unit`], `to - from` rounded to `f32`, and the
    /// multiply-add rounded once (fused), as PyTorch's CPU kernel does.
    ///
    /// `from` and `to` are the bounds already cast to `f32` (PyTorch casts the Python
    /// floats to the tensor's dtype before drawing).
    #[inline]
    pub fn uniform_f32(&mut self, from: f32, to: f32) -> f32 {
        let x = self.uniform_f32_unit();
        x.mul_add(to - from, from)
    }

    /// One float64 draw of `Tensor.uniform_(from, to)` on a float64 tensor:
    /// `x * (to - from) + from` with `x` from [`TorchRng::uniform_f64_unit`] and the
    /// multiply-add rounded once (fused), the same formula PyTorch uses for float32.
    #[inline]
    pub fn uniform_f64(&mut self, from: f64, to: f64) -> f64 {
        let x = self.uniform_f64_unit();
        x.mul_add(to - from, from)
    }

    /// One draw of `torch.randint(low, high)` (any integer dtype): with
    /// `range = high - low`, a range below `2^28` uses one raw output, `u % range + low`;
    /// a larger range uses two, `((u0 << 32) | u1) % range + low`.
    ///
    /// # Panics
    ///
    /// If `low >= high` (PyTorch raises an error too).
    pub fn randint(&mut self, low: i64, high: i64) -> i64 {
        assert!(low < high, "randint: low ({low}) must be less than high ({high})");
        // high - low fits in a u64 for every pair with low < high
        let range = high.wrapping_sub(low) as u64;
        let offset =
            if range >= RANDINT_64_THRESHOLD { self.next_u64() % range } else { u64::from(self.next_u32()) % range };
        low.wrapping_add(offset as i64)
    }

    /// A random permutation of `0..n`, the same as `torch.randperm(n)` after the same
    /// seed (see [`TorchRng::randperm_into`]).
    pub fn randperm(&mut self, n: usize) -> Vec<usize> {
        let mut out = vec![0; n];
        self.randperm_into(&mut out);
        out
    }

    /// Fills `out` with a random permutation of `0..out.len()` exactly as PyTorch's CPU
    /// `torch.randperm(n)` does: start from the identity, then for `i` in `0..n-1` swap
    /// element `i` with element `i + z`, `z = u % (n - i)`, where `u` is one raw output
    /// ([`TorchRng::next_u32`]) while `n < (2^32 - 1) / 20`, and two combined
    /// ([`TorchRng::next_u64`]) for larger `n` (where one output's modulo would skew).
    /// Allocates nothing.
    pub fn randperm_into(&mut self, out: &mut [usize]) {
        let n = out.len();
        for (i, v) in out.iter_mut().enumerate() {
            *v = i;
        }
        let wide = n as u64 >= u64::from(u32::MAX / 20);
        for i in 0..n.saturating_sub(1) {
            let left = (n - i) as u64;
            let u = if wide { self.next_u64() } else { u64::from(self.next_u32()) };
            out.swap(i, i + (u % left) as usize);
        }
    }

    /// Fills `out` in order with [`TorchRng::uniform_f32`] draws, as `uniform_(from, to)`
    /// fills a float32 tensor in memory order (serially, one raw output per element).
    pub fn fill_uniform_f32(&mut self, out: &mut [f32], from: f32, to: f32) {
        for v in out {
            *v = self.uniform_f32(from, to);
        }
    }

    /// Fills `out` in order with [`TorchRng::uniform_f64`] draws, as `uniform_(from, to)`
    /// fills a float64 tensor in memory order (serially, two raw outputs per element).
    pub fn fill_uniform_f64(&mut self, out: &mut [f64], from: f64, to: f64) {
        for v in out {
            *v = self.uniform_f64(from, to);
        }
    }

    /// Fills `out` in order with PyTorch uniform draws of either float type
    /// (see [`TorchUniform`]).
    pub fn fill_uniform<T: TorchUniform + Copy>(&mut self, out: &mut [T], from: T, to: T) {
        for v in out {
            *v = T::torch_uniform(self, from, to);
        }
    }
}

/// The bound of PyTorch's default `nn.Linear` / `nn.Conv` weight init,
/// `kaiming_uniform_(w, a=sqrt(5))`: `sqrt(3) * (gain / sqrt(fan_in))` with
/// `gain = sqrt(2 / (1 + sqrt(5)^2))`, computed in `f64` in the same order as PyTorch
/// (so `sqrt(5)^2` is the rounded `5.000000000000001`).
///
/// Cast to `f32` (as `uniform_` does), it equals `(1 / sqrt(fan_in)) as f32` — the bias
/// bound — for every `fan_in` in `1..=4096` (tested). Draw the weights with
/// `rng.uniform_f32(-b, b)` where `b = kaiming_uniform_bound(fan_in) as f32`.
///
/// `fan_in == 0` gives infinity (PyTorch refuses zero-element tensors instead).
pub fn kaiming_uniform_bound(fan_in: usize) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// Float types that can be drawn like PyTorch's `uniform_` on a tensor of that dtype,
/// so generic tensor code can fill either `f32` or `f64` storage.
pub trait TorchUniform: Sized {
    /// One draw on `[from, to)`: [`TorchRng::uniform_f32`] for `f32`,
    /// [`TorchRng::uniform_f64`] for `f64`.
    fn torch_uniform(rng: &mut TorchRng, from: Self, to: Self) -> Self;
}

impl TorchUniform for f32 {
    #[inline]
    fn torch_uniform(rng: &mut TorchRng, from: f32, to: f32) -> f32 {
        rng.uniform_f32(from, to)
    }
}

impl TorchUniform for f64 {
    #[inline]
    fn torch_uniform(rng: &mut TorchRng, from: f64, to: f64) -> f64 {
        rng.uniform_f64(from, to)
    }
}

impl RngCore for TorchRng {
    /// The raw mt19937 output ([`TorchRng::next_u32`]).
    #[inline]
    fn next_u32(&mut self) -> u32 {
        TorchRng::next_u32(self)
    }

    /// `(u0 << 32) | u1`, PyTorch's `random64()` ([`TorchRng::next_u64`]).
    #[inline]
    fn next_u64(&mut self) -> u64 {
        TorchRng::next_u64(self)
    }

    /// Raw outputs in order, each written as 4 little-endian bytes; a trailing partial
    /// chunk uses the low bytes of one more output.
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        let mut chunks = dst.chunks_exact_mut(4);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&TorchRng::next_u32(self).to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let bytes = TorchRng::next_u32(self).to_le_bytes();
            rest.copy_from_slice(&bytes[..rest.len()]);
        }
    }
}

/// Seeding through `rand`: the seed is a little-endian `u64` handed to
/// [`TorchRng::manual_seed`], and `seed_from_u64(s)` is exactly `manual_seed(s)`
/// (not `rand`'s default PCG-scrambled expansion), so `TorchRng::seed_from_u64(2)`
/// is `torch.manual_seed(2)`.
impl SeedableRng for TorchRng {
    type Seed = [u8; 8];

    fn from_seed(seed: [u8; 8]) -> Self {
        TorchRng::manual_seed(u64::from_le_bytes(seed))
    }

    fn seed_from_u64(state: u64) -> Self {
        TorchRng::manual_seed(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn mt19937_default_seed_first_output() {
        // the reference mt19937 seeded with 5489 (std::mt19937's default)
        let mut rng = TorchRng::manual_seed(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
    }

    #[test]
    fn mt19937_10000th_output() {
        // C++11 requires the 10000th output of a default-constructed std::mt19937
        let mut rng = TorchRng::manual_seed(5489);
        for _ in 0..9999 {
            rng.next_u32();
        }
        assert_eq!(rng.next_u32(), 4_123_659_995);
    }

    #[test]
    fn seed_is_truncated_to_32_bits() {
        let mut a = TorchRng::manual_seed((1 << 32) + 5);
        let mut b = TorchRng::manual_seed(5);
        assert_eq!(a.initial_seed(), (1 << 32) + 5);
        for _ in 0..1000 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn rand_traits_work() {
        let mut a = TorchRng::seed_from_u64(7);
        let mut b = TorchRng::manual_seed(7);
        assert_eq!(a, b);
        assert_eq!(TorchRng::from_seed(7u64.to_le_bytes()), b);
        let x: u32 = a.random::<u32>();
        assert_eq!(x, b.next_u32());
        let y: u64 = a.random();
        assert_eq!(y, b.next_u64());
        let _: f64 = a.random_range(0.0..1.0);
        let _: bool = a.random_bool(0.5);
    }

    #[test]
    fn rng_core_matches_inherent() {
        let mut a = TorchRng::manual_seed(3);
        let mut b = TorchRng::manual_seed(3);
        assert_eq!(RngCore::next_u32(&mut a), b.next_u32());
        let (u0, u1) = (b.next_u32(), b.next_u32());
        assert_eq!(RngCore::next_u64(&mut a), (u64::from(u0) << 32) | u64::from(u1));
        let mut buf = [0u8; 10];
        a.fill_bytes(&mut buf);
        let (w0, w1, w2) = (b.next_u32(), b.next_u32(), b.next_u32());
        assert_eq!(&buf[0..4], &w0.to_le_bytes());
        assert_eq!(&buf[4..8], &w1.to_le_bytes());
        assert_eq!(&buf[8..10], &w2.to_le_bytes()[..2]);
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    fn kaiming_bound_as_f32_equals_inv_sqrt() {
        for fan_in in 1..=4096usize {
            let k = kaiming_uniform_bound(fan_in) as f32;
            let inv = (1.0 / (fan_in as f64).sqrt()) as f32;
            assert_eq!(k.to_bits(), inv.to_bits(), "fan_in {fan_in}");
        }
    }

    #[test]
    fn unit_draws_use_expected_bits() {
        let mut a = TorchRng::manual_seed(11);
        let mut b = TorchRng::manual_seed(11);
        let u = b.next_u32();
        assert_eq!(a.uniform_f32_unit(), (u & 0xff_ffff) as f32 / 16_777_216.0);
        let v = b.next_u64();
        assert_eq!(a.uniform_f64_unit(), (v & ((1 << 53) - 1)) as f64 / 9_007_199_254_740_992.0);
    }

    #[test]
    fn uniform_f32_is_single_rounded() {
        // compare with an exact evaluation in f64 (product of two 24-bit significands
        // is exact; the sum is exact for these magnitudes), rounded once to f32
        let (from, to) = (-0.125f32, 0.375f32);
        let mut a = TorchRng::manual_seed(11);
        let mut b = TorchRng::manual_seed(11);
        for _ in 0..100_000 {
            let x = b.uniform_f32_unit();
            let exact = f64::from(x) * f64::from(to - from) + f64::from(from);
            assert_eq!(a.uniform_f32(from, to).to_bits(), (exact as f32).to_bits());
        }
    }

    #[test]
    #[should_panic(expected = "randint: low (3) must be less than high (3)")]
    fn randint_empty_range_panics() {
        TorchRng::manual_seed(0).randint(3, 3);
    }

    #[test]
    fn fills_are_serial() {
        let mut a = TorchRng::manual_seed(7);
        let mut b = TorchRng::manual_seed(7);
        let mut v = [0f32; 40];
        a.fill_uniform_f32(&mut v[..15], -0.5, 0.5);
        a.fill_uniform(&mut v[15..], -0.5, 0.5);
        for x in v {
            assert_eq!(x.to_bits(), b.uniform_f32(-0.5, 0.5).to_bits());
        }
        let mut w = [0f64; 9];
        a.fill_uniform_f64(&mut w[..4], 1.0, 3.0);
        a.fill_uniform(&mut w[4..], 1.0, 3.0);
        for x in w {
            assert_eq!(x.to_bits(), f64::torch_uniform(&mut b, 1.0, 3.0).to_bits());
        }
    }
}
