//! The AVX2+FMA backend and its `#[target_feature]` entry points.
//!
//! [`Avx2`] can only be constructed by [`Avx2::new`], which checks the CPU at
//! run time; holding one is the proof that the intrinsics below may run. The
//! entry points at the bottom instantiate the generic kernels of
//! [`math`](super::math) with this backend inside a function compiled for
//! `avx2,fma`, so the `#[inline(always)]` trait methods become single
//! instructions.

// Every `unsafe` block below calls AVX, AVX2 or FMA intrinsics. They are
// reached only through a value of type `Avx2` (a `self` or a `_: Avx2`
// argument), which `Avx2::new` hands out only after `is_x86_feature_detected!`
// confirmed both `avx2` and `fma`. Loads and stores convert their slices to
// `&[f32; 8]` / `&mut [MaybeUninit<f32>; 8]` first (a checked conversion), so
// their 32 bytes are valid memory.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::math::{self, Sampler, Stores};
use super::torch;
use super::vector::{Backend, Simd};
use crate::rng::Stream;
use crate::rng::mt19937::Mt19937;

/// Proof that the CPU supports AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// `Some` if and only if this CPU has AVX2 and FMA.
    pub(crate) fn new() -> Option<Avx2> {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Some(Avx2(()))
        } else {
            None
        }
    }
}

impl Avx2 {
    /// One xoshiro256++ step of lanes `4h..4h + 4`.
    #[inline(always)]
    fn xoshiro_step(self, rng: &mut Avx2Rng, h: usize) -> __m256i {
        let (s0, s1, s2, s3) = (rng.s[0][h], rng.s[1][h], rng.s[2][h], rng.s[3][h]);
        // SAFETY: `self: Avx2` proves AVX2 is available.
        unsafe {
            // result = rotl(s0 + s3, 23) + s0
            let out = _mm256_add_epi64(rotl64::<23, 41>(self, _mm256_add_epi64(s0, s3)), s0);
            let t = _mm256_slli_epi64::<17>(s1);
            let s2 = _mm256_xor_si256(s2, s0);
            let s3 = _mm256_xor_si256(s3, s1);
            let s1 = _mm256_xor_si256(s1, s2);
            let s0 = _mm256_xor_si256(s0, s3);
            let s2 = _mm256_xor_si256(s2, t);
            let s3 = rotl64::<45, 19>(self, s3);
            rng.s[0][h] = s0;
            rng.s[1][h] = s1;
            rng.s[2][h] = s2;
            rng.s[3][h] = s3;
            out
        }
    }
}

/// Eight xoshiro256++ states: `s[j][h]` is word `j` of lanes `4h..4h+4`.
pub(crate) struct Avx2Rng {
    s: [[__m256i; 2]; 4],
}

#[inline(always)]
fn rotl64<const L: i32, const R: i32>(_: Avx2, x: __m256i) -> __m256i {
    // SAFETY: the `Avx2` argument proves AVX2 is available.
    unsafe { _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x)) }
}

/// `f32` lanes of an AVX2 vector.
const WIDTH: usize = 8;

impl Simd for Avx2 {
    type F = __m256;
    type I = __m256i;
    /// All ones in a set lane, zero elsewhere (as `vcmpps` makes them).
    type M = __m256i;

