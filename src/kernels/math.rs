//! The kernels, written once over [`Backend`].
//!
//! Everything here is `#[inline(always)]` and generic, and becomes real code
//! only inside a per-ISA entry point (`avx2.rs`) or the scalar dispatch
//! (`mod.rs`). The element layout of a stream is described in
//! [`crate::rng`]; this module turns the 16 random 32-bit words of one step
//! into 16 output values.
//!
//! # Uniform, `U[a, b)`
//! Each 32-bit word `x` gives `u = (x >> 8) · 2⁻²⁴`, one of the 2²⁴ equally
//! spaced values in `[0, 1 − 2⁻²⁴]` (the 24-bit method), and the output is
//! `min(fma(x >> 8, (b − a)·2⁻²⁴, a), pred(b))`, where `pred(b)` is the largest
//! `f32` below `b`: rounding can never produce `b` itself. Slot `j` of a step
//! uses word `j` (lanes 0–3 for slots 0–7, lanes 4–7 for slots 8–15, low half
//! of each `u64` first).
//!
//! # Normal, Box–Muller
//! Slot `j < 8` and slot `j + 8` are the pair made from word `j` of the first
//! vector (`w1`) and word `j` of the second (`w2`):
//! * `u1 = F · 2⁻³¹` with `F = float((w1 >> 1) | 1)`: the midpoints of a
//!   30-bit grid on `(0, 1]`, rounded to `f32`; never 0, so the logarithm is
//!   finite, and the largest radius is `√(62 ln 2) ≈ 6.5555`;
//! * `r = √(−2 ln u1)`;
//! * `φ = 2πf + π/4` with `f = (((w2 >> 8) & (2²² − 1)) − 2²¹) · 2⁻²⁴`, a
//!   22-bit angle in `[0, π/2)`;
//! * output `j` is `±r cos φ` with the sign from bit 31 of `w2`, output `j + 8`
//!   is `±r sin φ` with the sign from bit 30. Independent random reflections of
//!   a uniform angle in the first quadrant make a uniform angle on the whole
//!   circle, so the pair is two independent standard normals;
//! * then `mean + std · z`, computed as `fma(r, ±cos φ · std, mean)`.
//!
//! `ln`, `sin` and `cos` are this module's own: `−2 ln` reduces to a mantissa
//! in `[⅔, 4/3)` with integer operations and a degree-9 polynomial;
//! `sin 2πf` and `cos 2πf` (`|f| ≤ ⅛`) are polynomials of degree 7 and 6 in
//! `f`, and `cos φ = (cos 2πf − sin 2πf)/√2`, `sin φ = (cos 2πf + sin 2πf)/√2`. The coefficients come from `scripts/fit_coefficients.py`.
//! Their errors against `f64`, measured over every input the kernels can
//! produce (the tests below), are documented on each function; the whole
//! transform is within 1e-6 (absolute; 9.6e-7 measured) of the same formula
//! evaluated in `f64` on the same inputs (test `box_muller_accuracy`).
//!
//! # Truncated normal, inverse CDF
//! Slot `j` uses word `j` (as uniform). Bit 0 picks one half of the
//! window's probability mass, bits 1..32 give `v = float((w >> 1) | 1) · 2⁻³¹`;
//! the tail probability `min(p, 1 − p)` is computed from that half's own end
//! and mapped by [`lower_quantile`] (central rational / Acklam tail with
//! [`neg2_ln`]); then `mean ± std · z`, clamped to `[a, b]`. See
//! [`TruncNormalSampler`] and [`crate::distributions::TruncatedNormal`].
//!
//! # Groups
//! The kernels see a block as a sequence of *groups* of `2 · LANES` values
//! (one step on an 8-lane backend, two on AVX-512; see
//! [`vector`](super::vector)). Uniform and truncated-normal samplers are
//! lane-wise, so they transform a group's words as they come; Box–Muller
//! first pairs them ([`Backend::pair_i`]), so that a 16-lane vector holds
//! slots 0..8 of two steps and its partner slots 8..16, and pairs the
//! results back. The values are the same on every width.
//!
//! # Speed
//! The transform is one long dependency chain (about 50 cycles), so the fill
//! loop draws the words of [`BATCH`] groups first (the generator states leave
//! the registers) and transforms two groups at a time in lockstep ([`X2`]).

use std::mem::MaybeUninit;

use super::vector::{Backend, CacheAligned, MAX_LANES, Simd, X2};
use crate::rng::{BLOCK, STEP, Stream};

/// 2⁻²⁴.
const TWO_M24: f32 = 1.0 / 16_777_216.0;

/// Groups whose random words are drawn ahead of their transform (even).
const BATCH: usize = 8;

/// The largest group, in values.
const MAX_GROUP: usize = 2 * MAX_LANES;

/// Turns the random words of one group into its `2 · LANES` output values.
pub(crate) trait Sampler: Sync {
    /// The values of one group from its words, both in element order
    /// (module docs).
    fn group<B: Backend>(&self, b: B, words: [B::I; 2]) -> [B::F; 2];

    /// Two consecutive groups. Samplers with long dependency chains override
    /// this to interleave them (see [`X2`]); the values must equal two calls
    /// of [`group`](Self::group).
    #[inline(always)]
    fn group2<B: Backend>(&self, b: B, first: [B::I; 2], second: [B::I; 2]) -> [[B::F; 2]; 2] {
        [self.group(b, first), self.group(b, second)]
    }
}

/// `U[a, b)` parameters, prepared by [`crate::distributions::Uniform`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct UniformSampler {
    /// Lower bound.
    pub(crate) a: f32,
    /// `(b − a) · 2⁻²⁴`.
    pub(crate) scale: f32,
    /// The largest `f32` below `b`.
    pub(crate) below_b: f32,
}

