//! Distributions with validated parameters, sampled by the fill kernels.
//!
//! Parameters are checked once, in the constructor, as `rand_distr` does; a
//! constructed distribution cannot fail to sample. Each implements
//! [`Distribution`], whose methods fill any range of a [`Stream`]:
//! `fill_at(stream, offset, out)` writes exactly elements
//! `[offset, offset + out.len())` of the virtual array the stream defines, so
//! a shard filled on its own equals the same range of a whole fill, bit for
//! bit, on any thread count and instruction set.
//!
//! ```
//! use nninit::distributions::{Distribution, Normal};
//! use nninit::Generator;
//!
//! let normal = Normal::new(0.0, 0.02).unwrap();
//! let stream = Generator::new(7).next_stream();
//! let mut whole = vec![0.0; 1000];
//! normal.fill_at(stream, 0, &mut whole);
//! let mut shard = vec![0.0; 100];
//! normal.fill_at(stream, 450, &mut shard);
//! assert_eq!(&whole[450..550], &shard[..]);
//! ```

use std::mem::MaybeUninit;

use crate::Generator;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::kernels::math::{
    NarrowTruncNormalSampler, NormalSampler, QUANTILE_P_LOW, QUANTILE_P_TAIL_ONLY,
    TruncNormalSampler, UniformSampler, as_uninit, zeroed,
};
use crate::rng::torch::TorchGenerator;
use crate::rng::{Source, Stream, with_source};

pub(crate) mod torch;

pub(crate) mod sealed {
    use super::*;

    /// The uninitialized-memory entry points shared by all distributions.
    pub trait FillUninit {
        /// Writes every slot of `out` (elements `[offset, ..)` of `stream`).
        fn fill_uninit(
            &self,
            kernels: Kernels,
            stream: Stream,
            offset: u64,
            out: &mut [MaybeUninit<f32>],
        );

        /// Writes every slot of `out` with PyTorch's sampler for this
        /// distribution, drawing from its generator serially.
        fn fill_torch(
            &self,
            kernels: Kernels,
            g: &mut TorchGenerator,
            out: &mut [MaybeUninit<f32>],
        );
    }
}

/// A distribution the fill kernels can sample (implemented by [`Uniform`],
/// [`Normal`] and [`TruncatedNormal`]; sealed).
pub trait Distribution: sealed::FillUninit + std::fmt::Debug + Sync {
    /// Writes elements `[offset, offset + out.len())` of `stream` to `out`,
    /// using `kernels`.
    fn fill_with(&self, kernels: Kernels, stream: Stream, offset: u64, out: &mut [f32]) {
        self.fill_uninit(kernels, stream, offset, as_uninit(out));
    }

    /// Writes elements `[offset, offset + out.len())` of `stream` to `out`,
    /// using [`Kernels::active`].
    fn fill_at(&self, stream: Stream, offset: u64, out: &mut [f32]) {
        self.fill_with(Kernels::active(), stream, offset, out);
    }

    /// Fills all of `out` from `generator` (the global generator if
    /// `None`): from its next stream if it is counter-based, with PyTorch's
    /// sampler for this distribution if it is torch-exact (`uniform_`,
    /// `normal_`, `trunc_normal_` with the parameters given to `new`, in
    /// `f64` as PyTorch keeps them).
    fn fill(&self, out: &mut [f32], generator: Option<&mut Generator>) {
        with_source(generator, |source| match source {
            Source::Counter(counter) => self.fill_at(counter.take(), 0, out),
            Source::Torch(g) => self.fill_torch(Kernels::active(), g, as_uninit(out)),
        });
    }
}

fn check_f32(v: f64) -> Option<f32> {
    let x = v as f32;
    x.is_finite().then_some(x)
}

/// The continuous uniform distribution on `[from, to)`.
///
/// Sampling uses 24 random bits per value: the outputs are
/// `from + k · (to − from) · 2⁻²⁴` for `k` in `0..2²⁴`, rounded to `f32`, and
/// never `to` (a value that would round up to `to` becomes the largest `f32`
/// below it). `from == to` fills `from`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    from: f32,
    to: f32,
}

