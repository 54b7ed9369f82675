//! The AVX-512F kernels (x86_64): the packed path's micro-kernels and the panel path's
//! broadcast kernel. 32 zmm registers hold 24 accumulators (12 rows × 2 vectors) plus the
//! two B vectors and a broadcast A value, twice the AVX2 tile, which keeps both FMA ports
//! busy through the 4-cycle FMA latency.
//!
//! The entry points check, with `debug_assert!` (on in the debug test runs), every bound
//! they rely on that the caller can state, since valgrind cannot run this code (it hides
//! AVX-512, so under memcheck the AVX2 kernels run instead).

use core::arch::x86_64::*;

use super::{Epilogue, Operands};

/// Rows of the micro-tiles.
const MR: usize = 12;

/// 12×32 `f32` micro-kernel: 24 zmm accumulators, 2 B loads + 12 broadcasts per step.
///
/// # Safety
/// CPU supports AVX-512F; `a` holds kc·12 and `b` kc·32 packed values; `c` is valid for
/// reads (if `beta`) and writes of a 12×32 tile with row stride `ldc`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn kernel_f32(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, beta: bool) {
    debug_assert!(ldc >= 32, "12×32 tile with row stride {ldc}");
    // SAFETY: for the whole body, reads stay within kc·12 values of `a` and kc·32 of `b`,
    // writes within the 12×32 tile of `c` (the caller's contract); the features are
    // enabled by the caller.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(32);
        }
        for (i, row) in acc.iter().enumerate() {
            let ci = c.add(i * ldc);
            let (mut r0, mut r1) = (row[0], row[1]);
            if beta {
                r0 = _mm512_add_ps(r0, _mm512_loadu_ps(ci));
                r1 = _mm512_add_ps(r1, _mm512_loadu_ps(ci.add(16)));
            }
            _mm512_storeu_ps(ci, r0);
            _mm512_storeu_ps(ci.add(16), r1);
        }
    }
}

/// 12×16 `f64` micro-kernel: 24 zmm accumulators.
///
/// # Safety
/// CPU supports AVX-512F; `a` holds kc·12 and `b` kc·16 packed values; `c` is valid for
/// reads (if `beta`) and writes of a 12×16 tile with row stride `ldc`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn kernel_f64(kc: usize, a: *const f64, b: *const f64, c: *mut f64, ldc: usize, beta: bool) {
    debug_assert!(ldc >= 16, "12×16 tile with row stride {ldc}");
    // SAFETY: for the whole body, reads stay within kc·12 values of `a` and kc·16 of `b`,
    // writes within the 12×16 tile of `c` (the caller's contract).
    unsafe {
        let mut acc = [[_mm512_setzero_pd(); 2]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let b0 = _mm512_loadu_pd(b);
            let b1 = _mm512_loadu_pd(b.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_pd(*a.add(i));
                row[0] = _mm512_fmadd_pd(ai, b0, row[0]);
                row[1] = _mm512_fmadd_pd(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(16);
        }
        for (i, row) in acc.iter().enumerate() {
            let ci = c.add(i * ldc);
            let (mut r0, mut r1) = (row[0], row[1]);
            if beta {
                r0 = _mm512_add_pd(r0, _mm512_loadu_pd(ci));
                r1 = _mm512_add_pd(r1, _mm512_loadu_pd(ci.add(8)));
            }
            _mm512_storeu_pd(ci, r0);
            _mm512_storeu_pd(ci.add(8), r1);
        }
    }
}

/// The panel path's kernel: `C (+)= A·P` for the `m×w` block of C at `o`, where `P` is
/// `panel`, a packed k×32 panel of B (row stride 32, `w <= 32` valid columns), A read in
/// place (any strides), the epilogue applied in registers. Tiles of 12 rows × 2 vectors
/// over the whole depth, then one smaller tile; the last vector of a row is masked when
/// `w` is not a multiple of 16.
///
/// # Safety
/// CPU supports AVX-512F; `o` is valid for an `m×k` A and an `m×w` C (row stride `o.ldc`)
/// and, with an epilogue, `w` bias values; `m, k >= 1`, `1 <= w <= 32`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn panel_block(m: usize, k: usize, w: usize, o: Operands<f32>, panel: &[f32], accumulate: bool) {
    debug_assert!(m >= 1 && k >= 1 && (1..=32).contains(&w));
    debug_assert!(panel.len() >= 32 * k, "panel of {} values for k = {k}", panel.len());
    let o = Operands { b: panel.as_ptr(), rsb: 32, csb: 1, ..o };
    // SAFETY: forwarded from the caller; the panel holds k rows of 32 values (checked
    // above), of which the kernel reads the first ceil(w/16) vectors of each row.
    unsafe {
        match w {
            17..=32 => rows::<2>(m, k, o, w - 16, accumulate),
            _ => rows::<1>(m, k, o, w, accumulate),
        }
    }
}