impl UniformSampler {
    #[inline(always)]
    fn one<B: Backend>(&self, b: B, w: B::I) -> B::F {
        let k = b.i_to_f(b.shr::<8>(w));
        b.min(
            b.fma(k, b.splat(self.scale), b.splat(self.a)),
            b.splat(self.below_b),
        )
    }
}

impl Sampler for UniformSampler {
    #[inline(always)]
    fn group<B: Backend>(&self, b: B, words: [B::I; 2]) -> [B::F; 2] {
        // (No closures on hot paths: see `avx2::rng_next`.)
        [self.one(b, words[0]), self.one(b, words[1])]
    }
}

/// `N(mean, std²)` parameters, prepared by [`crate::distributions::Normal`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormalSampler {
    pub(crate) mean: f32,
    pub(crate) std: f32,
}

impl Sampler for NormalSampler {
    #[inline(always)]
    fn group<B: Backend>(&self, b: B, words: [B::I; 2]) -> [B::F; 2] {
        b.pair_f(box_muller(b, b.pair_i(words), self.mean, self.std))
    }

    #[inline(always)]
    fn group2<B: Backend>(&self, b: B, first: [B::I; 2], second: [B::I; 2]) -> [[B::F; 2]; 2] {
        let x2 = X2(b);
        let (first, second) = (b.pair_i(first), b.pair_i(second));
        let words = [[first[0], second[0]], [first[1], second[1]]];
        let [z0, z1] = box_muller(x2, words, self.mean, self.std);
        [b.pair_f([z0[0], z1[0]]), b.pair_f([z0[1], z1[1]])]
    }
}

/// Normals from paired words (module docs): lane `i` of `w1` and of `w2`
/// make lane `i` of both outputs, `mean + std · z`.
#[inline(always)]
pub(crate) fn box_muller<S: Simd>(s: S, [w1, w2]: [S::I; 2], mean: f32, std: f32) -> [S::F; 2] {
    // Radius: u1 = F · 2⁻³¹ with F = float((w1 >> 1) | 1): the midpoints
    // (m + ½) · 2⁻³⁰ of a 30-bit grid, never 0.
    let f = s.i_to_f(s.or(s.shr::<1>(w1), s.splat_i(1)));
    let radius = s.sqrt(neg2_ln(s, f, 31));
    // Angle: φ = 2πf + π/4 in [0, π/2) with f in [−⅛, ⅛) from 22 bits, so
    // cos φ = (cos 2πf − sin 2πf)/√2 and sin φ = (cos 2πf + sin 2πf)/√2.
    let j = s.sub_i(
        s.and(s.shr::<8>(w2), s.splat_i(0x3f_ffff)),
        s.splat_i(1 << 21),
    );
    let [sin_f, cos_f] = sin_cos_2pi(s, s.mul(s.i_to_f(j), s.splat(TWO_M24)));
    let scale = s.splat(std * std::f32::consts::FRAC_1_SQRT_2);
    // Random signs from bits 31 and 30 reflect φ into all four quadrants.
    let sign = s.splat_i(i32::MIN);
    let sign0 = s.and(w2, sign);
    let sign1 = s.and(s.shl::<1>(w2), sign);
    let c = s.bitcast_f(s.xor(s.bitcast_i(s.mul(s.sub(cos_f, sin_f), scale)), sign0));
    let d = s.bitcast_f(s.xor(s.bitcast_i(s.mul(s.add(cos_f, sin_f), scale)), sign1));
    let mean = s.splat(mean);
    [s.fma(radius, c, mean), s.fma(radius, d, mean)]
}

/// Truncated-normal parameters, prepared by
/// [`crate::distributions::TruncatedNormal`] (see its docs for the method).
///
/// The window's probability mass is cut in two halves at its median. Half
/// `h` (0: the one holding `a`, 1: the one holding `b`; the other way round
/// for a window below the mean, which is mirrored) maps `v` in `(0, 1]`
/// to `p = p0[h] ± v · half_width` and `1 − p = q0[h] ∓ v · half_width`, both
/// computed directly (never as `1 − p`), and the smaller of the two is the
/// tail probability handed to the quantile function. For a window on one side
/// of the mean the probabilities are scaled by `2^k` so they stay normal
/// `f32` numbers however far the window lies (`unscale = 2⁻ᵏ`,
/// `ln_offset = 2k ln 2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TruncNormalSampler {
    /// `p` at the outer end of each half (`Φ(α)`, `Φ(β)`), or 4 when only
    /// the upper tail is used.
    pub(crate) p0: [f32; 2],
    /// `1 − p` at the outer end of each half (`Q(α)`, `Q(β)`), times `2^k`.
    pub(crate) q0: [f32; 2],
    /// Half the window's probability, times `2^k`.
    pub(crate) half_width: f32,
    /// `2⁻ᵏ` (0 if it underflows).
    pub(crate) unscale: f32,
    /// `2k ln 2`, added to `−2 ln` of a scaled probability.
    pub(crate) ln_offset: f32,
    /// Where [`lower_quantile`] switches to its tail branch.
    pub(crate) switch: f32,
    /// Whether the window lies on one side of the mean (after mirroring):
    /// then `p0` is 4 and `1 − p` is always the smaller probability.
    pub(crate) one_sided: bool,
    /// Mean.
    pub(crate) mean: f32,
    /// `±std`: negative when the window was mirrored onto the upper tail.
    pub(crate) scale: f32,
    /// Smallest `f32` ≥ `a`.
    pub(crate) lo: f32,
    /// Largest `f32` ≤ `b`.
    pub(crate) hi: f32,
}