impl Uniform {
    /// `U[from, to)`, checked as PyTorch's `uniform_` checks (in `f64`, then
    /// converted to `f32`).
    ///
    /// Errors: a bound that is NaN, infinite or outside the `f32` range
    /// ([`Error::UniformBoundOutOfRange`]), `from > to`
    /// ([`Error::UniformRange`]), or `to − from` overflowing `f32`
    /// ([`Error::UniformWidth`]).
    pub fn new(from: f64, to: f64) -> Result<Uniform> {
        let from32 = check_f32(from).ok_or(Error::UniformBoundOutOfRange {
            which: "from",
            value: from,
        })?;
        let to32 = check_f32(to).ok_or(Error::UniformBoundOutOfRange {
            which: "to",
            value: to,
        })?;
        if from > to {
            return Err(Error::UniformRange { from, to });
        }
        if !(to32 - from32).is_finite() {
            return Err(Error::UniformWidth { from, to });
        }
        Ok(Uniform {
            from: from32,
            to: to32,
        })
    }

    /// The lower bound.
    pub fn from(&self) -> f32 {
        self.from
    }

    /// The upper bound (never produced, unless equal to `from`).
    pub fn to(&self) -> f32 {
        self.to
    }

    pub(crate) fn sampler(&self) -> UniformSampler {
        UniformSampler {
            a: self.from,
            scale: (self.to - self.from) * (1.0 / 16_777_216.0),
            below_b: self.to.next_down(),
        }
    }
}

impl sealed::FillUninit for Uniform {
    fn fill_uninit(
        &self,
        kernels: Kernels,
        stream: Stream,
        offset: u64,
        out: &mut [MaybeUninit<f32>],
    ) {
        if self.from == self.to {
            kernels.fill_constant_uninit(out, self.from);
        } else {
            kernels.fill_sampler(&self.sampler(), stream, offset, out);
        }
    }

    fn fill_torch(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [MaybeUninit<f32>]) {
        torch::uniform_(kernels, g, self.from, self.to, out);
    }
}

impl Distribution for Uniform {}

/// The largest `|z|` the Box–Muller kernel can produce: `√(−2 ln 2⁻³¹)`.
pub const NORMAL_MAX_ABS_Z: f64 = 6.556;

/// The normal distribution `N(mean, std²)`, sampled by Box–Muller.
///
/// The standard normals are produced in pairs from two 32-bit words (see
/// [`crate::kernels`]); their magnitude never exceeds [`NORMAL_MAX_ABS_Z`]
/// (the tail beyond it has probability 5.6e-11). `std == 0` fills `mean`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normal {
    mean: f32,
    std: f32,
    /// The parameters as given, for PyTorch's double-precision small path.
    given: (f64, f64),
}

impl Normal {
    /// `N(mean, std²)`.
    ///
    /// Errors: `std` negative, NaN or not a finite `f32`
    /// ([`Error::NormalStd`]; PyTorch accepts NaN and fills NaN); `mean` not a
    /// finite `f32` ([`Error::NormalMean`]); or parameters for which some
    /// sample would overflow `f32` ([`Error::NormalRange`]).
    pub fn new(mean: f64, std: f64) -> Result<Normal> {
        let std32 = check_f32(std)
            .filter(|_| std >= 0.0)
            .ok_or(Error::NormalStd { std })?;
        let mean32 = check_f32(mean).ok_or(Error::NormalMean { mean })?;
        if (mean32 as f64).abs() + 1.001 * NORMAL_MAX_ABS_Z * std32 as f64 > f32::MAX as f64 {
            return Err(Error::NormalRange { mean, std });
        }
        Ok(Normal {
            mean: mean32,
            std: std32,
            given: (mean, std),
        })
    }

    /// `N(0, 1)`.
    pub fn standard() -> Normal {
        Normal {
            mean: 0.0,
            std: 1.0,
            given: (0.0, 1.0),
        }
    }

    /// The mean.
    pub fn mean(&self) -> f32 {
        self.mean
    }

    /// The standard deviation.
    pub fn std(&self) -> f32 {
        self.std
    }
}

impl sealed::FillUninit for Normal {
    fn fill_uninit(
        &self,
        kernels: Kernels,
        stream: Stream,
        offset: u64,
        out: &mut [MaybeUninit<f32>],
    ) {
        if self.std == 0.0 {
            kernels.fill_constant_uninit(out, self.mean);
        } else {
            let sampler = NormalSampler {
                mean: self.mean,
                std: self.std,
            };
            kernels.fill_sampler(&sampler, stream, offset, out);
        }
    }

