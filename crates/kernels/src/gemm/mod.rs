//! Dense matrix multiply, `C = op(A)·op(B)` (optionally `+ C`, or with a bias + ReLU
//! epilogue), for `f32` and `f64`: one [`Problem`] type describes the operands ([`Operands`] and sizes), one
//! [`Epilogue`] type what happens to C as it is stored, and one function, [`choose`],
//! picks the [`Path`].
//!
//! The paths, by module:
//!
//! - [`small`]: plain loops over register tiles, no packing (small problems, `f64` and
//!   CPUs without AVX2), and the tiny-product entry.
//! - [`direct`]: `f32` AVX2 kernels that read A in place: broadcast (B rows contiguous),
//!   dot product (`x·Wᵀ`), swap (`Cᵀ = W·xᵀ` through transposed copies) and panel (B
//!   packed one k×16 panel at a time; the only direct path that splits over threads and
//!   the only one that applies the epilogue in registers).
//! - [`packed`]: the BLIS / GotoBLAS blocked algorithm with packed operands, split over
//!   [`num_threads`] for large problems.
//! - [`x86`]: the AVX2 + FMA micro-kernels, packing transposes and direct kernels.
//! - [`x86_512`]: the AVX-512F micro-kernels and the panel path's broadcast kernel.
//!
//! Packing buffers are thread-local, grow-only `Vec`s, so steady-state calls do not
//! allocate. A call split over the pool carves one buffer per part from the calling
//! thread's (`packed::PartBuffers`), sized before the parts are handed out, so the pool's
//! workers never allocate for a GEMM.
//!
//! `docs/kernels.md` has the measurements behind each threshold.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::cpu::{self, Isa};
use crate::elementwise::bias_relu_rows;
use crate::threads::num_threads;
use crate::Element;

mod direct;
mod packed;
mod small;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_512;

use packed::Blocks;

/// `f32` products of at most this many multiply-adds take the tiny entry ([`small::tiny_f32`]):
/// a cheap bounds check and a one-test choice of kernel, as the general dispatch costs more
/// than the product.
const TINY_WORK: usize = 512;
/// Up to this `m·k·n`, with B rows contiguous, the plain loops beat packing.
const SMALL_WORK_UNIT: usize = 16 * 64 * 64;
/// Up to this `m·k·n`, with strided B rows, the plain loops beat packing (strided loads
/// slow them down sooner).
const SMALL_WORK_STRIDED: usize = 8 * 16 * 16;
/// Below this `m·k·n` a product stays on one thread: waking a worker costs more than it saves.
const PARALLEL_WORK: usize = 64 * 64 * 128;
/// Up to this `m·k·n` the dot, swap and staged-B direct paths beat the packed path.
const DIRECT_WORK: usize = 64 * 256 * 64;
/// Up to this `m·k·n` the in-place broadcast kernel beats the packed path.
const DIRECT_MAX_WORK: usize = 64 * 256 * 1024;
/// Deepest B the in-place broadcast kernel takes: its k×16 column block must stay in L1.
const DIRECT_MAX_K: usize = 512;
/// Largest column-major A (`m·k`) the broadcast kernel reads in place (it walks A by columns).
const DIRECT_MAX_A: usize = 8 * 1024;
/// Largest B (`k·n`) the direct path copies row-major when no kernel reads it in place (64 KB: L2).
const STAGE_MAX: usize = 16 * 1024;
/// Largest A (`m·k`) the panel path reads in place for every panel of B (1 MB).
const PANEL_MAX_A: usize = 256 * 1024;
/// Largest `G·W` A (`m·k`) the panel path takes on one thread (256 KB: L2).
const PANEL_MAX_A_GW: usize = 64 * 1024;

/// What happens to each element of C as the product is stored (only without `accumulate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing: C is the product.
    None,
    /// `C[i][j] + bias[j]`.
    Bias,
    /// `relu(C[i][j] + bias[j])` ([`Element::relu`]).
    BiasRelu,
}