    #[inline(always)]
    fn splat(self, v: f32) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_set1_ps(v) }
    }
    #[inline(always)]
    fn splat_i(self, v: i32) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_set1_epi32(v) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, a: __m256) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_sqrt_ps(a) }
    }
    #[inline(always)]
    fn i_to_f(self, a: __m256i) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_cvtepi32_ps(a) }
    }
    #[inline(always)]
    fn trunc_i(self, a: __m256) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_cvttps_epi32(a) }
    }
    #[inline(always)]
    fn bitcast_i(self, a: __m256) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_castps_si256(a) }
    }
    #[inline(always)]
    fn bitcast_f(self, a: __m256i) -> __m256 {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_castsi256_ps(a) }
    }
    #[inline(always)]
    fn and(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_and_si256(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_or_si256(a, b) }
    }
    #[inline(always)]
    fn xor(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_xor_si256(a, b) }
    }
    #[inline(always)]
    fn and_not(self, a: __m256i, b: __m256i) -> __m256i {
        // `andnot(x, y)` computes `!x & y`.
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_andnot_si256(b, a) }
    }
    #[inline(always)]
    fn add_i(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    fn sub_i(self, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_sub_epi32(a, b) }
    }
    #[inline(always)]
    fn shr<const N: i32>(self, a: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_srli_epi32::<N>(a) }
    }
    #[inline(always)]
    fn shl<const N: i32>(self, a: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_slli_epi32::<N>(a) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b)) }
    }
    #[inline(always)]
    fn ne(self, a: __m256, b: __m256) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_castps_si256(_mm256_cmp_ps::<_CMP_NEQ_OQ>(a, b)) }
    }
    #[inline(always)]
    fn sign_mask(self, a: __m256i) -> __m256i {
        // (Where the mask only feeds `blendv`, which reads the sign bit
        // alone, LLVM drops this shift.)
        // SAFETY: `self: Avx2` proves AVX2 is available.
        unsafe { _mm256_srai_epi32::<31>(a) }
    }
    #[inline(always)]
    fn mask_or(self, a: __m256i, b: __m256i) -> __m256i {
        self.or(a, b)
    }
    #[inline(always)]
    fn mask_and(self, a: __m256i, b: __m256i) -> __m256i {
        self.and(a, b)
    }
    #[inline(always)]
    fn and_m(self, m: __m256i, a: __m256i) -> __m256i {
        self.and(m, a)
    }
    #[inline(always)]
    fn sra<const N: i32>(self, a: __m256i) -> __m256i {
        // SAFETY: `self: Avx2` proves AVX2 is available.
        unsafe { _mm256_srai_epi32::<N>(a) }
    }
    #[inline(always)]
    fn any(self, m: __m256i) -> bool {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_movemask_ps(_mm256_castsi256_ps(m)) != 0 }
    }
    #[inline(always)]
    fn all(self, m: __m256i) -> bool {
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xff }
    }
    #[inline(always)]
    fn blend(self, m: __m256i, a: __m256, b: __m256) -> __m256 {
        // `blendv(x, y, m)` takes `y` where the sign bit of `m` is set.
        // SAFETY: `self: Avx2` proves AVX is available.
        unsafe { _mm256_blendv_ps(b, a, _mm256_castsi256_ps(m)) }
    }
}

impl Backend for Avx2 {
    const LANES: usize = WIDTH;

    type Rng = Avx2Rng;

    #[inline(always)]
    fn rng_new(self, states: &[[u64; 4]; 8]) -> Avx2Rng {
        // (No closure around the intrinsic: see `rng_next`.)
        let mut s = [[self.splat_i(0); 2]; 4];
        for (j, words) in s.iter_mut().enumerate() {
            for (h, v) in words.iter_mut().enumerate() {
                let l = 4 * h;
                // SAFETY: `self: Avx2` proves AVX is available.
                *v = unsafe {
                    _mm256_set_epi64x(
                        states[l + 3][j] as i64,
                        states[l + 2][j] as i64,
                        states[l + 1][j] as i64,
                        states[l][j] as i64,
                    )
                };
            }
        }
        Avx2Rng { s }
    }

    #[inline(always)]
    fn rng_next(self, rng: &mut Avx2Rng) -> [__m256i; 2] {
        // No closures here: a closure is a separate function without the
        // `avx2` feature, which would turn every intrinsic into a call.
        [self.xoshiro_step(rng, 0), self.xoshiro_step(rng, 1)]
    }

    #[inline(always)]
    fn rng_skip_step(self, rng: &mut Avx2Rng) {
        self.rng_next(rng);
    }