    fn fill_torch(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [MaybeUninit<f32>]) {
        let (mean, std) = self.given;
        torch::normal_(kernels, g, mean, std, out);
    }
}

impl Distribution for Normal {}

/// How far (in standard deviations) from the mean a truncated-normal window
/// may start: `Φ(−37) ≈ 5.7e-300` is still a normal `f64`.
pub const TRUNC_NORMAL_MAX_Z: f64 = 37.0;

/// The normal distribution `N(mean, std²)` conditioned on `[a, b]`, as
/// PyTorch's `trunc_normal_` means it (`a` and `b` are absolute bounds, not
/// in units of `std`), sampled exactly by the inverse CDF.
///
/// # Method
/// With `α = (a − mean)/std` and `β = (b − mean)/std` (in `f64`, from the
/// `f32` mean and std the kernel uses), each output is
/// `mean + std · Φ⁻¹(p)` for `p` uniform in `(Φ(α), Φ(β))`, then clamped to
/// `[a, b]`:
/// * **Tail probabilities, never `1 − p`.** The window's probability mass is
///   split at its median; bit 0 of the element's 32-bit word picks the half,
///   the other 31 bits give `v` in `(0, 1]` (a 30-bit grid, finest near 0).
///   Each half computes both `p` and `1 − p` from its own end
///   (`Φ(α) + v·W/2` and `Q(α) − v·W/2`, or `Φ(β) − v·W/2` and
///   `Q(β) + v·W/2`, with `Q(x) = Φ(−x)` and `W` the window's probability),
///   and the smaller one goes to the quantile function, so values near
///   either bound keep full relative precision. Windows below the mean are
///   mirrored onto the upper tail; for a window on one side of the mean the
///   probabilities are scaled by a power of two so that windows like
///   `[5σ, 6σ]` or `[30σ, 31σ]` are as accurate as `[−2σ, 2σ]`.
/// * **The quantile** is a pair of rational approximations evaluated in
///   `f32`: for `0.0222 ≤ p ≤ ½` a (4, 4) rational in `0.2283 − (p − ½)²`
///   with positive coefficients (fitted by `scripts/fit_quantile.py`, in the
///   form of Wichura's AS 241), below it P. J. Acklam's tail in
///   `√(−2 ln p)` (with this crate's vectorized logarithm).
/// * **Narrow windows** (`(β − α) · max(|α|, |β|, 1) ≤ 0.15`, e.g. `[1σ, 1.001σ]`),
///   where the quantile's rounding noise (a few ulps of `z`) would be many
///   ulps of the window and distort the law at the bounds, use a second kernel:
///   each half is inverted locally from its own bound, `δ = y H(y)` with `H` the
///   degree-8 series reversion of `y = ∫₀^δ exp(−c s − s²/2) ds` (computed in
///   `f64` per distribution; relative error of `δ` at most 1.0e-8, test
///   `narrow_series_inverts_f`), and the output is `a + std·δ` or `b − std·δ`,
///   accurate relative to `δ`.
/// * **Clamping** to `[a, b]` (the smallest `f32` ≥ `a` and the largest
///   `f32` ≤ `b`) only undoes rounding: the transform lands within a few
///   ulps of the window, never beyond it by more, so there is no pile-up at
///   the bounds.
///
/// # Accuracy
/// * The quantile approximation, against `Φ⁻¹` of the same `f32` input in
///   `f64`, over 3.0 million probabilities from 1e-300 to ½ (every 997th
///   `f32` in `[2⁻³³, ½]`, and scaled far-tail probabilities; test
///   `quantile_accuracy` in `kernels::math`): at most 3.5e-7 relative.
/// * The whole transform, against the same formula in `f64` (`Φ⁻¹` by
///   Newton's method) for 2¹⁸ elements per window (test
///   `trunc_normal_accuracy` in `kernels`): at most 5.1 ulp of the output
///   for `[−2, 2]`, 4.8 for `[−1, 3]`, 3.2 for `[2, 3]`, 3.4 for `[5, 6]`,
///   4.5 for `[−31, −30]`; 0.6 ulp for the narrow kernel (`[1, 1.001]`,
///   `[5, 5.01]`) and 0.5 ulp (the output's own rounding) for `std = 1e-3`
///   beside `mean = 0.5`. Near 0, ulps of `std`.
/// * The uniform input lies on a 30-bit grid per half and each output's
///   probability is rounded to `f32` (relative error 2⁻²⁴): a CDF error far
///   below what a KS test at `n = 10⁶` (critical distance 1.9e-3) can see.
///
/// # Parameters
/// `a = −∞` and `b = +∞` are allowed (then that side is untruncated). Errors:
/// `std` not positive and finite in `f32` ([`Error::TruncNormalStd`]), `mean`
/// not a finite `f32` ([`Error::TruncNormalMean`]), a NaN bound
/// ([`Error::TruncNormalBound`]), `a >= b` ([`Error::TruncNormalRange`]), no
/// `f32` in `[a, b]` ([`Error::TruncNormalNoFloat`]), or a window entirely
/// more than [`TRUNC_NORMAL_MAX_Z`] standard deviations from the mean (or
/// whose samples could overflow `f32`; [`Error::TruncNormalWindow`]).
///
/// ```
/// use nninit::distributions::{Distribution, TruncatedNormal};
/// use nninit::Generator;
///
/// let d = TruncatedNormal::new(0.0, 1.0, 2.0, 3.0).unwrap();
/// let mut out = vec![0.0; 1000];
/// d.fill(&mut out, Some(&mut Generator::new(1)));
/// assert!(out.iter().all(|&x| (2.0..=3.0).contains(&x)));
/// assert!(TruncatedNormal::new(0.0, 1.0, 1.0, 1.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruncatedNormal {
    mean: f32,
    std: f32,
    a: f64,
    b: f64,
    sampler: TruncKind,
    /// PyTorch 2.15's sampler for these parameters, or `None` where it
    /// cannot sample them (see [`torch::TruncNormal::new`]).
    torch: Option<torch::TruncNormal>,
}