impl Sampler for TruncNormalSampler {
    #[inline(always)]
    fn group<B: Backend>(&self, b: B, words: [B::I; 2]) -> [B::F; 2] {
        [
            trunc_normal(b, words[0], self),
            trunc_normal(b, words[1], self),
        ]
    }

    #[inline(always)]
    fn group2<B: Backend>(&self, b: B, first: [B::I; 2], second: [B::I; 2]) -> [[B::F; 2]; 2] {
        // Four independent vectors in lockstep: the tail branch is a long
        // chain (logarithm, square root, rational, division).
        let x4 = X2(X2(b));
        let words = [[first[0], second[0]], [first[1], second[1]]];
        let v = trunc_normal(x4, words, self);
        [[v[0][0], v[1][0]], [v[0][1], v[1][1]]]
    }
}

/// Truncated normals from words, one word per output (lane-wise).
///
/// Bit 0 of the word picks the half, bits 1..32 give
/// `v = float((w >> 1) | 1) · 2⁻³¹` in `(0, 1]` (as the Box–Muller radius).
#[inline(always)]
pub(crate) fn trunc_normal<S: Simd>(s: S, w: S::I, t: &TruncNormalSampler) -> S::F {
    let sign = s.splat_i(i32::MIN);
    // Bit 0 moved to the sign bit: set in the half that holds b.
    let upper_half = s.shl::<31>(w);
    // v · 2³¹ (the 2⁻³¹ is folded into `width`), negated in the second
    // half: p grows away from a in the first half and shrinks away from b in
    // the second.
    let v = s.i_to_f(s.or(s.shr::<1>(w), s.splat_i(1)));
    let v = s.bitcast_f(s.xor(s.bitcast_i(v), upper_half));
    let in_upper = s.sign_mask(upper_half);
    let q0 = s.blend(in_upper, s.splat(t.q0[1]), s.splat(t.q0[0]));
    let width = t.half_width * (1.0 / 2_147_483_648.0);
    let q = s.fma(v, s.splat(-width), q0);
    let (z, scale) = if t.one_sided {
        // Only the upper tail: 1 − p is the tail probability in every lane
        // (the general path below gives the same bits, with `p = 4 ± …`).
        let z = lower_quantile(s, q, t.unscale, t.ln_offset, t.switch);
        (z, -t.scale)
    } else {
        let p0 = s.blend(in_upper, s.splat(t.p0[1]), s.splat(t.p0[0]));
        let p = s.fma(v, s.splat(width), p0);
        // The smaller tail probability, and which tail it is.
        let tail = s.min(p, q);
        let upper = s.lt(q, p);
        let z = lower_quantile(s, tail, t.unscale, t.ln_offset, t.switch);
        let z = s.bitcast_f(s.xor(s.bitcast_i(z), s.and_m(upper, sign)));
        (z, t.scale)
    };
    let x = s.fma(z, s.splat(scale), s.splat(t.mean));
    s.min(s.max(x, s.splat(t.lo)), s.splat(t.hi))
}

/// Parameters for a *narrow* truncated-normal window (width `w` in standard
/// deviations with `w · max(|α|, |β|, 1) ≤ 0.15`), prepared by
/// [`crate::distributions::TruncatedNormal`].
///
/// There the quantile's `f32` rounding noise (a few ulps of `z`) would be
/// many ulps of the window, so each half is instead inverted locally from
/// its own end `e` (`α` or `β`): with `y = v · Y` the probability from `e`
/// divided by `φ(e)`, the distance `δ ≥ 0` from `e` solves
/// `∫₀^δ exp(−c s − s²/2) ds = y` (`c = ±e`, pointing into the window), and
/// `δ = y H(y)` by series reversion (degree 8, computed in `f64` at setup).
/// The output is `a + std · δ` or `b − std · δ` (the bound kept in two
/// `f32` parts): its error is relative to `δ`, not `z`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NarrowTruncNormalSampler {
    /// `Y`: half the window's probability over `φ(e)`, per half, times 2⁻³¹.
    pub(crate) y_scale: [f32; 2],
    /// `H` per half, constant term first.
    pub(crate) h: [[f32; 8]; 2],
    /// The end of each half (`a`, `b`) as the nearest `f32`.
    pub(crate) anchor: [f32; 2],
    /// The rest: `a − anchor[0]`, `b − anchor[1]` (rounded to `f32`).
    pub(crate) anchor_lo: [f32; 2],
    /// `+std` for the half at `a`, `−std` for the half at `b`.
    pub(crate) scale: [f32; 2],
    /// Smallest `f32` ≥ `a`.
    pub(crate) lo: f32,
    /// Largest `f32` ≤ `b`.
    pub(crate) hi: f32,
}

impl Sampler for NarrowTruncNormalSampler {
    #[inline(always)]
    fn group<B: Backend>(&self, b: B, words: [B::I; 2]) -> [B::F; 2] {
        [
            narrow_trunc_normal(b, words[0], self),
            narrow_trunc_normal(b, words[1], self),
        ]
    }

    #[inline(always)]
    fn group2<B: Backend>(&self, b: B, first: [B::I; 2], second: [B::I; 2]) -> [[B::F; 2]; 2] {
        let x2 = X2(b);
        let v0 = narrow_trunc_normal(x2, [first[0], second[0]], self);
        let v1 = narrow_trunc_normal(x2, [first[1], second[1]], self);
        [[v0[0], v1[0]], [v0[1], v1[1]]]
    }
}

