//! The GEMM against a naive reference on odd sizes, strides and every path, and the
//! paths against each other bit for bit where they must agree.

use super::*;
use crate::elementwise::{bias_relu_row, bias_relu_rows};
use crate::threads::{num_threads, set_num_threads};

mod threads;

/// A path to force, or `None` for the one [`choose`] picks.
type Strategy = Option<Path>;

/// The operands of one test case as slices.
#[derive(Clone, Copy)]
struct Args<'a, T> {
    m: usize,
    k: usize,
    n: usize,
    a: &'a [T],
    rsa: usize,
    csa: usize,
    b: &'a [T],
    rsb: usize,
    csb: usize,
}

/// Runs `p` on `strategy`.
fn gemm_dispatch<T: Element>(strategy: Strategy, p: &Args<'_, T>, c: &mut [T], accumulate: bool) {
    gemm_dispatch_with(strategy, p, c, accumulate, None);
}

/// Runs `p` on `strategy` with an epilogue (`bias`, `relu`).
fn gemm_dispatch_with<T: Element>(
    strategy: Strategy,
    p: &Args<'_, T>,
    c: &mut [T],
    accumulate: bool,
    epilogue: Option<(&[T], bool)>,
) {
    let q = Problem::new(p.m, p.k, p.n, p.a, p.rsa, p.csa, p.b, p.rsb, p.csb, c);
    let q = match epilogue {
        Some((bias, relu)) => q.with_bias(bias, relu),
        None => q,
    };
    run(&q, accumulate, strategy);
}

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

/// Every path (`None`: the chosen one). Run where the CPU lacks a path's instructions, a
/// packed one falls back to the best supported instruction set below its own and a direct
/// one to `Small` (as for `f64`): [`check`] skips those, saying so.
const STRATEGIES: [Strategy; 12] = [
    None,
    Some(Path::Small),
    Some(Path::Broadcast),
    Some(Path::Dot),
    Some(Path::Swap),
    Some(Path::Panel),
    Some(Path::Packed { isa: Isa::Portable, threads: 1 }),
    Some(Path::Packed { isa: Isa::Avx2, threads: 1 }),
    Some(Path::Packed { isa: Isa::Avx2, threads: 2 }),
    Some(Path::Packed { isa: Isa::Avx512, threads: 1 }),
    Some(Path::Packed { isa: Isa::Avx512, threads: 2 }),
    Some(Path::Packed { isa: Isa::Portable, threads: 3 }),
];

/// Whether the kernels of `isa` run in this process; if not, says so on stderr, so a path
/// left untested is never silent (CI counts these lines): the CPU lacks it, or
/// `TAPEGRAD_ISA` chose a lower instruction set.
fn isa_runs_here(test: &str, isa: Isa) -> bool {
    let active = crate::cpu::isa();
    if isa <= active {
        return true;
    }
    if isa.is_supported() {
        eprintln!("SKIPPED: {test} under {isa} (TAPEGRAD_ISA chose {active})");
    } else {
        eprintln!("SKIPPED: {test} under {isa} (no {isa} on this CPU)");
    }
    false
}

/// Whether `strategy` runs its own kernels here (a packed path of an instruction set above
/// the active one, or a direct path without AVX2, would run another path's instead); says
/// so on stderr when it does not.
fn strategy_runs_here(strategy: Strategy) -> bool {
    match strategy {
        Some(Path::Packed { isa, threads }) => isa_runs_here(&format!("packed GEMM on {threads} thread(s)"), isa),
        Some(direct @ (Path::Broadcast | Path::Dot | Path::Swap | Path::Panel)) => {
            isa_runs_here(&format!("direct GEMM path {direct:?}"), Isa::Avx2)
        }
        _ => true,
    }
}

