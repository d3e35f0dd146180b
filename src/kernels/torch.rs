//! PyTorch 2.15's CPU random transforms, bit for bit, written once over
//! [`Backend`]: the MT19937 twist and tempering, the 24-bit float uniform,
//! and the AVX2 `NormalFill16` Box–Muller kernel with the FMAs GCC placed.
//!
//! The operation sequences are those of PyTorch's compiled kernels (see
//! `torch-rng/SPEC.md` §2–§4 in the shared folder, checked against the
//! disassembly of `libtorch_cpu.so`): every operation is IEEE `f32` with
//! round-to-nearest, `fma` is a single rounding, and no libm is involved,
//! so the scalar and every SIMD backend give PyTorch's bits.
//!
//! # Uniform (`uniform_`, `rand`)
//! One word `w` per element: `x = (w & 0xFFFFFF) · 2⁻²⁴` (the low 24 bits,
//! exact), `v = fma(x, to − from, from)` with `to − from` rounded to `f32`
//! once, and `v == to` replaced by `from` (PyTorch 2.15's clamp).
//!
//! # Normal, `numel ≥ 16` (`NormalFill16`)
//! The output is first filled with uniforms `u` (as above, `[0, 1)`), then
//! every block of 16 is transformed in place: lanes `j < 8` pair
//! `u1 = 1 − u[j]` with `u2 = u[j + 8]`, and with `r = √(−2 log u1)`,
//! `θ = f32(2π) · u2`, output `j` is `fma(r · cos θ, std, mean)` and output
//! `j + 8` is `fma(r · sin θ, std, mean)`, where `log` and `sincos` are the
//! Cephes-style `log256_ps` and `sincos256_ps` of `avx_mathfun.h` with GCC's
//! contractions (below). When `numel % 16 ≠ 0`, 16 more words are drawn and
//! the last 16 outputs recomputed from them, overwriting part of the last
//! full block: `numel + 16` words in all.
//!
//! A 16-lane backend transforms two blocks of 16 at once: [`Backend::pair_i`]
//! puts `u[0..8]` of both blocks in one vector and `u[8..16]` of both in the
//! other, and `pair_f` puts the outputs back in order. Every operation is
//! lane-wise, so the bits do not depend on the width.
//!
//! # Vector widths
//! The twist and the tempering work on `LANES` words at a time (8 or 16);
//! see [`twist`] for why any width up to 16 gives the serial engine's words.

use std::mem::MaybeUninit;

use super::vector::{Backend, CacheAligned, MAX_LANES, Simd, X2};
use crate::rng::mt19937::{self, M, MATRIX_A, Mt19937, N};

/// Words drawn ahead of their transform (a multiple of 32: two normal
/// blocks).
const CHUNK: usize = 512;

/// 2⁻²⁴.
const TWO_M24: f32 = 1.0 / 16_777_216.0;

#[inline(always)]
fn load_u32<B: Backend>(b: B, s: &[u32], at: usize) -> B::I {
    b.load_u32(&s[at..at + B::LANES])
}

/// `LANES` words of the twist: `k ^ (y >> 1) ^ (v odd ? MATRIX_A : 0)` with
/// `y = (u & 0x80000000) | (v & 0x7fffffff)`.
#[inline(always)]
fn twist8<B: Backend>(b: B, u: B::I, v: B::I, k: B::I) -> B::I {
    let y = b.or(
        b.and(u, b.splat_i(mt19937::UPPER_MASK as i32)),
        b.and(v, b.splat_i(mt19937::LOWER_MASK as i32)),
    );
    // 0 − (v & 1) is all ones exactly when v is odd.
    let odd = b.sub_i(b.splat_i(0), b.and(v, b.splat_i(1)));
    let mag = b.and(odd, b.splat_i(MATRIX_A as i32));
    b.xor(b.xor(k, b.shr::<1>(y)), mag)
}