/// All row tiles of one block of `NV` vectors whose last vector has `lanes` valid lanes:
/// 12-row tiles, except that a remainder of 1..=5 rows is merged with the last 12 and
/// split into two tiles of 6..=9 rows (m = 64: 12·4 + 8 + 8, not 12·5 + 4), since a tile
/// of fewer than 6 rows holds too few accumulators to hide the FMA latency.
///
/// # Safety
/// As for [`panel_block`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn rows<const NV: usize>(m: usize, k: usize, o: Operands<f32>, lanes: usize, acc: bool) {
    let mask: __mmask16 = if lanes >= 16 { 0xFFFF } else { (1u16 << lanes) - 1 };
    let (mut full, mut tail) = (m / MR, m % MR);
    if full >= 1 && (1..6).contains(&tail) {
        (full, tail) = (full - 1, tail + MR);
    }
    let halves = if tail > MR { [tail / 2, tail - tail / 2] } else { [tail, 0] };
    debug_assert_eq!(full * MR + halves[0] + halves[1], m);
    // SAFETY: the tiles cover rows 0..m once each (checked just above), every one of at
    // most 12 rows.
    unsafe {
        let mut i = 0;
        for _ in 0..full {
            tile::<MR, NV>(k, o.at(i, 0), mask, acc);
            i += MR;
        }
        for rows in halves.into_iter().filter(|&r| r > 0) {
            let o = o.at(i, 0);
            match rows {
                1 => tile::<1, NV>(k, o, mask, acc),
                2 => tile::<2, NV>(k, o, mask, acc),
                3 => tile::<3, NV>(k, o, mask, acc),
                4 => tile::<4, NV>(k, o, mask, acc),
                5 => tile::<5, NV>(k, o, mask, acc),
                6 => tile::<6, NV>(k, o, mask, acc),
                7 => tile::<7, NV>(k, o, mask, acc),
                8 => tile::<8, NV>(k, o, mask, acc),
                9 => tile::<9, NV>(k, o, mask, acc),
                10 => tile::<10, NV>(k, o, mask, acc),
                _ => tile::<11, NV>(k, o, mask, acc),
            }
            i += rows;
        }
    }
}

/// One `R × 16·NV` tile of C accumulated in registers over the whole depth; the last
/// vector's lanes are those set in `mask` (loads and stores of the others are suppressed).
///
/// # Safety
/// As for [`panel_block`] for an `R`-row tile at the origin of `o`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn tile<const R: usize, const NV: usize>(k: usize, o: Operands<f32>, mask: __mmask16, accumulate: bool) {
    // SAFETY: every load reads A(r, p) with r < R, p < k, or a panel row p < k (32
    // values); C and the bias are read and written only in the tile's valid lanes (the
    // last vector masked). The running pointers use `wrapping_add`, as they step one row
    // past the end.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        let rows: [*const f32; R] = core::array::from_fn(|r| o.a.add(r * o.rsa));
        let mut bp = o.b;
        let mut off = 0;
        for _ in 0..k {
            let bv: [__m512; NV] = core::array::from_fn(|v| _mm512_loadu_ps(bp.add(16 * v)));
            for (row, &ap) in acc.iter_mut().zip(&rows) {
                let ar = _mm512_set1_ps(*ap.wrapping_add(off));
                for (x, &bx) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(ar, bx, *x);
                }
            }
            off += o.csa;
            bp = bp.wrapping_add(32);
        }
        let lane_mask = |v: usize| if v == NV - 1 { mask } else { 0xFFFF };
        let bias: [__m512; NV] = core::array::from_fn(|v| {
            if o.epi == Epilogue::None {
                _mm512_setzero_ps()
            } else {
                _mm512_maskz_loadu_ps(lane_mask(v), o.bias.add(16 * v))
            }
        });
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                let cp = o.c.add(r * o.ldc + 16 * v);
                let x = match o.epi {
                    Epilogue::None => x,
                    Epilogue::Bias => _mm512_add_ps(x, bias[v]),
                    // acc + b, then lanes below zero become +0.0 (NaN and -0.0 pass):
                    // `Element::relu`, the same floats as `bias_relu_row`
                    Epilogue::BiasRelu => relu(_mm512_add_ps(x, bias[v])),
                };
                let lm = lane_mask(v);
                let x = if accumulate { _mm512_add_ps(_mm512_maskz_loadu_ps(lm, cp), x) } else { x };
                _mm512_mask_storeu_ps(cp, lm, x);
            }
        }
    }
}

/// [`Element::relu`](crate::Element::relu) on 16 lanes: lanes below zero become `+0.0`,
/// the others (NaN, which compares false, and `-0.0`) stay as they are.
///
/// # Safety
/// CPU supports AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub(super) unsafe fn relu(x: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero), zero)
}
