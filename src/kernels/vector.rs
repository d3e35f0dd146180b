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
//! kernel gives the same bits on every
//! backend. No approximate reciprocals.

use std::mem::MaybeUninit;

/// Number of `f32` lanes of one vector.
pub(crate) const WIDTH: usize = 8;

/// Arithmetic on vectors of `f32` and of 32-bit integers.
///
/// Implemented by the instruction-set backends (eight lanes) and by [`X2`],
/// which runs two independent computations in lockstep.
pub(crate) trait Simd: Copy {
    /// A vector of `f32`.
    type F: Copy;
    /// A vector of 32-bit integers (the same bits can hold `u64` lanes).
    type I: Copy;

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
    /// All ones where `a < b` (ordered: false if either is NaN), else zero.
    fn lt(self, a: Self::F, b: Self::F) -> Self::I;
    /// Arithmetic right shift of each 32-bit lane.
    fn sra<const N: i32>(self, a: Self::I) -> Self::I;
    /// Whether the sign bit of any 32-bit lane is set (for masks from
    /// [`lt`](Self::lt): whether any lane is true). Kernels use it only to
    /// skip work whose result no lane selects, never to change a value.
    fn any(self, mask: Self::I) -> bool;
    /// Lanes of `a` where the sign bit of `mask` is set, of `b` elsewhere
    /// (as `blendvps`).
    fn blend(self, mask: Self::I, a: Self::F, b: Self::F) -> Self::F;
}

/// An instruction set: eight-lane [`Simd`] plus the generators, loads and
/// stores the kernels need.
pub(crate) trait Backend: Simd {
    /// Eight xoshiro256++ generators (lanes 0..4 and 4..8).
    type Rng;

    /// Builds the eight generators from their states.
    fn rng_new(self, states: &[[u64; 4]; 8]) -> Self::Rng;
    /// Draws one `u64` from each generator: lanes 0..4 in the first vector,
    /// 4..8 in the second, each `u64` as two 32-bit lanes (low half first).
    fn rng_next(self, rng: &mut Self::Rng) -> [Self::I; 2];

    /// Loads eight 32-bit integers from `src[0..8]`.
    fn load_u32(self, src: &[u32; WIDTH]) -> Self::I;
    /// Stores eight 32-bit integers to `dst[0..8]`.
    fn store_u32(self, dst: &mut [u32; WIDTH], v: Self::I);
    /// Loads eight floats from `src[0..8]`.
    fn load(self, src: &[f32; WIDTH]) -> Self::F;
    /// Stores eight floats to `dst[0..8]`.
    fn store(self, dst: &mut [MaybeUninit<f32>; WIDTH], v: Self::F);
    /// Stores eight floats to `dst[0..8]` bypassing the caches. Only worth it
    /// for outputs much larger than the last-level cache; `dst` must be
    /// 32-byte aligned. Call [`fence`](Self::fence) after the last one.
    fn store_stream(self, dst: &mut [MaybeUninit<f32>; WIDTH], v: Self::F);
    /// Orders earlier streaming stores before later stores.
    fn fence(self);
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
    fn any(self, mask: Self::I) -> bool {
        self.0.any(self.0.or(mask[0], mask[1]))
    }
    #[inline(always)]
    fn blend(self, mask: Self::I, a: Self::F, b: Self::F) -> Self::F {
        [
            self.0.blend(mask[0], a[0], b[0]),
            self.0.blend(mask[1], a[1], b[1]),
        ]
    }
    x2_unary! {
        sqrt(a: F) -> F;
        i_to_f(a: I) -> F;
        trunc_i(a: F) -> I;
        bitcast_i(a: F) -> I;
        bitcast_f(a: I) -> F;
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
        lt(a: F, b: F) -> I;
    }
}
