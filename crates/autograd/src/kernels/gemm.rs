//! Dense matrix multiply (`C = op(A)·op(B)`, optionally `+ C`) for `f32` and `f64`.
//!
//! # Blocking scheme (BLIS / GotoBLAS)
//!
//! Operands are arbitrary strided views, so transposed operands never need a separate
//! copy: the packing routines read any strides. For one thread the loops are
//!
//! ```text
//! for jc in 0..n step NC            // B column block (kc×nc packed panel lives in L3)
//!   for pc in 0..k step KC          // depth block
//!     pack B[pc.., jc..] into NR-wide micro-panels (row p of a panel = NR values)
//!     for ic in 0..m step MC        // A row block (mc×kc packed block lives in L2)
//!       pack A[ic.., pc..] into MR-tall micro-panels (row p of a panel = MR values)
//!       for jr in micro-panels of B // one kc×NR B micro-panel stays in L1
//!         for ir in micro-panels of A
//!           micro-kernel: MR×NR tile of C += A-panel · B-panel (kept in registers)
//! ```
//!
//! Block sizes are balanced (e.g. k = 257 gives two depth blocks of 129, not 256 + 1).
//! Edge panels are zero-padded when packed, so the micro-kernel always computes a full
//! MR×NR tile; partial tiles are written through a small stack buffer.
//!
//! Micro-kernels: AVX2+FMA (`f32`: 6×16, `f64`: 6×8, i.e. 12 ymm accumulators), chosen at
//! runtime with cached feature detection, and a portable plain-Rust kernel of the same
//! geometry used on other CPUs / architectures.
//!
//! # Dispatch (`Strategy::Auto`)
//!
//! Small and medium `f32` problems on AVX2+FMA CPUs skip packing, or pack only one operand
//! ("direct" paths, see [`direct`]); the rest goes to the plain loop or the blocked
//! algorithm. In order:
//!
//! | shape / layout (`f32`, AVX2, one thread or `m·k·n` < [`PARALLEL_WORK`]; with more threads only the panel row, with its own limits) | path |
//! |---------------------------------------------------------------------------------------------|------|
//! | `m·k·n` ≤ [`TINY_WORK`] ([`tiny_f32`]): `csb == 1` and `n >= 8` / `csa == 1 && rsb == 1` / otherwise | direct broadcast kernel / direct dot-product kernel / plain loop |
//! | `m == 1`, `n > 1`, `csb != 1`: swapped to `Cᵀ = Bᵀ·Aᵀ` (same C layout), then as below       | — |
//! | `n == 1`, `m > 1`, `rsa == 1`, not (`csa == 1 && rsb == 1`): swapped likewise               | — |
//! | `n >= 16` and either `csa == 1 && rsb == 1` (`x·Wᵀ`), `csb != 1`, `m >= 6`, `m·k` ≤ [`PANEL_MAX_A`], `m > 32` or `m·k·n` > [`DIRECT_WORK`]; or `csa == 1 && csb == 1` (`G·W`), `m >= 64`, `k >= 64`, `m·k` ≤ 64 Ki ([`panel_pays`]) | B packed one k×16 panel at a time (8×8 register transposes for `x·Wᵀ`, row copies otherwise) into a thread-local buffer, then the direct broadcast kernel reads A in place: 6×16 tiles over the whole depth |
//! | `csb == 1` (rows of B contiguous; `n == 1` only without a dot product), `n` not in `2..8`, `m·k·n` ≤ [`DIRECT_MAX_WORK`], `k` ≤ [`DIRECT_MAX_K`], `csa == 1` or `m·k` ≤ [`DIRECT_MAX_A`] | direct broadcast kernel, B read in place: 6×16 tiles (2×32 if `m == 2`, 1×64 if `m == 1`) |
//! | `csa == 1 && rsb == 1` (`x·Wᵀ`), `m·k·n` ≤ [`DIRECT_WORK`], `m % 8 == 0`, `n >= 16` and either `k <= 128 && 4·n >= k` or `k <= 256 && k·n >= 65536` ([`swap_pays`]) | swapped to `Cᵀ = W·xᵀ`: x transposed into a thread-local buffer, direct broadcast kernel into a thread-local Cᵀ (6×16 tiles, 12×8 for a last 8 columns), Cᵀ transposed (added if `accumulate`) into C; 8×8 register transposes |
//! | `csa == 1 && rsb == 1` (`x·Wᵀ`), `m·k·n` ≤ [`DIRECT_WORK`]                                  | direct dot-product kernel: 2×4 tiles (8×1 if `n == 1`) |
//! | `n == 1`, other layouts                                                                     | direct broadcast kernel (one masked lane) |
//! | other layouts with `k·n` ≤ [`STAGE_MAX`] and `m·k·n` ≤ [`DIRECT_WORK`]                      | B copied row-major to a thread-local buffer, then the broadcast kernel |
//! | otherwise, `m·k·n` ≤ [`SMALL_WORK_UNIT`] (`csb == 1`) / [`SMALL_WORK_STRIDED`]              | plain loop (`gemm_small`): no packing, no pool |
//! | otherwise                                                                                   | blocked algorithm above, split over [`num_threads`] from [`PARALLEL_WORK`] |
//!
//! `f64`, and CPUs without AVX2+FMA, start at the plain-loop row.
//!
//! Packing buffers are thread-local, grow-only `Vec`s, so steady-state calls do not
//! allocate. Multi-threading uses a persistent, lazily started pool of parked workers
//! (see [`pool`]). The panel path hands out its 16-column panels from a shared counter;
//! the blocked path splits the problem along `n` (or `m`) into whole micro-panels and each
//! thread runs the serial algorithm on its own part of `C`.

// The module doc names private constants and helpers for readers of the source.
#![allow(rustdoc::private_intra_doc_links)]

use std::cell::RefCell;
use std::ops::{Add, AddAssign, Mul};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Problems with `m·k·n` at or below this use the unpacked loops when rows of B are
/// contiguous (`csb == 1`; measured crossover with the packed path is near 64·64·32).
const SMALL_WORK_UNIT: usize = 16 * 64 * 64;
/// Same for other B layouts (strided loads make the unpacked loops slower).
const SMALL_WORK_STRIDED: usize = 8 * 16 * 16;
/// Problems with `m·k·n` below this never use more than one thread (measured: two
/// threads pay off from about 32·64·128 when the worker is awake; doubled for margin).
const PARALLEL_WORK: usize = 64 * 64 * 128;
/// `f32` problems with `m·k·n` at or below this use the direct dot-product or staged
/// paths (measured: the dot kernel is 2× faster than the packed one at 64·256·10 and
/// 14% slower at 64·256·256).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const DIRECT_WORK: usize = 64 * 256 * 64;
/// Same for the in-place broadcast kernel (measured: 98% of peak at 64·256·784), which
/// also needs a B column block of `k`×16 to fit L1 ([`DIRECT_MAX_K`]) and A either
/// row-contiguous or small ([`DIRECT_MAX_A`] elements), as its broadcasts walk A by columns.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const DIRECT_MAX_WORK: usize = 64 * 256 * 1024;
/// See [`DIRECT_MAX_WORK`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const DIRECT_MAX_K: usize = 512;
/// See [`DIRECT_MAX_WORK`] (measured: 256×64 column-major A is faster packed).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const DIRECT_MAX_A: usize = 8 * 1024;
/// Largest B (`k·n` elements) the direct path copies into a row-major buffer when
/// neither direct kernel can read it in place (64 KB: stays in L2).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const STAGE_MAX: usize = 16 * 1024;
/// `f32` problems with `m·k·n` at or below this take [`tiny_f32`]: the direct kernels
/// chosen with one test each, without the general dispatch (measured with callgrind on
/// the seed network's five products: 360-540 instructions per call before).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const TINY_WORK: usize = 512;
/// Largest A (`m·k` elements) that [`DirectPath::Panel`] reads in place for every panel
/// of B (measured: 256·1024, 1 MB, is still 9% faster than packing; 512·512 is even).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PANEL_MAX_A: usize = 256 * 1024;
/// Alignment (in bytes) of packed buffers.
const ALIGN: usize = 64;
/// Largest MR·NR over the element types (size of the edge-tile scratch buffer).
const MAX_TILE: usize = 96;

static NUM_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads gemm may use (values below 1 are treated as 1).
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Number of threads gemm may use (default 1).
pub fn num_threads() -> usize {
    NUM_THREADS.load(Ordering::Relaxed).max(1)
}

/// C = op(A)·op(B) (+ C if `accumulate`), all row-major views given by strides.
/// A is m×k: element (i,p) at `a[i*rsa + p*csa]`. B is k×n: element (p,j) at `b[p*rsb + j*csb]`.
/// C is m×n contiguous: element (i,j) at `c[i*n + j]`. If `!accumulate`, C is overwritten
/// (its old contents, even NaN, are ignored).
///
/// # Panics
/// If a slice is too short for the given sizes and strides.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    let p = Problem { m, k, n, a, rsa, csa, b, rsb, csb };
    gemm_dispatch(Strategy::Auto, &p, c, accumulate);
}

/// `C = op(A)·op(B) + bias` (`bias`, of length n, added to every row), then `max(C, 0)`
/// if `relu`: the linear layer's forward. The same floats as [`sgemm`] followed by a pass
/// adding the bias and clamping; where the panel path runs, its tiles add the bias and
/// clamp in registers before they store, and no pass follows.
///
/// # Panics
/// If a slice is too short for the given sizes and strides, or `bias.len() != n`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_bias(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    c: &mut [f32],
    bias: &[f32],
    relu: bool,
) {
    let p = Problem { m, k, n, a, rsa, csa, b, rsb, csb };
    gemm_dispatch_with(Strategy::Auto, &p, c, false, Some(Epilogue { bias, relu }));
}

/// `f64` version of [`sgemm_bias`] (the product, then the bias and ReLU pass).
///
/// # Panics
/// As for [`sgemm_bias`].
#[allow(clippy::too_many_arguments)]
pub fn dgemm_bias(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    rsa: usize,
    csa: usize,
    b: &[f64],
    rsb: usize,
    csb: usize,
    c: &mut [f64],
    bias: &[f64],
    relu: bool,
) {
    let p = Problem { m, k, n, a, rsa, csa, b, rsb, csb };
    gemm_dispatch_with(Strategy::Auto, &p, c, false, Some(Epilogue { bias, relu }));
}

/// `f64` version of [`sgemm`]; same layout conventions.
///
/// # Panics
/// If a slice is too short for the given sizes and strides.
#[allow(clippy::too_many_arguments)]
pub fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    rsa: usize,
    csa: usize,
    b: &[f64],
    rsb: usize,
    csb: usize,
    c: &mut [f64],
    accumulate: bool,
) {
    let p = Problem { m, k, n, a, rsa, csa, b, rsb, csb };
    gemm_dispatch(Strategy::Auto, &p, c, accumulate);
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

/// Which micro-kernel family to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust, any target.
    Portable,
    /// AVX2 + FMA intrinsics (x86_64 only; only chosen when the CPU supports it).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2Fma,
}

/// How to execute one call (tests force each path; the public API uses `Auto`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Strategy {
    /// Pick by problem size, detected CPU features and [`num_threads`].
    Auto,
    /// The unpacked loop.
    #[cfg_attr(not(test), allow(dead_code))]
    Small,
    /// The packed, blocked algorithm with the given kernel and thread count.
    #[cfg_attr(not(test), allow(dead_code))]
    Blocked(Kernel, usize),
    /// One of the direct `f32` AVX2 paths (falls back to `Small` where there is none).
    #[cfg_attr(not(test), allow(dead_code))]
    Direct(DirectPath),
}

/// Which direct (unpacked) path to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirectPath {
    /// Choose by layout (see the module doc).
    Auto,
    /// The broadcast kernel, staging B into a row-major buffer if `csb != 1`.
    #[cfg_attr(not(test), allow(dead_code))]
    Broadcast,
    /// The dot-product kernel where `csa == 1 && rsb == 1`, else as `Broadcast`.
    #[cfg_attr(not(test), allow(dead_code))]
    Dot,
    /// Where `csa == 1 && rsb == 1`: `Cᵀ = Bᵀ·Aᵀ` with the broadcast kernel through
    /// transposed thread-local copies of A and C; else as `Broadcast`.
    #[cfg_attr(not(test), allow(dead_code))]
    Swap,
    /// The broadcast kernel with B packed into `k`×16 panels, one at a time, and A read
    /// in place.
    #[cfg_attr(not(test), allow(dead_code))]
    Panel,
}

/// What to do to C after the product (only without `accumulate`): add `bias` to every
/// row, then clamp at zero if `relu`.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a, T> {
    pub bias: &'a [T],
    pub relu: bool,
}

/// The read-only inputs of one call.
#[derive(Clone, Copy)]
pub(crate) struct Problem<'a, T> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: &'a [T],
    pub rsa: usize,
    pub csa: usize,
    pub b: &'a [T],
    pub rsb: usize,
    pub csb: usize,
}

/// Runs `f(0..parts)` on the persistent worker pool (the caller runs part 0) and waits:
/// how the elementwise kernels use the second thread.
pub(crate) fn run_parallel(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    pool::run(parts, f);
}

/// Whether the CPU has AVX2 and FMA (detected once, then cached).
pub(crate) fn has_avx2_fma() -> bool {
    detected_kernel() == Kernel::Avx2Fma
}