/// `next_state`, `LANES` words at a time. Word `i < 227` uses the old
/// `state[i + 397]`, word `i ≥ 227` the new `state[i − 227]`; both are at
/// least 16 words away from `i`, so each group of `LANES ≤ 16` words reads
/// only values that are final for it (and the old `state[i + 1]`, which the
/// group itself overwrites only after reading it).
///
/// The groups start at multiples of `LANES` (words 224..224 + LANES, where
/// the two rules meet, are done one by one), so that the tempering that
/// reads the state right after reads exactly the vectors just stored: a load
/// that straddles two recent stores cannot be forwarded from them and
/// stalls.
#[inline(always)]
pub(crate) fn twist<B: Backend>(b: B, s: &mut [u32; N]) {
    let width = B::LANES;
    let seam = (N - M) / width * width; // 224 for 8 and 16 lanes
    let mut i = 0;
    while i < seam {
        let w = twist8(
            b,
            load_u32(b, s, i),
            load_u32(b, s, i + 1),
            load_u32(b, s, i + M),
        );
        b.store_u32(&mut s[i..i + width], w);
        i += width;
    }
    while i < seam + width {
        let k = if i < N - M { s[i + M] } else { s[i + M - N] };
        s[i] = mt19937::twist_word(s[i], s[i + 1], k);
        i += 1;
    }
    while i + width < N {
        let w = twist8(
            b,
            load_u32(b, s, i),
            load_u32(b, s, i + 1),
            load_u32(b, s, i + M - N),
        );
        b.store_u32(&mut s[i..i + width], w);
        i += width;
    }
    while i < N - 1 {
        s[i] = mt19937::twist_word(s[i], s[i + 1], s[i + M - N]);
        i += 1;
    }
    s[N - 1] = mt19937::twist_word(s[N - 1], s[0], s[M - 1]);
}

/// The tempering of `LANES` words.
#[inline(always)]
fn temper8<B: Backend>(b: B, y: B::I) -> B::I {
    let y = b.xor(y, b.shr::<11>(y));
    let y = b.xor(y, b.and(b.shl::<7>(y), b.splat_i(0x9d2c_5680_u32 as i32)));
    let y = b.xor(y, b.and(b.shl::<15>(y), b.splat_i(0xefc6_0000_u32 as i32)));
    b.xor(y, b.shr::<18>(y))
}

/// The next `out.len()` words of `mt`, exactly as that many calls of
/// [`Mt19937::next_u32`] would give them (and leaving `mt` in the same state).
#[inline(always)]
pub(crate) fn words<B: Backend>(b: B, mt: &mut Mt19937, out: &mut [u32]) {
    let mut pos = 0;
    while pos < out.len() {
        if mt.left == 1 {
            twist(b, &mut mt.state);
            // The draw that twists resets `left` to N and takes word 0:
            // the same as N + 1 draws left before the decrement.
            mt.left = N as u32 + 1;
            mt.next = 0;
        }
        let start = mt.next as usize;
        let take = ((mt.left - 1) as usize).min(out.len() - pos);
        let (src, dst) = (&mt.state[start..start + take], &mut out[pos..pos + take]);
        let mut src_v = src.chunks_exact(B::LANES);
        let mut dst_v = dst.chunks_exact_mut(B::LANES);
        for (s, d) in (&mut src_v).zip(&mut dst_v) {
            b.store_u32(d, temper8(b, b.load_u32(s)));
        }
        for (s, d) in src_v.remainder().iter().zip(dst_v.into_remainder()) {
            *d = mt19937::temper(*s);
        }
        mt.next += take as u32;
        mt.left -= take as u32;
        pos += take;
    }
}

/// Words as `uniform_real_distribution<float>(0, 1)`: `(w & 0xFFFFFF) · 2⁻²⁴`.
#[inline(always)]
fn unit24<S: Simd>(s: S, w: S::I) -> S::F {
    s.mul(s.i_to_f(s.and(w, s.splat_i(0x00ff_ffff))), s.splat(TWO_M24))
}

/// `uniform_(from, to)` on `LANES` words (module docs).
#[inline(always)]
fn uniform8<B: Backend>(b: B, w: B::I, from: f32, range: f32, to: f32) -> B::F {
    let (from, to) = (b.splat(from), b.splat(to));
    let v = b.fma(unit24(b, w), b.splat(range), from);
    // v == to (v and to are finite): neither is below the other.
    let differs = b.ne(v, to);
    b.blend(differs, v, from)
}