/// Which kernel a [`TruncatedNormal`] uses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TruncKind {
    Wide(TruncNormalSampler),
    Narrow(NarrowTruncNormalSampler),
}

impl TruncatedNormal {
    /// `N(mean, std²)` conditioned on `[a, b]` (PyTorch's defaults are
    /// `mean = 0`, `std = 1`, `a = −2`, `b = 2`).
    pub fn new(mean: f64, std: f64, a: f64, b: f64) -> Result<TruncatedNormal> {
        let std32 = check_f32(std)
            .filter(|&s| s > 0.0)
            .ok_or(Error::TruncNormalStd { std })?;
        let mean32 = check_f32(mean).ok_or(Error::TruncNormalMean { mean })?;
        for (which, value) in [("a", a), ("b", b)] {
            if value.is_nan() {
                return Err(Error::TruncNormalBound { which, value });
            }
        }
        if a >= b {
            return Err(Error::TruncNormalRange { a, b });
        }
        let (lo, hi) = (f32_at_least(a), f32_at_most(b));
        if lo > hi {
            return Err(Error::TruncNormalNoFloat { a, b });
        }
        let window = Error::TruncNormalWindow { mean, std, a, b };
        let (m, s) = (mean32 as f64, std32 as f64);
        let (alpha, beta) = ((a - m) / s, (b - m) / s);
        if alpha > TRUNC_NORMAL_MAX_Z || beta < -TRUNC_NORMAL_MAX_Z {
            return Err(window);
        }
        // The largest |z| the kernel can produce is about 37.7.
        let reach = |z: f64| m + s * z.clamp(-38.0, 38.0) * 1.001;
        if reach(alpha).abs() > f32::MAX as f64 || reach(beta).abs() > f32::MAX as f64 {
            return Err(window);
        }
        let narrow = (beta - alpha) * alpha.abs().max(beta.abs()).max(1.0) <= NARROW
            && (a as f32).is_finite()
            && (b as f32).is_finite();
        let sampler = if narrow {
            TruncKind::Narrow(narrow_sampler(std32, alpha, beta, a, b, lo, hi))
        } else {
            TruncKind::Wide(trunc_normal_sampler(mean32, std32, alpha, beta, lo, hi))
        };
        Ok(TruncatedNormal {
            mean: mean32,
            std: std32,
            a,
            b,
            sampler,
            torch: torch::TruncNormal::new(mean, std, a, b).ok(),
        })
    }

