//! The small vector trait every kernel is written against.
//!
//! A [`Backend`] value is a zero-sized proof that its instruction set may be
//! used (only [`Scalar`](super::scalar::Scalar) is constructible without a
//! run-time check). Kernels are written once, `#[inline(always)]`, generic over
//! `Backend`, and instantiated inside one `#[target_feature]` function per
//! instruction set.
//!
//! Every operation here is exact or correctly rounded (IEEE add, sub, mul,
//! fused multiply-add, sqrt, min/max, conversions with round-to-nearest-even,
//! integer and bit operations; division where a kernel needs it), so a
//! kernel gives the same bits on every backend, whatever its vector width.
//! No approximate reciprocals.
//!
//! # Vector width and groups
//! A backend's vectors have [`Backend::LANES`] `f32` lanes: 8 (scalar, AVX2)
//! or 16 (AVX-512). The random fills work on *groups* of `2 · LANES`
//! consecutive elements, held as two vectors in element order: one step of
//! the eight xoshiro256++ lanes (16 values) for an 8-lane backend, two
//! consecutive steps for a 16-lane one. The Box–Muller transforms (the
//! crate's own and PyTorch's `NormalFill16`) pair element `j` with element
//! `j + 8` of every run of 16; [`Backend::pair_i`] / [`Backend::pair_f`]
//! rearrange a group so that those partners sit in the same lane of the two
//! vectors (the identity for 8 lanes, a swap of 256-bit halves for 16), and
//! the same call puts the results back in element order.

use std::mem::MaybeUninit;

/// The widest vector of any backend, in `f32` lanes (for stack buffers).
pub(crate) const MAX_LANES: usize = 16;

/// A value on a cache-line boundary, for the kernels' stack buffers.
///
/// A local of this type also makes the compiler realign the whole stack
/// frame, so the vector registers a kernel spills (AVX2 has only 16) land on
/// aligned slots. With the frame only 16-byte aligned, as the ABI
/// guarantees, a third of the 32-byte spills and reloads straddle two cache
/// lines and cannot be store-forwarded: the AVX2 uniform fill ran at 5.3 or
/// 9.3 ms per 16M values depending on the caller's stack depth. And a
/// 64-byte load from a buffer that is only 4-byte aligned splits a line
/// every time.
#[repr(align(64))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheAligned<T>(pub(crate) T);

/// Arithmetic on vectors of `f32` and of 32-bit integers.
///
/// Implemented by the instruction-set backends (8 or 16 lanes) and by
/// [`X2`], which runs two independent computations in lockstep. Kernels
/// written against `Simd` alone are lane-wise and do not depend on the width.
pub(crate) trait Simd: Copy {
    /// A vector of `f32`.
    type F: Copy;
    /// A vector of 32-bit integers (the same bits can hold `u64` lanes).
    type I: Copy;
    /// A lane mask, as comparisons produce it: an all-ones/all-zeros vector
    /// on the scalar and AVX2 backends, a `__mmask16` on AVX-512.
    type M: Copy;