/// Best kernel the running CPU supports (detected once, then cached).
fn detected_kernel() -> Kernel {
    // 0 = unknown, 1 = portable, 2 = AVX2+FMA.
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => Kernel::Portable,
        2 => Kernel::Avx2Fma,
        _ => {
            let k = detect_kernel();
            CACHE.store(if k == Kernel::Avx2Fma { 2 } else { 1 }, Ordering::Relaxed);
            k
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_kernel() -> Kernel {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Kernel::Avx2Fma
    } else {
        Kernel::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_kernel() -> Kernel {
    Kernel::Portable
}

/// Smallest slice length holding a `rows×cols` view with strides `rs`, `cs`.
fn required_len(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
}

/// Panics unless every slice is long enough for the sizes and strides.
fn check_bounds<T>(p: &Problem<'_, T>, c_len: usize) {
    let (m, k, n) = (p.m, p.k, p.n);
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
        need_a.is_some_and(|need| p.a.len() >= need),
        "gemm: A slice too short for m={m}, k={k}, rsa={}, csa={}: need {need_a:?}, got {}",
        p.rsa,
        p.csa,
        p.a.len()
    );
    let need_b = required_len(k, n, p.rsb, p.csb);
    assert!(
        need_b.is_some_and(|need| p.b.len() >= need),
        "gemm: B slice too short for k={k}, n={n}, rsb={}, csb={}: need {need_b:?}, got {}",
        p.rsb,
        p.csb,
        p.b.len()
    );
}

/// Validates the arguments, handles degenerate sizes and runs the chosen strategy.
pub(crate) fn gemm_dispatch<T: Element>(strategy: Strategy, p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    gemm_dispatch_with(strategy, p, c, accumulate, None);
}

/// [`gemm_dispatch`] with an [`Epilogue`]: applied by the path if it can (the panel path,
/// in its tiles' registers), else as a pass over C afterwards.
pub(crate) fn gemm_dispatch_with<T: Element>(
    strategy: Strategy,
    p: &Problem<'_, T>,
    c: &mut [T],
    accumulate: bool,
    epi: Option<Epilogue<'_, T>>,
) {
    let mut epi = epi;
    if let Some(e) = &epi {
        assert!(!accumulate, "gemm: an epilogue needs accumulate = false");
        assert_eq!(e.bias.len(), p.n, "gemm: bias of length {} for n = {}", e.bias.len(), p.n);
    }
    gemm_run(strategy, p, c, accumulate, &mut epi);
    if let Some(e) = epi {
        let c = &mut c[..p.m * p.n];
        if !c.is_empty() {
            T::bias_relu_rows(c, e.bias, e.relu);
        }
    }
}

/// The body of [`gemm_dispatch_with`]; takes `epi` (sets it to `None`) if the path applied it.
fn gemm_run<T: Element>(
    strategy: Strategy,
    p: &Problem<'_, T>,
    c: &mut [T],
    accumulate: bool,
    epi: &mut Option<Epilogue<'_, T>>,
) {
    if matches!(strategy, Strategy::Auto) && T::tiny(p, c, accumulate) {
        return;
    }
    check_bounds(p, c.len());
    let (m, k, n) = (p.m, p.k, p.n);
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    let work = m.saturating_mul(k).saturating_mul(n);
    let small_limit = if p.csb == 1 { SMALL_WORK_UNIT } else { SMALL_WORK_STRIDED };
    // Rows of B narrower than a vector never take a direct path (cheap early exit for
    // the tiny problems that the plain loop handles best).
    let narrow = p.csb == 1 && (2..8).contains(&n);
    let direct_ok = !narrow;
    let (kernel, threads) = match strategy {
        Strategy::Auto if direct_ok && T::direct(DirectPath::Auto, p, c, accumulate, epi) => return,
        Strategy::Direct(path) if T::direct(path, p, c, accumulate, epi) => return,
        Strategy::Small | Strategy::Direct(_) => return gemm_small(p, c, accumulate),
        Strategy::Blocked(kernel, threads) => (kernel, threads.max(1)),
        Strategy::Auto if work <= small_limit => return gemm_small(p, c, accumulate),
        Strategy::Auto => {
            let threads = if work < PARALLEL_WORK { 1 } else { num_threads() };
            (detected_kernel(), threads)
        }
    };
    let kernel =
        if kernel == Kernel::Avx2Fma && detected_kernel() != Kernel::Avx2Fma { Kernel::Portable } else { kernel };
    gemm_blocked(kernel, threads, p, c, accumulate);
}

// ---------------------------------------------------------------------------------------
// Small problems: plain loops, no packing
// ---------------------------------------------------------------------------------------

/// Unpacked `C (+)= A·B` for tiny problems (compiled for AVX2+FMA when available).
fn gemm_small<T: Element>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if detected_kernel() == Kernel::Avx2Fma {
        // SAFETY: the CPU supports AVX2 and FMA (runtime detection).
        return unsafe { gemm_small_avx2(p, c, accumulate) };
    }
    gemm_small_body(p, c, accumulate);
}

/// [`gemm_small_body`] compiled with AVX2+FMA enabled.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_small_avx2<T: Element>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    gemm_small_body(p, c, accumulate);
}

/// Plain loops over register tiles of C (no packing): 4×8 tiles when rows of B are
/// contiguous and at least 8 wide, 4×4 otherwise, with 1-row / 1-column tiles at the edges.
#[inline(always)]
fn gemm_small_body<T: Element>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    if p.csb == 1 && p.n >= 8 {
        small_tiles::<T, 8, true>(p, c, accumulate);
    } else if p.csb == 1 {
        small_tiles::<T, 4, true>(p, c, accumulate);
    } else {
        small_tiles::<T, 4, false>(p, c, accumulate);
    }
}

/// Covers C with `4×W` tiles and edge tiles; `UNIT` means `csb == 1`.
#[inline(always)]
fn small_tiles<T: Element, const W: usize, const UNIT: bool>(p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    let (m, n) = (p.m, p.n);
    let (m4, nw) = (m - m % 4, n - n % W);
    for i in (0..m4).step_by(4) {
        for j in (0..nw).step_by(W) {
            small_tile::<T, 4, W, UNIT>(p, c, i, j, accumulate);
        }
        for j in nw..n {
            small_tile::<T, 4, 1, false>(p, c, i, j, accumulate);
        }
    }
    for i in m4..m {
        for j in (0..nw).step_by(W) {
            small_tile::<T, 1, W, UNIT>(p, c, i, j, accumulate);
        }
        for j in nw..n {
            small_tile::<T, 1, 1, false>(p, c, i, j, accumulate);
        }
    }
}

/// One `R×W` tile of C at `(i0, j0)` accumulated in registers over the whole depth.
#[inline(always)]
fn small_tile<T: Element, const R: usize, const W: usize, const UNIT: bool>(
    p: &Problem<'_, T>,
    c: &mut [T],
    i0: usize,
    j0: usize,
    accumulate: bool,
) {
    debug_assert!(i0 + R <= p.m && j0 + W <= p.n);
    let csb = if UNIT { 1 } else { p.csb };
    let mut acc = [[T::ZERO; W]; R];
    for q in 0..p.k {
        // SAFETY: i0 + R <= m, j0 + W <= n and q < k, and `check_bounds` verified that
        // every (i, q) of A and (q, j) of B inside those sizes is in bounds.
        let (av, bv) = unsafe {
            let a: [T; R] = std::array::from_fn(|r| *p.a.get_unchecked((i0 + r) * p.rsa + q * p.csa));
            let b: [T; W] = std::array::from_fn(|l| *p.b.get_unchecked(q * p.rsb + (j0 + l) * csb));
            (a, b)
        };
        for r in 0..R {
            for l in 0..W {
                acc[r][l] += av[r] * bv[l];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let start = (i0 + r) * p.n + j0;
        for (cj, &v) in c[start..start + W].iter_mut().zip(row) {
            *cj = if accumulate { *cj + v } else { v };
        }
    }
}

// ---------------------------------------------------------------------------------------
// Direct paths (f32, AVX2 + FMA): no packing
// ---------------------------------------------------------------------------------------

/// A problem of at most [`TINY_WORK`] multiply-adds: bounds checked with plain arithmetic
/// (sizes and strides small enough that nothing overflows), then the broadcast kernel when
/// rows of B are contiguous and at least a vector wide, the dot kernel when rows of A and
/// columns of B are contiguous, else the plain loop. Returns false (nothing done) for empty
/// sizes, huge strides or short slices, which the general path handles or reports.
///
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[inline]
fn tiny_f32(p: &Problem<'_, f32>, c: &mut [f32], accumulate: bool) -> bool {
    let (m, k, n) = (p.m, p.k, p.n);
    // sizes <= TINY_WORK and strides < 2^24: every product and sum below fits in usize
    if m == 0 || k == 0 || n == 0 || (p.rsa | p.csa | p.rsb | p.csb) >= 1 << 24 {
        return false;
    }
    let fits = p.a.len() > (m - 1) * p.rsa + (k - 1) * p.csa
        && p.b.len() > (k - 1) * p.rsb + (n - 1) * p.csb
        && c.len() >= m * n;
    if !fits {
        return false;
    }
    let o = direct::Ops {
        a: p.a.as_ptr(),
        rsa: p.rsa,
        csa: p.csa,
        b: p.b.as_ptr(),
        rsb: p.rsb,
        csb: p.csb,
        c: c.as_mut_ptr(),
        ldc: n,
        bias: std::ptr::null(),
        epi: direct::EPI_NONE,
    };
    // SAFETY: AVX2+FMA were detected by the caller; the slices hold every element of the
    // m×k A, k×n B and m×n C views (checked above), and m, k, n >= 1. Each kernel's layout
    // requirement is the condition of its branch (the plain loop has none).
    unsafe {
        if p.csb == 1 && n >= 8 {
            direct::direct(m, k, n, o, accumulate);
        } else if p.csa == 1 && p.rsb == 1 {
            direct::dot(m, k, n, o, accumulate);
        } else {
            gemm_small_avx2(p, &mut c[..m * n], accumulate);
        }
    }
    true
}

/// The same product with the roles of A and B swapped (`Cᵀ = Bᵀ·Aᵀ`). Only valid when
/// `m == 1` or `n == 1`: then C and Cᵀ have the same memory layout.
#[cfg(target_arch = "x86_64")]
fn transposed<'a, T>(p: &Problem<'a, T>) -> Problem<'a, T> {
    debug_assert!(p.m == 1 || p.n == 1);
    Problem { m: p.n, k: p.k, n: p.m, a: p.b, rsa: p.csb, csa: p.rsb, b: p.a, rsb: p.csa, csb: p.rsa }
}

