//! The AVX-512 backend (16 `f32` lanes) and its `#[target_feature]` entry
//! points.
//!
//! [`Avx512`] can only be constructed by [`Avx512::new`], which checks the CPU
//! at run time; holding one is the proof that the intrinsics below may run.
//! The entry points at the bottom instantiate the same generic kernels as
//! `avx2.rs` inside functions compiled for AVX-512, so the
//! `#[inline(always)]` trait methods become single instructions.
//!
//! The eight xoshiro256++ generators of a block live in four 512-bit
//! registers, one per state word (eight `u64` lanes each), so one step draws
//! the 16 words of a step in one vector, in element order. A group is two
//! consecutive steps; Box–Muller's partners (slots `j` and `j + 8` of a step)
//! are brought into the same lane by swapping 256-bit halves between the two
//! vectors ([`Backend::pair_i`]). Comparisons give `__mmask16` masks, blends
//! are `vblendmps`, and partial loads and stores are masked.

// Every `unsafe` block below calls AVX-512F/BW/DQ/VL, AVX2 or FMA intrinsics.
// They are reached only through a value of type `Avx512` (a `self` or a
// `_: Avx512` argument), which `Avx512::new` hands out only after
// `is_x86_feature_detected!` confirmed all of them. Full-width loads and
// stores convert their slices to `&[f32; 16]` / `&mut [MaybeUninit<f32>; 16]`
// first (a checked conversion), so their 64 bytes are valid memory; masked
// ones enable only lanes inside their slice.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::math::{self, Sampler, Stores};
use super::torch;
use super::vector::{Backend, Simd};
use crate::rng::Stream;
use crate::rng::mt19937::Mt19937;

/// Proof that the CPU supports AVX-512F, BW, DQ and VL, AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// `Some` if and only if this CPU has AVX-512F, AVX-512BW, AVX-512DQ,
    /// AVX-512VL, AVX2 and FMA (the OS saving the 512-bit state included:
    /// `is_x86_feature_detected!` checks `XCR0`).
    pub(crate) fn new() -> Option<Avx512> {
        let all = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma");
        all.then_some(Avx512(()))
    }
}

/// `f32` lanes of an AVX-512 vector.
const WIDTH: usize = 16;

/// Eight xoshiro256++ states: `s[j]` is word `j` of all eight lanes.
pub(crate) struct Avx512Rng {
    s: [__m512i; 4],
}

impl Avx512 {
    /// One xoshiro256++ step of all eight lanes: the 16 words of one step.
    #[inline(always)]
    fn xoshiro_step(self, rng: &mut Avx512Rng) -> __m512i {
        let [s0, s1, s2, s3] = rng.s;
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe {
            // result = rotl(s0 + s3, 23) + s0
            let out = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
            let t = _mm512_slli_epi64::<17>(s1);
            let s2 = _mm512_xor_si512(s2, s0);
            let s3 = _mm512_xor_si512(s3, s1);
            let s1 = _mm512_xor_si512(s1, s2);
            let s0 = _mm512_xor_si512(s0, s3);
            let s2 = _mm512_xor_si512(s2, t);
            let s3 = _mm512_rol_epi64::<45>(s3);
            rng.s = [s0, s1, s2, s3];
            out
        }
    }

    /// A shift count for the `*_epi32(a, count)` shifts (the immediate forms
    /// take a `u32` constant, the trait an `i32` one; LLVM turns a constant
    /// count back into the immediate form).
    #[inline(always)]
    fn count(self, n: i32) -> __m128i {
        // SAFETY: `self: Avx512` proves SSE2 is available.
        unsafe { _mm_cvtsi32_si128(n) }
    }

    /// Loads eight `u64`s.
    #[inline(always)]
    fn load_u64x8(self, src: &[u64; 8]) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array
        // reference covers the 64 bytes loaded.
        unsafe { _mm512_loadu_si512(src.as_ptr().cast::<__m512i>()) }
    }

    /// The mask of the first `n <= 16` lanes.
    #[inline(always)]
    fn first(self, n: usize) -> __mmask16 {
        debug_assert!(n <= WIDTH);
        ((1u32 << n) - 1) as __mmask16
    }
}

impl Simd for Avx512 {
    type F = __m512;
    type I = __m512i;
    type M = __mmask16;