    /// The mean of the normal before truncation.
    pub fn mean(&self) -> f32 {
        self.mean
    }

    /// The standard deviation of the normal before truncation.
    pub fn std(&self) -> f32 {
        self.std
    }

    /// The lower bound, as given.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// The upper bound, as given.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// The smallest and the largest value a sample can take: the smallest
    /// `f32` ≥ `a` and the largest `f32` ≤ `b`.
    pub fn support(&self) -> (f32, f32) {
        match self.sampler {
            TruncKind::Wide(t) => (t.lo, t.hi),
            TruncKind::Narrow(t) => (t.lo, t.hi),
        }
    }
}

impl sealed::FillUninit for TruncatedNormal {
    fn fill_uninit(
        &self,
        kernels: Kernels,
        stream: Stream,
        offset: u64,
        out: &mut [MaybeUninit<f32>],
    ) {
        match &self.sampler {
            TruncKind::Wide(t) => kernels.fill_sampler(t, stream, offset, out),
            TruncKind::Narrow(t) => kernels.fill_sampler(t, stream, offset, out),
        }
    }

    /// PyTorch 2.15's rejection sampler. For the few windows it cannot
    /// sample (a one-sided infinite window with `p ≤ 0.3`, or one whose
    /// `f32` acceptance test overflows: PyTorch rejects or never finishes
    /// them), this crate's exact sampler runs on a stream keyed by two words
    /// of the generator.
    fn fill_torch(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [MaybeUninit<f32>]) {
        match &self.torch {
            Some(t) => t.fill(kernels, g, zeroed(out)),
            None => {
                let key = crate::rng::mix64(g.random64());
                self.fill_uninit(kernels, Stream::from_key(key), 0, out);
            }
        }
    }
}

impl Distribution for TruncatedNormal {}

/// The smallest `f32` ≥ `x` (`−f32::MAX` for anything below it).
fn f32_at_least(x: f64) -> f32 {
    let y = x as f32;
    let y = if (y as f64) < x { y.next_up() } else { y };
    y.max(-f32::MAX)
}

/// The largest `f32` ≤ `x` (`f32::MAX` for anything above it).
fn f32_at_most(x: f64) -> f32 {
    let y = x as f32;
    let y = if (y as f64) > x { y.next_down() } else { y };
    y.min(f32::MAX)
}

/// The kernel parameters for standardized bounds `alpha < beta` (module docs
/// of [`TruncatedNormal`]).
fn trunc_normal_sampler(
    mean: f32,
    std: f32,
    alpha: f64,
    beta: f64,
    lo: f32,
    hi: f32,
) -> TruncNormalSampler {
    // A window below the mean is mirrored onto the upper tail.
    let (alpha, beta, scale) = if beta <= 0.0 {
        (-beta, -alpha, -std)
    } else {
        (alpha, beta, std)
    };
    let base = TruncNormalSampler {
        p0: [0.0; 2],
        q0: [0.0; 2],
        half_width: 0.0,
        unscale: 1.0,
        ln_offset: 0.0,
        switch: QUANTILE_P_LOW,
        one_sided: false,
        mean,
        scale,
        lo,
        hi,
    };
    if alpha < 0.0 {
        // Across the mean: both tails, no scaling.
        let (pa, qa) = (normal_q(-alpha), normal_q(alpha));
        let (pb, qb) = (normal_q(-beta), normal_q(beta));
        let width = 1.0 - pa - qb;
        TruncNormalSampler {
            p0: [pa as f32, pb as f32],
            q0: [qa as f32, qb as f32],
            half_width: (width / 2.0) as f32,
            ..base
        }
    } else {
        // Upper tail only: scale Q by 2^k so that Q(α)·2^k is in (½, 1].
        let (qa, qb) = (normal_q(alpha), normal_q(beta));
        // Q(α) is the largest tail probability: if it is below the tail-only
        // switch, no lane needs the central branch.
        let switch = if qa < QUANTILE_P_TAIL_ONLY as f64 * 0.99 {
            QUANTILE_P_TAIL_ONLY
        } else {
            QUANTILE_P_LOW
        };
        let k = (-qa.log2()).floor().max(0.0) as i32;
        let scale_up = 2f64.powi(k);
        TruncNormalSampler {
            // p is never the smaller probability: Q(x)·2^k <= 1 < 4 − W/2.
            p0: [4.0; 2],
            q0: [(qa * scale_up) as f32, (qb * scale_up) as f32],
            half_width: ((qa - qb) * scale_up / 2.0) as f32,
            unscale: 2f64.powi(-k) as f32,
            ln_offset: (2.0 * k as f64 * std::f64::consts::LN_2) as f32,
            switch,
            one_sided: true,
            ..base
        }
    }
}