/// Picks and runs a direct kernel (see the module doc); returns false (nothing done) for
/// a B that would need staging but is larger than [`STAGE_MAX`].
///
/// `p` is bounds-checked with `m, k, n >= 1` and the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
fn direct_f32(
    path: DirectPath,
    p: &Problem<'_, f32>,
    c: &mut [f32],
    accumulate: bool,
    epi: &mut Option<Epilogue<'_, f32>>,
) -> bool {
    let mut p = *p;
    if path == DirectPath::Auto {
        // A single row or column of C: choose the orientation whose layout suits a kernel
        // (a row of C wants contiguous B rows, a column wants a dot product or an axpy
        // over contiguous A columns).
        if p.m == 1 && p.n > 1 && p.csb != 1 {
            p = transposed(&p);
        }
        if p.n == 1 && p.m > 1 && p.rsa == 1 && !(p.csa == 1 && p.rsb == 1) {
            p = transposed(&p);
        }
    }
    let dot = p.csa == 1 && p.rsb == 1;
    let work = p.m.saturating_mul(p.k).saturating_mul(p.n);
    let threads = if work < PARALLEL_WORK { 1 } else { num_threads() };
    let kernel = match path {
        // Contiguous B rows (a single column counts only if no dot product is possible).
        DirectPath::Auto if p.csb == 1 && (p.n > 1 || !dot) => {
            if panel_pays(&p, work, threads) {
                DirectPath::Panel
            } else if threads > 1 {
                // Of the direct paths only the panel path splits over threads.
                return false;
            } else {
                let fits = work <= DIRECT_MAX_WORK && p.k <= DIRECT_MAX_K && (p.csa == 1 || p.m * p.k <= DIRECT_MAX_A);
                // Rows narrower than a vector: the plain loop is faster (no masked tails).
                if !fits || (2..8).contains(&p.n) {
                    return false;
                }
                DirectPath::Broadcast
            }
        }
        DirectPath::Auto if dot && panel_pays(&p, work, threads) => DirectPath::Panel,
        DirectPath::Auto if threads > 1 => return false,
        DirectPath::Auto if dot && work <= DIRECT_WORK && swap_pays(p.m, p.k, p.n) => DirectPath::Swap,
        DirectPath::Auto if dot && work <= DIRECT_WORK => DirectPath::Dot,
        DirectPath::Auto if p.n == 1 && !dot => DirectPath::Broadcast,
        DirectPath::Auto if p.k * p.n > STAGE_MAX || work > DIRECT_WORK => return false,
        DirectPath::Dot | DirectPath::Swap if !dot => DirectPath::Broadcast,
        _ => path,
    };
    let ops = |b: *const f32, rsb: usize, csb: usize, c: &mut [f32]| direct::Ops {
        a: p.a.as_ptr(),
        rsa: p.rsa,
        csa: p.csa,
        b,
        rsb,
        csb,
        c: c.as_mut_ptr(),
        ldc: p.n,
        bias: std::ptr::null(),
        epi: direct::EPI_NONE,
    };
    if kernel == DirectPath::Panel {
        let raw = RawOperands {
            a: p.a.as_ptr(),
            rsa: p.rsa,
            csa: p.csa,
            b: p.b.as_ptr(),
            rsb: p.rsb,
            csb: p.csb,
            c: c.as_mut_ptr(),
            ldc: p.n,
        };
        let (m, k, n) = (p.m, p.k, p.n);
        let (bias, epi) = match epi.take() {
            Some(e) => (Some(e.bias), if e.relu { direct::EPI_BIAS_RELU } else { direct::EPI_BIAS }),
            None => (None, direct::EPI_NONE),
        };
        // Threads take 16-column panels one at a time from a shared counter (a thread
        // slowed by a neighbour takes fewer); A is shared, read in place.
        let threads = threads.min(n.div_ceil(16));
        let next = AtomicUsize::new(0);
        let run_part = |_: usize| {
            let o = &raw; // the whole (Sync) struct, not its raw-pointer fields
            f32::with_buffers(|_, buf| {
                let panel = aligned_buffer(buf, 16 * k);
                loop {
                    let j0 = 16 * next.fetch_add(1, Ordering::Relaxed);
                    if j0 >= n {
                        break;
                    }
                    let w = 16.min(n - j0);
                    // SAFETY: AVX2+FMA were detected; bounds were checked and m, k, n >= 1.
                    // Columns j0..j0 + w <= n of B are packed into this thread's k×16
                    // `panel` (row stride 16, zero columns past w); the kernel reads A
                    // in place (any strides), the first w columns of `panel`, and writes
                    // columns j0..j0 + w of C, which no other thread touches (each panel
                    // index is handed out once).
                    unsafe {
                        pack_block(Kernel::Avx2Fma, o.b.add(j0 * o.csb), o.rsb, o.csb, k, w, 16, panel);
                        let panel_ops = direct::Ops {
                            a: o.a,
                            rsa: o.rsa,
                            csa: o.csa,
                            b: panel,
                            rsb: 16,
                            csb: 1,
                            c: o.c.add(j0),
                            ldc: o.ldc,
                            bias: bias.map_or(std::ptr::null(), |b| b[j0..].as_ptr()),
                            epi,
                        };
                        direct::direct(m, k, w, panel_ops, accumulate);
                    }
                }
            });
        };
        if threads <= 1 {
            run_part(0);
        } else {
            pool::run(threads, &run_part);
        }
    } else if kernel == DirectPath::Swap {
        let (m, k, n) = (p.m, p.k, p.n);
        f32::with_buffers(|xt, ct| {
            let (xt, ct) = (grown(xt, k * m), grown(ct, n * m));
            // SAFETY: AVX2+FMA were detected; bounds were checked and m, k, n >= 1. The
            // first transpose reads the m×k A (rows at stride rsa, contiguous) and writes
            // the k×m buffer `xt`; the kernel computes the n×m product Cᵀ = Bᵀ·Aᵀ into
            // `ct`, reading Bᵀ (n×k, row stride csb, contiguous rows as rsb == 1) in place
            // and `xt` as a row-major k×m B; the last transpose writes the m×n C.
            unsafe {
                direct::transpose(m, k, p.a.as_ptr(), p.rsa, xt.as_mut_ptr(), m, false);
                let o = direct::Ops {
                    a: p.b.as_ptr(),
                    rsa: p.csb,
                    csa: 1,
                    b: xt.as_ptr(),
                    rsb: m,
                    csb: 1,
                    c: ct.as_mut_ptr(),
                    ldc: m,
                    bias: std::ptr::null(),
                    epi: direct::EPI_NONE,
                };
                direct::direct_swap(n, k, m, o, false);
                direct::transpose(n, m, ct.as_ptr(), m, c.as_mut_ptr(), n, accumulate);
            }
        });
    } else if kernel == DirectPath::Dot {
        // SAFETY: AVX2+FMA were detected; bounds were checked, m, k, n >= 1 and rows
        // of A and columns of B are contiguous.
        unsafe { direct::dot(p.m, p.k, p.n, ops(p.b.as_ptr(), 1, p.csb, c), accumulate) };
    } else if p.csb == 1 || p.n == 1 {
        // SAFETY: as above, with rows of B contiguous (or B a single column).
        unsafe { direct::direct(p.m, p.k, p.n, ops(p.b.as_ptr(), p.rsb, 1, c), accumulate) };
    } else {
        f32::with_buffers(|_, buf| {
            let staged = stage_b(&p, buf);
            // SAFETY: as above; `staged` is B copied row-major (row stride n).
            unsafe { direct::direct(p.m, p.k, p.n, ops(staged, p.n, 1, c), accumulate) };
        });
    }
    true
}

/// Whether `x·Wᵀ` (`csa == 1 && rsb == 1`, `m·k·n` ≤ [`DIRECT_WORK`]) is faster as
/// `Cᵀ = W·xᵀ` through the broadcast kernel ([`DirectPath::Swap`]) than with the dot
/// kernel. Measured: the swap needs whole vectors of C rows (`m % 8 == 0`; `m = 4, 12, 20`
/// lose 20–140%) and `n >= 16` (n = 8, 10 lose 13–70%: the two transposes dominate); it
/// wins 10–60% at `k <= 64` and 6–20% at `k = 128` with `n >= 32`, while from
/// `k = 256` the dot kernel's reduction is amortised and it wins by 5–40%, unless W
/// (`k·n` ≥ 64 Ki elements) overflows L2 (16·256·256: swap 25% faster).
#[cfg(target_arch = "x86_64")]
fn swap_pays(m: usize, k: usize, n: usize) -> bool {
    m.is_multiple_of(8) && n >= 16 && ((k <= 128 && 4 * n >= k) || (k <= 256 && k * n >= 64 * 1024))
}

/// Whether [`DirectPath::Panel`] (B packed one k×16 panel at a time, A read in place) is
/// the fastest path for `p` (`work` = `m·k·n`). Two layouts:
///
/// * `x·Wᵀ` (`csa == 1`, `rsb == 1`, `csb != 1`), `m >= 6`, `n >= 16`, `m·k` ≤
///   [`PANEL_MAX_A`] (every panel reads all of x), and `m > 32` or `m·k·n` >
///   [`DIRECT_WORK`]. Measured against the packed path (which also packs x): 64·784·256
///   89% of peak vs 80%, 64·256·256 92% vs 85%, 256·1024·1024 92% vs 84%, 8·512·512 48%
///   vs 38%, 512·512·512 equal; against the dot kernel 64·256·16 95% vs 85% (but n = 10:
///   50% vs 87%); against the swap path it wins from m = 48 (64·64·64 83% vs 73%,
///   128·32·128 77% vs 63%) and loses at m <= 32 (16·64·64 75% vs 88%, 16·256·256 62% vs
///   85%, 32·128·128 73% vs 78%).
/// * `G·W` (`csa == 1`, `csb == 1`: B rows copied), `m >= 64`, `k >= 64`, `m·k <= 64 Ki`,
///   `n >= 16`: the copied panel avoids the L1 misses of a k×16 block of B read in
///   place (rows 1 KB apart alias). Measured against the broadcast kernel with B in
///   place: 64·256·256 93% vs 84%, 128·256·256 96% vs 83%, 256·128·512 95% vs 74%,
///   64·300·300 92% vs 87%, 64·64·256 and 64·512·64 equal; against the packed path
///   64·784·256 89% vs 85%. It loses at m <= 32 (16·64·64 78% vs 98%, 32·128·128 85% vs
///   89%), at k = 10 (64·10·256 72% vs 75%) and at 256·1024·1024 (83% vs 88%).
///
/// Not `Gᵀ·X` (`rsa == 1`, `csb == 1`): there the 6-row broadcasts read A by columns, and
/// although 256·64·256 and 256·64·784 gained 5% on a quiet machine (95% vs 90%), they
/// lost 5–10% against the packed path whenever the host was busy (A's partly used lines
/// are re-read from L2 for every panel; the packed path keeps a packed block of A in L1).
///
/// With two threads (`m·k·n` ≥ [`PARALLEL_WORK`]) the alternative is the blocked path
/// split in two, where each thread packs all of A; the panel path shares A, read in
/// place, and hands out panels from a counter. It takes both layouts with `n >= 16` and
/// `m·k` ≤ [`PANEL_MAX_A`] (`G·W` only up to m = 512). Measured, best of 10 interleaved
/// runs, % of two cores' peak, panel vs blocked: 256·1024·1024 `x·Wᵀ` 95% vs 86%, `G·W`
/// 92% vs 87%; 64·784·256 `x·Wᵀ` 90% vs 77%; 64·256·256 `x·Wᵀ` 93% vs 83%, `G·W` 91% vs
/// 82%; 512·512·512 94% vs 89% (both layouts); 128·256·512 94% vs 84%; 8·1024·1024 `x·Wᵀ`
/// 39% vs 27%. `G·W` at 1024·256·1024 lost (90% vs 93%); `Gᵀ·X` lost or tied (256·1024·1024
/// 72–94% either way, host-dependent), as on one thread.
#[cfg(target_arch = "x86_64")]
fn panel_pays(p: &Problem<'_, f32>, work: usize, threads: usize) -> bool {
    let mk = p.m.saturating_mul(p.k);
    if p.n < 16 || p.csa != 1 {
        false
    } else if threads > 1 {
        mk <= PANEL_MAX_A && ((p.csb != 1 && p.rsb == 1) || (p.csb == 1 && p.m <= 512))
    } else if p.csb == 1 {
        p.m >= 64 && p.k >= 64 && mk <= 64 * 1024
    } else {
        p.rsb == 1 && p.m >= 6 && mk <= PANEL_MAX_A && (p.m > 32 || work > DIRECT_WORK)
    }
}

/// The first `len` elements of `buf`, growing it (never shrinking) if it is shorter.
#[cfg(target_arch = "x86_64")]
fn grown(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Copies B row-major (element (p, j) at `buf[p*n + j]`) into `buf`, growing it if
/// needed, and returns a pointer to the copy.
#[cfg(target_arch = "x86_64")]
fn stage_b(p: &Problem<'_, f32>, buf: &mut Vec<f32>) -> *const f32 {
    let (k, n) = (p.k, p.n);
    if buf.len() < k * n {
        buf.resize(k * n, 0.0);
    }
    let dst = &mut buf[..k * n];
    if p.rsb == 1 && n.is_multiple_of(2) {
        // SAFETY: AVX2 was detected by the caller; the source lines j < n hold k values
        // each (bounds checked) and `dst` holds k·n values; n is even.
        unsafe { x86::pack_transposed_f32(p.b.as_ptr(), p.csb, k, n, dst.as_mut_ptr()) };
    } else {
        for (q, row) in dst.chunks_exact_mut(n).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = p.b[q * p.rsb + j * p.csb];
            }
        }
    }
    dst.as_ptr()
}

// ---------------------------------------------------------------------------------------
// Blocked algorithm
// ---------------------------------------------------------------------------------------

/// Raw view of one call's operands, shareable across pool threads.
#[derive(Clone, Copy)]
struct RawOperands<T> {
    a: *const T,
    rsa: usize,
    csa: usize,
    b: *const T,
    rsb: usize,
    csb: usize,
    c: *mut T,
    ldc: usize,
}

// SAFETY: the pointers come from slices that outlive the parallel region (the caller
// waits for all workers), A and B are only read, and each thread writes a disjoint
// set of C elements (see `gemm_blocked`).
unsafe impl<T: Send> Send for RawOperands<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for RawOperands<T> {}

impl<T> RawOperands<T> {
    /// The view starting at row `m0` of A and C and column `n0` of B and C.
    ///
    /// # Safety
    /// `(m0, n0)` must lie inside the views (so the offsets stay in bounds).
    unsafe fn offset(&self, m0: usize, n0: usize) -> Self {
        // SAFETY: guaranteed by the caller.
        unsafe {
            Self {
                a: self.a.add(m0 * self.rsa),
                b: self.b.add(n0 * self.csb),
                c: self.c.add(m0 * self.ldc + n0),
                ..*self
            }
        }
    }
}

/// Splits `total` into `parts` ranges made of whole `unit`s; returns range `t`.
fn split_range(total: usize, unit: usize, parts: usize, t: usize) -> (usize, usize) {
    let units = total.div_ceil(unit);
    let per = units.div_ceil(parts) * unit;
    let start = (t * per).min(total);
    (start, ((t + 1) * per).min(total))
}

/// Packed algorithm, optionally split over `threads` pool threads.
fn gemm_blocked<T: Element>(kernel: Kernel, threads: usize, p: &Problem<'_, T>, c: &mut [T], accumulate: bool) {
    let (m, k, n) = (p.m, p.k, p.n);
    let ops = RawOperands {
        a: p.a.as_ptr(),
        rsa: p.rsa,
        csa: p.csa,
        b: p.b.as_ptr(),
        rsb: p.rsb,
        csb: p.csb,
        c: c.as_mut_ptr(),
        ldc: n,
    };
    // Split the dimension whose split duplicates the cheaper packing: splitting n makes
    // every thread pack all of A (m·k), splitting m makes every thread pack all of B.
    let split_n = m <= n;
    let threads = if split_n { threads.min(n.div_ceil(T::NR)) } else { threads.min(m.div_ceil(T::MR)) };
    let run_part = |t: usize| {
        let (m0, m1, n0, n1) = if split_n {
            let (n0, n1) = split_range(n, T::NR, threads, t);
            (0, m, n0, n1)
        } else {
            let (m0, m1) = split_range(m, T::MR, threads, t);
            (m0, m1, 0, n)
        };
        if m0 == m1 || n0 == n1 {
            return;
        }
        // SAFETY: bounds were checked in `check_bounds`, so every element of the
        // sub-problem [m0, m1)×[n0, n1) is in bounds; the offsets stay inside the slices.
        // Parts are disjoint in C, so no two threads write the same element.
        unsafe {
            let part = ops.offset(m0, n0);
            gemm_serial(kernel, m1 - m0, k, n1 - n0, &part, accumulate);
        }
    };
    if threads <= 1 {
        run_part(0);
    } else {
        pool::run(threads, &run_part);
    }
}