/// Narrow-window truncated normals from words, one word per output (the
/// same use of the word as [`trunc_normal`]: bit 0 the half, bits 1..32
/// `v`; half 0 holds `a`).
#[inline(always)]
pub(crate) fn narrow_trunc_normal<S: Simd>(s: S, w: S::I, t: &NarrowTruncNormalSampler) -> S::F {
    let upper_half = s.sign_mask(s.shl::<31>(w));
    let v = s.i_to_f(s.or(s.shr::<1>(w), s.splat_i(1)));
    let y = s.mul(
        v,
        s.blend(upper_half, s.splat(t.y_scale[1]), s.splat(t.y_scale[0])),
    );
    let y2 = s.mul(y, y);
    let delta = s.mul(
        y,
        s.blend(upper_half, poly(s, &t.h[1], y, y2), poly(s, &t.h[0], y, y2)),
    );
    let anchor = s.blend(upper_half, s.splat(t.anchor[1]), s.splat(t.anchor[0]));
    let anchor_lo = s.blend(upper_half, s.splat(t.anchor_lo[1]), s.splat(t.anchor_lo[0]));
    let scale = s.blend(upper_half, s.splat(t.scale[1]), s.splat(t.scale[0]));
    // (a or b) ± std·δ with the bound in two parts: one final rounding.
    let x = s.add(s.fma(delta, scale, anchor_lo), anchor);
    s.min(s.max(x, s.splat(t.lo)), s.splat(t.hi))
}

/// Where the quantile switches from the central to the tail approximation:
/// `Φ(−2.01)`, so that PyTorch's default window `[−2, 2]` never needs the
/// tail (and the kernel skips it).
pub(crate) const QUANTILE_P_LOW: f32 = 0.0222;

/// The alternative switch for windows whose tail probabilities all lie below
/// it (like `[2σ, 3σ]`): Acklam's tail is still accurate there (7.3e-8 in
/// exact arithmetic at 0.05), and no lane then needs the central branch.
pub(crate) const QUANTILE_P_TAIL_ONLY: f32 = 0.05;

/// The centre variable is `r = R0 − q²`, non-negative for `p ≥ 0.0222`.
const QUANTILE_R0: f32 = 0.2283;

/// Central numerator `A(r)` of `Φ⁻¹(½ + q) = q A(r)/B(r)`, constant term
/// first: a (4, 4) rational fitted for `|q| ≤ 0.4778` by
/// `scripts/fit_quantile.py` (relative error 7.4e-8 in exact arithmetic).
/// Positive coefficients of a non-negative variable: no cancellation in
/// `f32` (the form of Wichura's AS 241).
const QUANTILE_A: [f32; 5] = to_f32([
    4.207628262305358,
    228.47644162199694,
    3132.5145860351304,
    10145.768387186808,
    3634.3689758176656,
]);
/// Central denominator `B(r)`, constant term first.
const QUANTILE_B: [f32; 5] = to_f32([
    1.0,
    61.95473788852258,
    1048.08522709345,
    4914.969152866718,
    4221.869562850221,
]);

/// Rounds published `f64` coefficients to `f32`.
const fn to_f32<const N: usize>(c: [f64; N]) -> [f32; N] {
    let mut out = [0.0f32; N];
    let mut i = 0;
    while i < N {
        out[i] = c[i] as f32;
        i += 1;
    }
    out
}

/// Acklam's tail numerator `C(r)`, `r = √(−2 ln p)`, constant term first.
const QUANTILE_C: [f32; 6] = to_f32([
    2.938163982698783e+00,
    4.374664141464968e+00,
    -2.549732539343734e+00,
    -2.400758277161838e+00,
    -3.223964580411365e-01,
    -7.784894002430293e-03,
]);
/// Acklam's tail denominator `D(r)`, constant term first.
const QUANTILE_D: [f32; 5] = to_f32([
    1.0,
    3.754408661907416e+00,
    2.445134137142996e+00,
    3.224671290700398e-01,
    7.784695709041462e-03,
]);

/// `Φ⁻¹(p)` (never positive) for `p = ps · unscale` in `(0, ½]`, with
/// `ln_offset = −2 ln unscale`: the scaled `ps` keeps far-tail
/// probabilities (down to `Φ(−37.7)`) normal `f32` numbers.
///
/// Two rational approximations, one selected per lane: for `p ≥ switch`
/// ([`QUANTILE_P_LOW`] or [`QUANTILE_P_TAIL_ONLY`], a per-distribution
/// choice), `q A(r)/B(r)` with `q = p − ½`, `r = 0.2283 − q²` (see
/// [`QUANTILE_A`]); below, P. J. Acklam's tail `C(s)/D(s)` with
/// `s = √(−2 ln p)`, the logarithm being [`neg2_ln`]. A branch skips
/// whichever one no lane needs: the lanes' values do not depend on it.
///
/// Error against `Φ⁻¹` of the same `f32` input, evaluated in `f64`: at most
/// 3.5e-7 relative over a dense grid down to 1e-300, with either switch
/// (test `quantile_accuracy`; the figures are on
/// [`TruncatedNormal`](crate::distributions::TruncatedNormal)).
#[inline(always)]
pub(crate) fn lower_quantile<S: Simd>(
    s: S,
    ps: S::F,
    unscale: f32,
    ln_offset: f32,
    switch: f32,
) -> S::F {
    let p = s.mul(ps, s.splat(unscale));
    let in_tail = s.lt(p, s.splat(switch));
    if !s.any(in_tail) {
        quantile_central(s, p)
    } else if s.all(in_tail) {
        quantile_tail(s, ps, ln_offset)
    } else {
        s.blend(
            in_tail,
            quantile_tail(s, ps, ln_offset),
            quantile_central(s, p),
        )
    }
}

