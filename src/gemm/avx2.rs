//! The AVX2+FMA backend: 8 `f32` or 4 `f64` lanes in a `ymm` register, a
//! 6 × 2-vector register tile (12 accumulators, two `B` vectors and one
//! broadcast of the 16 registers), as BLIS's Haswell kernels.
//!
//! [`Avx2`] can only be made by [`Avx2::new`], which checks the CPU at run
//! time; every intrinsic below is reached through a value of it (a `self` or
//! an argument), which is what makes them sound.

use std::arch::x86_64::*;

use super::kernel::{self, Block, Epilogue, Lanes};
use super::{Element, MatRef};

/// Proof that the CPU supports AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub struct Avx2(());

impl Avx2 {
    /// `Some` if and only if this CPU has AVX2 and FMA.
    pub(crate) fn new() -> Option<Avx2> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2(()))
    }
}

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Vectors per row of the register tile.
pub(crate) const NV: usize = 2;

impl Lanes<f32> for Avx2 {
    type V = __m256;
    const N: usize = 8;

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: as above.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees 8 readable elements; AVX by `self`.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: the caller guarantees 8 writable elements; AVX by `self`.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves FMA is available.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX by `self`.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX by `self`.
        unsafe { _mm256_add_ps(a, b) }
    }
}

impl Lanes<f64> for Avx2 {
    type V = __m256d;
    const N: usize = 4;

    #[inline(always)]
    fn zero(self) -> __m256d {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    fn splat(self, x: f64) -> __m256d {
        // SAFETY: as above.
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f64) -> __m256d {
        // SAFETY: the caller guarantees 4 readable elements; AVX by `self`.
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64, v: __m256d) {
        // SAFETY: the caller guarantees 4 writable elements; AVX by `self`.
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    fn fma(self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        // SAFETY: `self: Avx2` proves FMA is available.
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn mul(self, a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: AVX by `self`.
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    fn add(self, a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: AVX by `self`.
        unsafe { _mm256_add_pd(a, b) }
    }
}

/// [`kernel::run_block`] for `f32` compiled for AVX2+FMA.
///
/// # Safety
/// As [`kernel::run_block`]; the `Avx2` value proves the CPU features.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn block_f32(t: Avx2, blk: &mut Block<'_, f32>) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::run_block::<f32, Avx2, MR, NV>(t, blk) }
}

/// [`kernel::run_block`] for `f64` compiled for AVX2+FMA.
///
/// # Safety
/// As [`kernel::run_block`]; the `Avx2` value proves the CPU features.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn block_f64(t: Avx2, blk: &mut Block<'_, f64>) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::run_block::<f64, Avx2, MR, NV>(t, blk) }
}

/// [`kernel::small`] compiled for AVX2+FMA (`mul_add` is one instruction).
///
/// # Safety
/// As [`kernel::small`]; the `Avx2` value proves the CPU features.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn small<T: Element>(
    _: Avx2,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: *mut T,
    rs: usize,
    cs: usize,
    epi: Epilogue<'_, T>,
) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::small(a, b, c, rs, cs, epi) }
}

impl Avx2 {
    /// The AVX2+FMA proof implied by an AVX-512 one (`Avx512::new` checks
    /// AVX2 and FMA too).
    pub(crate) fn from_avx512(_: super::avx512::Avx512) -> Avx2 {
        Avx2(())
    }
}

/// Packs columns `j0..j0 + cols` of a `k × n` `f32` view whose columns are
/// contiguous (element `(p, j)` at `data[p + j·cs]`) into the panel layout
/// (`panel[p·w + j]`; the columns `cols..w` are left alone), with 8 × 8 AVX
/// transposes; the edges element by element.
///
/// # Panics
/// If the view or the panel is too short for the sizes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_cols_f32(
    t: Avx2,
    data: &[f32],
    cs: usize,
    j0: usize,
    cols: usize,
    k: usize,
    w: usize,
    panel: &mut [f32],
) {
    if cols == 0 || k == 0 {
        return;
    }
    assert!(cols <= w && panel.len() >= k * w && (j0 + cols - 1) * cs + k <= data.len());
    // SAFETY: column `j0 + j` (j < cols) spans `data[(j0 + j)·cs..][..k]`
    // and the panel `k·w` elements, both asserted above; `t` proves AVX.
    unsafe {
        pack_cols_f32_imp(
            t,
            data.as_ptr().add(j0 * cs),
            cs,
            cols,
            k,
            w,
            panel.as_mut_ptr(),
        )
    }
}

