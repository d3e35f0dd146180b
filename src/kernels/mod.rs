//! Hand-vectorized, parallel fill kernels with run-time dispatch.
//!
//! # Instruction sets
//! Each kernel is written once over a small vector trait and compiled for
//! every instruction set in [`Isa`]: AVX-512 (16 lanes) and AVX2+FMA (8
//! lanes) on x86-64, detected at run time, and a portable scalar path, all
//! giving **the same bits**. The CPU is checked once per process;
//! [`Kernels::active`] is what the rest of the crate uses. Setting the
//! environment variable `NNINIT_ISA=scalar` (or `avx2`, `avx512`) before the
//! first fill forces a path; [`Kernels::new`] picks one explicitly.
//!
//! # Parallelism
//! Fills run on rayon's current thread pool over fixed blocks of
//! [`BLOCK`] elements. Outputs of at most
//! [`INLINE_MAX`] elements run on the calling thread with no pool overhead.
//! Because every block is seeded from its index, the output does not depend on
//! the number of threads (see [`crate::rng`]).
//!
//! # What the kernels compute
//! See [`crate::distributions`] for the samplers (uniform, normal, truncated
//! normal) and
//! [`Kernels::threshold_mask`] / [`Kernels::fill_constant`] for the rest.

use std::mem::MaybeUninit;
use std::str::FromStr;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::rng::mt19937::Mt19937;
use crate::rng::{BLOCK, Stream};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod math;
mod scalar;
pub(crate) mod torch;
mod vector;

use scalar::Scalar;

/// Outputs up to this many elements are filled on the calling thread.
pub const INLINE_MAX: usize = 4 * BLOCK;

/// Outputs of at least this many elements (16 MiB, past any last-level cache
/// share this crate can count on) are written with non-temporal stores.
pub const STREAMING_MIN: usize = 1 << 22;

fn stores_for(len: usize) -> math::Stores {
    if len >= STREAMING_MIN {
        math::Stores::Streaming
    } else {
        math::Stores::Cached
    }
}

/// An instruction set the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust; the reference implementation.
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2Fma,
    /// x86-64 AVX-512 (F, BW, DQ and VL, with AVX2 and FMA): 16 lanes.
    Avx512,
}

impl Isa {
    /// Every instruction set the kernels are compiled for, best last.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2Fma, Isa::Avx512];

    /// The name used by `NNINIT_ISA` and in messages: `scalar`, `avx2` or
    /// `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run it.
    pub fn is_supported(self) -> bool {
        Kernels::new(self).is_ok()
    }

    /// Every instruction set this CPU can run, best last.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The best instruction set this CPU can run (ignores `NNINIT_ISA`).
    pub fn best() -> Isa {
        *Isa::supported().last().expect("scalar is always supported")
    }
}

impl FromStr for Isa {
    type Err = String;

    /// Parses `scalar`, `avx2` or `avx512` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Isa, String> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown instruction set {s:?}, expected scalar, avx2 or avx512")
            })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of kernels this CPU is known to support.
///
/// The value proves the CPU check was done; it is `Copy` and free to pass
/// around.
///
/// ```
/// use nninit::kernels::{Isa, Kernels};
/// let k = Kernels::new(Isa::Scalar).unwrap();
/// let mut w = vec![-6.0, 1.0, 7.0];
/// k.threshold_mask(&mut w, 5.0).unwrap();
/// assert_eq!(w, [-6.0, 0.0, 7.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Kernels(Backend);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Scalar(Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(avx512::Avx512),
}

static ACTIVE: OnceLock<Kernels> = OnceLock::new();