/// How a product is computed. [`choose`] picks one; tests force each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The plain loops ([`small`]).
    Small,
    /// The direct broadcast kernel (`f32`, AVX2): B read in place if its rows are
    /// contiguous, else copied row-major first.
    Broadcast,
    /// The direct dot-product kernel where `csa == 1 && rsb == 1`, else as `Broadcast`.
    Dot,
    /// Where `csa == 1 && rsb == 1`: `Cᵀ = Bᵀ·Aᵀ` through transposed copies of A and C,
    /// else as `Broadcast`.
    Swap,
    /// B packed one k×16 panel at a time, A read in place; panels shared out over threads.
    Panel,
    /// The blocked algorithm with packed operands ([`packed`]) on up to `threads` threads
    /// with the micro-kernel of `isa` (or the best supported one below it).
    Packed {
        /// The micro-kernel's instruction set.
        isa: Isa,
        /// Threads to split over.
        threads: usize,
    },
}

/// The operands of a product as strided views: A element (i,p) at `a + i*rsa + p*csa`, B
/// element (p,j) at `b + p*rsb + j*csb`, C element (i,j) at `c + i*ldc + j`, and what
/// happens to C as it is stored (`epi`, with `bias + j` for column j). Kernels address
/// sub-problems through [`Operands::at`]; a [`Problem`] adds the sizes.
#[derive(Clone, Copy)]
pub struct Operands<T> {
    pub a: *const T,
    pub rsa: usize,
    pub csa: usize,
    pub b: *const T,
    pub rsb: usize,
    pub csb: usize,
    pub c: *mut T,
    pub ldc: usize,
    /// `n` values added to every row when `epi` is not [`Epilogue::None`].
    pub bias: *const T,
    pub epi: Epilogue,
}

// SAFETY: `Operands` are shared by the threads of one call; they read A, B and the bias and
// write disjoint parts of C (each path documents its split), and the slices they point
// into stay borrowed (by the `Problem`) until the call returns.
unsafe impl<T: Sync> Sync for Operands<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Operands<T> {}

impl<T> Operands<T> {
    /// The operands shifted to row `i` of A and C and column `j` of B, C and the bias.
    ///
    /// # Safety
    /// `(i, j)` must lie inside the views.
    #[inline(always)]
    pub unsafe fn at(self, i: usize, j: usize) -> Self {
        // SAFETY: the caller keeps (i, j) inside the views, so the offsets are in bounds.
        unsafe {
            Self {
                a: self.a.add(i * self.rsa),
                b: self.b.add(j * self.csb),
                c: self.c.add(i * self.ldc + j),
                // (a dangling pointer without an epilogue: only moved, never read)
                bias: self.bias.wrapping_add(j),
                ..self
            }
        }
    }
}

/// One product: the m×k A times the k×n B into the m×n C, as [`Operands`] (reached
/// through `Deref`), with the lengths of the slices they were made from, which [`run`]
/// checks before any kernel reads them.
#[derive(Clone, Copy)]
pub struct Problem<'a, T> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub ops: Operands<T>,
    /// Lengths of the slices behind `a`, `b` and `c`.
    lens: [usize; 3],
    _slices: PhantomData<&'a mut [T]>,
}

impl<T> std::ops::Deref for Problem<'_, T> {
    type Target = Operands<T>;

    #[inline(always)]
    fn deref(&self) -> &Operands<T> {
        &self.ops
    }
}

impl<'a, T: Element> Problem<'a, T> {
    /// The product of the m×k view `a` (strides `rsa`, `csa`) and the k×n view `b` into
    /// the m×n contiguous `c`, without epilogue. The lengths are checked by [`run`].
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn new(
        m: usize,
        k: usize,
        n: usize,
        a: &'a [T],
        rsa: usize,
        csa: usize,
        b: &'a [T],
        rsb: usize,
        csb: usize,
        c: &'a mut [T],
    ) -> Self {
        Problem {
            m,
            k,
            n,
            lens: [a.len(), b.len(), c.len()],
            ops: Operands {
                a: a.as_ptr(),
                rsa,
                csa,
                b: b.as_ptr(),
                rsb,
                csb,
                c: c.as_mut_ptr(),
                ldc: n,
                bias: std::ptr::null(),
                epi: Epilogue::None,
            },
            _slices: PhantomData,
        }
    }

    /// The same product with `bias` added to every row, then ReLU if `relu`.
    ///
    /// # Panics
    /// If `bias.len() != n`.
    #[inline]
    pub fn with_bias(mut self, bias: &'a [T], relu: bool) -> Self {
        assert_eq!(bias.len(), self.n, "gemm: bias of length {} for n = {}", bias.len(), self.n);
        self.ops.bias = bias.as_ptr();
        self.ops.epi = if relu { Epilogue::BiasRelu } else { Epilogue::Bias };
        self
    }
}