/// Length of balanced blocks of at most `max` (a multiple of `align`) covering `total`.
fn block_len(total: usize, max: usize, align: usize) -> usize {
    let blocks = total.div_ceil(max);
    total.div_ceil(blocks).next_multiple_of(align).min(max)
}

/// Returns a pointer into `buf` aligned to [`ALIGN`] with room for `len` elements,
/// growing `buf` if necessary (grow-only, so steady state does not allocate).
fn aligned_buffer<T: Element>(buf: &mut Vec<T>, len: usize) -> *mut T {
    let slack = ALIGN / std::mem::size_of::<T>();
    if buf.len() < len + slack {
        buf.resize(len + slack, T::ZERO);
    }
    let offset = buf.as_ptr().align_offset(ALIGN);
    debug_assert!(offset <= slack);
    // SAFETY: `offset <= slack` and the buffer holds `len + slack` elements.
    unsafe { buf.as_mut_ptr().add(offset) }
}

/// Serial blocked algorithm on one (sub-)problem.
///
/// # Safety
/// Every element addressed by `ops` for the sizes `m, k, n` must be valid (reads for A
/// and B, writes for C) and no other thread may access that part of C concurrently.
unsafe fn gemm_serial<T: Element>(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    ops: &RawOperands<T>,
    accumulate: bool,
) {
    let kc_max = block_len(k, T::KC, 1);
    let mc_max = block_len(m, T::MC, T::MR);
    let nc_max = block_len(n, T::NC, T::NR);
    T::with_buffers(|abuf, bbuf| {
        let apack = aligned_buffer(abuf, mc_max * kc_max);
        let bpack = aligned_buffer(bbuf, nc_max.next_multiple_of(T::NR) * kc_max);
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let beta = accumulate || pc > 0;
                // SAFETY: the source block is inside the caller-guaranteed view and the
                // destination has room for ceil(nc/NR)·NR·kc elements.
                unsafe {
                    let src = ops.b.add(pc * ops.rsb + jc * ops.csb);
                    pack_block(kernel, src, ops.rsb, ops.csb, kc, nc, T::NR, bpack);
                }
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    // SAFETY: as for B; `apack` holds mc_max·kc_max elements.
                    unsafe {
                        let src = ops.a.add(ic * ops.rsa + pc * ops.csa);
                        pack_block(kernel, src, ops.csa, ops.rsa, kc, mc, T::MR, apack);
                        let c = ops.c.add(ic * ops.ldc + jc);
                        macro_block(kernel, mc, nc, kc, apack, bpack, c, ops.ldc, beta);
                    }
                }
            }
        }
    });
}

/// Packs a `kc`-deep, `w`-wide block (element (p, j) at `src[p*sp + j*sj]`) into
/// `width`-wide micro-panels: panel `q`, row `p` starts at `dst[(q*kc + p)*width]`.
/// Columns past `w` in the last panel are zero-filled.
///
/// # Safety
/// `src` must be valid for the whole view; `dst` for `ceil(w/width)·width·kc` writes.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_block<T: Element>(
    kernel: Kernel,
    src: *const T,
    sp: usize,
    sj: usize,
    kc: usize,
    w: usize,
    width: usize,
    dst: *mut T,
) {
    if sj == 1 {
        // SAFETY: same contract.
        return unsafe { pack_block_rows(src, sp, kc, w, width, dst) };
    }
    for (q, j0) in (0..w).step_by(width).enumerate() {
        let cols = width.min(w - j0);
        // SAFETY: panel `q` lies inside both the source view and the destination.
        unsafe {
            let s = src.add(j0 * sj);
            let d = dst.add(q * kc * width);
            if cols == width && sp == 1 && T::pack_transposed(kernel, s, sj, kc, width, d) {
                continue;
            }
            pack_panel(s, sp, sj, kc, cols, width, d);
        }
    }
}

/// [`pack_block`] for row-contiguous sources (`sj == 1`): walks the source row by row
/// (sequential reads, one `width`-long store per panel) instead of panel by panel,
/// which would stride through memory.
///
/// # Safety
/// As for [`pack_block`].
unsafe fn pack_block_rows<T: Element>(src: *const T, sp: usize, kc: usize, w: usize, width: usize, dst: *mut T) {
    let (full, rest) = (w / width, w % width);
    // SAFETY: reads stay in the kc×w source view; panel q < ceil(w/width) occupies
    // dst[q·kc·width ..][.. kc·width], inside the destination.
    unsafe {
        if rest > 0 {
            std::ptr::write_bytes(dst.add(full * kc * width), 0, kc * width);
        }
        // Constant lengths for the usual widths let the copies compile to a few vector
        // moves instead of `memcpy` calls.
        let copy_rows = |len: usize| {
            for p in 0..kc {
                let (s, d) = (src.add(p * sp), dst.add(p * width));
                for q in 0..full {
                    std::ptr::copy_nonoverlapping(s.add(q * width), d.add(q * kc * width), len);
                }
                if rest > 0 {
                    std::ptr::copy_nonoverlapping(s.add(full * width), d.add(full * kc * width), rest);
                }
            }
        };
        match width {
            16 => copy_rows(16),
            8 => copy_rows(8),
            6 => copy_rows(6),
            _ => copy_rows(width),
        }
    }
}

/// Scalar packing of one micro-panel (see [`pack_block`]).
///
/// # Safety
/// As for [`pack_block`] with a single panel.
unsafe fn pack_panel<T: Element>(
    src: *const T,
    sp: usize,
    sj: usize,
    kc: usize,
    cols: usize,
    width: usize,
    dst: *mut T,
) {
    // SAFETY: for the whole body, reads stay in the kc×cols source view, writes in kc×width.
    unsafe {
        if cols < width {
            std::ptr::write_bytes(dst, 0, kc * width);
        }
        if sp == 1 {
            // Walk each source line contiguously.
            for j in 0..cols {
                let s = src.add(j * sj);
                for p in 0..kc {
                    *dst.add(p * width + j) = *s.add(p);
                }
            }
        } else {
            for p in 0..kc {
                for j in 0..cols {
                    *dst.add(p * width + j) = *src.add(p * sp + j * sj);
                }
            }
        }
    }
}