/// Runs one case with `strategy` and compares with an f64 triple loop.
/// Random A and B stored as `l` says, C's start value (NaN unless accumulating), and
/// the strides `[rsa, csa, rsb, csb]`.
#[allow(clippy::type_complexity)]
fn operands<T: Real>(m: usize, k: usize, n: usize, l: Layout, rng: &mut Rng) -> (Vec<T>, Vec<T>, Vec<T>, [usize; 4]) {
    // A is m×k, stored row-major (rsa = k + pad) or as its transpose (csa = m + pad).
    let (rsa, csa, a_len) = if l.a_trans { (1, m + l.pad, k * (m + l.pad)) } else { (k + l.pad, 1, m * (k + l.pad)) };
    let (rsb, csb, b_len) = if l.b_trans { (1, k + l.pad, n * (k + l.pad)) } else { (n + l.pad, 1, k * (n + l.pad)) };
    let a: Vec<T> = (0..a_len).map(|_| T::from_f64(rng.uniform())).collect();
    let b: Vec<T> = (0..b_len).map(|_| T::from_f64(rng.uniform())).collect();
    let c0: Vec<T> = (0..m * n).map(|_| T::from_f64(if l.accumulate { rng.uniform() } else { f64::NAN })).collect();
    (a, b, c0, [rsa, csa, rsb, csb])
}

fn check<T: Real>(strategy: Strategy, m: usize, k: usize, n: usize, l: Layout, rng: &mut Rng) {
    if !strategy_runs_here(strategy) {
        return;
    }
    let (a, b, c0, [rsa, csa, rsb, csb]) = operands::<T>(m, k, n, l, rng);
    let mut c = c0.clone();
    let p = Args { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
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
            assert!((got - want).abs() <= tol, "{strategy:?} m={m} k={k} n={n} {l:?}: C[{i},{j}] = {got}, want {want}");
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

/// Sizes one past every block edge (MR, NR, KC, MC, NC) of each packed micro-kernel the
/// active instruction set allows, on one and two threads.
fn block_edges<T: Real>() {
    let mut rng = Rng(12345);
    for isa in Isa::ALL.into_iter().filter(|&isa| isa_runs_here("block_edges", isa)) {
        let super::Blocks { mr, nr, kc, mc, nc } = T::blocks(isa);
        let sizes =
            [(mr + 1, 5, nr + 1), (mc + 1, kc + 1, nr + 1), (mr - 1, 2 * kc + 3, 2 * nr - 1), (mr + 1, 2, nc + 1)];
        for (index, &(m, k, n)) in sizes.iter().enumerate() {
            for layout in all_layouts(index) {
                for threads in [1, 2] {
                    check::<T>(Some(Path::Packed { isa, threads }), m, k, n, layout, &mut rng);
                }
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
    let strategies = [None, Some(Path::Broadcast), Some(Path::Dot), Some(Path::Swap), Some(Path::Panel)];
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
            check::<f32>(None, m, k, n, layout, &mut rng);
        }
    }
}

/// The transposed `x·Wᵀ` path (`Path::Swap`) and the `Auto` choice around its
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
                check::<f32>(None, m, k, n, layout, &mut rng);
                check::<f32>(Some(Path::Swap), m, k, n, layout, &mut rng);
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
        check::<f32>(None, m, k, n, layout, &mut rng);
        check::<f32>(Some(Path::Swap), m, k, n, layout, &mut rng);
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
                check::<f32>(None, m, k, n, layout, &mut rng);
            }
        }
    }
    // one row of A at a stride that no slice could hold: only the stride check stops it
    let (a, b) = ([1.0f32, 2.0, 3.0], [1.0f32, 10.0, 100.0]);
    let mut c = [f32::NAN];
    f32::gemm(1, 3, 1, &a, 1 << 40, 1, &b, 1, 1 << 40, &mut c, false);
    assert_eq!(c[0], 321.0);
    let short = std::panic::catch_unwind(|| {
        let mut c = [0.0f32; 4];
        f32::gemm(2, 2, 2, &[1.0; 3], 2, 1, &[1.0; 4], 2, 1, &mut c, false);
    });
    let msg = *short.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.starts_with("gemm: A slice too short for m=2, k=2"), "{msg}");
}