/// PyTorch's `uniform_(from, to)` on `out`, drawing one word per element
/// from `mt`.
#[inline(always)]
pub(crate) fn uniform_fill<B: Backend>(
    b: B,
    mt: &mut Mt19937,
    from: f32,
    to: f32,
    out: &mut [MaybeUninit<f32>],
) {
    let range = to - from;
    let mut buf = CacheAligned([0u32; CHUNK]);
    let buf = &mut buf.0;
    for piece in out.chunks_mut(CHUNK) {
        let w = &mut buf[..piece.len()];
        words(b, mt, w);
        let mut w_v = w.chunks_exact(B::LANES);
        let mut out_v = piece.chunks_exact_mut(B::LANES);
        for (w, o) in (&mut w_v).zip(&mut out_v) {
            b.store(o, uniform8(b, b.load_u32(w), from, range, to));
        }
        let (w_tail, out_tail) = (w_v.remainder(), out_v.into_remainder());
        if !w_tail.is_empty() {
            let mut padded = [0u32; MAX_LANES];
            padded[..w_tail.len()].copy_from_slice(w_tail);
            let v = uniform8(b, b.load_u32(&padded[..B::LANES]), from, range, to);
            b.store_partial(out_tail, v);
        }
    }
}

// Constants of `avx_mathfun.h`, with the bits stored in `libtorch_cpu.so`
// (read back from its `.rodata`).
const MIN_NORM_POS: f32 = f32::MIN_POSITIVE;
const SQRTHF: f32 = f32::from_bits(0x3f35_04f3);
/// The Cephes `logf` polynomial, highest degree first.
const LOG_P: [f32; 9] = bits([
    0x3d90_21bb,
    0xbdeb_d1b8,
    0x3def_251a,
    0xbdfe_5d4f,
    0x3e11_e9bf,
    0xbe2a_ae50,
    0x3e4c_ceac,
    0xbe7f_fffc,
    0x3eaa_aaaa,
]);
const LOG_Q1: f32 = f32::from_bits(0xb95e_8083);
const LOG_Q2: f32 = f32::from_bits(0x3f31_8000);
/// 4/π.
const FOPI: f32 = f32::from_bits(0x3fa2_f983);
/// −π/4 in three parts (Cody–Waite).
const DP: [f32; 3] = bits([0xbf49_0000, 0xb97d_a000, 0xb322_2169]);
const SINCOF: [f32; 3] = bits([0xb94c_a1f9, 0x3c08_839e, 0xbe2a_aaa3]);
const COSCOF: [f32; 3] = bits([0x37cc_f5ce, 0xbab6_061a, 0x3d2a_aaa5]);
/// `(float)(2 * pi)`.
const TWO_PI: f32 = f32::from_bits(0x40c9_0fdb);

const fn bits<const K: usize>(b: [u32; K]) -> [f32; K] {
    let mut out = [0.0; K];
    let mut i = 0;
    while i < K {
        out[i] = f32::from_bits(b[i]);
        i += 1;
    }
    out
}

/// `log256_ps` as compiled: natural log of `x` in `[2⁻²⁴, 1]`.
#[inline(always)]
fn log256<S: Simd>(s: S, x: S::F) -> S::F {
    let one = s.splat(1.0);
    let x = s.max(x, s.splat(MIN_NORM_POS));
    let bits = s.bitcast_i(x);
    let e = s.i_to_f(s.sub_i(s.shr::<23>(bits), s.splat_i(0x7f)));
    let e = s.add(e, one);
    // Mantissa in [0.5, 1).
    let x = s.bitcast_f(s.or(
        s.and(bits, s.splat_i(0x807f_ffff_u32 as i32)),
        s.splat_i(0x3f00_0000),
    ));
    let mask = s.lt(x, s.splat(SQRTHF));
    let tmp = s.bitcast_f(s.and_m(mask, s.bitcast_i(x)));
    let x = s.sub(x, one);
    let e = s.sub(e, s.bitcast_f(s.and_m(mask, s.bitcast_i(one))));
    let x = s.add(x, tmp);
    let z = s.mul(x, x);
    let mut y = s.fma(s.splat(LOG_P[0]), x, s.splat(LOG_P[1]));
    for &p in &LOG_P[2..] {
        y = s.fma(y, x, s.splat(p));
    }
    let y = s.mul(y, x);
    let y = s.fma(y, z, s.mul(e, s.splat(LOG_Q1)));
    // fma(−z, ½, y) is exactly y − z/2 rounded once.
    let y = s.fma(z, s.splat(-0.5), y);
    let x = s.add(x, y);
    s.fma(e, s.splat(LOG_Q2), x)
}