/// Windows with `(β − α) · max(|α|, |β|, 1)` up to this use the narrow
/// kernel (local series inversion from each end).
const NARROW: f64 = 0.15;

/// Degree of the series `δ = y H(y)` of the narrow kernel.
const NARROW_TERMS: usize = 8;

/// The narrow-window kernel parameters (see [`NarrowTruncNormalSampler`]).
#[allow(clippy::too_many_arguments)]
fn narrow_sampler(
    std: f32,
    alpha: f64,
    beta: f64,
    a: f64,
    b: f64,
    lo: f32,
    hi: f32,
) -> NarrowTruncNormalSampler {
    // The window's probability, from the side where it is accurate.
    let width = if alpha >= 0.0 {
        normal_q(alpha) - normal_q(beta)
    } else if beta <= 0.0 {
        normal_q(-beta) - normal_q(-alpha)
    } else {
        1.0 - normal_q(-alpha) - normal_q(beta)
    };
    let density = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    // Half 0 runs from α inwards (c = α), half 1 from β inwards (c = −β).
    let half = |end: f64, c: f64| {
        let h = inverse_series(c);
        (
            (width / 2.0 / density(end) / 2_147_483_648.0) as f32,
            h.map(|x| x as f32),
        )
    };
    let (y0, h0) = half(alpha, alpha);
    let (y1, h1) = half(beta, -beta);
    NarrowTruncNormalSampler {
        y_scale: [y0, y1],
        h: [h0, h1],
        // A bound beyond the f32 range cannot be in a narrow window with a
        // float in it: both are within a few ulps of lo and hi.
        anchor: [a as f32, b as f32],
        anchor_lo: [
            (a - (a as f32) as f64) as f32,
            (b - (b as f32) as f64) as f32,
        ],
        scale: [std, -std],
        lo,
        hi,
    }
}

/// `H` with `δ = y H(y)` the inverse of `y = F(δ) = ∫₀^δ exp(−c s − s²/2) ds`,
/// to degree [`NARROW_TERMS`] (series reversion in `f64`).
fn inverse_series(c: f64) -> [f64; NARROW_TERMS] {
    const M: usize = NARROW_TERMS + 1; // coefficients of y^0..y^NARROW_TERMS
    // g = exp(−c s − s²/2) = Σ g_n s^n, from g' = −(c + s) g.
    let mut g = [0.0f64; M];
    g[0] = 1.0;
    for n in 0..M - 1 {
        let prev = if n >= 1 { g[n - 1] } else { 0.0 };
        g[n + 1] = (-c * g[n] - prev) / (n + 1) as f64;
    }
    // F(δ) = Σ f_k δ^k with f_k = g_{k−1}/k; δ = y − Σ_{k≥2} f_k δ^k,
    // iterated: each pass fixes one more coefficient.
    let mul = |x: &[f64; M], y: &[f64; M]| {
        let mut out = [0.0f64; M];
        for i in 0..M {
            for j in 0..M - i {
                out[i + j] += x[i] * y[j];
            }
        }
        out
    };
    let mut delta = [0.0f64; M];
    delta[1] = 1.0;
    for _ in 0..M {
        let mut next = [0.0f64; M];
        next[1] = 1.0;
        let mut power = delta;
        for k in 2..M {
            power = mul(&power, &delta);
            let f = g[k - 1] / k as f64;
            for (n, p) in next.iter_mut().zip(power) {
                *n -= f * p;
            }
        }
        delta = next;
    }
    std::array::from_fn(|i| delta[i + 1])
}