/// The packed-B path (`Path::Panel`) and the `Auto` choice around its thresholds:
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
        (12, 100, 32),
        (25, 33, 47),
        (13, 64, 65),
        (24, 17, 96),
        (11, 18, 48),
    ];
    for (index, &(m, k, n)) in shapes.iter().enumerate() {
        for t in 0..4 {
            let layout = Layout { a_trans: false, b_trans: true, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
            check::<f32>(None, m, k, n, layout, &mut rng);
            check::<f32>(Some(Path::Panel), m, k, n, layout, &mut rng);
        }
        // (Only the small ones: this test also runs under valgrind.)
        for layout in all_layouts(index).filter(|_| m * k * n <= 300_000) {
            check::<f32>(Some(Path::Panel), m, k, n, layout, &mut rng);
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
            check::<f32>(None, m, k, n, layout, &mut rng);
            check::<f32>(Some(Path::Panel), m, k, n, layout, &mut rng);
        }
    }
    let shapes = [(64, 64, 256), (65, 70, 33), (63, 64, 40), (100, 640, 17), (64, 1025, 16), (70, 63, 18)];
    for &(m, k, n) in &shapes {
        for t in 0..4 {
            let layout = Layout { a_trans: false, b_trans: false, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
            check::<f32>(None, m, k, n, layout, &mut rng);
            check::<f32>(Some(Path::Panel), m, k, n, layout, &mut rng);
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
            for path in [None, Some(Path::Broadcast), Some(Path::Dot), Some(Path::Swap), Some(Path::Panel)] {
                check::<f32>(path, m, k, n, layout, &mut rng);
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
            &Args { m: 2, k: 0, n: 3, a: &[], rsa: 0, csa: 0, b: &[], rsb: 0, csb: 0 },
            &mut c,
            false,
        );
        assert_eq!(c, [0.0; 6]);
        let mut c = [1.5f64; 6];
        gemm_dispatch(
            strategy,
            &Args { m: 3, k: 0, n: 2, a: &[], rsa: 0, csa: 0, b: &[], rsb: 0, csb: 0 },
            &mut c,
            true,
        );
        assert_eq!(c, [1.5; 6]);
    }
    let mut c: [f32; 0] = [];
    f32::gemm(0, 5, 3, &[], 5, 1, &[0.0; 15], 3, 1, &mut c, false);
    f32::gemm(4, 5, 0, &[0.0; 20], 5, 1, &[], 0, 1, &mut c, false);
}

#[test]
fn quick_public_api() {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
    let mut c = [0.0f32; 4];
    f32::gemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], 2, 1, &[5.0, 6.0, 7.0, 8.0], 2, 1, &mut c, false);
    assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    // Same with B given transposed (B(p,j) = W[j*2+p], W = Bᵀ), accumulating.
    let mut c = [1.0f64; 4];
    f64::gemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], 2, 1, &[5.0, 7.0, 6.0, 8.0], 1, 2, &mut c, true);
    assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
}