    /// One step per group: partners are already in the same lane.
    #[inline(always)]
    fn pair_i(self, v: [__m256i; 2]) -> [__m256i; 2] {
        v
    }
    #[inline(always)]
    fn pair_f(self, v: [__m256; 2]) -> [__m256; 2] {
        v
    }

    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> __m256i {
        let src: &[u32; WIDTH] = src.try_into().expect("WIDTH words");
        // SAFETY: `self: Avx2` proves AVX is available; the array reference covers the 32 bytes accessed.
        unsafe { _mm256_loadu_si256(src.as_ptr().cast::<__m256i>()) }
    }
    #[inline(always)]
    fn store_u32(self, dst: &mut [u32], v: __m256i) {
        let dst: &mut [u32; WIDTH] = dst.try_into().expect("WIDTH words");
        // SAFETY: `self: Avx2` proves AVX is available; the array reference covers the 32 bytes accessed.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast::<__m256i>(), v) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m256 {
        let src: &[f32; WIDTH] = src.try_into().expect("WIDTH floats");
        // SAFETY: `self: Avx2` proves AVX is available; the array reference covers the 32 bytes accessed.
        unsafe { _mm256_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, dst: &mut [MaybeUninit<f32>], v: __m256) {
        let dst: &mut [MaybeUninit<f32>; WIDTH] = dst.try_into().expect("WIDTH slots");
        // SAFETY: `self: Avx2` proves AVX is available; the array reference covers the 32 bytes accessed.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr().cast::<f32>(), v) }
    }
    #[inline(always)]
    fn store_stream(self, dst: &mut [MaybeUninit<f32>], v: __m256) {
        let dst: &mut [MaybeUninit<f32>; WIDTH] = dst.try_into().expect("WIDTH slots");
        let p = dst.as_mut_ptr().cast::<f32>();
        debug_assert_eq!(
            p as usize % 32,
            0,
            "streaming store to an unaligned address"
        );
        // SAFETY: `self: Avx2` proves AVX is available; 32 valid bytes, alignment asserted above.
        unsafe { _mm256_stream_ps(p, v) }
    }
    #[inline(always)]
    fn fence(self) {
        // SAFETY: `self: Avx2` proves AVX2 and FMA are available.
        unsafe { _mm_sfence() }
    }
}

/// Fills `out` with elements `[offset, offset + out.len())` of `stream`
/// under `sampler`, with AVX2+FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn fill<S: Sampler>(
    isa: Avx2,
    sampler: &S,
    stream: Stream,
    offset: u64,
    out: &mut [MaybeUninit<f32>],
    stores: Stores,
) {
    math::fill_range(isa, sampler, stream, offset, out, stores);
}

/// `w = |w| < threshold ? ±0 : w` over `data`, with AVX2.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn threshold_mask(isa: Avx2, data: &mut [f32], threshold: f32) {
    math::threshold_mask(isa, data, threshold);
}

/// PyTorch's `uniform_` from `mt`, with AVX2 (see [`torch`]).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn torch_uniform(
    isa: Avx2,
    mt: &mut Mt19937,
    from: f32,
    to: f32,
    out: &mut [MaybeUninit<f32>],
) {
    torch::uniform_fill(isa, mt, from, to, out);
}

/// PyTorch's large-path `normal_` from `mt`, with AVX2.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn torch_normal(
    isa: Avx2,
    mt: &mut Mt19937,
    mean: f32,
    std: f32,
    out: &mut [MaybeUninit<f32>],
) {
    torch::normal_fill(isa, mt, mean, std, out);
}

/// The next words of `mt`, with AVX2.
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn torch_words(isa: Avx2, mt: &mut Mt19937, out: &mut [u32]) {
    torch::words(isa, mt, out);
}

/// Fills `out` with `value`, with AVX2.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn constant(isa: Avx2, out: &mut [MaybeUninit<f32>], value: f32, stores: Stores) {
    math::constant(isa, out, value, stores);
}