    #[inline(always)]
    fn splat(self, v: f32) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_set1_ps(v) }
    }
    #[inline(always)]
    fn splat_i(self, v: i32) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_set1_epi32(v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // `vminps` returns the second operand when either is NaN (or both
        // are zeros), as `minps` does.
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, a: __m512) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_sqrt_ps(a) }
    }
    #[inline(always)]
    fn i_to_f(self, a: __m512i) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_cvtepi32_ps(a) }
    }
    #[inline(always)]
    fn trunc_i(self, a: __m512) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_cvttps_epi32(a) }
    }
    #[inline(always)]
    fn bitcast_i(self, a: __m512) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_castps_si512(a) }
    }
    #[inline(always)]
    fn bitcast_f(self, a: __m512i) -> __m512 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_castsi512_ps(a) }
    }
    #[inline(always)]
    fn and(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_and_si512(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_or_si512(a, b) }
    }
    #[inline(always)]
    fn xor(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_xor_si512(a, b) }
    }
    #[inline(always)]
    fn and_not(self, a: __m512i, b: __m512i) -> __m512i {
        // `andnot(x, y)` computes `!x & y`.
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_andnot_si512(b, a) }
    }
    #[inline(always)]
    fn add_i(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    fn sub_i(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_sub_epi32(a, b) }
    }
    #[inline(always)]
    fn shr<const N: i32>(self, a: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_srl_epi32(a, self.count(N)) }
    }
    #[inline(always)]
    fn shl<const N: i32>(self, a: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_sll_epi32(a, self.count(N)) }
    }
    #[inline(always)]
    fn sra<const N: i32>(self, a: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_sra_epi32(a, self.count(N)) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn ne(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_cmp_ps_mask::<_CMP_NEQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn sign_mask(self, a: __m512i) -> __mmask16 {
        // SAFETY: `self: Avx512` proves AVX-512DQ is available.
        unsafe { _mm512_movepi32_mask(a) }
    }
    #[inline(always)]
    fn mask_or(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn mask_and(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline(always)]
    fn and_m(self, m: __mmask16, a: __m512i) -> __m512i {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_maskz_mov_epi32(m, a) }
    }
    #[inline(always)]
    fn any(self, m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    fn all(self, m: __mmask16) -> bool {
        m == 0xffff
    }
    #[inline(always)]
    fn blend(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        // `mask_blend(k, x, y)` takes `y` where `k` is set.
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe { _mm512_mask_blend_ps(m, b, a) }
    }
}

impl Backend for Avx512 {
    const LANES: usize = WIDTH;

    type Rng = Avx512Rng;

    #[inline(always)]
    fn rng_new(self, states: &[[u64; 4]; 8]) -> Avx512Rng {
        let mut s = [[0u64; 8]; 4];
        for (lane, state) in states.iter().enumerate() {
            for (j, &word) in state.iter().enumerate() {
                s[j][lane] = word;
            }
        }
        // (No closure around the intrinsic: see `rng_next`.)
        let mut v = [self.splat_i(0); 4];
        for (v, words) in v.iter_mut().zip(&s) {
            *v = self.load_u64x8(words);
        }
        Avx512Rng { s: v }
    }

    #[inline(always)]
    fn rng_next(self, rng: &mut Avx512Rng) -> [__m512i; 2] {
        // No closures here: a closure is a separate function without the
        // target features, which would turn every intrinsic into a call.
        let first = self.xoshiro_step(rng);
        [first, self.xoshiro_step(rng)]
    }

    #[inline(always)]
    fn rng_skip_step(self, rng: &mut Avx512Rng) {
        self.xoshiro_step(rng);
    }

    /// `[a, b]` to `[a.lo, b.lo]`, `[a.hi, b.hi]` (256-bit halves): slots
    /// 0..8 of both steps in one vector, slots 8..16 in the other.
    #[inline(always)]
    fn pair_i(self, [a, b]: [__m512i; 2]) -> [__m512i; 2] {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe {
            [
                _mm512_shuffle_i64x2::<0b01_00_01_00>(a, b),
                _mm512_shuffle_i64x2::<0b11_10_11_10>(a, b),
            ]
        }
    }
    #[inline(always)]
    fn pair_f(self, [a, b]: [__m512; 2]) -> [__m512; 2] {
        // SAFETY: `self: Avx512` proves AVX-512F is available.
        unsafe {
            [
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
            ]
        }
    }

    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> __m512i {
        let src: &[u32; WIDTH] = src.try_into().expect("WIDTH words");
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array reference covers the 64 bytes accessed.
        unsafe { _mm512_loadu_si512(src.as_ptr().cast::<__m512i>()) }
    }
    #[inline(always)]
    fn store_u32(self, dst: &mut [u32], v: __m512i) {
        let dst: &mut [u32; WIDTH] = dst.try_into().expect("WIDTH words");
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array reference covers the 64 bytes accessed.
        unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast::<__m512i>(), v) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m512 {
        let src: &[f32; WIDTH] = src.try_into().expect("WIDTH floats");
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array reference covers the 64 bytes accessed.
        unsafe { _mm512_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, dst: &mut [MaybeUninit<f32>], v: __m512) {
        let dst: &mut [MaybeUninit<f32>; WIDTH] = dst.try_into().expect("WIDTH slots");
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array reference covers the 64 bytes accessed.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().cast::<f32>(), v) }
    }
    #[inline(always)]
    fn store_stream(self, dst: &mut [MaybeUninit<f32>], v: __m512) {
        let dst: &mut [MaybeUninit<f32>; WIDTH] = dst.try_into().expect("WIDTH slots");
        let p = dst.as_mut_ptr().cast::<f32>();
        debug_assert_eq!(
            p as usize % 64,
            0,
            "streaming store to an unaligned address"
        );
        // SAFETY: `self: Avx512` proves AVX-512F is available; the array
        // reference covers the 64 bytes written. Callers pass 64-byte aligned
        // slots (`math::use_streaming`; asserted in debug builds); a
        // misaligned address would fault, never write elsewhere.
        unsafe { _mm512_stream_ps(p, v) }
    }
    #[inline(always)]
    fn fence(self) {
        // SAFETY: `self: Avx512` proves SSE is available.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    fn load_partial(self, src: &[f32]) -> __m512 {
        let k = self.first(src.len());
        // SAFETY: `self: Avx512` proves AVX-512F is available; only the first
        // `src.len()` lanes are enabled, and the masked-off lanes are neither
        // read nor able to fault, so only `src` is accessed.
        unsafe { _mm512_maskz_loadu_ps(k, src.as_ptr()) }
    }
    #[inline(always)]
    fn store_partial(self, dst: &mut [MaybeUninit<f32>], v: __m512) {
        let k = self.first(dst.len());
        // SAFETY: `self: Avx512` proves AVX-512F is available; only the first
        // `dst.len()` lanes are enabled, so only `dst` is written.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().cast::<f32>(), k, v) }
    }
}

/// Fills `out` with elements `[offset, offset + out.len())` of `stream`
/// under `sampler`, with AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn fill<S: Sampler>(
    isa: Avx512,
    sampler: &S,
    stream: Stream,
    offset: u64,
    out: &mut [MaybeUninit<f32>],
    stores: Stores,
) {
    math::fill_range(isa, sampler, stream, offset, out, stores);
}

/// `w = |w| < threshold ? ±0 : w` over `data`, with AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn threshold_mask(isa: Avx512, data: &mut [f32], threshold: f32) {
    math::threshold_mask(isa, data, threshold);
}

/// PyTorch's `uniform_` from `mt`, with AVX-512 (see [`torch`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn torch_uniform(
    isa: Avx512,
    mt: &mut Mt19937,
    from: f32,
    to: f32,
    out: &mut [MaybeUninit<f32>],
) {
    torch::uniform_fill(isa, mt, from, to, out);
}

/// PyTorch's large-path `normal_` from `mt`, with AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn torch_normal(
    isa: Avx512,
    mt: &mut Mt19937,
    mean: f32,
    std: f32,
    out: &mut [MaybeUninit<f32>],
) {
    torch::normal_fill(isa, mt, mean, std, out);
}

/// The next words of `mt`, with AVX-512.
#[cfg(test)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn torch_words(isa: Avx512, mt: &mut Mt19937, out: &mut [u32]) {
    torch::words(isa, mt, out);
}

/// Fills `out` with `value`, with AVX-512.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(crate) fn constant(isa: Avx512, out: &mut [MaybeUninit<f32>], value: f32, stores: Stores) {
    math::constant(isa, out, value, stores);
}