/// The panel path on two threads (panels handed out from a counter): `x·Wᵀ` and `G·W`
/// from [`PARALLEL_WORK`] on, with masked last panels, padded strides and accumulate
/// on and off. Each element's sum runs in the same order whichever thread computes
/// its panel, so the result must equal the one-thread panel path bit for bit.
#[test]
fn epilogue_every_path() {
    let mut rng = Rng(2718);
    for (m, k, n) in [(7, 9, 17), (33, 40, 17), (40, 64, 48), (6, 0, 20), (3, 5, 1)] {
        let l = Layout { a_trans: false, b_trans: true, pad: 1, accumulate: false };
        let (a, b, _, [rsa, csa, rsb, csb]) = operands::<f32>(m, k, n, l, &mut rng);
        let p = Args { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
        let mut bias: Vec<f32> = (0..n).map(|_| rng.uniform() as f32 * 2.0 - 1.5).collect();
        bias[0] = f32::NAN;
        for relu in [false, true] {
            for strategy in STRATEGIES {
                let mut want = vec![0.0f32; m * n];
                gemm_dispatch(strategy, &p, &mut want, false);
                bias_relu_rows(&mut want, &bias, relu);
                let mut got = vec![f32::NAN; m * n];
                gemm_dispatch_with(strategy, &p, &mut got, false, Some((&bias, relu)));
                let same = got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{strategy:?} {m}x{k}x{n} relu {relu}");
            }
            let mut public = vec![f32::NAN; m * n];
            f32::gemm_bias(m, k, n, &a, rsa, csa, &b, rsb, csb, &mut public, &bias, relu);
            let mut want = vec![0.0f32; m * n];
            f32::gemm(m, k, n, &a, rsa, csa, &b, rsb, csb, &mut want, false);
            bias_relu_rows(&mut want, &bias, relu);
            assert!(public.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "sgemm_bias {m}x{k}x{n}");
        }
    }
    let mut row = [-0.0f32, 1.0, -2.0];
    bias_relu_row(&mut row, &[-0.0, f32::NAN, 1.0], true);
    assert_eq!(row[0].to_bits(), (-0.0f32).to_bits());
    assert!(row[1].is_nan() && row[2] == 0.0);
}

#[test]
#[should_panic(expected = "gemm: A slice too short")]
fn quick_short_a_panics() {
    let mut c = [0.0f32; 4];
    f32::gemm(2, 3, 2, &[0.0; 5], 3, 1, &[0.0; 6], 2, 1, &mut c, false);
}

#[test]
#[should_panic(expected = "gemm: B slice too short")]
fn quick_short_b_panics() {
    let mut c = [0.0f64; 4];
    f64::gemm(2, 3, 2, &[0.0; 6], 3, 1, &[0.0; 6], 1, 4, &mut c, false);
}

#[test]
#[should_panic(expected = "gemm: C slice too short")]
fn quick_short_c_panics() {
    let mut c = [0.0f32; 3];
    f32::gemm(2, 3, 2, &[0.0; 6], 3, 1, &[0.0; 6], 2, 1, &mut c, false);
}

/// Every path's epilogue agrees with [`Element::relu`] at NaN, ±inf and around zero: sums
/// made NaN and ±inf by the bias and by infinite operands, on every path (the panel path in
/// its tiles' registers, the others as a pass), bit for bit (NaN as NaN).
#[test]
fn epilogue_matches_element_relu_at_special_values() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    for (m, k, n) in [(7, 9, 17), (40, 64, 48), (3, 5, 1), (2, 3, 16)] {
        let mut rng = Rng(5);
        let l = Layout { a_trans: false, b_trans: true, pad: 0, accumulate: false };
        let (mut a, b, _, [rsa, csa, rsb, csb]) = operands::<f32>(m, k, n, l, &mut rng);
        a[0] = inf; // row 0: ±inf, or NaN where B's column has both signs
        let second = rsa.min(a.len() - 1);
        a[second] = -inf;
        let p = Args { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
        let specials = [nan, inf, -inf, -0.0, 0.0, -1e-30, 1e-30, -3.0, 3.0];
        let bias: Vec<f32> = (0..n).map(|j| specials[j % specials.len()]).collect();
        for strategy in STRATEGIES {
            let mut product = vec![0.0f32; m * n];
            gemm_dispatch(strategy, &p, &mut product, false);
            let mut got = vec![f32::NAN; m * n];
            gemm_dispatch_with(strategy, &p, &mut got, false, Some((&bias, true)));
            for (i, (&g, &x)) in got.iter().zip(&product).enumerate() {
                let want = (x + bias[i % n]).relu();
                let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan());
                assert!(same, "{strategy:?} {m}x{k}x{n} C[{i}]: {g} for relu({x} + {})", bias[i % n]);
            }
        }
    }
}

/// The SIMD ReLU of the panel path's tiles is [`Element::relu`] lane by lane.
#[cfg(target_arch = "x86_64")]
#[test]
fn simd_relu_is_element_relu() {
    use core::arch::x86_64::*;
    if !Isa::Avx2.is_supported() {
        eprintln!("SKIPPED: simd_relu_is_element_relu (no AVX2 on this CPU)");
        return;
    }
    let x = [f32::NAN, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, -1e-40, 1e-40, -2.5];
    let mut out = [0.0f32; 8];
    // SAFETY: the CPU supports AVX2 (checked above); `x` and `out` hold 8 values.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), x86::relu_ps(_mm256_loadu_ps(x.as_ptr()))) };
    for (&v, &r) in x.iter().zip(&out) {
        assert!(r.to_bits() == v.relu().to_bits() || (r.is_nan() && v.is_nan()), "relu({v}) = {r}");
    }
}
