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
use crate::kernels::math::{NormalSampler, UniformSampler, as_uninit};
use crate::rng::{Stream, stream_from};

pub(crate) mod sealed {
    use super::*;

    /// The uninitialized-memory entry point shared by all distributions.
    pub trait FillUninit {
        /// Writes every slot of `out` (elements `[offset, ..)` of `stream`).
        fn fill_uninit(
            &self,
            kernels: Kernels,
            stream: Stream,
            offset: u64,
            out: &mut [MaybeUninit<f32>],
        );
    }
}

/// A distribution the fill kernels can sample (implemented by [`Uniform`] and
/// [`Normal`]; sealed).
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

    /// Fills all of `out` from the next stream of `generator` (the global
    /// generator if `None`).
    fn fill(&self, out: &mut [f32], generator: Option<&mut Generator>) {
        self.fill_at(stream_from(generator), 0, out);
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
        })
    }

    /// `N(0, 1)`.
    pub fn standard() -> Normal {
        Normal {
            mean: 0.0,
            std: 1.0,
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
}

impl Distribution for Normal {}

#[cfg(test)]
mod tests {
    use super::*;

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