/// `Q(x) = Φ(−x)`, the upper tail of the standard normal, in `f64` with a
/// relative error of about 1e-15 (and 0 beyond `x = 38.5`, where it
/// underflows).
pub(crate) fn normal_q(x: f64) -> f64 {
    if x > 38.5 {
        return 0.0;
    }
    if x < -38.5 {
        return 1.0;
    }
    0.5 * crate::special::erfc(x / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The narrow kernel's series against `F(δ) = ∫₀^δ exp(−c s − s²/2) ds`
    /// (Simpson's rule), at the largest `y` a narrow window uses, with the
    /// coefficients rounded to `f32` as the kernel has them.
    #[test]
    fn narrow_series_inverts_f() {
        let f = |c: f64, d: f64| {
            let n = 2000;
            let h = d / n as f64;
            let g = |s: f64| (-c * s - s * s / 2.0).exp();
            let mut sum = g(0.0) + g(d);
            for i in 1..n {
                sum += g(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            sum * h / 3.0
        };
        let mut worst = 0.0f64;
        for c in [-37.0f64, -5.0, -1.0, -0.3, 0.0, 0.3, 1.0, 5.0, 37.0] {
            // Widest narrow window with this end: w · max(|c|, 1) = NARROW
            // (the other end is at most w further out).
            let w = NARROW / c.abs().max(1.0);
            let h = inverse_series(c).map(|x| x as f32 as f64);
            for k in 1..=20 {
                let delta = w / 2.0 * k as f64 / 20.0 * 1.2;
                let y = f(c, delta);
                let got = y * h.iter().rev().fold(0.0, |acc, &x| acc * y + x);
                worst = worst.max((got - delta).abs() / delta);
            }
        }
        eprintln!("narrow series: worst relative error of δ {worst:e}");
        assert!(worst < 3e-8, "narrow series: {worst:e}");
    }

    #[test]
    fn uniform_errors_name_values() {
        let e = Uniform::new(2.0, 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "uniform_ expects to return a [from, to) range, but found from=2 > to=1"
        );
        let e = Uniform::new(f64::NAN, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "from is out of bounds for float: from=nan");
        let e = Uniform::new(0.0, f64::INFINITY).unwrap_err();
        assert_eq!(e.to_string(), "to is out of bounds for float: to=inf");
        let e = Uniform::new(0.0, 1e39).unwrap_err();
        assert_eq!(e.to_string(), "to is out of bounds for float: to=1e+39");
        let e = Uniform::new(-3e38, 3e38).unwrap_err();
        assert!(matches!(e, Error::UniformWidth { .. }), "{e}");
        assert!(e.to_string().contains("to=3e+38 and from=-3e+38"), "{e}");
    }

    #[test]
    fn normal_errors_name_values() {
        for (std, shown) in [
            (-1.0, "-1"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (1e39, "1e+39"),
        ] {
            let e = Normal::new(0.0, std).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("normal expects std >= 0.0 and finite, but found std {shown}")
            );
        }
        let e = Normal::new(f64::NAN, 1.0).unwrap_err();
        assert!(e.to_string().ends_with("but found mean nan"), "{e}");
        let e = Normal::new(3e38, 1e38).unwrap_err();
        assert!(matches!(e, Error::NormalRange { .. }), "{e}");
        assert!(Normal::new(0.0, 0.0).is_ok());
        assert!(Normal::new(-2.5, 1e30).is_ok());
    }

    #[test]
    fn degenerate_parameters_fill_constants() {
        let stream = Stream::from_key(3);
        let mut out = vec![1.0f32; 37];
        Uniform::new(0.25, 0.25)
            .unwrap()
            .fill_at(stream, 5, &mut out);
        assert!(out.iter().all(|&x| x == 0.25));
        Normal::new(-1.5, 0.0).unwrap().fill_at(stream, 5, &mut out);
        assert!(out.iter().all(|&x| x == -1.5));
    }

    #[test]
    fn uniform_never_reaches_to() {
        // A one-ulp-wide interval: every value must be `from`.
        let from = 1.0f32;
        let to = from.next_up();
        let u = Uniform::new(from as f64, to as f64).unwrap();
        let mut out = vec![0.0; 4096];
        u.fill_at(Stream::from_key(9), 0, &mut out);
        assert!(out.iter().all(|&x| x == from));
    }
}