    /// All lanes `v`.
    fn splat(self, v: f32) -> Self::F;
    /// All lanes `v`.
    fn splat_i(self, v: i32) -> Self::I;
    /// `a + b`.
    fn add(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a - b`.
    fn sub(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b`.
    fn mul(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c` with a single rounding.
    fn fma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `min(a, b)`; `b` when either is NaN (as `minps`).
    fn min(self, a: Self::F, b: Self::F) -> Self::F;
    /// `max(a, b)`; `b` when either is NaN (as `maxps`).
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a / b`, correctly rounded.
    fn div(self, a: Self::F, b: Self::F) -> Self::F;
    /// Correctly rounded square root.
    fn sqrt(self, a: Self::F) -> Self::F;
    /// Converts signed 32-bit integers to `f32`, rounding to nearest even.
    fn i_to_f(self, a: Self::I) -> Self::F;
    /// Converts `f32` to signed 32-bit integers, rounding toward zero
    /// (`cvttps2dq`). Kernels use it only on values well inside the `i32`
    /// range.
    fn trunc_i(self, a: Self::F) -> Self::I;
    /// The bits of `a`.
    fn bitcast_i(self, a: Self::F) -> Self::I;
    /// The floats with bits `a`.
    fn bitcast_f(self, a: Self::I) -> Self::F;
    /// Lane-wise `a & b`.
    fn and(self, a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise `a | b`.
    fn or(self, a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise `a ^ b`.
    fn xor(self, a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise `a & !b`.
    fn and_not(self, a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise wrapping `a + b` on 32-bit lanes.
    fn add_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise wrapping `a - b` on 32-bit lanes.
    fn sub_i(self, a: Self::I, b: Self::I) -> Self::I;
    /// Logical right shift of each 32-bit lane.
    fn shr<const N: i32>(self, a: Self::I) -> Self::I;
    /// Left shift of each 32-bit lane.
    fn shl<const N: i32>(self, a: Self::I) -> Self::I;
    /// Arithmetic right shift of each 32-bit lane.
    fn sra<const N: i32>(self, a: Self::I) -> Self::I;
    /// Set where `a < b` (ordered: clear if either is NaN).
    fn lt(self, a: Self::F, b: Self::F) -> Self::M;
    /// Set where `a < b || a > b` (ordered not-equal: clear if either is
    /// NaN).
    fn ne(self, a: Self::F, b: Self::F) -> Self::M;
    /// Set where the sign bit of the 32-bit lane of `a` is set.
    fn sign_mask(self, a: Self::I) -> Self::M;
    /// Lane-wise `a | b` of masks.
    fn mask_or(self, a: Self::M, b: Self::M) -> Self::M;
    /// Lane-wise `a & b` of masks.
    fn mask_and(self, a: Self::M, b: Self::M) -> Self::M;
    /// `a` where `m` is set, zero elsewhere.
    fn and_m(self, m: Self::M, a: Self::I) -> Self::I;
    /// Whether any lane of `m` is set. Kernels use it (and
    /// [`all`](Self::all)) only to skip work whose result no lane selects,
    /// never to change a value.
    fn any(self, m: Self::M) -> bool;
    /// Whether every lane of `m` is set.
    fn all(self, m: Self::M) -> bool;
    /// Lanes of `a` where `m` is set, of `b` elsewhere.
    fn blend(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
}

/// An instruction set: [`Simd`] of [`LANES`](Self::LANES) lanes plus the
/// generators, loads and stores the kernels need.
///
/// Loads and stores take slices of exactly `LANES` elements (the partial
/// ones at most `LANES`) and panic otherwise; the kernels cut them with
/// lengths that are constants after inlining, so the checks compile away.
pub(crate) trait Backend: Simd {
    /// `f32` lanes of one vector: 8 or 16 (at most [`MAX_LANES`]).
    const LANES: usize;

    /// Eight xoshiro256++ generators.
    type Rng;

    /// Builds the eight generators from their states.
    fn rng_new(self, states: &[[u64; 4]; 8]) -> Self::Rng;
    /// Draws the next group: `LANES / 8` steps (one `u64` from each
    /// generator per step), `2 · LANES` 32-bit words in element order (a
    /// step's words are the generators' `u64`s in lane order, low half
    /// first).
    fn rng_next(self, rng: &mut Self::Rng) -> [Self::I; 2];
    /// Advances the generators by one step, discarding its words.
    fn rng_skip_step(self, rng: &mut Self::Rng);
    /// Rearranges a group of words so that element `j` and element `j + 8`
    /// of every run of 16 are in the same lane of the two vectors; applied
    /// twice, the identity (module docs).
    fn pair_i(self, v: [Self::I; 2]) -> [Self::I; 2];
    /// [`pair_i`](Self::pair_i) for floats.
    fn pair_f(self, v: [Self::F; 2]) -> [Self::F; 2];

    /// Loads `LANES` 32-bit integers.
    fn load_u32(self, src: &[u32]) -> Self::I;
    /// Stores `LANES` 32-bit integers.
    fn store_u32(self, dst: &mut [u32], v: Self::I);
    /// Loads `LANES` floats.
    fn load(self, src: &[f32]) -> Self::F;
    /// Stores `LANES` floats.
    fn store(self, dst: &mut [MaybeUninit<f32>], v: Self::F);
    /// Stores `LANES` floats bypassing the caches. Only worth it for outputs
    /// much larger than the last-level cache; `dst` must be aligned to the
    /// vector size (`4 · LANES` bytes). Call [`fence`](Self::fence) after
    /// the last one.
    fn store_stream(self, dst: &mut [MaybeUninit<f32>], v: Self::F);
    /// Orders earlier streaming stores before later stores.
    fn fence(self);

    /// Loads `src.len() <= LANES` floats; the other lanes are zero.
    #[inline(always)]
    fn load_partial(self, src: &[f32]) -> Self::F {
        let mut padded = [0.0f32; MAX_LANES];
        padded[..src.len()].copy_from_slice(src);
        self.load(&padded[..Self::LANES])
    }
    /// Stores the first `dst.len() <= LANES` lanes of `v`.
    #[inline(always)]
    fn store_partial(self, dst: &mut [MaybeUninit<f32>], v: Self::F) {
        let mut spill = [MaybeUninit::<f32>::uninit(); MAX_LANES];
        self.store(&mut spill[..Self::LANES], v);
        let n = dst.len();
        dst.copy_from_slice(&spill[..n]);
    }
}

/// Two independent computations in lockstep: every operation is issued for
/// both halves before the next one.
///
/// The Box–Muller transform is one long dependency chain (about 80 cycles);
/// running two steps interleaved gives the out-of-order core twice the
/// independent work within its scheduler window, which is what limits it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct X2<S>(pub(crate) S);

macro_rules! x2_unary {
    ($($name:ident($a:ident: $ta:ident) -> $r:ident;)*) => {$(
        #[inline(always)]
        fn $name(self, $a: Self::$ta) -> Self::$r {
            [self.0.$name($a[0]), self.0.$name($a[1])]
        }
    )*};
}

macro_rules! x2_binary {
    ($($name:ident($a:ident: $ta:ident, $b:ident: $tb:ident) -> $r:ident;)*) => {$(
        #[inline(always)]
        fn $name(self, $a: Self::$ta, $b: Self::$tb) -> Self::$r {
            [self.0.$name($a[0], $b[0]), self.0.$name($a[1], $b[1])]
        }
    )*};
}

impl<S: Simd> Simd for X2<S> {
    type F = [S::F; 2];
    type I = [S::I; 2];
    type M = [S::M; 2];

    #[inline(always)]
    fn splat(self, v: f32) -> Self::F {
        let x = self.0.splat(v);
        [x, x]
    }
    #[inline(always)]
    fn splat_i(self, v: i32) -> Self::I {
        let x = self.0.splat_i(v);
        [x, x]
    }
    #[inline(always)]
    fn fma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F {
        [self.0.fma(a[0], b[0], c[0]), self.0.fma(a[1], b[1], c[1])]
    }
    #[inline(always)]
    fn shr<const N: i32>(self, a: Self::I) -> Self::I {
        [self.0.shr::<N>(a[0]), self.0.shr::<N>(a[1])]
    }
    #[inline(always)]
    fn shl<const N: i32>(self, a: Self::I) -> Self::I {
        [self.0.shl::<N>(a[0]), self.0.shl::<N>(a[1])]
    }
    #[inline(always)]
    fn sra<const N: i32>(self, a: Self::I) -> Self::I {
        [self.0.sra::<N>(a[0]), self.0.sra::<N>(a[1])]
    }
    #[inline(always)]
    fn and_m(self, m: Self::M, a: Self::I) -> Self::I {
        [self.0.and_m(m[0], a[0]), self.0.and_m(m[1], a[1])]
    }
    #[inline(always)]
    fn any(self, m: Self::M) -> bool {
        self.0.any(self.0.mask_or(m[0], m[1]))
    }
    #[inline(always)]
    fn all(self, m: Self::M) -> bool {
        self.0.all(self.0.mask_and(m[0], m[1]))
    }
    #[inline(always)]
    fn blend(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F {
        [
            self.0.blend(m[0], a[0], b[0]),
            self.0.blend(m[1], a[1], b[1]),
        ]
    }
    x2_unary! {
        sqrt(a: F) -> F;
        i_to_f(a: I) -> F;
        trunc_i(a: F) -> I;
        bitcast_i(a: F) -> I;
        bitcast_f(a: I) -> F;
        sign_mask(a: I) -> M;
    }
    x2_binary! {
        add(a: F, b: F) -> F;
        sub(a: F, b: F) -> F;
        mul(a: F, b: F) -> F;
        min(a: F, b: F) -> F;
        max(a: F, b: F) -> F;
        div(a: F, b: F) -> F;
        and(a: I, b: I) -> I;
        or(a: I, b: I) -> I;
        xor(a: I, b: I) -> I;
        and_not(a: I, b: I) -> I;
        add_i(a: I, b: I) -> I;
        sub_i(a: I, b: I) -> I;
        lt(a: F, b: F) -> M;
        ne(a: F, b: F) -> M;
        mask_or(a: M, b: M) -> M;
        mask_and(a: M, b: M) -> M;
    }
}