/// `q A(r)/B(r)`: the central branch of [`lower_quantile`].
#[inline(always)]
fn quantile_central<S: Simd>(s: S, p: S::F) -> S::F {
    let q = s.sub(p, s.splat(0.5));
    // r = R0 − q² = (R0 − ¼) + p(1 − p): near the edge of the region,
    // `p − ½` has lost the low bits of a small `p`, but `1 − p` has an error
    // only relative to itself, so `r` keeps them (`q` itself is only a
    // factor, where its relative error of 3e-8 is harmless).
    let r = s.fma(p, s.sub(s.splat(1.0), p), s.splat(QUANTILE_R0 - 0.25));
    let r2 = s.mul(r, r);
    s.div(
        s.mul(q, poly(s, &QUANTILE_A, r, r2)),
        poly(s, &QUANTILE_B, r, r2),
    )
}

/// `C(s)/D(s)`, `s = √(−2 ln p)`: the tail branch of [`lower_quantile`].
#[inline(always)]
fn quantile_tail<S: Simd>(s: S, ps: S::F, ln_offset: f32) -> S::F {
    let l = s.add(neg2_ln(s, ps, 0), s.splat(ln_offset));
    let r = s.sqrt(l);
    let r2 = s.mul(r, r);
    s.div(poly(s, &QUANTILE_C, r, r2), poly(s, &QUANTILE_D, r, r2))
}

/// `R(t)` of `ln(1 + t) = t + t² R(t)` on `[−⅓, ⅓)` (f32 bits, `R(0)` first;
/// `scripts/fit_coefficients.py`).
const LN_R: [u32; 8] = [
    0xbeffffea, 0x3eaaaa98, 0xbe800a63, 0x3e4cdee6, 0xbe281610, 0x3e0ffbd9, 0xbe1da12f, 0x3e0c89cc,
];

/// `Q(x) = −R(−x/2)/2`, so that `−2 ln(1 + t) = x + x² Q(x)` for `x = −2t`:
/// `q_j = r_j · (−1)^(j+1) · 2^−(j+1)`, an exact rescaling of [`LN_R`].
const LN_Q: [f32; 8] = {
    let mut q = [0.0f32; 8];
    let mut j = 0;
    let mut scale = -0.5f32;
    while j < 8 {
        q[j] = f32::from_bits(LN_R[j]) * scale;
        scale *= -0.5;
        j += 1;
    }
    q
};

/// `S(f²)` of `sin 2πf = f S(f²)` on `|f| ≤ ⅛`.
const SIN_S: [f32; 4] = [
    f32::from_bits(0x40c90fdb),
    f32::from_bits(0xc2255dde),
    f32::from_bits(0x42a32fc7),
    f32::from_bits(0xc296dc74),
];
/// `C(f²)` of `cos 2πf = C(f²)` on `|f| ≤ ⅛`.
const COS_C: [f32; 4] = [
    f32::from_bits(0x3f800000),
    f32::from_bits(0xc19de9cb),
    f32::from_bits(0x4281d7eb),
    f32::from_bits(0xc2a73625),
];

/// `c[0] + c[1] x + … + c[N-1] x^(N-1)` by Estrin's scheme: pairs
/// `c[2k] + c[2k+1] x`, then pairs of pairs with `x²`, `x⁴`, … The dependency
/// chain is `log₂ N` FMAs long instead of `N − 1` (Horner), which is what
/// limits these kernels. `x2` is `x * x`, which callers have already.
#[inline(always)]
fn poly<S: Simd, const N: usize>(s: S, c: &[f32; N], x: S::F, x2: S::F) -> S::F {
    // Level 0: the pairs; each level halves the number of terms. N <= 8.
    let mut terms = [s.splat(0.0); 4];
    let mut n = 0;
    let mut i = 0;
    while i < N {
        let lo = s.splat(c[i]);
        terms[n] = if i + 1 < N {
            s.fma(s.splat(c[i + 1]), x, lo)
        } else {
            lo
        };
        n += 1;
        i += 2;
    }
    let mut power = x2;
    while n > 1 {
        let mut m = 0;
        let mut j = 0;
        while j < n {
            terms[m] = if j + 1 < n {
                s.fma(terms[j + 1], power, terms[j])
            } else {
                terms[j]
            };
            m += 1;
            j += 2;
        }
        n = m;
        if n > 1 {
            power = s.mul(power, power);
        }
    }
    terms[0]
}

/// `−2 ln(x · 2^−k)` for positive, normal, finite `x` (the squared radius
/// of Box–Muller, with `x · 2^−k` in `(0, 1]`).
///
/// `x · 2^−k = m · 2^e` with `m` in `[⅔, 4/3)`, found with integer operations
/// on the bits (subtract the bits of ⅔ and `k` from the exponent, shift, add
/// back), so `x · 2^−k` is never formed. With `t = 2 − 2m` (exact),
/// `−2 ln m = t + t² Q(t)`, and the result is `fma(t², Q(t), fma(e, −2 ln 2, t))`
/// (the exponent term joins off the critical path).
///
/// Error against `f64`: at most 1.2 ulp of the result over every `f32` in
/// `[2⁻³¹, 1]` (test `neg2_ln_accuracy`), and never negative there.
#[inline(always)]
pub(crate) fn neg2_ln<S: Simd>(s: S, x: S::F, k: i32) -> S::F {
    const TWO_THIRDS: i32 = 0x3f2a_aaab;
    let i = s.sub_i(s.bitcast_i(x), s.splat_i(TWO_THIRDS + (k << 23)));
    let e = s.i_to_f(s.sra::<23>(i));
    let m = s.bitcast_f(s.add_i(s.and(i, s.splat_i(0x007f_ffff)), s.splat_i(TWO_THIRDS)));
    let t = s.fma(m, s.splat(-2.0), s.splat(2.0));
    let t2 = s.mul(t, t);
    let linear = s.fma(e, s.splat(-2.0 * std::f32::consts::LN_2), t);
    s.fma(t2, poly(s, &LN_Q, t, t2), linear)
}

