//! The portable backend: plain arrays and `rand_xoshiro` itself.
//!
//! This is the reference every SIMD backend is tested against, and the path
//! taken on CPUs without AVX2+FMA or when `NNINIT_ISA=scalar`. It uses only
//! correctly rounded operations (`f32::mul_add` where SIMD uses FMA), so it
//! gives the same bits as the vector backends.

use std::mem::MaybeUninit;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::Rng;

use super::vector::{Backend, Simd};

/// The scalar backend. Always available.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scalar;

/// Lanes of the scalar backend's "vectors" (arrays).
const WIDTH: usize = 8;

type F = [f32; WIDTH];
type I = [u32; WIDTH];

#[inline(always)]
fn map(a: F, f: impl Fn(f32) -> f32) -> F {
    a.map(f)
}

#[inline(always)]
fn zip(a: F, b: F, f: impl Fn(f32, f32) -> f32) -> F {
    std::array::from_fn(|i| f(a[i], b[i]))
}

#[inline(always)]
fn zip_i(a: I, b: I, f: impl Fn(u32, u32) -> u32) -> I {
    std::array::from_fn(|i| f(a[i], b[i]))
}

#[inline(always)]
fn mask(c: bool) -> u32 {
    if c { u32::MAX } else { 0 }
}

impl Simd for Scalar {
    type F = F;
    type I = I;
    /// All ones in a set lane, zero elsewhere.
    type M = I;

    #[inline(always)]
    fn splat(self, v: f32) -> F {
        [v; WIDTH]
    }
    #[inline(always)]
    fn splat_i(self, v: i32) -> I {
        [v as u32; WIDTH]
    }
    #[inline(always)]
    fn add(self, a: F, b: F) -> F {
        zip(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, a: F, b: F) -> F {
        zip(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, a: F, b: F) -> F {
        zip(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn fma(self, a: F, b: F, c: F) -> F {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    #[inline(always)]
    fn min(self, a: F, b: F) -> F {
        // `minps` semantics: the second operand unless `a < b`.
        zip(a, b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    fn max(self, a: F, b: F) -> F {
        // `maxps` semantics: the second operand unless `a > b`.
        zip(a, b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    fn div(self, a: F, b: F) -> F {
        zip(a, b, |x, y| x / y)
    }
    #[inline(always)]
    fn sqrt(self, a: F) -> F {
        map(a, f32::sqrt)
    }
    #[inline(always)]
    fn i_to_f(self, a: I) -> F {
        a.map(|x| x as i32 as f32)
    }
    #[inline(always)]
    fn trunc_i(self, a: F) -> I {
        a.map(|x| x as i32 as u32)
    }
    #[inline(always)]
    fn bitcast_i(self, a: F) -> I {
        a.map(f32::to_bits)
    }
    #[inline(always)]
    fn bitcast_f(self, a: I) -> F {
        a.map(f32::from_bits)
    }
    #[inline(always)]
    fn and(self, a: I, b: I) -> I {
        zip_i(a, b, |x, y| x & y)
    }
    #[inline(always)]
    fn or(self, a: I, b: I) -> I {
        zip_i(a, b, |x, y| x | y)
    }
    #[inline(always)]
    fn xor(self, a: I, b: I) -> I {
        zip_i(a, b, |x, y| x ^ y)
    }
    #[inline(always)]
    fn and_not(self, a: I, b: I) -> I {
        zip_i(a, b, |x, y| x & !y)
    }
    #[inline(always)]
    fn add_i(self, a: I, b: I) -> I {
        zip_i(a, b, u32::wrapping_add)
    }
    #[inline(always)]
    fn sub_i(self, a: I, b: I) -> I {
        zip_i(a, b, u32::wrapping_sub)
    }
    #[inline(always)]
    fn shr<const N: i32>(self, a: I) -> I {
        a.map(|x| x >> N)
    }
    #[inline(always)]
    fn shl<const N: i32>(self, a: I) -> I {
        a.map(|x| x << N)
    }
    #[inline(always)]
    fn lt(self, a: F, b: F) -> I {
        std::array::from_fn(|i| mask(a[i] < b[i]))
    }
    #[inline(always)]
    fn ne(self, a: F, b: F) -> I {
        // Ordered not-equal (`_CMP_NEQ_OQ`): false when either is NaN,
        // unlike `!=`.
        std::array::from_fn(|i| {
            mask(matches!(
                a[i].partial_cmp(&b[i]),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Greater)
            ))
        })
    }
    #[inline(always)]
    fn sign_mask(self, a: I) -> I {
        a.map(|x| mask(x >> 31 != 0))
    }
    #[inline(always)]
    fn mask_or(self, a: I, b: I) -> I {
        self.or(a, b)
    }
    #[inline(always)]
    fn mask_and(self, a: I, b: I) -> I {
        self.and(a, b)
    }
    #[inline(always)]
    fn and_m(self, m: I, a: I) -> I {
        self.and(m, a)
    }
    #[inline(always)]
    fn sra<const N: i32>(self, a: I) -> I {
        a.map(|x| ((x as i32) >> N) as u32)
    }
    #[inline(always)]
    fn any(self, m: I) -> bool {
        m.iter().any(|&x| x != 0)
    }
    #[inline(always)]
    fn all(self, m: I) -> bool {
        m.iter().all(|&x| x != 0)
    }
    #[inline(always)]
    fn blend(self, m: I, a: F, b: F) -> F {
        std::array::from_fn(|i| if m[i] != 0 { a[i] } else { b[i] })
    }
}

impl Backend for Scalar {
    const LANES: usize = WIDTH;

    type Rng = [Xoshiro256PlusPlus; 8];

    #[inline(always)]
    fn rng_new(self, states: &[[u64; 4]; 8]) -> Self::Rng {
        states.map(crate::rng::xoshiro_from_state)
    }

    #[inline(always)]
    fn rng_next(self, rng: &mut Self::Rng) -> [I; 2] {
        let words: [u64; 8] = std::array::from_fn(|lane| rng[lane].next_u64());
        std::array::from_fn(|half| {
            std::array::from_fn(|i| {
                let w = words[half * 4 + i / 2];
                if i % 2 == 0 {
                    w as u32
                } else {
                    (w >> 32) as u32
                }
            })
        })
    }

    #[inline(always)]
    fn rng_skip_step(self, rng: &mut Self::Rng) {
        for lane in rng {
            lane.next_u64();
        }
    }

    /// One step per group: partners are already in the same lane.
    #[inline(always)]
    fn pair_i(self, v: [I; 2]) -> [I; 2] {
        v
    }
    #[inline(always)]
    fn pair_f(self, v: [F; 2]) -> [F; 2] {
        v
    }

    #[inline(always)]
    fn load_u32(self, src: &[u32]) -> I {
        src.try_into().expect("WIDTH words")
    }
    #[inline(always)]
    fn store_u32(self, dst: &mut [u32], v: I) {
        dst.copy_from_slice(&v);
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> F {
        src.try_into().expect("WIDTH floats")
    }
    #[inline(always)]
    fn store(self, dst: &mut [MaybeUninit<f32>], v: F) {
        assert_eq!(dst.len(), WIDTH, "WIDTH slots");
        for (d, x) in dst.iter_mut().zip(v) {
            d.write(x);
        }
    }
    #[inline(always)]
    fn store_stream(self, dst: &mut [MaybeUninit<f32>], v: F) {
        self.store(dst, v);
    }
    #[inline(always)]
    fn fence(self) {}
}
