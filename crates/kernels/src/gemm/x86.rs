//! The AVX2 + FMA kernels (x86_64): the packed path's micro-kernels and packing
//! transposes, and the direct (unpacked) `f32` kernels.
//!
//! * [`direct`]: rows of B contiguous (`csb == 1`). Broadcasts `A(i,p)` (any strides) and
//!   multiplies whole 8-wide vectors of a B row; tiles of up to 6×16 (2×32 when `m == 2`,
//!   1×64 when `m == 1`), the last vector of a row masked. With an epilogue, each tile
//!   adds the bias and applies ReLU in registers before it stores.
//! * [`dot`]: rows of A and columns of B contiguous (`csa == 1`, `rsb == 1`, i.e. `x·Wᵀ`).
//!   Each `C(i,j)` is a dot product vectorised along `k` in tiles of 2×4 (4×2, 4×1 at the
//!   right edge, 8×1 when `n == 1`); the 8 partial sums per output are reduced once at
//!   the end with a `hadd` tree.
//!
//! The direct kernels take the sizes and [`Operands`] (`Ops`): element (i,p) of A at `a + i*rsa + p*csa`,
//! (p,j) of B at `b + p*rsb + j*csb`, (i,j) of C at `c + i*ldc + j`, and the epilogue's
//! bias (`bias + j`).

use core::arch::x86_64::*;

use super::{Epilogue, Operands};

/// The operands of a direct `f32` kernel.
type Ops = Operands<f32>;

/// 6×16 `f32` micro-kernel: 12 ymm accumulators, 2 B loads + 6 broadcasts per step.
///
/// # Safety
/// CPU supports AVX2+FMA; pointers as for `GemmElement::micro_kernel` (MR=6, NR=16).
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
/// CPU supports AVX2+FMA; pointers as for `GemmElement::micro_kernel` (MR=6, NR=8).
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
                let out = transpose8(r);
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

/// [`Element::relu`](crate::Element::relu) on 8 lanes, `andnot(x < 0, x)`: lanes below
/// zero become `+0.0`, the others (NaN, which compares false, and `-0.0`) stay as they are.
///
/// # Safety
/// CPU supports AVX.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn relu_ps(x: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps()), x)
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

/// [`direct`] for the transposed product of [`Path::Swap`](super::Path::Swap)
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
            if o.epi == Epilogue::None {
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
                let x = if o.epi == Epilogue::None {
                    x
                } else {
                    // acc + b, then a select (s < 0 -> 0) that passes NaN and -0.0 as
                    // they are: `Element::relu`, the same floats as `bias_relu_row`
                    let s = _mm256_add_ps(x, bias[v]);
                    if o.epi == Epilogue::BiasRelu {
                        relu_ps(s)
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