impl<T> Problem<'_, T> {
    /// `m·k·n`, saturating.
    #[inline]
    fn work(&self) -> usize {
        self.m.saturating_mul(self.k).saturating_mul(self.n)
    }

    /// The same product with the roles of A and B swapped (`Cᵀ = Bᵀ·Aᵀ`), without the
    /// epilogue (whose bias runs along the other side; [`run`] applies it as a pass). Only
    /// valid when `m == 1` or `n == 1`: then C and Cᵀ have the same memory layout.
    fn transposed(self) -> Self {
        debug_assert!(self.m == 1 || self.n == 1);
        let o = self.ops;
        Self {
            m: self.n,
            n: self.m,
            ops: Operands {
                a: o.b,
                rsa: o.csb,
                csa: o.rsb,
                b: o.a,
                rsb: o.csa,
                csb: o.rsa,
                c: o.c,
                ldc: self.m,
                bias: std::ptr::null(),
                epi: Epilogue::None,
            },
            lens: [self.lens[1], self.lens[0], self.lens[2]],
            ..self
        }
    }

    /// C as a slice (`m·n` elements).
    ///
    /// # Safety
    /// The bounds are checked, `ldc == n`, and no other reference to C is alive while the
    /// slice is (the `Problem` holds the caller's only borrow of C; C is otherwise written
    /// through the raw pointer).
    #[allow(clippy::mut_from_ref)]
    unsafe fn c_slice(&self) -> &mut [T] {
        // SAFETY: guaranteed by the caller; the `Problem` holds the only borrow of C.
        unsafe { std::slice::from_raw_parts_mut(self.c, self.m * self.n) }
    }
}

/// Smallest slice length holding a `rows×cols` view with strides `rs`, `cs`.
fn required_len(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
}