/// Runs the micro-kernel over all MR×NR tiles of an `mc×nc` block of C.
///
/// # Safety
/// `apack`/`bpack` hold packed blocks for these sizes; `c` is valid for an `mc×nc`
/// view with row stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_block<T: Element>(
    kernel: Kernel,
    mc: usize,
    nc: usize,
    kc: usize,
    apack: *const T,
    bpack: *const T,
    c: *mut T,
    ldc: usize,
    beta: bool,
) {
    let (mr, nr) = (T::MR, T::NR);
    for (jq, jr) in (0..nc).step_by(nr).enumerate() {
        let cols = nr.min(nc - jr);
        for (iq, ir) in (0..mc).step_by(mr).enumerate() {
            let rows = mr.min(mc - ir);
            // SAFETY: panel offsets are inside the packed blocks; the tile origin is
            // inside C, and partial tiles go through `tile`, never touching C outside
            // the rows×cols part.
            unsafe {
                let a = apack.add(iq * kc * mr);
                let b = bpack.add(jq * kc * nr);
                let ct = c.add(ir * ldc + jr);
                if rows == mr && cols == nr {
                    T::micro_kernel(kernel, kc, a, b, ct, ldc, beta);
                } else {
                    let mut tile = [T::ZERO; MAX_TILE];
                    T::micro_kernel(kernel, kc, a, b, tile.as_mut_ptr(), nr, false);
                    for i in 0..rows {
                        for j in 0..cols {
                            let cij = ct.add(i * ldc + j);
                            let v = tile[i * nr + j];
                            *cij = if beta { *cij + v } else { v };
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Element types
// ---------------------------------------------------------------------------------------

/// Per-type constants, kernels and buffers.
pub(crate) trait Element:
    Copy + Send + Sync + 'static + Add<Output = Self> + Mul<Output = Self> + AddAssign
{
    const ZERO: Self;
    /// Micro-tile rows.
    const MR: usize;
    /// Micro-tile columns.
    const NR: usize;
    /// Depth block (a kc×NR B panel plus an MR×kc A panel fit in L1).
    const KC: usize;
    /// Row block (an MC×KC packed A block fits in L2), a multiple of MR.
    const MC: usize;
    /// Column block (a KC×NC packed B block fits in L3), a multiple of NR.
    const NC: usize;

    /// Full MR×NR tile: `C = A·B` (or `C += A·B` if `beta`), C with row stride `ldc`.
    ///
    /// # Safety
    /// `a` holds kc·MR and `b` kc·NR packed values; `c` is valid for an MR×NR tile.
    unsafe fn micro_kernel(
        kernel: Kernel,
        kc: usize,
        a: *const Self,
        b: *const Self,
        c: *mut Self,
        ldc: usize,
        beta: bool,
    );

    /// SIMD packing of a full panel whose source lines are contiguous along the depth
    /// (`sp == 1`); returns false if this case has no SIMD routine.
    ///
    /// # Safety
    /// As for [`pack_block`] with one full panel.
    unsafe fn pack_transposed(
        kernel: Kernel,
        src: *const Self,
        sj: usize,
        kc: usize,
        width: usize,
        dst: *mut Self,
    ) -> bool;

    /// Runs `f` with this thread's (A, B) packing buffers.
    fn with_buffers<R>(f: impl FnOnce(&mut Vec<Self>, &mut Vec<Self>) -> R) -> R;

    /// [`crate::kernels::bias_relu_rows`] for this type (an [`Epilogue`] as a pass).
    fn bias_relu_rows(c: &mut [Self], bias: &[Self], relu: bool);

    /// Runs [`tiny_f32`] if this type and CPU have it and `p` is tiny; returns whether it
    /// did (`p` is not yet bounds-checked).
    fn tiny(p: &Problem<'_, Self>, c: &mut [Self], accumulate: bool) -> bool {
        let _ = (p, c, accumulate);
        false
    }

    /// Runs a direct (unpacked) path if this type and CPU have one suited to `p` and
    /// `path`; returns whether it did (taking `epi` if it also applied it). `p` is
    /// bounds-checked with `m, k, n >= 1`.
    fn direct(
        path: DirectPath,
        p: &Problem<'_, Self>,
        c: &mut [Self],
        accumulate: bool,
        epi: &mut Option<Epilogue<'_, Self>>,
    ) -> bool {
        let _ = (path, p, c, accumulate, epi);
        false
    }
}

thread_local! {
    static BUFFERS_F32: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    static BUFFERS_F64: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const MR: usize = 6;
    const NR: usize = 16;
    const KC: usize = 256;
    const MC: usize = 144;
    const NC: usize = 4096;

    unsafe fn micro_kernel(
        kernel: Kernel,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        beta: bool,
    ) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` is only used after runtime detection; pointer
            // requirements are forwarded from the caller.
            Kernel::Avx2Fma => unsafe { x86::kernel_f32(kc, a, b, c, ldc, beta) },
            // SAFETY: forwarded from the caller.
            _ => unsafe { portable_kernel::<f32, 6, 16>(kc, a, b, c, ldc, beta) },
        }
    }

    #[allow(unused_variables)]
    unsafe fn pack_transposed(
        kernel: Kernel,
        src: *const f32,
        sj: usize,
        kc: usize,
        width: usize,
        dst: *mut f32,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx2Fma && width.is_multiple_of(2) {
            // SAFETY: AVX2 was detected; pointer requirements come from the caller.
            unsafe { x86::pack_transposed_f32(src, sj, kc, width, dst) };
            return true;
        }
        false
    }

    fn with_buffers<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
        BUFFERS_F32.with(|cell| {
            let (a, b) = &mut *cell.borrow_mut();
            f(a, b)
        })
    }

    fn bias_relu_rows(c: &mut [f32], bias: &[f32], relu: bool) {
        crate::kernels::bias_relu_rows(c, bias, relu);
    }

    #[inline]
    fn tiny(p: &Problem<'_, f32>, c: &mut [f32], accumulate: bool) -> bool {
        #[cfg(target_arch = "x86_64")]
        if p.m.saturating_mul(p.k).saturating_mul(p.n) <= TINY_WORK && detected_kernel() == Kernel::Avx2Fma {
            return tiny_f32(p, c, accumulate);
        }
        let _ = (p, c, accumulate);
        false
    }

    fn direct(
        path: DirectPath,
        p: &Problem<'_, f32>,
        c: &mut [f32],
        accumulate: bool,
        epi: &mut Option<Epilogue<'_, f32>>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if detected_kernel() == Kernel::Avx2Fma {
            return direct_f32(path, p, c, accumulate, epi);
        }
        let _ = (path, p, c, accumulate, epi);
        false
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const MR: usize = 6;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 72;
    const NC: usize = 4096;

    unsafe fn micro_kernel(
        kernel: Kernel,
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        beta: bool,
    ) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` is only used after runtime detection; pointer
            // requirements are forwarded from the caller.
            Kernel::Avx2Fma => unsafe { x86::kernel_f64(kc, a, b, c, ldc, beta) },
            // SAFETY: forwarded from the caller.
            _ => unsafe { portable_kernel::<f64, 6, 8>(kc, a, b, c, ldc, beta) },
        }
    }

    #[allow(unused_variables)]
    unsafe fn pack_transposed(
        kernel: Kernel,
        src: *const f64,
        sj: usize,
        kc: usize,
        width: usize,
        dst: *mut f64,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx2Fma && width.is_multiple_of(2) {
            // SAFETY: AVX2 was detected; pointer requirements come from the caller.
            unsafe { x86::pack_transposed_f64(src, sj, kc, width, dst) };
            return true;
        }
        false
    }

    fn with_buffers<R>(f: impl FnOnce(&mut Vec<f64>, &mut Vec<f64>) -> R) -> R {
        BUFFERS_F64.with(|cell| {
            let (a, b) = &mut *cell.borrow_mut();
            f(a, b)
        })
    }

    fn bias_relu_rows(c: &mut [f64], bias: &[f64], relu: bool) {
        crate::kernels::bias_relu_rows(c, bias, relu);
    }
}

/// Portable MR×NR micro-kernel (accumulators in a local array the compiler can keep in
/// vector registers).
///
/// # Safety
/// As for [`Element::micro_kernel`].
unsafe fn portable_kernel<T: Element, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: usize,
    beta: bool,
) {
    let mut acc = [[T::ZERO; NR]; MR];
    // SAFETY: the caller guarantees kc·MR values at `a` and kc·NR values at `b`.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: (i, j) is inside the MR×NR tile the caller guarantees.
            unsafe {
                let cij = c.add(i * ldc + j);
                *cij = if beta { *cij + v } else { v };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA kernels
// ---------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// 6×16 `f32` micro-kernel: 12 ymm accumulators, 2 B loads + 6 broadcasts per step.
    ///
    /// # Safety
    /// CPU supports AVX2+FMA; pointers as for `Element::micro_kernel` (MR=6, NR=16).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_f32(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, beta: bool) {
        // SAFETY: for the whole body, reads stay within kc·6 values of `a` and kc·16 of `b`,
        // writes within the 6×16 tile of `c`; the features are enabled by the caller.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; 6];
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let b0 = _mm256_loadu_ps(b);
                let b1 = _mm256_loadu_ps(b.add(8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
                a = a.add(6);
                b = b.add(16);
            }
            for (i, row) in acc.iter().enumerate() {
                let ci = c.add(i * ldc);
                let (mut r0, mut r1) = (row[0], row[1]);
                if beta {
                    r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ci));
                    r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ci.add(8)));
                }
                _mm256_storeu_ps(ci, r0);
                _mm256_storeu_ps(ci.add(8), r1);
            }
        }
    }

    /// 6×8 `f64` micro-kernel: 12 ymm accumulators.
    ///
    /// # Safety
    /// CPU supports AVX2+FMA; pointers as for `Element::micro_kernel` (MR=6, NR=8).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel_f64(kc: usize, a: *const f64, b: *const f64, c: *mut f64, ldc: usize, beta: bool) {
        // SAFETY: for the whole body, reads stay within kc·6 values of `a` and kc·8 of `b`,
        // writes within the 6×8 tile of `c`; the features are enabled by the caller.
        unsafe {
            let mut acc = [[_mm256_setzero_pd(); 2]; 6];
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let b0 = _mm256_loadu_pd(b);
                let b1 = _mm256_loadu_pd(b.add(4));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_sd(&*a.add(i));
                    row[0] = _mm256_fmadd_pd(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_pd(ai, b1, row[1]);
                }
                a = a.add(6);
                b = b.add(8);
            }
            for (i, row) in acc.iter().enumerate() {
                let ci = c.add(i * ldc);
                let (mut r0, mut r1) = (row[0], row[1]);
                if beta {
                    r0 = _mm256_add_pd(r0, _mm256_loadu_pd(ci));
                    r1 = _mm256_add_pd(r1, _mm256_loadu_pd(ci.add(4)));
                }
                _mm256_storeu_pd(ci, r0);
                _mm256_storeu_pd(ci.add(4), r1);
            }
        }
    }

    /// Packs a full `width`-wide panel whose source lines (`src + j*sj`) are contiguous
    /// along the depth, transposing 8×8 blocks in registers (a last group of fewer than
    /// 8 lines is padded with zero lines that are never stored).
    ///
    /// # Safety
    /// CPU supports AVX2; `width` is even; `src` valid for lines `0..width` of `kc`
    /// values each, `dst` for `kc·width` writes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pack_transposed_f32(src: *const f32, sj: usize, kc: usize, width: usize, dst: *mut f32) {
        // SAFETY: for the whole body, all loads are at p < kc on lines j < width and all
        // stores at rows p < kc, columns j < width.
        unsafe {
            let kc8 = kc - kc % 8;
            for j0 in (0..width).step_by(8) {
                let lines = 8.min(width - j0);
                let s = src.add(j0 * sj);
                for p in (0..kc8).step_by(8) {
                    let r: [__m256; 8] = core::array::from_fn(|j| {
                        if j < lines {
                            _mm256_loadu_ps(s.add(j * sj + p))
                        } else {
                            _mm256_setzero_ps()
                        }
                    });
                    let out = super::direct::transpose8(r);
                    for (q, &v) in out.iter().enumerate() {
                        store_f32(dst.add((p + q) * width + j0), v, lines);
                    }
                }
                for p in kc8..kc {
                    for j in 0..lines {
                        *dst.add(p * width + j0 + j) = *s.add(j * sj + p);
                    }
                }
            }
        }
    }

    /// Stores the first `lines` (2, 4, 6 or 8) lanes of `v` at `dst`.
    ///
    /// # Safety
    /// CPU supports AVX; `dst` valid for `lines` writes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_f32(dst: *mut f32, v: __m256, lines: usize) {
        // SAFETY: each arm writes exactly `lines` floats starting at `dst`.
        unsafe {
            let lo = _mm256_castps256_ps128(v);
            let hi = _mm256_extractf128_ps::<1>(v);
            match lines {
                8 => _mm256_storeu_ps(dst, v),
                6 => {
                    _mm_storeu_ps(dst, lo);
                    _mm_storel_epi64(dst.add(4).cast(), _mm_castps_si128(hi));
                }
                4 => _mm_storeu_ps(dst, lo),
                _ => _mm_storel_epi64(dst.cast(), _mm_castps_si128(lo)),
            }
        }
    }

    /// `f64` version of [`pack_transposed_f32`] with 4×4 register transposes.
    ///
    /// # Safety
    /// As for [`pack_transposed_f32`] (`width` even).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pack_transposed_f64(src: *const f64, sj: usize, kc: usize, width: usize, dst: *mut f64) {
        // SAFETY: for the whole body, all loads are at p < kc on lines j < width and all
        // stores at rows p < kc, columns j < width.
        unsafe {
            let kc4 = kc - kc % 4;
            for j0 in (0..width).step_by(4) {
                let lines = 4.min(width - j0);
                let s = src.add(j0 * sj);
                for p in (0..kc4).step_by(4) {
                    let r: [__m256d; 4] = core::array::from_fn(|j| {
                        if j < lines {
                            _mm256_loadu_pd(s.add(j * sj + p))
                        } else {
                            _mm256_setzero_pd()
                        }
                    });
                    let t0 = _mm256_unpacklo_pd(r[0], r[1]);
                    let t1 = _mm256_unpackhi_pd(r[0], r[1]);
                    let t2 = _mm256_unpacklo_pd(r[2], r[3]);
                    let t3 = _mm256_unpackhi_pd(r[2], r[3]);
                    let out = [
                        _mm256_permute2f128_pd::<0x20>(t0, t2),
                        _mm256_permute2f128_pd::<0x20>(t1, t3),
                        _mm256_permute2f128_pd::<0x31>(t0, t2),
                        _mm256_permute2f128_pd::<0x31>(t1, t3),
                    ];
                    for (q, &v) in out.iter().enumerate() {
                        let d = dst.add((p + q) * width + j0);
                        if lines == 4 {
                            _mm256_storeu_pd(d, v);
                        } else {
                            _mm_storeu_pd(d, _mm256_castpd256_pd128(v));
                        }
                    }
                }
                for p in kc4..kc {
                    for j in 0..lines {
                        *dst.add(p * width + j0 + j) = *s.add(j * sj + p);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Direct (unpacked) AVX2 + FMA kernels for small and medium `f32` problems
// ---------------------------------------------------------------------------------------

/// Register-blocked `f32` kernels that read the operands in place (no packing).
///
/// * [`direct`](direct::direct): rows of B contiguous (`csb == 1`). Broadcasts `A(i,p)`
///   (any strides) and multiplies whole 8-wide vectors of a B row; tiles of up to 6×16
///   (2×32 when `m == 2`, 1×64 when `m == 1`), the last vector of a row masked.
/// * [`dot`](direct::dot): rows of A and columns of B contiguous (`csa == 1`, `rsb == 1`,
///   i.e. `x·Wᵀ`). Each `C(i,j)` is a dot product vectorised along `k` in tiles of 2×4
///   (4×2, 4×1 at the right edge, 8×1 when `n == 1`); the 8 partial sums per output
///   are reduced once at the end with a `hadd` tree.
#[cfg(target_arch = "x86_64")]
mod direct {
    use core::arch::x86_64::*;

    /// `MASKS[8 - r..][..8]` is a lane mask with the first `r` lanes set.
    static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// Mask with the first `r` (1..=8) lanes set.
    ///
    /// # Safety
    /// CPU supports AVX; `1 <= r <= 8`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn mask(r: usize) -> __m256i {
        debug_assert!((1..=8).contains(&r));
        // SAFETY: 8 - r <= 7, so the 8 loaded lanes lie inside `MASKS`.
        unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(8 - r).cast()) }
    }

    /// Operands of one call: element (i,p) of A at `a + i*rsa + p*csa`, (p,j) of B at
    /// `b + p*rsb + j*csb`, (i,j) of C at `c + i*ldc + j`. With `epi` set (1: bias, 2:
    /// bias then ReLU; only without accumulate), [`direct`]'s tiles add `bias[j]` (at
    /// `bias + j`) to each result before storing it, then clamp it at zero.
    #[derive(Clone, Copy)]
    pub(super) struct Ops {
        pub a: *const f32,
        pub rsa: usize,
        pub csa: usize,
        pub b: *const f32,
        pub rsb: usize,
        pub csb: usize,
        pub c: *mut f32,
        pub ldc: usize,
        pub bias: *const f32,
        pub epi: u8,
    }

    /// [`Ops::epi`]: no epilogue.
    pub(super) const EPI_NONE: u8 = 0;
    /// [`Ops::epi`]: add the bias.
    pub(super) const EPI_BIAS: u8 = 1;
    /// [`Ops::epi`]: add the bias, then clamp at zero.
    pub(super) const EPI_BIAS_RELU: u8 = 2;

    impl Ops {
        /// The operands shifted to row `i` of A/C and column `j` of B/C.
        ///
        /// # Safety
        /// `(i, j)` must lie inside the views.
        #[inline(always)]
        unsafe fn at(self, i: usize, j: usize) -> Self {
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

    /// `C (+)= A·B` with `csb == 1` (see the module doc).
    ///
    /// # Safety
    /// CPU supports AVX2+FMA; `o` is valid for an `m×k` A, `k×n` B (with `csb == 1`) and
    /// an `m×n` C; `m, k, n >= 1`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn direct(m: usize, k: usize, n: usize, o: Ops, accumulate: bool) {
        debug_assert!(o.csb == 1 || n == 1);
        // SAFETY: forwarded from the caller.
        unsafe {
            match m {
                1 => direct_cols::<1, 8>(m, k, n, o, accumulate),
                2 => direct_cols::<2, 4>(m, k, n, o, accumulate),
                _ => direct_cols::<6, 2>(m, k, n, o, accumulate),
            }
        }
    }

    /// Walks C in column blocks of `NV` vectors (B block stays in L1 while all row tiles
    /// use it), then the tail columns with one or two vectors, the last one masked.
    ///
    /// # Safety
    /// As for [`direct`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn direct_cols<const MR: usize, const NV: usize>(m: usize, k: usize, n: usize, o: Ops, acc: bool) {
        // SAFETY: every column block starts at j < n and covers at most n - j columns
        // (the rest masked off); the row walk stays inside m rows.
        unsafe {
            let full = (mask(8), 8);
            let mut j = 0;
            while j + NV * 8 <= n {
                direct_rows::<MR, NV, false>(m, k, o.at(0, j), full, acc);
                j += NV * 8;
            }
            while j + 16 <= n {
                direct_rows::<MR, 2, false>(m, k, o.at(0, j), full, acc);
                j += 16;
            }
            match n - j {
                0 => {}
                8 => direct_rows::<MR, 1, false>(m, k, o.at(0, j), full, acc),
                rest @ 1..=7 => direct_rows::<MR, 1, true>(m, k, o.at(0, j), (mask(rest), rest), acc),
                rest => direct_rows::<MR, 2, true>(m, k, o.at(0, j), (mask(rest - 8), rest - 8), acc),
            }
        }
    }

    /// [`direct`] for the transposed product of [`DirectPath::Swap`](super::DirectPath::Swap)
    /// (few columns, many rows): 6×16 tiles, then 12×8 tiles for a last single vector, so
    /// that 12 accumulators hide the FMA latency in both.
    ///
    /// # Safety
    /// As for [`direct`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn direct_swap(m: usize, k: usize, n: usize, o: Ops, acc: bool) {
        debug_assert!(o.csb == 1);
        // SAFETY: as in `direct_cols`: every column block starts at j < n and covers at
        // most n - j columns (the rest masked off).
        unsafe {
            let full = (mask(8), 8);
            let mut j = 0;
            while j + 16 <= n {
                direct_rows::<6, 2, false>(m, k, o.at(0, j), full, acc);
                j += 16;
            }
            match n - j {
                0 => {}
                8 => direct_rows::<12, 1, false>(m, k, o.at(0, j), full, acc),
                rest @ 1..=7 => direct_rows::<12, 1, true>(m, k, o.at(0, j), (mask(rest), rest), acc),
                rest => direct_rows::<6, 2, true>(m, k, o.at(0, j), (mask(rest - 8), rest - 8), acc),
            }
        }
    }

    /// All row tiles of one column block: `MR`-row tiles, then one smaller tile.
    ///
    /// # Safety
    /// As for [`direct`], for a column block of `NV` vectors (the last one `MASKED` by
    /// `mk`: a lane mask and its lane count).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn direct_rows<const MR: usize, const NV: usize, const MASKED: bool>(
        m: usize,
        k: usize,
        o: Ops,
        mk: (__m256i, usize),
        acc: bool,
    ) {
        // SAFETY: tiles cover rows i..i + rows with i + rows <= m.
        unsafe {
            let mut i = 0;
            while i + MR <= m {
                direct_tile::<MR, NV, MASKED>(k, o.at(i, 0), mk, acc);
                i += MR;
            }
            while MR > 6 && i + 6 <= m {
                direct_tile::<6, NV, MASKED>(k, o.at(i, 0), mk, acc);
                i += 6;
            }
            let o = o.at(i.min(m - 1), 0);
            match m - i {
                0 => {}
                1 => direct_tile::<1, NV, MASKED>(k, o, mk, acc),
                2 => direct_tile::<2, NV, MASKED>(k, o, mk, acc),
                3 => direct_tile::<3, NV, MASKED>(k, o, mk, acc),
                4 => direct_tile::<4, NV, MASKED>(k, o, mk, acc),
                _ => direct_tile::<5, NV, MASKED>(k, o, mk, acc),
            }
        }
    }

    /// One `MR × 8·NV` tile of C accumulated in registers over the whole depth.
    ///
    /// # Safety
    /// As for [`direct`] for an `MR`-row, `NV`-vector tile whose last vector has the
    /// first `lanes` lanes (set in `mk`) valid if `MASKED` (all lanes otherwise).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn direct_tile<const MR: usize, const NV: usize, const MASKED: bool>(
        k: usize,
        o: Ops,
        (mk, lanes): (__m256i, usize),
        accumulate: bool,
    ) {
        // SAFETY: every load reads A(r, p) or B(p, j) with r < MR, p < k and j inside the
        // tile's valid columns (masked lanes are not accessed); stores likewise. The
        // running pointers use `wrapping_add`, as they step one row past the end.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NV]; MR];
            // Row pointers of A, indexed by a running offset `p·csa` (one add per step).
            let rows: [*const f32; MR] = core::array::from_fn(|r| o.a.add(r * o.rsa));
            let mut bp = o.b;
            let mut off = 0;
            for _ in 0..k {
                let bv: [__m256; NV] = core::array::from_fn(|v| {
                    if MASKED && v == NV - 1 {
                        _mm256_maskload_ps(bp.add(8 * v), mk)
                    } else {
                        _mm256_loadu_ps(bp.add(8 * v))
                    }
                });
                for (row, &ap) in acc.iter_mut().zip(&rows) {
                    let ar = _mm256_broadcast_ss(&*ap.wrapping_add(off));
                    for (x, &bx) in row.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(ar, bx, *x);
                    }
                }
                off += o.csa;
                bp = bp.wrapping_add(o.rsb);
            }
            // The epilogue's bias vectors (their valid lanes only), loaded once per tile.
            let bias: [__m256; NV] = core::array::from_fn(|v| {
                if o.epi == EPI_NONE {
                    _mm256_setzero_ps()
                } else if MASKED && v == NV - 1 {
                    _mm256_maskload_ps(o.bias.add(8 * v), mk)
                } else {
                    _mm256_loadu_ps(o.bias.add(8 * v))
                }
            });
            for (r, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    let cp = o.c.add(r * o.ldc + 8 * v);
                    let x = if o.epi == EPI_NONE {
                        x
                    } else {
                        // acc + b, then a select (s < 0 -> 0) that passes NaN and -0.0 as
                        // they are: the same floats as `kernels::bias_relu_row`
                        let s = _mm256_add_ps(x, bias[v]);
                        if o.epi == EPI_BIAS_RELU {
                            _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(s, _mm256_setzero_ps()), s)
                        } else {
                            s
                        }
                    };
                    if MASKED && v == NV - 1 {
                        // Partial vector: through a stack copy (masked stores are slow on
                        // AMD and defeat store forwarding for the next reader of C).
                        let mut tmp = [0.0f32; 8];
                        _mm256_storeu_ps(tmp.as_mut_ptr(), x);
                        for (l, &t) in tmp[..lanes].iter().enumerate() {
                            let cl = cp.add(l);
                            *cl = if accumulate { *cl + t } else { t };
                        }
                    } else {
                        let x = if accumulate { _mm256_add_ps(_mm256_loadu_ps(cp), x) } else { x };
                        _mm256_storeu_ps(cp, x);
                    }
                }
            }
        }
    }

    /// Writes the transpose of the `rows×cols` matrix at `src` (row stride `lds`,
    /// contiguous rows) to `dst` (row stride `ldd`): `dst[j*ldd + i] = src[i*lds + j]`,
    /// or `+=` if `accumulate`. Full 8×8 blocks are transposed in registers, the edges
    /// with scalar code.
    ///
    /// # Safety
    /// CPU supports AVX2+FMA; `src` is valid for reads of the `rows×cols` view, `dst` for
    /// reads and writes of the `cols×rows` view, and the two do not overlap.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn transpose(
        rows: usize,
        cols: usize,
        src: *const f32,
        lds: usize,
        dst: *mut f32,
        ldd: usize,
        accumulate: bool,
    ) {
        let (rows8, cols8) = (rows - rows % 8, cols - cols % 8);
        // SAFETY: every block reads src rows i0..i0 + 8 <= rows at columns j0..j0 + 8 <=
        // cols and writes dst rows j0..j0 + 8 at columns i0..i0 + 8; the scalar edges
        // stay inside the views likewise.
        unsafe {
            for i0 in (0..rows8).step_by(8) {
                for j0 in (0..cols8).step_by(8) {
                    let r: [__m256; 8] = core::array::from_fn(|q| _mm256_loadu_ps(src.add((i0 + q) * lds + j0)));
                    let t = transpose8(r);
                    for (j, &v) in t.iter().enumerate() {
                        let d = dst.add((j0 + j) * ldd + i0);
                        let v = if accumulate { _mm256_add_ps(_mm256_loadu_ps(d), v) } else { v };
                        _mm256_storeu_ps(d, v);
                    }
                }
            }
            let edge = |i: usize, j: usize| {
                let d = dst.add(j * ldd + i);
                let v = *src.add(i * lds + j);
                *d = if accumulate { *d + v } else { v };
            };
            for j in cols8..cols {
                for i in 0..rows8 {
                    edge(i, j);
                }
            }
            for i in rows8..rows {
                for j in 0..cols {
                    edge(i, j);
                }
            }
        }
    }

    /// Transposes the 8×8 matrix whose rows are `r` (returns its columns).
    ///
    /// # Safety
    /// CPU supports AVX.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    /// `C (+)= A·B` with `csa == 1` and `rsb == 1` (see the module doc).
    ///
    /// # Safety
    /// CPU supports AVX2+FMA; `o` is valid for an `m×k` A with `csa == 1`, a `k×n` B with
    /// `rsb == 1` and an `m×n` C; `m, k, n >= 1`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(m: usize, k: usize, n: usize, o: Ops, accumulate: bool) {
        debug_assert!(k == 1 || o.csa == 1 && o.rsb == 1);
        // SAFETY: tiles cover rows i..i + R <= m and columns j..j + S <= n.
        unsafe {
            let mk = mask(if k.is_multiple_of(8) { 8 } else { k % 8 });
            if n == 1 {
                dot_rows::<8, 1>(m, k, o, mk, accumulate);
                return;
            }
            let mut j = 0;
            while j + 4 <= n {
                dot_rows::<2, 4>(m, k, o.at(0, j), mk, accumulate);
                j += 4;
            }
            if j + 2 <= n {
                dot_rows::<4, 2>(m, k, o.at(0, j), mk, accumulate);
                j += 2;
            }
            if j < n {
                dot_rows::<4, 1>(m, k, o.at(0, j), mk, accumulate);
            }
        }
    }

    /// All row tiles of one `S`-column block: `R`-row tiles, then smaller ones.
    ///
    /// # Safety
    /// As for [`dot`] for columns `0..S`; `mk` holds the `k % 8` tail lanes (or all 8).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot_rows<const R: usize, const S: usize>(m: usize, k: usize, o: Ops, mk: __m256i, acc: bool) {
        // SAFETY: tiles cover rows i..i + rows with i + rows <= m.
        unsafe {
            let mut i = 0;
            while i + R <= m {
                dot_tile::<R, S>(k, o.at(i, 0), mk, acc);
                i += R;
            }
            while i < m {
                let o = o.at(i, 0);
                match m - i {
                    1 => dot_tile::<1, S>(k, o, mk, acc),
                    2 | 3 => dot_tile::<2, S>(k, o, mk, acc),
                    _ => dot_tile::<4, S>(k, o, mk, acc),
                }
                i += match m - i {
                    1 => 1,
                    2 | 3 => 2,
                    _ => 4,
                };
            }
        }
    }

    /// One `R×S` tile of C as dot products along `k` (8 lanes per step, the last step
    /// masked by `mk`), reduced horizontally at the end.
    ///
    /// # Safety
    /// As for [`dot`] for an `R×S` tile at the origin of `o`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot_tile<const R: usize, const S: usize>(k: usize, o: Ops, mk: __m256i, accumulate: bool) {
        // SAFETY: loads read A(r, p) / B(p, s) with r < R, s < S and p < k (tail lanes
        // past k are masked off); stores write C(r, s) inside the tile.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); S]; R];
            macro_rules! step {
                ($p:expr, $load:expr) => {{
                    let bv: [__m256; S] = core::array::from_fn(|s| $load(o.b.add(s * o.csb + $p)));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av = $load(o.a.add(r * o.rsa + $p));
                        for (x, &bx) in row.iter_mut().zip(&bv) {
                            *x = _mm256_fmadd_ps(av, bx, *x);
                        }
                    }
                }};
            }
            let k8 = k - k % 8;
            let mut p = 0;
            while p < k8 {
                step!(p, |q| _mm256_loadu_ps(q));
                p += 8;
            }
            if p < k {
                step!(p, |q| _mm256_maskload_ps(q, mk));
            }
            for (r, row) in acc.iter().enumerate() {
                let cp = o.c.add(r * o.ldc);
                let sums = reduce::<S>(row);
                if S == 4 {
                    let x = if accumulate { _mm_add_ps(_mm_loadu_ps(cp), sums) } else { sums };
                    _mm_storeu_ps(cp, x);
                } else {
                    let mut out = [0.0f32; 4];
                    _mm_storeu_ps(out.as_mut_ptr(), sums);
                    for (s, &v) in out[..S].iter().enumerate() {
                        let cs = cp.add(s);
                        *cs = if accumulate { *cs + v } else { v };
                    }
                }
            }
        }
    }

    /// Horizontal sums of `S` (1, 2 or 4) vectors, in the first `S` lanes.
    ///
    /// # Safety
    /// CPU supports AVX.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn reduce<const S: usize>(v: &[__m256; S]) -> __m128 {
        let x = match S {
            1 => v[0],
            2 => _mm256_hadd_ps(v[0], v[1]),
            // [a01 a23 b01 b23 | a45 a67 b45 b67] and the same for c, d, then
            // [a0123 b0123 c0123 d0123 | a4567 b4567 c4567 d4567].
            _ => _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3])),
        };
        let x = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
        match S {
            // x = [a0+a4, a1+a5, a2+a6, a3+a7]
            1 => {
                let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
                _mm_add_ss(x, _mm_movehdup_ps(x))
            }
            // x = [a01+a45, a23+a67, b01+b45, b23+b67]
            2 => _mm_hadd_ps(x, x),
            _ => x,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Thread pool
// ---------------------------------------------------------------------------------------

/// Persistent pool of worker threads, started lazily and grown (never per call) when
/// more threads are requested.
///
/// A job is a borrowed `&dyn Fn(usize)` called with indices `0..n`: the caller runs
/// index 0 and workers `1..n` run the rest; `run` returns only after every part has
/// finished, which is what makes lending the (lifetime-erased) closure sound.
///
/// Hand-off allocates nothing: the job is published under a `Mutex` and announced by
/// bumping an atomic epoch. Workers spin briefly on the epoch after each job (gemm
/// calls tend to come in bursts) and then park on a `Condvar`; the caller likewise
/// spins briefly on the completion counter before parking.
mod pool {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
    use std::time::{Duration, Instant};

    /// How long an idle worker (or a waiting caller) spins before parking.
    const SPIN: Duration = Duration::from_micros(100);

    type Job<'a> = dyn Fn(usize) + Sync + 'a;

    /// Lifetime-erased pointer to the current job.
    #[derive(Clone, Copy)]
    struct JobPtr(*const Job<'static>);

    // SAFETY: the pointee is `Sync` and outlives every use (see `run`).
    unsafe impl Send for JobPtr {}

    struct State {
        job: Option<JobPtr>,
        /// Participants of the current job, caller included.
        active: usize,
        spawned: usize,
        /// Workers currently parked on `work`.
        sleepers: usize,
    }

    struct Pool {
        state: Mutex<State>,
        /// Bumped (under `state`) each time a job is published.
        epoch: AtomicU64,
        /// Workers of the current job that have not finished yet.
        remaining: AtomicUsize,
        panicked: AtomicBool,
        work: Condvar,
        done: Condvar,
        /// Held for a whole job, so concurrent callers do not interleave.
        submit: Mutex<()>,
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool {
            state: Mutex::new(State { job: None, active: 0, spawned: 0, sleepers: 0 }),
            epoch: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            work: Condvar::new(),
            done: Condvar::new(),
            submit: Mutex::new(()),
        })
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spins until `ready()` or until [`SPIN`] has elapsed; returns whether it is ready.
    fn spin_until(ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN {
                return ready();
            }
        }
    }

    /// Runs `f(0..n)` on `n` threads (the caller plus `n - 1` workers) and waits. If the
    /// pool is busy with another caller's job, runs all parts on the calling thread.
    pub(super) fn run(n: usize, f: &Job<'_>) {
        let pool = pool();
        let Ok(_submit) = pool.submit.try_lock() else {
            (0..n).for_each(f);
            return;
        };
        {
            let mut st = lock(&pool.state);
            while st.spawned < n - 1 {
                st.spawned += 1;
                let index = st.spawned;
                std::thread::Builder::new()
                    .name(format!("gemm-worker-{index}"))
                    .spawn(move || worker(index))
                    .expect("gemm: failed to spawn worker thread");
            }
            // SAFETY: only the lifetime is erased; `run` waits below until no worker
            // uses the pointer any more (`remaining == 0`) and then clears it.
            let ptr: *const Job<'static> = unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(f) };
            st.job = Some(JobPtr(ptr));
            st.active = n;
            pool.remaining.store(n - 1, Ordering::SeqCst);
            pool.epoch.fetch_add(1, Ordering::SeqCst);
            if st.sleepers > 0 {
                pool.work.notify_all();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let finished = || pool.remaining.load(Ordering::Acquire) == 0;
        if !spin_until(finished) {
            let mut st = lock(&pool.state);
            while !finished() {
                st = pool.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
        lock(&pool.state).job = None;
        let worker_panicked = pool.panicked.swap(false, Ordering::AcqRel);
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        assert!(!worker_panicked, "gemm: a worker thread panicked");
    }

    fn worker(index: usize) {
        let pool = pool();
        let mut seen = 0;
        loop {
            let published = || pool.epoch.load(Ordering::Acquire) != seen;
            let job = {
                let spun = spin_until(published);
                let mut st = lock(&pool.state);
                if !spun {
                    st.sleepers += 1;
                    while !published() {
                        st = pool.work.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    st.sleepers -= 1;
                }
                seen = pool.epoch.load(Ordering::Acquire);
                match st.job {
                    Some(job) if index < st.active => job,
                    _ => continue,
                }
            };
            // SAFETY: the caller of `run` keeps the closure alive until `remaining`
            // drops to zero, which happens only after this call returns.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(index) }));
            if result.is_err() {
                pool.panicked.store(true, Ordering::Release);
            }
            if pool.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Taking the lock orders this notification after a caller that saw
                // `remaining != 0` under the lock has started waiting.
                let _st = lock(&pool.state);
                pool.done.notify_one();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Test-side conversions.
    trait Real: Element + std::fmt::Debug {
        const EPS: f64;
        fn from_f64(x: f64) -> Self;
        fn to_f64(self) -> f64;
    }
    impl Real for f32 {
        const EPS: f64 = f32::EPSILON as f64;
        fn from_f64(x: f64) -> Self {
            x as f32
        }
        fn to_f64(self) -> f64 {
            self as f64
        }
    }
    impl Real for f64 {
        const EPS: f64 = f64::EPSILON;
        fn from_f64(x: f64) -> Self {
            x
        }
        fn to_f64(self) -> f64 {
            self
        }
    }

    /// Small xorshift generator (no external crates).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    /// Layout of one case: transposed storage flags and padding of the leading stride.
    #[derive(Clone, Copy, Debug)]
    struct Layout {
        a_trans: bool,
        b_trans: bool,
        pad: usize,
        accumulate: bool,
    }

    /// Every dispatch path (AVX2 ones fall back to portable on CPUs without AVX2, direct
    /// ones to `Small` for `f64` or without AVX2).
    const STRATEGIES: [Strategy; 11] = [
        Strategy::Auto,
        Strategy::Small,
        Strategy::Direct(DirectPath::Auto),
        Strategy::Direct(DirectPath::Broadcast),
        Strategy::Direct(DirectPath::Dot),
        Strategy::Direct(DirectPath::Swap),
        Strategy::Direct(DirectPath::Panel),
        Strategy::Blocked(Kernel::Portable, 1),
        Strategy::Blocked(Kernel::Avx2Fma, 1),
        Strategy::Blocked(Kernel::Avx2Fma, 2),
        Strategy::Blocked(Kernel::Portable, 3),
    ];

    /// Runs one case with `strategy` and compares with an f64 triple loop.
    /// Random A and B stored as `l` says, C's start value (NaN unless accumulating), and
    /// the strides `[rsa, csa, rsb, csb]`.
    #[allow(clippy::type_complexity)]
    fn operands<T: Real>(
        m: usize,
        k: usize,
        n: usize,
        l: Layout,
        rng: &mut Rng,
    ) -> (Vec<T>, Vec<T>, Vec<T>, [usize; 4]) {
        // A is m×k, stored row-major (rsa = k + pad) or as its transpose (csa = m + pad).
        let (rsa, csa, a_len) =
            if l.a_trans { (1, m + l.pad, k * (m + l.pad)) } else { (k + l.pad, 1, m * (k + l.pad)) };
        let (rsb, csb, b_len) =
            if l.b_trans { (1, k + l.pad, n * (k + l.pad)) } else { (n + l.pad, 1, k * (n + l.pad)) };
        let a: Vec<T> = (0..a_len).map(|_| T::from_f64(rng.uniform())).collect();
        let b: Vec<T> = (0..b_len).map(|_| T::from_f64(rng.uniform())).collect();
        let c0: Vec<T> = (0..m * n).map(|_| T::from_f64(if l.accumulate { rng.uniform() } else { f64::NAN })).collect();
        (a, b, c0, [rsa, csa, rsb, csb])
    }

    fn check<T: Real>(strategy: Strategy, m: usize, k: usize, n: usize, l: Layout, rng: &mut Rng) {
        let (a, b, c0, [rsa, csa, rsb, csb]) = operands::<T>(m, k, n, l, rng);
        let mut c = c0.clone();
        let p = Problem { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
        gemm_dispatch(strategy, &p, &mut c, l.accumulate);

        let amax = a.iter().fold(0.0f64, |s, x| s.max(x.to_f64().abs()));
        let bmax = b.iter().fold(0.0f64, |s, x| s.max(x.to_f64().abs()));
        let tol = 4.0 * ((k as f64) * amax * bmax + 1.0) * T::EPS;
        for i in 0..m {
            for j in 0..n {
                let mut want = if l.accumulate { c0[i * n + j].to_f64() } else { 0.0 };
                for q in 0..k {
                    want += a[i * rsa + q * csa].to_f64() * b[q * rsb + j * csb].to_f64();
                }
                let got = c[i * n + j].to_f64();
                assert!(
                    (got - want).abs() <= tol,
                    "{strategy:?} m={m} k={k} n={n} {l:?}: C[{i},{j}] = {got}, want {want}"
                );
            }
        }
    }

    fn all_layouts(index: usize) -> impl Iterator<Item = Layout> {
        (0..4).map(move |t| Layout {
            a_trans: t & 1 != 0,
            b_trans: t & 2 != 0,
            pad: if (index + t).is_multiple_of(3) { 3 } else { 0 },
            accumulate: (index + t).is_multiple_of(2),
        })
    }

    fn odd_sizes<T: Real>(seed: u64) {
        let mut rng = Rng(seed);
        let mut sizes = vec![(1, 1, 1), (1, 7, 1), (2, 3, 5), (7, 11, 13), (37, 31, 29), (6, 1, 16)];
        while sizes.len() < 20 {
            sizes.push((1 + rng.below(37), 1 + rng.below(37), 1 + rng.below(37)));
        }
        for (index, &(m, k, n)) in sizes.iter().enumerate() {
            for layout in all_layouts(index) {
                for strategy in STRATEGIES {
                    check::<T>(strategy, m, k, n, layout, &mut rng);
                }
            }
        }
    }

    #[test]
    fn odd_sizes_f32() {
        odd_sizes::<f32>(0x9E37_79B9_7F4A_7C15);
    }

    #[test]
    fn odd_sizes_f64() {
        odd_sizes::<f64>(0xD1B5_4A32_D192_ED03);
    }

    /// Sizes one past every block edge (MR, NR, KC, MC, NC) for the blocked paths.
    fn block_edges<T: Real>() {
        let mut rng = Rng(12345);
        let (mr, nr, kc, mc, nc) = (T::MR, T::NR, T::KC, T::MC, T::NC);
        let sizes =
            [(mr + 1, 5, nr + 1), (mc + 1, kc + 1, nr + 1), (mr - 1, 2 * kc + 3, 2 * nr - 1), (mr + 1, 2, nc + 1)];
        let strategies = [
            Strategy::Blocked(Kernel::Portable, 1),
            Strategy::Blocked(Kernel::Avx2Fma, 1),
            Strategy::Blocked(Kernel::Avx2Fma, 2),
        ];
        for (index, &(m, k, n)) in sizes.iter().enumerate() {
            for layout in all_layouts(index) {
                for strategy in strategies {
                    check::<T>(strategy, m, k, n, layout, &mut rng);
                }
            }
        }
    }

    /// The direct `f32` paths around every tile edge (rows 1..=13 cover the 6-row tiles
    /// and each remainder, the 2- and 1-row layouts and the 8/4/2/1-row dot tiles; columns
    /// around 8, 16, 32 and 64 cover masked tails and the 4/2/1-column dot tiles; depths
    /// around 8 cover the masked dot tail), every layout, padded strides, accumulate on/off.
    #[test]
    fn direct_edges_f32() {
        let mut rng = Rng(4242);
        let strategies = [
            Strategy::Auto,
            Strategy::Direct(DirectPath::Auto),
            Strategy::Direct(DirectPath::Broadcast),
            Strategy::Direct(DirectPath::Dot),
            Strategy::Direct(DirectPath::Swap),
            Strategy::Direct(DirectPath::Panel),
        ];
        let ms = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13];
        let ns = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65];
        let ks = [1, 2, 7, 8, 9, 17];
        let mut index = 0;
        for &m in &ms {
            for &n in &ns {
                let k = ks[index % ks.len()];
                index += 1;
                for layout in all_layouts(index) {
                    for strategy in strategies {
                        check::<f32>(strategy, m, k, n, layout, &mut rng);
                    }
                }
            }
        }
        // Every depth with a few shapes (dot tails, broadcast depth loop).
        for k in 1..=18 {
            for (index, (m, n)) in [(3, 5), (9, 2), (1, 10), (10, 1)].into_iter().enumerate() {
                for layout in all_layouts(index + k) {
                    for strategy in strategies {
                        check::<f32>(strategy, m, k, n, layout, &mut rng);
                    }
                }
            }
        }
    }

    /// The workload shapes (deep-narrow, seed, mlp-mnist's small ones) and the Auto
    /// thresholds around them, in every layout.
    #[test]
    fn direct_workload_shapes_f32() {
        let mut rng = Rng(777);
        let shapes = [
            (16, 64, 64),
            (64, 16, 64),
            (16, 64, 1),
            (16, 1, 64),
            (1, 16, 64),
            (64, 16, 1),
            (2, 4, 8),
            (2, 8, 2),
            (2, 2, 8),
            (8, 2, 4),
            (1, 4, 8),
            (8, 1, 4),
            (64, 10, 40),
            (10, 64, 40),
            (33, 40, 10),
            (7, 600, 3),
            (5, 3, 1100),
        ];
        for (index, &(m, k, n)) in shapes.iter().enumerate() {
            for layout in all_layouts(index) {
                check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                check::<f32>(Strategy::Direct(DirectPath::Auto), m, k, n, layout, &mut rng);
            }
        }
    }

    /// The transposed `x·Wᵀ` path (`DirectPath::Swap`) and the `Auto` choice around its
    /// thresholds (`m % 8`, `n >= 16`, `k <= 128`, `4·n >= k`, `k·n >= 64 Ki`): row counts
    /// around the 8×8 transpose blocks and the 16/8/masked column tiles of Cᵀ, row counts
    /// of Cᵀ around the 6- and 12-row tiles, padded strides (`rsa > k`, `csb > k`),
    /// accumulate on/off (C NaN-filled when off).
    #[test]
    fn swap_path_f32() {
        let mut rng = Rng(2718);
        let ms = [1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 32, 40];
        let ns = [1, 5, 8, 11, 12, 15, 16, 17, 18, 31, 32, 33, 37];
        let ks = [1, 2, 7, 8, 9, 16, 63, 64, 65, 127, 128, 129];
        let mut index = 0;
        for &m in &ms {
            for &n in &ns {
                let k = ks[index % ks.len()];
                index += 1;
                for t in 0..4 {
                    let layout = Layout { a_trans: false, b_trans: true, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
                    check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                    check::<f32>(Strategy::Direct(DirectPath::Swap), m, k, n, layout, &mut rng);
                }
            }
        }
        // Around the depth limits of the rule (k = 128 / 129 with n = 32, k = 256 / 257
        // with k·n around 64 Ki) and the workload shapes.
        for (index, &(m, k, n)) in
            [(8, 128, 32), (8, 129, 32), (8, 128, 31), (8, 256, 256), (16, 257, 256), (16, 64, 64), (32, 64, 64)]
                .iter()
                .enumerate()
        {
            let layout = Layout { a_trans: false, b_trans: true, pad: index % 2, accumulate: index % 3 == 0 };
            check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
            check::<f32>(Strategy::Direct(DirectPath::Swap), m, k, n, layout, &mut rng);
        }
    }

    /// The tiny path: every kernel it picks, at the size limit, and its fallbacks (a huge
    /// stride goes to the general path, a short slice gets the general path's panic).
    #[test]
    fn tiny_path_edges_f32() {
        let mut rng = Rng(2718);
        for (m, k, n) in [(2, 4, 8), (2, 8, 2), (8, 2, 4), (1, 1, 1), (8, 8, 8), (4, 16, 8), (1, 512, 1), (3, 5, 7)] {
            assert!(m * k * n <= TINY_WORK);
            for index in 0..8 {
                for layout in all_layouts(index) {
                    check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                }
            }
        }
        // one row of A at a stride that no slice could hold: only the stride check stops it
        let (a, b) = ([1.0f32, 2.0, 3.0], [1.0f32, 10.0, 100.0]);
        let mut c = [f32::NAN];
        sgemm(1, 3, 1, &a, 1 << 40, 1, &b, 1, 1 << 40, &mut c, false);
        assert_eq!(c[0], 321.0);
        let short = std::panic::catch_unwind(|| {
            let mut c = [0.0f32; 4];
            sgemm(2, 2, 2, &[1.0; 3], 2, 1, &[1.0; 4], 2, 1, &mut c, false);
        });
        let msg = *short.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.starts_with("gemm: A slice too short for m=2, k=2"), "{msg}");
    }

    /// The packed-B path (`DirectPath::Panel`) and the `Auto` choice around its thresholds:
    /// for `x·Wᵀ` (`m >= 6`, `n >= 16`, `m > 32` or `m·k·n` > `DIRECT_WORK`) row counts
    /// around the 6-row tiles, column counts around the 16-wide panels (masked last
    /// panels of 1..=15 columns, odd ones packed by the scalar routine), depths around the
    /// 8×8 transposes, padded strides (`rsa > k`, `csb > k`), accumulate on/off (C
    /// NaN-filled when off); then every layout (A read in place with any strides); then
    /// `Gᵀ·X` shapes (not taken by `Auto`) and `G·W` (`m >= 64`, `k >= 64`, `m·k <= 64 Ki`)
    /// around those limits.
    #[test]
    fn panel_path_f32() {
        let mut rng = Rng(1618);
        let shapes = [
            (33, 785, 40),
            (7, 1001, 150),
            (6, 700, 250),
            (5, 500, 420),
            (33, 40, 17),
            (32, 64, 64),
            (40, 9, 16),
            (37, 17, 31),
            (49, 8, 15),
            (13, 129, 33),
            (1, 50, 40),
            (2, 50, 40),
            (3, 7, 20),
        ];
        for (index, &(m, k, n)) in shapes.iter().enumerate() {
            for t in 0..4 {
                let layout = Layout { a_trans: false, b_trans: true, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
                check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                check::<f32>(Strategy::Direct(DirectPath::Panel), m, k, n, layout, &mut rng);
            }
            // (Only the small ones: this test also runs under valgrind.)
            for layout in all_layouts(index).filter(|_| m * k * n <= 300_000) {
                check::<f32>(Strategy::Direct(DirectPath::Panel), m, k, n, layout, &mut rng);
            }
        }
        let shapes = [
            (256, 20, 70),
            (128, 64, 48),
            (127, 64, 64),
            (131, 37, 45),
            (250, 29, 16),
            (128, 512, 17),
            (130, 505, 15),
            (129, 508, 16),
        ];
        for &(m, k, n) in &shapes {
            for t in 0..4 {
                let layout = Layout { a_trans: true, b_trans: false, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
                check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                check::<f32>(Strategy::Direct(DirectPath::Panel), m, k, n, layout, &mut rng);
            }
        }
        let shapes = [(64, 64, 256), (65, 70, 33), (63, 64, 40), (100, 640, 17), (64, 1025, 16), (70, 63, 18)];
        for &(m, k, n) in &shapes {
            for t in 0..4 {
                let layout = Layout { a_trans: false, b_trans: false, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
                check::<f32>(Strategy::Auto, m, k, n, layout, &mut rng);
                check::<f32>(Strategy::Direct(DirectPath::Panel), m, k, n, layout, &mut rng);
            }
        }
    }

    /// NaN in C must not leak through any direct path when `accumulate` is false.
    #[test]
    fn direct_ignores_nan_c() {
        let mut rng = Rng(31337);
        for (m, k, n) in [(1, 1, 1), (3, 9, 1), (1, 9, 3), (7, 9, 13), (16, 64, 64), (5, 17, 10)] {
            for t in 0..4 {
                let layout = Layout { a_trans: t & 1 != 0, b_trans: t & 2 != 0, pad: t % 2, accumulate: false };
                for path in
                    [DirectPath::Auto, DirectPath::Broadcast, DirectPath::Dot, DirectPath::Swap, DirectPath::Panel]
                {
                    check::<f32>(Strategy::Direct(path), m, k, n, layout, &mut rng);
                }
            }
        }
    }

    #[test]
    fn block_edges_f32() {
        block_edges::<f32>();
    }

    #[test]
    fn block_edges_f64() {
        block_edges::<f64>();
    }

    /// Cheap smoke test of every path (suitable for valgrind).
    #[test]
    fn quick_all_paths() {
        let mut rng = Rng(7);
        for strategy in STRATEGIES {
            for layout in all_layouts(1) {
                check::<f32>(strategy, 7, 9, 17, layout, &mut rng);
                check::<f64>(strategy, 7, 9, 9, layout, &mut rng);
            }
        }
    }

    #[test]
    fn quick_k_zero_and_empty() {
        for strategy in STRATEGIES {
            let mut c = [f32::NAN; 6];
            gemm_dispatch(
                strategy,
                &Problem { m: 2, k: 0, n: 3, a: &[], rsa: 0, csa: 0, b: &[], rsb: 0, csb: 0 },
                &mut c,
                false,
            );
            assert_eq!(c, [0.0; 6]);
            let mut c = [1.5f64; 6];
            gemm_dispatch(
                strategy,
                &Problem { m: 3, k: 0, n: 2, a: &[], rsa: 0, csa: 0, b: &[], rsb: 0, csb: 0 },
                &mut c,
                true,
            );
            assert_eq!(c, [1.5; 6]);
        }
        let mut c: [f32; 0] = [];
        sgemm(0, 5, 3, &[], 5, 1, &[0.0; 15], 3, 1, &mut c, false);
        sgemm(4, 5, 0, &[0.0; 20], 5, 1, &[], 0, 1, &mut c, false);
    }

    #[test]
    fn quick_public_api() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let mut c = [0.0f32; 4];
        sgemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], 2, 1, &[5.0, 6.0, 7.0, 8.0], 2, 1, &mut c, false);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        // Same with B given transposed (B(p,j) = W[j*2+p], W = Bᵀ), accumulating.
        let mut c = [1.0f64; 4];
        dgemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], 2, 1, &[5.0, 7.0, 6.0, 8.0], 1, 2, &mut c, true);
        assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
    }

    /// The panel path on two threads (panels handed out from a counter): `x·Wᵀ` and `G·W`
    /// from [`PARALLEL_WORK`] on, with masked last panels, padded strides and accumulate
    /// on and off. Each element's sum runs in the same order whichever thread computes
    /// its panel, so the result must equal the one-thread panel path bit for bit.
    #[test]
    fn panel_path_two_threads() {
        let mut rng = Rng(4242);
        let shapes = [(64, 256, 256), (70, 130, 150), (96, 300, 33), (130, 64, 70), (40, 512, 100)];
        for &(m, k, n) in &shapes {
            assert!(m * k * n >= PARALLEL_WORK, "{m}x{k}x{n} is below the parallel threshold");
            for t in 0..8 {
                let l = Layout { a_trans: false, b_trans: t & 4 == 0, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
                let (a, b, c0, [rsa, csa, rsb, csb]) = operands::<f32>(m, k, n, l, &mut rng);
                let p = Problem { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
                let (mut one, mut two) = (c0.clone(), c0);
                set_num_threads(1);
                gemm_dispatch(Strategy::Direct(DirectPath::Panel), &p, &mut one, l.accumulate);
                set_num_threads(2);
                gemm_dispatch(Strategy::Direct(DirectPath::Panel), &p, &mut two, l.accumulate);
                set_num_threads(1);
                let same = one.iter().zip(&two).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}x{k}x{n} {l:?}: two threads differ from one");
                set_num_threads(2);
                check::<f32>(Strategy::Auto, m, k, n, l, &mut rng);
                set_num_threads(1);
            }
        }
    }

    /// An epilogue (bias, then ReLU) gives the product followed by the separate pass, bit
    /// for bit, on every path (the panel path in its tiles, the others as a pass),
    /// including k = 0 and the public entry points; NaN and -0.0 pass the ReLU unchanged.
    #[test]
    fn epilogue_every_path() {
        let mut rng = Rng(2718);
        for (m, k, n) in [(7, 9, 17), (33, 40, 17), (40, 64, 48), (6, 0, 20), (3, 5, 1)] {
            let l = Layout { a_trans: false, b_trans: true, pad: 1, accumulate: false };
            let (a, b, _, [rsa, csa, rsb, csb]) = operands::<f32>(m, k, n, l, &mut rng);
            let p = Problem { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
            let mut bias: Vec<f32> = (0..n).map(|_| rng.uniform() as f32 * 2.0 - 1.5).collect();
            bias[0] = f32::NAN;
            for relu in [false, true] {
                for strategy in STRATEGIES {
                    let mut want = vec![0.0f32; m * n];
                    gemm_dispatch(strategy, &p, &mut want, false);
                    crate::kernels::bias_relu_rows(&mut want, &bias, relu);
                    let mut got = vec![f32::NAN; m * n];
                    gemm_dispatch_with(strategy, &p, &mut got, false, Some(Epilogue { bias: &bias, relu }));
                    let same = got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{strategy:?} {m}x{k}x{n} relu {relu}");
                }
                let mut public = vec![f32::NAN; m * n];
                sgemm_bias(m, k, n, &a, rsa, csa, &b, rsb, csb, &mut public, &bias, relu);
                let mut want = vec![0.0f32; m * n];
                sgemm(m, k, n, &a, rsa, csa, &b, rsb, csb, &mut want, false);
                crate::kernels::bias_relu_rows(&mut want, &bias, relu);
                assert!(public.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "sgemm_bias {m}x{k}x{n}");
            }
        }
        let mut row = [-0.0f32, 1.0, -2.0];
        crate::kernels::bias_relu_row(&mut row, &[-0.0, f32::NAN, 1.0], true);
        assert_eq!(row[0].to_bits(), (-0.0f32).to_bits());
        assert!(row[1].is_nan() && row[2] == 0.0);
    }

    #[test]
    fn threads_public_api() {
        let mut rng = Rng(99);
        set_num_threads(2);
        assert_eq!(num_threads(), 2);
        let layout = Layout { a_trans: false, b_trans: true, pad: 0, accumulate: false };
        check::<f32>(Strategy::Auto, 70, 130, 150, layout, &mut rng);
        let layout = Layout { a_trans: true, b_trans: false, pad: 1, accumulate: true };
        check::<f64>(Strategy::Auto, 150, 130, 70, layout, &mut rng);
        set_num_threads(1);
    }

    #[test]
    #[should_panic(expected = "gemm: A slice too short")]
    fn quick_short_a_panics() {
        let mut c = [0.0f32; 4];
        sgemm(2, 3, 2, &[0.0; 5], 3, 1, &[0.0; 6], 2, 1, &mut c, false);
    }

    #[test]
    #[should_panic(expected = "gemm: B slice too short")]
    fn quick_short_b_panics() {
        let mut c = [0.0f64; 4];
        dgemm(2, 3, 2, &[0.0; 6], 3, 1, &[0.0; 6], 1, 4, &mut c, false);
    }

    #[test]
    #[should_panic(expected = "gemm: C slice too short")]
    fn quick_short_c_panics() {
        let mut c = [0.0f32; 3];
        sgemm(2, 3, 2, &[0.0; 6], 3, 1, &[0.0; 6], 2, 1, &mut c, false);
    }
}