impl Kernels {
    /// The kernels for `isa`, or [`Error::IsaUnsupported`] if this CPU lacks it.
    pub fn new(isa: Isa) -> Result<Kernels> {
        match isa {
            Isa::Scalar => Ok(Kernels(Backend::Scalar(Scalar))),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => avx2::Avx2::new()
                .map(|t| Kernels(Backend::Avx2(t)))
                .ok_or(Error::IsaUnsupported { isa: isa.name() }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::Avx512::new()
                .map(|t| Kernels(Backend::Avx512(t)))
                .ok_or(Error::IsaUnsupported { isa: isa.name() }),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2Fma | Isa::Avx512 => Err(Error::IsaUnsupported { isa: isa.name() }),
        }
    }

    /// The portable kernels.
    pub fn scalar() -> Kernels {
        Kernels(Backend::Scalar(Scalar))
    }

    /// The kernels every fill of the crate uses: `NNINIT_ISA` if set to a
    /// supported instruction set, else the best one. Decided once, at the
    /// first call. An unknown or unsupported `NNINIT_ISA` is reported once on
    /// stderr and ignored (an unsupported one falls back to scalar).
    pub fn active() -> Kernels {
        *ACTIVE.get_or_init(|| {
            let best = Kernels::new(Isa::best()).expect("best() is supported");
            match std::env::var("NNINIT_ISA") {
                Err(_) => best,
                Ok(v) if v.is_empty() || v.eq_ignore_ascii_case("auto") => best,
                Ok(v) => match v.parse::<Isa>() {
                    Ok(isa) => Kernels::new(isa).unwrap_or_else(|e| {
                        eprintln!("nninit: NNINIT_ISA={v}: {e}; using scalar");
                        Kernels::scalar()
                    }),
                    Err(e) => {
                        eprintln!("nninit: NNINIT_ISA: {e}; using {}", best.isa());
                        best
                    }
                },
            }
        })
    }

    /// Which instruction set these kernels use.
    pub fn isa(self) -> Isa {
        match self.0 {
            Backend::Scalar(_) => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(_) => Isa::Avx2Fma,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(_) => Isa::Avx512,
        }
    }

    /// Writes `value` to every element of `out`, in parallel for large outputs.
    pub fn fill_constant(self, out: &mut [f32], value: f32) {
        self.fill_constant_uninit(math::as_uninit(out), value);
    }

    /// [`fill_constant`](Self::fill_constant) into uninitialized memory.
    pub(crate) fn fill_constant_uninit(self, out: &mut [MaybeUninit<f32>], value: f32) {
        let stores = stores_for(out.len());
        par_blocks(0, out, |_, chunk| match self.0 {
            Backend::Scalar(s) => math::constant(s, chunk, value, stores),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::constant(t, chunk, value, stores) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::constant(t, chunk, value, stores) },
        });
    }

    /// Zeroes every element with `|w| < threshold`, in place: exactly
    /// PyTorch's `w *= (w.abs() >= threshold)`, so a zeroed negative element
    /// becomes `-0.0`, and NaN and ±∞ stay. Parallel for large slices.
    ///
    /// A NaN threshold is an error ([`Error::Threshold`]).
    pub fn threshold_mask(self, data: &mut [f32], threshold: f32) -> Result<()> {
        if threshold.is_nan() {
            return Err(Error::Threshold {
                threshold: threshold as f64,
            });
        }
        par_blocks(0, data, |_, chunk| match self.0 {
            Backend::Scalar(s) => math::threshold_mask(s, chunk, threshold),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::threshold_mask(t, chunk, threshold) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::threshold_mask(t, chunk, threshold) },
        });
        Ok(())
    }

    /// Fills `out` with elements `[offset, offset + out.len())` of `stream`
    /// drawn by `sampler`.
    pub(crate) fn fill_sampler<S: math::Sampler>(
        self,
        sampler: &S,
        stream: Stream,
        offset: u64,
        out: &mut [MaybeUninit<f32>],
    ) {
        let stores = stores_for(out.len());
        par_blocks(offset, out, |at, chunk| match self.0 {
            Backend::Scalar(s) => math::fill_range(s, sampler, stream, at, chunk, stores),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::fill(t, sampler, stream, at, chunk, stores) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::fill(t, sampler, stream, at, chunk, stores) },
        });
    }
}