/// # Safety
/// `src + j·cs + p` readable for `j < cols`, `p < k`; `dst` writable for
/// `k·w` elements, `cols <= w`.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_cols_f32_imp(
    _: Avx2,
    src: *const f32,
    cs: usize,
    cols: usize,
    k: usize,
    w: usize,
    dst: *mut f32,
) {
    let (k8, c8) = (k / 8 * 8, cols / 8 * 8);
    // SAFETY: every access below reads `src + (j + r)·cs + p + q` with
    // `j + r < cols`, `p + q < k`, or writes `dst + (p + q)·w + j + r <
    // dst + k·w` (the contract); `Avx2` proves AVX.
    unsafe {
        for j in (0..c8).step_by(8) {
            let col = |r: usize| src.add((j + r) * cs);
            for p in (0..k8).step_by(8) {
                let r0 = _mm256_loadu_ps(col(0).add(p));
                let r1 = _mm256_loadu_ps(col(1).add(p));
                let r2 = _mm256_loadu_ps(col(2).add(p));
                let r3 = _mm256_loadu_ps(col(3).add(p));
                let r4 = _mm256_loadu_ps(col(4).add(p));
                let r5 = _mm256_loadu_ps(col(5).add(p));
                let r6 = _mm256_loadu_ps(col(6).add(p));
                let r7 = _mm256_loadu_ps(col(7).add(p));
                let t0 = _mm256_unpacklo_ps(r0, r1);
                let t1 = _mm256_unpackhi_ps(r0, r1);
                let t2 = _mm256_unpacklo_ps(r2, r3);
                let t3 = _mm256_unpackhi_ps(r2, r3);
                let t4 = _mm256_unpacklo_ps(r4, r5);
                let t5 = _mm256_unpackhi_ps(r4, r5);
                let t6 = _mm256_unpacklo_ps(r6, r7);
                let t7 = _mm256_unpackhi_ps(r6, r7);
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let out = |q: usize| dst.add((p + q) * w + j);
                _mm256_storeu_ps(out(0), _mm256_permute2f128_ps::<0x20>(s0, s4));
                _mm256_storeu_ps(out(1), _mm256_permute2f128_ps::<0x20>(s1, s5));
                _mm256_storeu_ps(out(2), _mm256_permute2f128_ps::<0x20>(s2, s6));
                _mm256_storeu_ps(out(3), _mm256_permute2f128_ps::<0x20>(s3, s7));
                _mm256_storeu_ps(out(4), _mm256_permute2f128_ps::<0x31>(s0, s4));
                _mm256_storeu_ps(out(5), _mm256_permute2f128_ps::<0x31>(s1, s5));
                _mm256_storeu_ps(out(6), _mm256_permute2f128_ps::<0x31>(s2, s6));
                _mm256_storeu_ps(out(7), _mm256_permute2f128_ps::<0x31>(s3, s7));
            }
            for p in k8..k {
                for r in 0..8 {
                    *dst.add(p * w + j + r) = *col(r).add(p);
                }
            }
        }
        let mut j = c8;
        if cols - j >= 4 {
            // Four more columns by 4 × 4 SSE transposes.
            let col = |r: usize| src.add((j + r) * cs);
            let k4 = k / 4 * 4;
            for p in (0..k4).step_by(4) {
                let r0 = _mm_loadu_ps(col(0).add(p));
                let r1 = _mm_loadu_ps(col(1).add(p));
                let r2 = _mm_loadu_ps(col(2).add(p));
                let r3 = _mm_loadu_ps(col(3).add(p));
                let t0 = _mm_unpacklo_ps(r0, r1);
                let t1 = _mm_unpacklo_ps(r2, r3);
                let t2 = _mm_unpackhi_ps(r0, r1);
                let t3 = _mm_unpackhi_ps(r2, r3);
                let out = |q: usize| dst.add((p + q) * w + j);
                _mm_storeu_ps(out(0), _mm_movelh_ps(t0, t1));
                _mm_storeu_ps(out(1), _mm_movehl_ps(t1, t0));
                _mm_storeu_ps(out(2), _mm_movelh_ps(t2, t3));
                _mm_storeu_ps(out(3), _mm_movehl_ps(t3, t2));
            }
            for p in k4..k {
                for r in 0..4 {
                    *dst.add(p * w + j + r) = *col(r).add(p);
                }
            }
            j += 4;
        }
        for j in j..cols {
            for p in 0..k {
                *dst.add(p * w + j) = *src.add(j * cs + p);
            }
        }
    }
}