/// `[sin 2πf, cos 2πf]` for `|f| ≤ ⅛`.
///
/// Error against `f64` over the 2²² values `f = j · 2⁻²⁴` the kernel uses: at
/// most 1.2e-7 absolute (test `sin_cos_accuracy`).
#[inline(always)]
pub(crate) fn sin_cos_2pi<S: Simd>(s: S, f: S::F) -> [S::F; 2] {
    let f2 = s.mul(f, f);
    let f4 = s.mul(f2, f2);
    [s.mul(f, poly(s, &SIN_S, f2, f4)), poly(s, &COS_C, f2, f4)]
}

/// Views an initialized slice as write-only slots.
#[inline(always)]
pub(crate) fn as_uninit(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; callers only ever
    // write initialized `f32` values through the result, so `s` stays
    // initialized.
    unsafe { &mut *(s as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Writes `0.0` to every slot of `out` and returns it as initialized.
pub(crate) fn zeroed(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    out.fill(MaybeUninit::new(0.0));
    // SAFETY: every slot was just written; `MaybeUninit<f32>` has the layout
    // of `f32`.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// How the kernels write their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stores {
    /// Ordinary stores: the output stays in cache for whoever reads it next.
    Cached,
    /// Non-temporal stores where the destination is 32-byte aligned: for
    /// outputs larger than the last-level cache, they skip the read for
    /// ownership and halve the memory traffic. Same values either way.
    Streaming,
}

/// Writes one vector: `LANES` values.
#[inline(always)]
fn store_vec<B: Backend>(b: B, dst: &mut [MaybeUninit<f32>], v: B::F, nt: bool) {
    if nt {
        b.store_stream(dst, v);
    } else {
        b.store(dst, v);
    }
}

/// Writes the `2 · LANES` values of one group to `dst`.
#[inline(always)]
fn store_group<B: Backend>(b: B, dst: &mut [MaybeUninit<f32>], [v0, v1]: [B::F; 2], nt: bool) {
    let (lo, hi) = dst.split_at_mut(B::LANES);
    store_vec(b, lo, v0, nt);
    store_vec(b, hi, v1, nt);
}

/// Writes the first `dst.len() < 2 · LANES` values of one group.
#[inline(always)]
fn store_group_partial<B: Backend>(b: B, dst: &mut [MaybeUninit<f32>], [v0, v1]: [B::F; 2]) {
    if dst.len() < B::LANES {
        b.store_partial(dst, v0);
    } else {
        let (lo, hi) = dst.split_at_mut(B::LANES);
        b.store(lo, v0);
        b.store_partial(hi, v1);
    }
}

/// Whether streaming stores may be used for `out` (start aligned to the
/// vector size).
#[inline(always)]
fn use_streaming<B: Backend>(stores: Stores, out: &[MaybeUninit<f32>]) -> bool {
    stores == Stores::Streaming
        && (out.as_ptr() as usize).is_multiple_of(B::LANES * size_of::<f32>())
}

/// Fills `out` with elements `[offset, offset + out.len())` of `stream`.
#[inline(always)]
pub(crate) fn fill_range<B: Backend, S: Sampler>(
    b: B,
    sampler: &S,
    stream: Stream,
    offset: u64,
    mut out: &mut [MaybeUninit<f32>],
    stores: Stores,
) {
    let mut pos = offset;
    while !out.is_empty() {
        let within = (pos % BLOCK as u64) as usize;
        let n = (BLOCK - within).min(out.len());
        let (segment, rest) = out.split_at_mut(n);
        fill_segment(
            b,
            sampler,
            stream,
            pos / BLOCK as u64,
            within,
            segment,
            stores,
        );
        pos += n as u64;
        out = rest;
    }
}

/// Fills `out` with elements `within..within + out.len()` of block `block`.
///
/// The groups start at the step holding element `within`; a group may run
/// past the end of the block (its extra values are never stored).
#[inline(always)]
fn fill_segment<B: Backend, S: Sampler>(
    b: B,
    sampler: &S,
    stream: Stream,
    block: u64,
    within: usize,
    mut out: &mut [MaybeUninit<f32>],
    stores: Stores,
) {
    debug_assert!(within + out.len() <= BLOCK);
    let group = 2 * B::LANES;
    let mut rng = b.rng_new(&stream.block_states(block));
    for _ in 0..within / STEP {
        b.rng_skip_step(&mut rng);
    }
    let slot = within % STEP;
    if slot != 0 {
        let mut spill = [MaybeUninit::<f32>::uninit(); MAX_GROUP];
        let spill = &mut spill[..group];
        store_group(b, spill, sampler.group(b, b.rng_next(&mut rng)), false);
        let take = (group - slot).min(out.len());
        let (head, rest) = out.split_at_mut(take);
        head.copy_from_slice(&spill[slot..slot + take]);
        out = rest;
    }
    let nt = use_streaming::<B>(stores, out);
    // Draw the words of BATCH groups first, then transform them: the eight
    // generator states then need no registers while the transform runs.
    let mut batches = out.chunks_exact_mut(BATCH * group);
    for dst in &mut batches {
        let mut words = CacheAligned([b.rng_next(&mut rng); BATCH]);
        for w in &mut words.0[1..] {
            *w = b.rng_next(&mut rng);
        }
        let words = &words.0;
        for (k, pair) in dst.chunks_exact_mut(2 * group).enumerate() {
            let [v0, v1] = sampler.group2(b, words[2 * k], words[2 * k + 1]);
            let (d0, d1) = pair.split_at_mut(group);
            store_group(b, d0, v0, nt);
            store_group(b, d1, v1, nt);
        }
    }
    let mut groups = batches.into_remainder().chunks_exact_mut(group);
    for dst in &mut groups {
        store_group(b, dst, sampler.group(b, b.rng_next(&mut rng)), nt);
    }
    if nt {
        b.fence();
    }
    let tail = groups.into_remainder();
    if !tail.is_empty() {
        store_group_partial(b, tail, sampler.group(b, b.rng_next(&mut rng)));
    }
}

/// `w = w` if `!(|w| < t)`, else `w · 0` (a zero with `w`'s sign): the result
/// of PyTorch's `w *= (w.abs() >= t)` for every `w`, NaN and ±∞ included.
#[inline(always)]
pub(crate) fn threshold_mask<B: Backend>(b: B, data: &mut [f32], threshold: f32) {
    // A partial vector up to the first vector-aligned element, so that no
    // full-width load or store straddles two cache lines.
    let head = data
        .as_ptr()
        .align_offset(B::LANES * size_of::<f32>())
        .min(data.len());
    let (first, data) = data.split_at_mut(head);
    if !first.is_empty() {
        let v = mask_one(b, b.load_partial(first), threshold);
        b.store_partial(as_uninit(first), v);
    }
    let mut chunks = data.chunks_exact_mut(B::LANES);
    for c in &mut chunks {
        let v = mask_one(b, b.load(c), threshold);
        b.store(as_uninit(c), v);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let v = mask_one(b, b.load_partial(tail), threshold);
        b.store_partial(as_uninit(tail), v);
    }
}

#[inline(always)]
fn mask_one<B: Backend>(b: B, w: B::F, threshold: f32) -> B::F {
    let magnitude = b.splat_i(0x7fff_ffff);
    let small = b.lt(
        b.bitcast_f(b.and(b.bitcast_i(w), magnitude)),
        b.splat(threshold),
    );
    b.bitcast_f(b.and_not(b.bitcast_i(w), b.and_m(small, magnitude)))
}

/// Writes `value` to every slot of `out`.
#[inline(always)]
pub(crate) fn constant<B: Backend>(b: B, out: &mut [MaybeUninit<f32>], value: f32, stores: Stores) {
    let v = b.splat(value);
    // Align the destination for streaming stores with a short scalar head.
    let head = out
        .as_ptr()
        .align_offset(B::LANES * size_of::<f32>())
        .min(out.len());
    let (first, out) = out.split_at_mut(head);
    for d in first {
        d.write(value);
    }
    let nt = use_streaming::<B>(stores, out);
    let mut chunks = out.chunks_exact_mut(B::LANES);
    for c in &mut chunks {
        store_vec(b, c, v, nt);
    }
    if nt {
        b.fence();
    }
    for d in chunks.into_remainder() {
        d.write(value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::scalar::Scalar;
    use super::*;

    /// 2⁻³¹.
    const TWO_M31: f32 = 1.0 / 2_147_483_648.0;

    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
        (got as f64 - want).abs() / ulp
    }

    fn neg2_ln1(x: f32) -> f32 {
        neg2_ln(Scalar, [x; 8], 0)[0]
    }

    /// Every `f32` in `[2⁻³¹, 1]` (about 2.6e8 values) in release builds, a
    /// stride through them in debug builds.
    #[test]
    fn neg2_ln_accuracy() {
        let lo = TWO_M31.to_bits();
        let hi = 1.0f32.to_bits();
        let stride = if cfg!(debug_assertions) { 997 } else { 1 };
        let mut worst = (0.0f64, 0.0f32);
        let mut bits = lo;
        while bits <= hi {
            let x = f32::from_bits(bits);
            let got = neg2_ln1(x);
            assert!(got >= 0.0, "-2 ln({x:e}) = {got:e} < 0");
            let e = ulps(got, -2.0 * (x as f64).ln());
            if x != 1.0 && e > worst.0 {
                worst = (e, x);
            }
            bits += stride;
        }
        assert_eq!(neg2_ln1(1.0), 0.0);
        eprintln!("-2 ln: worst {} ulp at {:e}", worst.0, worst.1);
        assert!(worst.0 <= 1.2, "-2 ln: {} ulp at {:e}", worst.0, worst.1);
    }

    /// All 2²² values `f = j · 2⁻²⁴` the Box–Muller angle can take.
    #[test]
    fn sin_cos_accuracy() {
        let stride = if cfg!(debug_assertions) { 101 } else { 1 };
        let mut worst_abs = 0.0f64;
        let mut j = -(1i32 << 21);
        while j < 1 << 21 {
            let f = j as f32 * TWO_M24;
            let [s, c] = sin_cos_2pi(Scalar, [f; 8]);
            let angle = std::f64::consts::TAU * f as f64;
            worst_abs = worst_abs
                .max((s[0] as f64 - angle.sin()).abs())
                .max((c[0] as f64 - angle.cos()).abs());
            assert!(s[0].abs() <= 1.0 && c[0].abs() <= 1.0);
            j += stride;
        }
        eprintln!("sin/cos: worst absolute error {worst_abs:e}");
        assert!(worst_abs <= 1.3e-7, "sin/cos: {worst_abs:e}");
        let [s, c] = sin_cos_2pi(Scalar, [0.0; 8]);
        assert_eq!((s[0], c[0]), (0.0, 1.0));
    }

    /// The whole transform against the same formula in `f64`, over 2²² pairs
    /// of random words and the extreme words.
    #[test]
    fn box_muller_accuracy() {
        use rand_xoshiro::Xoshiro256PlusPlus;
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let n = if cfg!(debug_assertions) {
            1 << 14
        } else {
            1 << 22
        };
        let mut worst = 0.0f64;
        let mut max_z = 0.0f32;
        for k in 0..n / 8 {
            let mut w1: [u32; 8] = std::array::from_fn(|_| rng.next_u32());
            let mut w2: [u32; 8] = std::array::from_fn(|_| rng.next_u32());
            if k == 0 {
                (w1[0], w2[0]) = (0, 0); // u1 = 2^-31, φ = 0: the largest z
                w1[1] = u32::MAX; // u1 = 1, radius 0
            }
            let [c, s] = box_muller(Scalar, [w1, w2], 0.0, 1.0);
            for j in 0..8 {
                // The same f32 inputs (their quantization is part of the
                // transform), then everything else in f64.
                let u1 = ((w1[j] >> 1) | 1) as f32 as f64 / (1u64 << 31) as f64;
                let f = (((w2[j] >> 8) & 0x3f_ffff) as f64 - (1 << 21) as f64) / (1 << 24) as f64;
                let r = (-2.0 * u1.ln()).sqrt();
                let phi = std::f64::consts::TAU * f + std::f64::consts::FRAC_PI_4;
                let sign0 = if w2[j] >> 31 == 1 { -1.0 } else { 1.0 };
                let sign1 = if (w2[j] >> 30) & 1 == 1 { -1.0 } else { 1.0 };
                worst = worst
                    .max((c[j] as f64 - sign0 * r * phi.cos()).abs())
                    .max((s[j] as f64 - sign1 * r * phi.sin()).abs());
                max_z = max_z.max(c[j].abs()).max(s[j].abs());
            }
        }
        eprintln!("box-muller: worst absolute error {worst:e}, max |z| {max_z}");
        assert!(worst <= 1e-6, "box-muller: {worst:e}");
        assert!(
            max_z > 6.555,
            "the extreme word pair reaches the largest radius"
        );
        assert!((max_z as f64) <= crate::distributions::NORMAL_MAX_ABS_Z);
    }

    /// `Φ⁻¹(t)` in `f64`: Newton's method on `Φ(z) = Q(−z)` from `z0`.
    fn reference_quantile(t: f64, z0: f64) -> f64 {
        use crate::distributions::normal_q;
        let mut z = z0;
        for _ in 0..6 {
            let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            z -= (normal_q(-z) - t) / density;
        }
        z
    }

    /// The quantile approximation against `f64` over a dense grid: every
    /// 997th `f32` in `[2⁻³³, ½]` unscaled, then scaled probabilities
    /// `ps · 2⁻ᵏ` (the far tails of one-sided windows) down to 1e-300.
    #[test]
    fn quantile_accuracy() {
        let stride = if cfg!(debug_assertions) { 100_003 } else { 997 };
        let (mut worst_rel, mut worst_abs6, mut count) = (0.0f64, 0.0f64, 0u64);
        let mut worst_at = (0.0f32, 0);
        let runs = [0, 1, 7, 30, 100, 300, 600, 900, 960]
            .map(|k| (k, QUANTILE_P_LOW))
            .into_iter()
            .chain([(0, QUANTILE_P_TAIL_ONLY), (4, QUANTILE_P_TAIL_ONLY)]);
        for (k, switch) in runs {
            let unscale = 2f64.powi(-k);
            let ln_offset = (2.0 * k as f64 * std::f64::consts::LN_2) as f32;
            let lo = (1.0f32 / 8_589_934_592.0).to_bits(); // 2^-33
            let hi = if k == 0 { 0.5f32 } else { 1.0 }.to_bits();
            let mut bits = lo;
            while bits <= hi {
                let ps = f32::from_bits(bits);
                let t = ps as f64 * unscale;
                bits += stride;
                if !(1e-300..=0.5).contains(&t) {
                    continue;
                }
                let got = lower_quantile(Scalar, [ps; 8], unscale as f32, ln_offset, switch)[0];
                assert!(got <= 0.0 && got.is_finite(), "Φ⁻¹({t:e}) = {got}");
                let want = reference_quantile(t, got as f64);
                let abs = (got as f64 - want).abs();
                let rel = abs / want.abs().max(1e-30);
                if want.abs() > 1e-3 && rel > worst_rel {
                    worst_rel = rel;
                    worst_at = (ps, k);
                }
                if want.abs() <= 6.0 {
                    worst_abs6 = worst_abs6.max(abs);
                }
                count += 1;
            }
        }
        eprintln!(
            "quantile: {count} points, worst relative error {worst_rel:e} at ps {:e} k {}, \
             worst absolute error for |z| <= 6: {worst_abs6:e}",
            worst_at.0, worst_at.1
        );
        assert!(
            worst_rel <= 3.5e-7,
            "quantile: relative error {worst_rel:e}"
        );
        assert!(
            worst_abs6 <= 2e-6,
            "quantile: absolute error {worst_abs6:e}"
        );
        // The median.
        assert_eq!(
            lower_quantile(Scalar, [0.5; 8], 1.0, 0.0, QUANTILE_P_LOW)[0],
            0.0
        );
    }

    #[test]
    fn mask_matches_pytorch_semantics() {
        let mut v = [
            -6.0,
            -5.0,
            -4.9,
            -0.0,
            0.0,
            4.9,
            5.0,
            6.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
        ];
        threshold_mask(Scalar, &mut v, 5.0);
        let want = [
            -6.0,
            -5.0,
            -0.0,
            -0.0,
            0.0,
            0.0,
            5.0,
            6.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
        ];
        for (g, w) in v.iter().zip(want) {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{g} vs {w}"
            );
        }
    }
}
