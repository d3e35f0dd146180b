//! The AVX-512 backend: 16 `f32` or 8 `f64` lanes in a `zmm` register and a
//! register tile of [`MR`] rows × [`NV`] vectors (24 accumulators of the 32
//! registers; the `B` vectors are loaded once per `k` step and each `A`
//! element is broadcast straight from memory into its FMAs).
//!
//! [`Avx512`] can only be made by [`Avx512::new`], which checks the CPU at
//! run time (AVX-512 F, BW, DQ, VL, and AVX2 and FMA, as
//! [`Isa::Avx512`](crate::kernels::Isa::Avx512)); every intrinsic below is
//! reached through a value of it, which is what makes them sound.

use std::arch::x86_64::*;

use super::kernel::{self, Block, Epilogue, Lanes};
use super::{Element, MatRef};

/// Proof that the CPU supports AVX-512 F/BW/DQ/VL, AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub struct Avx512(());

impl Avx512 {
    /// `Some` if and only if this CPU has the features.
    pub(crate) fn new() -> Option<Avx512> {
        (is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma"))
        .then_some(Avx512(()))
    }
}

/// Rows of the register tile.
pub(crate) const MR: usize = 12;
/// Vectors per row of the register tile (64 `f32` or 32 `f64` columns).
pub(crate) const NV: usize = 2;

impl Lanes<f32> for Avx512 {
    type V = __m512;
    const N: usize = 16;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: as above.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees 16 readable elements; AVX-512F by `self`.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the caller guarantees 16 writable elements; AVX-512F by `self`.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_add_ps(a, b) }
    }
}

impl Lanes<f64> for Avx512 {
    type V = __m512d;
    const N: usize = 8;

    #[inline(always)]
    fn zero(self) -> __m512d {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_setzero_pd() }
    }
    #[inline(always)]
    fn splat(self, x: f64) -> __m512d {
        // SAFETY: as above.
        unsafe { _mm512_set1_pd(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f64) -> __m512d {
        // SAFETY: the caller guarantees 8 readable elements; AVX-512F by `self`.
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64, v: __m512d) {
        // SAFETY: the caller guarantees 8 writable elements; AVX-512F by `self`.
        unsafe { _mm512_storeu_pd(p, v) }
    }
    #[inline(always)]
    fn fma(self, a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn mul(self, a: __m512d, b: __m512d) -> __m512d {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_mul_pd(a, b) }
    }
    #[inline(always)]
    fn add(self, a: __m512d, b: __m512d) -> __m512d {
        // SAFETY: AVX-512F by `self`.
        unsafe { _mm512_add_pd(a, b) }
    }
}

/// [`kernel::run_block`] for `f32` compiled for AVX-512.
///
/// # Safety
/// As [`kernel::run_block`]; the `Avx512` value proves the CPU features.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) unsafe fn block_f32(t: Avx512, blk: &mut Block<'_, f32>) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::run_block::<f32, Avx512, MR, NV>(t, blk) }
}

/// [`kernel::run_block`] for `f64` compiled for AVX-512.
///
/// # Safety
/// As [`kernel::run_block`]; the `Avx512` value proves the CPU features.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) unsafe fn block_f64(t: Avx512, blk: &mut Block<'_, f64>) {
    // SAFETY: forwarded to the caller.
    unsafe { kernel::run_block::<f64, Avx512, MR, NV>(t, blk) }
}

/// [`kernel::small`] compiled for AVX-512 (`mul_add` is one instruction).
///
/// # Safety
/// As [`kernel::small`]; the `Avx512` value proves the CPU features.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) unsafe fn small<T: Element>(
    _: Avx512,
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