impl Kernels {
    /// PyTorch 2.15's `uniform_(from, to)` for `f32` on `out`, one word of
    /// `mt` per element, serially (see [`torch`] for the transform).
    pub(crate) fn torch_uniform(
        self,
        mt: &mut Mt19937,
        from: f32,
        to: f32,
        out: &mut [MaybeUninit<f32>],
    ) {
        match self.0 {
            Backend::Scalar(s) => torch::uniform_fill(s, mt, from, to, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::torch_uniform(t, mt, from, to, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::torch_uniform(t, mt, from, to, out) },
        }
    }

    /// PyTorch 2.15's large-path `normal_(mean, std)` (`NormalFill16`, AVX2
    /// kernel) on `out`, which must hold at least 16 elements.
    pub(crate) fn torch_normal(
        self,
        mt: &mut Mt19937,
        mean: f32,
        std: f32,
        out: &mut [MaybeUninit<f32>],
    ) {
        assert!(out.len() >= 16, "the large normal path needs 16 elements");
        match self.0 {
            Backend::Scalar(s) => torch::normal_fill(s, mt, mean, std, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::torch_normal(t, mt, mean, std, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::torch_normal(t, mt, mean, std, out) },
        }
    }

    /// The next `out.len()` words of `mt` (vectorized twist and tempering).
    #[cfg(test)]
    pub(crate) fn torch_words(self, mt: &mut Mt19937, out: &mut [u32]) {
        match self.0 {
            Backend::Scalar(s) => torch::words(s, mt, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx2` value exists only on CPUs with AVX2 and FMA.
            Backend::Avx2(t) => unsafe { avx2::torch_words(t, mt, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Avx512` value exists only on CPUs with its features.
            Backend::Avx512(t) => unsafe { avx512::torch_words(t, mt, out) },
        }
    }
}

/// Runs `f(element offset, piece)` over `out`, cut at block boundaries of the
/// virtual array that starts at element `offset`; in parallel on the current
/// rayon pool when `out` is large, else inline.
fn par_blocks<T, F>(offset: u64, out: &mut [T], f: F)
where
    T: Send,
    F: Fn(u64, &mut [T]) + Sync,
{
    if out.len() <= INLINE_MAX || rayon::current_num_threads() == 1 {
        f(offset, out);
        return;
    }
    let misalignment = (offset % BLOCK as u64) as usize;
    let head_len = ((BLOCK - misalignment) % BLOCK).min(out.len());
    let (head, body) = out.split_at_mut(head_len);
    let body_offset = offset + head_len as u64;
    rayon::join(
        || f(offset, head),
        || {
            body.par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(i, chunk)| f(body_offset + (i * BLOCK) as u64, chunk))
        },
    );
}

/// Runs `f` over disjoint pieces of `data`, in parallel when it is large.
pub(crate) fn par_chunks<T: Send>(data: &mut [T], f: impl Fn(&mut [T]) + Sync) {
    par_blocks(0, data, |_, chunk| f(chunk));
}

#[cfg(test)]
mod tests {
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::Rng;

    use super::*;
    use crate::distributions::{Distribution, Normal, TruncatedNormal, Uniform, normal_q};
    use crate::rng::STEP;
    use crate::rng::mt19937::Mt19937;

    /// The 32-bit word behind slot `slot` of step `step` of `block`, straight
    /// from `rand_xoshiro`: lane `slot / 2`, low half first.
    fn word(stream: Stream, block: u64, step: usize, slot: usize) -> u32 {
        let mut rng = stream.lane_rng(block, slot / 2);
        let mut x = 0;
        for _ in 0..=step {
            x = rng.next_u64();
        }
        if slot.is_multiple_of(2) {
            x as u32
        } else {
            (x >> 32) as u32
        }
    }

    const PROBES: [usize; 13] = [
        0,
        1,
        7,
        8,
        9,
        15,
        16,
        17,
        1000,
        BLOCK - 1,
        BLOCK,
        2 * BLOCK + 77,
        3 * BLOCK + 99,
    ];

    #[test]
    fn uniform_follows_the_documented_layout() {
        let stream = Stream::from_key(123);
        let (a, b) = (-2.0f32, 3.0f32);
        let mut out = vec![0.0; 3 * BLOCK + 100];
        Uniform::new(a as f64, b as f64)
            .unwrap()
            .fill_with(Kernels::active(), stream, 0, &mut out);
        for i in PROBES {
            let (block, within) = ((i / BLOCK) as u64, i % BLOCK);
            let w = word(stream, block, within / STEP, within % STEP);
            let want = ((w >> 8) as f32)
                .mul_add((b - a) / 16_777_216.0, a)
                .min(b.next_down());
            assert_eq!(out[i].to_bits(), want.to_bits(), "element {i}");
        }
    }

    #[test]
    fn normal_follows_the_documented_layout() {
        let stream = Stream::from_key(321);
        let mut out = vec![0.0; 3 * BLOCK + 100];
        Normal::new(0.0, 1.0)
            .unwrap()
            .fill_with(Kernels::active(), stream, 0, &mut out);
        for i in PROBES {
            let (block, within) = ((i / BLOCK) as u64, i % BLOCK);
            let (step, slot) = (within / STEP, within % STEP);
            let j = slot % 8;
            let w1 = word(stream, block, step, j);
            let w2 = word(stream, block, step, j + 8);
            let u1 = ((w1 >> 1) | 1) as f32 as f64 / 2f64.powi(31);
            let f = (((w2 >> 8) & 0x3f_ffff) as f64 - 2f64.powi(21)) / 2f64.powi(24);
            let r = (-2.0 * u1.ln()).sqrt();
            let phi = std::f64::consts::TAU * f + std::f64::consts::FRAC_PI_4;
            let want = if slot < 8 {
                if w2 >> 31 == 1 {
                    -r * phi.cos()
                } else {
                    r * phi.cos()
                }
            } else if (w2 >> 30) & 1 == 1 {
                -r * phi.sin()
            } else {
                r * phi.sin()
            };
            assert!(
                (out[i] as f64 - want).abs() < 1e-6,
                "element {i}: {} vs {want}",
                out[i]
            );
        }
    }

    #[test]
    fn trunc_normal_follows_the_documented_layout() {
        // Element i: word i of its step (as uniform); bit 0 picks the half,
        // v = float((w >> 1) | 1) · 2⁻³¹; p = Φ(a) + v·W/2 or Φ(b) − v·W/2.
        let stream = Stream::from_key(555);
        let (a, b) = (-1.5f64, 2.5f64);
        let mut out = vec![0.0; 3 * BLOCK + 100];
        TruncatedNormal::new(0.0, 1.0, a, b).unwrap().fill_with(
            Kernels::active(),
            stream,
            0,
            &mut out,
        );
        let (pa, pb) = (normal_q(-a), normal_q(-b));
        for i in PROBES {
            let (block, within) = ((i / BLOCK) as u64, i % BLOCK);
            let w = word(stream, block, within / STEP, within % STEP);
            let v = ((w >> 1) | 1) as f32 as f64 / 2f64.powi(31);
            let p = if w & 1 == 0 {
                pa + v * (pb - pa) / 2.0
            } else {
                pb - v * (pb - pa) / 2.0
            };
            // Φ⁻¹(p) by Newton's method from the kernel's value.
            let mut z = out[i] as f64;
            for _ in 0..5 {
                let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                z -= (normal_q(-z) - p) / density;
            }
            assert!(
                (out[i] as f64 - z).abs() < 2e-6,
                "element {i}: {} vs {z}",
                out[i]
            );
        }
    }

    /// Engines in assorted states: fresh, mid-stream, one draw before a
    /// twist.
    fn torch_engines() -> Vec<Mt19937> {
        let mut v = Vec::new();
        for (seed, draws) in [
            (0u32, 0usize),
            (42, 1),
            (7, 100),
            (9, 623),
            (3, 624),
            (5, 1247),
        ] {
            let mut mt = Mt19937::new(seed);
            for _ in 0..draws {
                mt.next_u32();
            }
            v.push(mt);
        }
        v
    }

    #[test]
    fn torch_words_equal_the_scalar_engine_on_every_isa() {
        for k in Isa::supported()
            .into_iter()
            .map(|i| Kernels::new(i).unwrap())
        {
            for mt in torch_engines() {
                for len in [0usize, 1, 7, 8, 9, 623, 624, 625, 2000] {
                    let (mut a, mut b) = (mt.clone(), mt.clone());
                    let want: Vec<u32> = (0..len).map(|_| a.next_u32()).collect();
                    let mut got = vec![0; len];
                    k.torch_words(&mut b, &mut got);
                    assert_eq!(got, want, "{} len {len}", k.isa());
                    assert_eq!(a, b, "{}: engine state after {len} words", k.isa());
                }
            }
        }
    }

    #[test]
    fn torch_fills_agree_across_isas() {
        let all: Vec<Kernels> = Isa::supported()
            .into_iter()
            .map(|i| Kernels::new(i).unwrap())
            .collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for mt in torch_engines() {
            for len in (16..=80).chain([100, 1000, 1023, 1024, 1025, 4097]) {
                let run = |k: Kernels, normal: bool| {
                    let mut mt = mt.clone();
                    let mut out = vec![0.0f32; len];
                    if normal {
                        k.torch_normal(&mut mt, 0.5, 2.0, math::as_uninit(&mut out));
                    } else {
                        k.torch_uniform(&mut mt, -0.3, 0.7, math::as_uninit(&mut out));
                    }
                    (bits(&out), mt)
                };
                for normal in [false, true] {
                    let want = run(Kernels::scalar(), normal);
                    for &k in &all {
                        assert!(
                            run(k, normal) == want,
                            "{} len {len} normal {normal}",
                            k.isa()
                        );
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any engine state, length and parameters: every instruction set
        /// gives the scalar path's values and leaves the engine in the same
        /// state.
        #[test]
        fn torch_paths_agree_on_random_inputs(
            seed in proptest::prelude::any::<u32>(),
            skip in 0usize..1300,
            len in 16usize..3000,
            from in -100.0f32..100.0,
            width in 0.0f32..50.0,
            mean in -10.0f32..10.0,
            std in 0.0f32..10.0,
        ) {
            let mut mt = Mt19937::new(seed);
            for _ in 0..skip {
                mt.next_u32();
            }
            let run = |k: Kernels, normal: bool| {
                let mut mt = mt.clone();
                let mut out = vec![0.0f32; len];
                if normal {
                    k.torch_normal(&mut mt, mean, std, math::as_uninit(&mut out));
                } else {
                    k.torch_uniform(&mut mt, from, from + width, math::as_uninit(&mut out));
                }
                (out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), mt)
            };
            for normal in [false, true] {
                let want = run(Kernels::scalar(), normal);
                for isa in Isa::supported() {
                    proptest::prop_assert!(run(Kernels::new(isa).unwrap(), normal) == want, "{isa}");
                }
            }
        }
    }

    /// All words of block 0 of `stream`, in element order.
    fn block_words(stream: Stream) -> Vec<u32> {
        let mut rngs: Vec<Xoshiro256PlusPlus> =
            (0..8).map(|lane| stream.lane_rng(0, lane)).collect();
        let mut words = Vec::with_capacity(BLOCK);
        for _ in 0..BLOCK / STEP {
            for rng in &mut rngs {
                let x = rng.next_u64();
                words.extend([x as u32, (x >> 32) as u32]);
            }
        }
        words
    }

    /// The whole truncated-normal transform against the same formula in
    /// `f64` (tail probabilities from each half's end, `Φ⁻¹` by Newton's
    /// method), over 2¹⁸ elements per window (2¹⁴ in debug builds): the
    /// error in units of `std`, and in ulps of the output (of `std` for
    /// outputs closer to 0).
    #[test]
    fn trunc_normal_accuracy() {
        let windows: [(f64, f64, f64, f64); 8] = [
            (0.0, 1.0, -2.0, 2.0),
            (0.0, 1.0, -1.0, 3.0),
            (0.0, 1.0, 2.0, 3.0),
            (0.0, 1.0, 5.0, 6.0),
            (0.0, 1.0, -31.0, -30.0),
            (0.5, 1e-3, -2.0, 2.0),
            (0.0, 1.0, 1.0, 1.001),
            (0.0, 1.0, 5.0, 5.01),
        ];
        let inverse = |t: f64, upper: bool, z0: f64| {
            // z with Q(z) = t (upper) or Φ(z) = t.
            let mut z = if upper { -z0 } else { z0 };
            for _ in 0..8 {
                let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                z -= (normal_q(-z) - t) / density;
            }
            if upper { -z } else { z }
        };
        for (mean, std, a, b) in windows {
            let d = TruncatedNormal::new(mean, std, a, b).unwrap();
            let (m, s) = (d.mean() as f64, d.std() as f64);
            let (alpha, beta) = ((a - m) / s, (b - m) / s);
            let (pa, qa, pb, qb) = (
                normal_q(-alpha),
                normal_q(alpha),
                normal_q(-beta),
                normal_q(beta),
            );
            let (mut worst_std, mut worst_ulp) = (0.0f64, 0.0f64);
            let keys = if cfg!(debug_assertions) { 1 } else { 16u64 };
            for key in 0..keys {
                let stream = Stream::from_key(key);
                let mut out = vec![0.0; BLOCK];
                d.fill_with(Kernels::scalar(), stream, 0, &mut out);
                for (&x, w) in out.iter().zip(block_words(stream)) {
                    let v = ((w >> 1) | 1) as f32 as f64 / 2f64.powi(31);
                    // p and 1 − p from the half's own end.
                    let (p, q) = if alpha >= 0.0 {
                        let half = (qa - qb) / 2.0;
                        (
                            1.0,
                            if w & 1 == 0 {
                                qa - v * half
                            } else {
                                qb + v * half
                            },
                        )
                    } else if beta <= 0.0 {
                        // Mirrored onto the upper tail: half 0 is at b.
                        let half = (pb - pa) / 2.0;
                        (
                            if w & 1 == 0 {
                                pb - v * half
                            } else {
                                pa + v * half
                            },
                            1.0,
                        )
                    } else {
                        let half = (1.0 - pa - qb) / 2.0;
                        if w & 1 == 0 {
                            (pa + v * half, qa - v * half)
                        } else {
                            (pb - v * half, qb + v * half)
                        }
                    };
                    let z0 = (x as f64 - m) / s;
                    let z = if q < p {
                        inverse(q, true, z0)
                    } else {
                        inverse(p, false, z0)
                    };
                    let want = (m + s * z).clamp(a, b);
                    let err = (x as f64 - want).abs();
                    // Ulps of the output, or of `std` for outputs near 0.
                    let scale = (want.abs().max(s)) as f32;
                    let ulp = scale.next_up() as f64 - scale as f64;
                    worst_std = worst_std.max(err / s);
                    worst_ulp = worst_ulp.max(err / ulp);
                }
            }
            eprintln!(
                "trunc_normal(mean {mean}, std {std}, [{a}, {b}]): worst error {worst_std:.2e} std, \
                 {worst_ulp:.1} ulp of the output"
            );
            assert!(worst_ulp <= 8.0, "{d:?}: {worst_ulp} ulp");
        }
    }
}
