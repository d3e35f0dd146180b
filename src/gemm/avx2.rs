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