/// Panics unless every slice is long enough for the sizes and strides.
fn check_bounds<T>(p: &Problem<'_, T>) {
    let (m, k, n) = (p.m, p.k, p.n);
    let [a_len, b_len, c_len] = p.lens;
    let need_c = m.checked_mul(n);
    assert!(
        need_c.is_some_and(|need| c_len >= need),
        "gemm: C slice too short for m={m}, n={n}: need {need_c:?}, got {c_len}"
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let need_a = required_len(m, k, p.rsa, p.csa);
    assert!(
        need_a.is_some_and(|need| a_len >= need),
        "gemm: A slice too short for m={m}, k={k}, rsa={}, csa={}: need {need_a:?}, got {a_len}",
        p.rsa,
        p.csa,
    );
    let need_b = required_len(k, n, p.rsb, p.csb);
    assert!(
        need_b.is_some_and(|need| b_len >= need),
        "gemm: B slice too short for k={k}, n={n}, rsb={}, csb={}: need {need_b:?}, got {b_len}",
        p.rsb,
        p.csb,
    );
}

/// Computes `p` (`C = A·B`, or `C += A·B` if `accumulate`) on the path [`choose`] picks, or
/// on `forced`; then applies the epilogue as a pass over C if the path did not.
///
/// # Panics
/// If a slice is too short, or with both an epilogue and `accumulate`.
pub(crate) fn run<T: Element>(p: &Problem<'_, T>, accumulate: bool, forced: Option<Path>) {
    assert!(!accumulate || p.epi == Epilogue::None, "gemm: an epilogue needs accumulate = false");
    let applied = if forced.is_none() && T::DIRECT && small::is_tiny(p) {
        T::tiny(p, accumulate);
        false
    } else {
        check_bounds(p);
        if p.m == 0 || p.n == 0 {
            return;
        }
        run_checked(p, accumulate, forced)
    };
    if !applied && p.epi != Epilogue::None {
        // SAFETY: bounds checked (by `check_bounds` or `small::is_tiny`), `ldc == n`; the
        // bias holds n values (`Problem::with_bias`).
        let (c, bias) = unsafe { (p.c_slice(), std::slice::from_raw_parts(p.bias, p.n)) };
        bias_relu_rows(c, bias, p.epi == Epilogue::BiasRelu);
    }
}

/// [`run`] after the bounds check (`m, n >= 1`); returns whether the path applied the
/// epilogue.
fn run_checked<T: Element>(p: &Problem<'_, T>, accumulate: bool, forced: Option<Path>) -> bool {
    if p.k == 0 {
        if !accumulate {
            // SAFETY: bounds checked; `ldc == n` for a problem made by `Problem::new`.
            unsafe { p.c_slice() }.fill(T::ZERO);
        }
        return false;
    }
    match forced {
        Some(path) => execute(path, p, accumulate),
        None => match choose(p) {
            (path, false) => execute(path, p, accumulate),
            (path, true) => execute(path, &p.transposed(), accumulate),
        },
    }
}

/// The path for `p` (bounds checked, `m, n, k >= 1`), and whether to run it on `p`
/// transposed (where a single row or column of C suits a kernel better that way).
/// (The tiny products, [`small::is_tiny`], never get here: [`small::tiny_f32`] picks
/// their kernel with one test.) For `f32` with AVX2, in order:
///
/// | condition | path |
/// | --- | --- |
/// | `csb == 1` and `2 <= n < 8` (rows narrower than a vector) | skip the direct paths |
/// | `m == 1` with `csb != 1`, or `n == 1` with `rsa == 1` (not `x·Wᵀ`) | the rows below on `p` transposed |
/// | [`panel_pays`] | panel |
/// | on more than one thread (`m·k·n >= PARALLEL_WORK`) | skip the other direct paths |
/// | `csb == 1` (a single column only without a dot product), `m·k·n <= DIRECT_MAX_WORK`, `k <= DIRECT_MAX_K`, `csa == 1` or `m·k <= DIRECT_MAX_A` | broadcast, B in place |
/// | `x·Wᵀ` (`csa == 1 && rsb == 1`), `m·k·n <= DIRECT_WORK`, [`swap_pays`] | swap |
/// | `x·Wᵀ`, `m·k·n <= DIRECT_WORK` | dot |
/// | `n == 1` | broadcast (one masked lane) |
/// | `k·n <= STAGE_MAX`, `m·k·n <= DIRECT_WORK` | broadcast, B copied row-major |
/// | `m·k·n <= SMALL_WORK_UNIT` (`csb == 1`) / `SMALL_WORK_STRIDED` | small |
/// | otherwise | packed, on [`num_threads`] from `PARALLEL_WORK` |
///
/// `f64`, and CPUs without AVX2, start at the small row.
fn choose<T: Element>(p: &Problem<'_, T>) -> (Path, bool) {
    let work = p.work();
    let threads = if work < PARALLEL_WORK { 1 } else { num_threads() };
    let narrow = p.csb == 1 && (2..8).contains(&p.n);
    if T::DIRECT && !narrow && cpu::has_avx2() {
        // A single row or column of C: the orientation whose layout suits a kernel (a row
        // of C wants contiguous B rows, a column a dot product or contiguous A columns).
        // (Either rule leaves one row or column, which the other does not transpose back.)
        let transpose =
            (p.m == 1 && p.n > 1 && p.csb != 1) || (p.n == 1 && p.m > 1 && p.rsa == 1 && !(p.csa == 1 && p.rsb == 1));
        let q = if transpose { p.transposed() } else { *p };
        let dot = q.csa == 1 && q.rsb == 1;
        let path = if q.csb == 1 && (q.n > 1 || !dot) {
            let fits = work <= DIRECT_MAX_WORK && q.k <= DIRECT_MAX_K && (q.csa == 1 || q.m * q.k <= DIRECT_MAX_A);
            if panel_pays(&q, work, threads) {
                Some(Path::Panel)
            } else if threads > 1 || !fits || (2..8).contains(&q.n) {
                None
            } else {
                Some(Path::Broadcast)
            }
        } else if dot && panel_pays(&q, work, threads) {
            Some(Path::Panel)
        } else if threads > 1 {
            None
        } else if dot && work <= DIRECT_WORK && swap_pays(q.m, q.k, q.n) {
            Some(Path::Swap)
        } else if dot && work <= DIRECT_WORK {
            Some(Path::Dot)
        } else if q.n == 1 && !dot {
            Some(Path::Broadcast)
        } else if q.k * q.n > STAGE_MAX || work > DIRECT_WORK {
            None
        } else {
            Some(Path::Broadcast)
        };
        if let Some(path) = path {
            return (path, transpose);
        }
    }
    let small_limit = if p.csb == 1 { SMALL_WORK_UNIT } else { SMALL_WORK_STRIDED };
    if work <= small_limit {
        (Path::Small, false)
    } else {
        (Path::Packed { isa: cpu::isa(), threads }, false)
    }
}

/// Whether `x·Wᵀ` (`csa == 1 && rsb == 1`) is faster as `Cᵀ = W·xᵀ` ([`Path::Swap`]) than
/// with the dot kernel: the swap needs whole vectors of C rows (`m % 8 == 0`) and `n >= 16`
/// (else the two transposes dominate); it wins at small depth, while from `k = 256` the dot
/// kernel's reduction is amortised, unless W (`k·n >= 64 Ki`) overflows L2.
fn swap_pays(m: usize, k: usize, n: usize) -> bool {
    m.is_multiple_of(8) && n >= 16 && ((k <= 128 && 4 * n >= k) || (k <= 256 && k * n >= 64 * 1024))
}

/// Whether [`Path::Panel`] (B packed one k×16 panel at a time, A read in place) is the
/// fastest path for `p` (`work` = `m·k·n`), for at least 16 columns and contiguous A rows:
///
/// * `x·Wᵀ` (`rsb == 1`, `csb != 1`) with `m >= 6`, A within [`PANEL_MAX_A`] (every panel
///   reads all of it) and `m > 32` or `work > DIRECT_WORK` (below, the swap and dot paths win).
/// * `G·W` (`csb == 1`) with `m >= 64`, `k >= 64` and A within [`PANEL_MAX_A_GW`] (with
///   AVX-512 [`PANEL_MAX_A`]: its 12×32 tiles beat the packed path at 256·1024·1024): the
///   copied panel avoids the L1 misses of a k×16 block of B read in place (rows 1 KB apart
///   alias).
/// * On several threads both layouts with A within [`PANEL_MAX_A`] (`G·W` up to m = 512):
///   the threads share A, read in place, where the split packed path packs it in each.
///
/// Not `Gᵀ·X` (`rsa == 1`): the 6-row broadcasts read A by columns, and the packed path,
/// which keeps a packed block of A in L1, is faster on a busy host.
fn panel_pays<T>(p: &Problem<'_, T>, work: usize, threads: usize) -> bool {
    let mk = p.m.saturating_mul(p.k);
    if p.n < 16 || p.csa != 1 {
        false
    } else if threads > 1 {
        mk <= PANEL_MAX_A && ((p.csb != 1 && p.rsb == 1) || (p.csb == 1 && p.m <= 512))
    } else if p.csb == 1 {
        p.m >= 64 && p.k >= 64 && mk <= if cpu::has_avx512() { PANEL_MAX_A } else { PANEL_MAX_A_GW }
    } else {
        p.rsb == 1 && p.m >= 6 && mk <= PANEL_MAX_A && (p.m > 32 || work > DIRECT_WORK)
    }
}

/// Runs `path` on `p` (bounds checked, `m, k, n >= 1`); returns whether it applied the
/// epilogue. The direct paths fall back to the plain loops for `f64` and without AVX2.
#[inline]
fn execute<T: Element>(path: Path, p: &Problem<'_, T>, accumulate: bool) -> bool {
    match path {
        Path::Small => small::gemm_small(p, accumulate),
        Path::Packed { isa, threads } => packed::gemm_packed(isa.min(cpu::isa()), threads.max(1), p, accumulate),
        direct => return T::direct(direct, p, accumulate),
    }
    false
}

/// What the GEMM needs per element type: block sizes, micro-kernels, buffers and the
/// direct paths. Sealed: part of [`Element`], implemented for `f32` and `f64` only.
pub trait GemmElement: Sized {
    /// The packed path's block sizes with the micro-kernel of `isa` (or the best one below).
    #[doc(hidden)]
    fn blocks(isa: Isa) -> Blocks;
    /// Whether the direct (unpacked SIMD) paths exist for this type.
    const DIRECT: bool;

    /// Full mr×nr tile ([`Self::blocks`]`(isa)`): `C = A·B` (or `C += A·B` if `beta`), C
    /// with row stride `ldc`, with the micro-kernel of `isa`.
    ///
    /// # Safety
    /// `a` holds kc·mr and `b` kc·nr packed values; `c` is valid for an mr×nr tile; the
    /// CPU supports `isa`.
    #[doc(hidden)]
    unsafe fn micro_kernel(isa: Isa, kc: usize, a: *const Self, b: *const Self, c: *mut Self, ldc: usize, beta: bool);

    /// SIMD packing of a full panel whose source lines are contiguous along the depth
    /// (`sp == 1`); returns false if this case has no SIMD routine.
    ///
    /// # Safety
    /// As for `packed::pack_block` with one full panel; the CPU supports `isa`.
    #[doc(hidden)]
    unsafe fn pack_transposed(isa: Isa, src: *const Self, sj: usize, kc: usize, width: usize, dst: *mut Self) -> bool;

    /// Runs `f` with this thread's two packing buffers.
    #[doc(hidden)]
    fn with_buffers<R>(f: impl FnOnce(&mut Vec<Self>, &mut Vec<Self>) -> R) -> R;

    /// Runs a tiny product ([`small::is_tiny`] holds; only called where `DIRECT` is true).
    #[doc(hidden)]
    fn tiny(p: &Problem<'_, Self>, accumulate: bool);

    /// Runs a direct path (the plain loops where this type or CPU has none); returns
    /// whether it applied the epilogue. `p` is bounds-checked with `m, k, n >= 1`.
    #[doc(hidden)]
    fn direct(path: Path, p: &Problem<'_, Self>, accumulate: bool) -> bool;
}

thread_local! {
    static BUFFERS_F32: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static BUFFERS_F64: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

macro_rules! gemm_element {
    ($t:ident, $nr:expr, $mc:expr, $direct:expr, $buffers:ident, $kernel:ident, $kernel512:ident, $pack:ident, $run:ident, $tiny:ident) => {
        impl GemmElement for $t {
            const DIRECT: bool = $direct;

            #[inline]
            fn blocks(isa: Isa) -> Blocks {
                if isa >= Isa::Avx512 {
                    // 12×2 zmm accumulators; the A block stays 144 (f32) / 72 (f64) rows.
                    Blocks { mr: 12, nr: 2 * $nr, kc: 256, mc: $mc, nc: 4096 }
                } else {
                    Blocks { mr: 6, nr: $nr, kc: 256, mc: $mc, nc: 4096 }
                }
            }

            unsafe fn micro_kernel(
                isa: Isa,
                kc: usize,
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                ldc: usize,
                beta: bool,
            ) {
                #[cfg(target_arch = "x86_64")]
                if isa >= Isa::Avx512 {
                    // SAFETY: the CPU supports `isa` (the caller's contract); pointer
                    // requirements (12×32 / 12×16 geometry) are forwarded from the caller.
                    return unsafe { x86_512::$kernel512(kc, a, b, c, ldc, beta) };
                }
                #[cfg(target_arch = "x86_64")]
                if isa >= Isa::Avx2 {
                    // SAFETY: the CPU supports `isa` (the caller's contract); pointer
                    // requirements are forwarded from the caller.
                    return unsafe { x86::$kernel(kc, a, b, c, ldc, beta) };
                }
                let _ = isa;
                // SAFETY: forwarded from the caller.
                unsafe { packed::portable_kernel::<$t, 6, $nr>(kc, a, b, c, ldc, beta) }
            }

            unsafe fn pack_transposed(
                isa: Isa,
                src: *const $t,
                sj: usize,
                kc: usize,
                width: usize,
                dst: *mut $t,
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                if isa >= Isa::Avx2 && width.is_multiple_of(2) {
                    // SAFETY: the CPU supports AVX2; pointer requirements come from the caller.
                    unsafe { x86::$pack(src, sj, kc, width, dst) };
                    return true;
                }
                let _ = (isa, src, sj, kc, width, dst);
                false
            }

            fn with_buffers<R>(f: impl FnOnce(&mut Vec<$t>, &mut Vec<$t>) -> R) -> R {
                $buffers.with(|cell| {
                    let (a, b) = &mut *cell.borrow_mut();
                    f(a, b)
                })
            }

            #[inline]
            fn tiny(p: &Problem<'_, $t>, accumulate: bool) {
                small::$tiny(p, accumulate)
            }

            #[inline]
            fn direct(path: Path, p: &Problem<'_, $t>, accumulate: bool) -> bool {
                direct::$run(path, p, accumulate)
            }
        }
    };
}

gemm_element!(f32, 16, 144, true, BUFFERS_F32, kernel_f32, kernel_f32, pack_transposed_f32, run_f32, tiny_f32);
gemm_element!(f64, 8, 72, false, BUFFERS_F64, kernel_f64, kernel_f64, pack_transposed_f64, run_f64, gemm_small);