/// `sincos256_ps` as compiled, for `θ ≥ 0`: `[sin θ, cos θ]`.
#[inline(always)]
fn sincos256<S: Simd>(s: S, theta: S::F) -> [S::F; 2] {
    // θ ≥ 0 here, so the input's sign bit is clear and |θ| = θ.
    let y = s.mul(theta, s.splat(FOPI));
    let j = s.and(s.add_i(s.trunc_i(y), s.splat_i(1)), s.splat_i(!1));
    let y = s.i_to_f(j);
    let swap_sign_sin = s.shl::<29>(s.and(j, s.splat_i(4)));
    // Bit 1 of j set: the polynomials swap.
    let swap = s.sign_mask(s.shl::<30>(j));
    let x = s.fma(y, s.splat(DP[0]), theta);
    let x = s.fma(s.splat(DP[1]), y, x);
    let x = s.fma(y, s.splat(DP[2]), x);
    let sign_cos = s.shl::<29>(s.and_not(s.splat_i(4), s.sub_i(j, s.splat_i(2))));
    let z = s.mul(x, x);
    let tmp = s.mul(z, s.splat(0.5));
    let c = s.fma(s.splat(COSCOF[0]), z, s.splat(COSCOF[1]));
    let c = s.fma(c, z, s.splat(COSCOF[2]));
    let c = s.mul(z, c);
    let c = s.fma(
        z,
        c,
        s.bitcast_f(s.xor(s.bitcast_i(tmp), s.splat_i(i32::MIN))),
    );
    let c = s.add(c, s.splat(1.0));
    let p = s.fma(s.splat(SINCOF[0]), z, s.splat(SINCOF[1]));
    let p = s.fma(p, z, s.splat(SINCOF[2]));
    let p = s.mul(z, p);
    let p = s.fma(x, p, x);
    let sin = s.blend(swap, c, p);
    let cos = s.blend(swap, p, c);
    [
        s.bitcast_f(s.xor(s.bitcast_i(sin), swap_sign_sin)),
        s.bitcast_f(s.xor(s.bitcast_i(cos), sign_cos)),
    ]
}

/// `NormalFill16` on the uniforms `u[j]` (`lo`) and their partners
/// `u[j + 8]` (`hi`): outputs `j` and `j + 8`, lane-wise.
#[inline(always)]
fn normal16<S: Simd>(s: S, lo: S::F, hi: S::F, mean: f32, std: f32) -> [S::F; 2] {
    let u1 = s.sub(s.splat(1.0), lo);
    let radius = s.sqrt(s.mul(s.splat(-2.0), log256(s, u1)));
    let theta = s.mul(s.splat(TWO_PI), hi);
    let [sin, cos] = sincos256(s, theta);
    let (mean, std) = (s.splat(mean), s.splat(std));
    [
        s.fma(s.mul(radius, cos), std, mean),
        s.fma(s.mul(radius, sin), std, mean),
    ]
}

/// The uniforms of one group of `2 · LANES` words (`LANES / 8` blocks of
/// 16) starting at `w[at]`, paired: `[u[j]…, u[j + 8]…]`.
#[inline(always)]
fn paired_uniforms<B: Backend>(b: B, w: &[u32], at: usize) -> [B::F; 2] {
    let [lo, hi] = b.pair_i([load_u32(b, w, at), load_u32(b, w, at + B::LANES)]);
    [unit24(b, lo), unit24(b, hi)]
}

/// `NormalFill16` on the first `out.len()` (a multiple of 16, less than a
/// group) words of `w`; the rest of the group is padded with zeros and its
/// values dropped.
#[inline(always)]
fn normal_partial_group<B: Backend>(
    b: B,
    w: &[u32],
    mean: f32,
    std: f32,
    out: &mut [MaybeUninit<f32>],
) {
    let mut padded = [0u32; 2 * MAX_LANES];
    padded[..w.len()].copy_from_slice(w);
    let [lo, hi] = paired_uniforms(b, &padded, 0);
    let [v0, v1] = b.pair_f(normal16(b, lo, hi, mean, std));
    if out.len() < B::LANES {
        b.store_partial(out, v0);
    } else {
        let (first, rest) = out.split_at_mut(B::LANES);
        b.store(first, v0);
        b.store_partial(rest, v1);
    }
}

/// PyTorch's large-path `normal_(mean, std)` on `out` (`out.len() >= 16`),
/// drawing `len + 16·[len % 16 ≠ 0]` words from `mt`.
#[inline(always)]
pub(crate) fn normal_fill<B: Backend>(
    b: B,
    mt: &mut Mt19937,
    mean: f32,
    std: f32,
    out: &mut [MaybeUninit<f32>],
) {
    debug_assert!(out.len() >= 16, "the large normal path needs 16 elements");
    let n = out.len();
    let lanes = B::LANES;
    let group = 2 * lanes;
    let mut buf = CacheAligned([0u32; CHUNK]);
    let buf = &mut buf.0;
    let full = n / 16;
    let mut block = 0;
    while block < full {
        let blocks = (full - block).min(CHUNK / 16);
        let w = &mut buf[..16 * blocks];
        words(b, mt, w);
        let dst = &mut out[16 * block..16 * (block + blocks)];
        let mut w_pairs = w.chunks_exact(2 * group);
        let mut dst_pairs = dst.chunks_exact_mut(2 * group);
        let x2 = X2(b);
        for (w, d) in (&mut w_pairs).zip(&mut dst_pairs) {
            // Two groups in lockstep. (No closures here: see
            // `avx2::rng_next`.)
            let first = paired_uniforms(b, w, 0);
            let second = paired_uniforms(b, w, group);
            let lo = [first[0], second[0]];
            let hi = [first[1], second[1]];
            let [z_lo, z_hi] = normal16(x2, lo, hi, mean, std);
            let [v0, v1] = b.pair_f([z_lo[0], z_hi[0]]);
            let [v2, v3] = b.pair_f([z_lo[1], z_hi[1]]);
            b.store(&mut d[..lanes], v0);
            b.store(&mut d[lanes..2 * lanes], v1);
            b.store(&mut d[2 * lanes..3 * lanes], v2);
            b.store(&mut d[3 * lanes..], v3);
        }
        let (w_rest, dst_rest) = (w_pairs.remainder(), dst_pairs.into_remainder());
        let mut w_groups = w_rest.chunks_exact(group);
        let mut dst_groups = dst_rest.chunks_exact_mut(group);
        for (w, d) in (&mut w_groups).zip(&mut dst_groups) {
            let [lo, hi] = paired_uniforms(b, w, 0);
            let [v0, v1] = b.pair_f(normal16(b, lo, hi, mean, std));
            b.store(&mut d[..lanes], v0);
            b.store(&mut d[lanes..], v1);
        }
        let (w_rest, dst_rest) = (w_groups.remainder(), dst_groups.into_remainder());
        if !w_rest.is_empty() {
            normal_partial_group(b, w_rest, mean, std, dst_rest);
        }
        block += blocks;
    }
    if !n.is_multiple_of(16) {
        // The uniforms of the partial block are drawn, then overwritten by
        // a block recomputed from 16 fresh words over the last 16 outputs.
        words(b, mt, &mut buf[..n % 16]);
        words(b, mt, &mut buf[..16]);
        normal_partial_group(b, &buf[..16], mean, std, &mut out[n - 16..]);
    }
}
