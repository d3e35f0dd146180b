//! PyTorch 2.15's samplers on its CPU generator, for `f32` tensors.
//!
//! Each function consumes the generator's word stream exactly as the
//! PyTorch call it names does, so any sequence of calls reproduces
//! PyTorch's sequence of values (`torch-rng/SPEC.md` in the shared folder
//! has the derivations; the tests check them against real PyTorch output).
//!
//! | call | words |
//! |---|---|
//! | `uniform_(a, b)`, `rand` | `n` |
//! | `normal_`, `n ≥ 16` | `n + 16·[n % 16 ≠ 0]` (the double cache is untouched) |
//! | `normal_`, `n < 16` | 4 per pair of values, the second of a pair cached |
//! | `randperm(n)` | `n − 1` |
//! | `trunc_normal_`, `p > 0.3` | `normal_`'s, once per round |
//! | `trunc_normal_`, `p ≤ 0.3` | `2n` per round |
//!
//! An empty tensor draws nothing.

use std::mem::MaybeUninit;

use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::kernels::math::as_uninit;
use crate::rng::torch::TorchGenerator;
use crate::special::erfc;

use super::{Normal, Uniform};

/// `uniform_(from, to)` (`from`, `to` as the kernel casts them).
pub(crate) fn uniform_(
    kernels: Kernels,
    g: &mut TorchGenerator,
    from: f32,
    to: f32,
    out: &mut [MaybeUninit<f32>],
) {
    kernels.torch_uniform(&mut g.engine, from, to, out);
}

/// `normal_(mean, std)` on a contiguous tensor of `out.len()` elements:
/// the vectorized path for 16 elements or more (mean and std cast to
/// `f32`), else the double-precision path with its cached sample (mean and
/// std kept in `f64`).
pub(crate) fn normal_(
    kernels: Kernels,
    g: &mut TorchGenerator,
    mean: f64,
    std: f64,
    out: &mut [MaybeUninit<f32>],
) {
    if out.len() >= 16 {
        kernels.torch_normal(&mut g.engine, mean as f32, std as f32, out);
    } else {
        for o in out {
            o.write(normal_double(g, mean, std) as f32);
        }
    }
}

/// `at::normal_distribution<double>(mean, std)`: Box–Muller in `f64` from two
/// 53-bit uniforms (four words), the second value cached for the next call.
///
/// `log1p`, `sin` and `cos` are the platform's libm (PyTorch calls glibc's);
/// the result is rounded to `f32` afterwards, so a last-bit difference
/// between libms practically never shows (0 of 40 000 values differed from
/// correctly rounded math in PyTorch's own test).
pub(crate) fn normal_double(g: &mut TorchGenerator, mean: f64, std: f64) -> f64 {
    if let Some(z) = g.next_double_normal.take() {
        return z.mul_add(std, mean);
    }
    const MASK53: u64 = (1 << 53) - 1;
    const TWO_M53: f64 = 1.0 / (1u64 << 53) as f64;
    let u1 = (g.random64() & MASK53) as f64 * TWO_M53;
    let u2 = (g.random64() & MASK53) as f64 * TWO_M53;
    let r = (-2.0 * (-u2).ln_1p()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * u1;
    g.next_double_normal = Some(r * theta.sin());
    (r * theta.cos()).mul_add(std, mean)
}

/// `torch.randperm(n)` on the CPU: `0..n` shuffled by PyTorch's
/// Fisher–Yates (for `n < 2³²/20`: swap `i` with `i + random() % (n − i)`
/// for `i < n − 1`; beyond, the inside-out variant on `random64()`).
pub(crate) fn randperm(g: &mut TorchGenerator, n: usize, perm: &mut Vec<usize>) {
    perm.clear();
    if n < (u32::MAX / 20) as usize {
        perm.extend(0..n);
        for i in 0..n.saturating_sub(1) {
            let z = g.random() as usize % (n - i);
            perm.swap(i, z + i);
        }
    } else {
        perm.resize(n, 0);
        for i in 0..n {
            let z = (g.random64() % (i as u64 + 1)) as usize;
            perm[i] = perm[z];
            perm[z] = i;
        }
    }
}

/// `norm_cdf` of `nn.init._no_grad_trunc_normal_`: `(1 + erf(x/√2)) / 2`.
fn norm_cdf(x: f64) -> f64 {
    if x.is_infinite() {
        return if x > 0.0 { 1.0 } else { 0.0 };
    }
    let y = x / 2f64.sqrt();
    let erf = if y >= 0.0 {
        1.0 - erfc(y)
    } else {
        erfc(-y) - 1.0
    };
    (1.0 + erf) / 2.0
}

/// How far from the mean (in std) the nearest point of a `p ≤ 0.3` window may
/// lie.
const MAX_PEAK_Z: f64 = 1000.0;

/// PyTorch 2.15's `trunc_normal_(mean, std, a, b)`, validated: which of its
/// two rejection samplers runs, with the values it prepares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TruncNormal {
    /// `p > 0.3`: whole tensors of `normal_(mean, std)` until every value
    /// lies in `[lo, hi]` (the bounds as `f32`).
    Normals {
        mean: f64,
        std: f64,
        lo: f32,
        hi: f32,
    },
    /// `p ≤ 0.3`: candidates from `uniform_(a, b)`, each accepted when
    /// `log(u) ≤ −½((c − mean)/std)² − log_peak` for a fresh `u` from
    /// `uniform_()`, in `f32` arithmetic.
    Uniforms {
        from: f32,
        to: f32,
        mean: f32,
        std: f32,
        log_peak: f32,
    },
}

impl TruncNormal {
    /// Checks the parameters and picks the branch as PyTorch does
    /// (`p = Φ(β) − Φ(α)` in `f64`).
    ///
    /// Errors: `std` not positive and finite, `mean` not finite, a NaN
    /// bound or `a >= b` (PyTorch divides by zero or never ends on some of
    /// these), the bounds `uniform_` or the normals `normal_` would reject,
    /// and, for the `p ≤ 0.3` branch, windows whose `f32` acceptance test
    /// overflows (PyTorch would loop forever).
    pub(crate) fn new(mean: f64, std: f64, a: f64, b: f64) -> Result<TruncNormal> {
        if !(std.is_finite() && std > 0.0 && (std as f32) > 0.0) {
            return Err(Error::TruncNormalStd { std });
        }
        if !mean.is_finite() {
            return Err(Error::TruncNormalMean { mean });
        }
        for (which, value) in [("a", a), ("b", b)] {
            if value.is_nan() {
                return Err(Error::TruncNormalBound { which, value });
            }
        }
        if a >= b {
            return Err(Error::TruncNormalRange { a, b });
        }
        let p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std);
        if p > 0.3 {
            // The normals must be valid; the bounds may be infinite.
            Normal::new(mean, std)?;
            return Ok(TruncNormal::Normals {
                mean,
                std,
                lo: a as f32,
                hi: b as f32,
            });
        }
        let uniform = Uniform::new(a, b)?;
        let mode = a.max(mean.min(b));
        let log_peak = -0.5 * ((mode - mean) / std).powi(2);
        let t = TruncNormal::Uniforms {
            from: uniform.from(),
            to: uniform.to(),
            mean: mean as f32,
            std: std as f32,
            log_peak: log_peak as f32,
        };
        // The test must be finite across the window, and the window's peak
        // must lie within ~1000 std of the mean: beyond, the f32 rounding of
        // z² (about z²·2⁻²⁴) swamps the density's shape and the acceptance
        // probability can round to 0, so PyTorch would loop forever.
        let finite = |c: f32| t.log_density(c).is_finite();
        if !(finite(uniform.from()) && finite(uniform.to()) && (log_peak as f32).is_finite())
            || ((mode - mean) / std).abs() > MAX_PEAK_Z
        {
            return Err(Error::TorchTruncNormalWindow { mean, std, a, b });
        }
        Ok(t)
    }

    /// `−½((c − mean)/std)² − log_peak` as PyTorch's tensor ops round it
    /// (`sub_`, `div_`, `pow_(2)`, `mul_(−0.5)`, `sub_`, each in `f32`).
    fn log_density(&self, c: f32) -> f32 {
        match *self {
            TruncNormal::Uniforms {
                mean,
                std,
                log_peak,
                ..
            } => {
                let z = (c - mean) / std;
                z * z * -0.5 - log_peak
            }
            TruncNormal::Normals { .. } => {
                unreachable!("only the uniform branch has a density test")
            }
        }
    }

    /// Fills `out` (initialized or not; every element is written).
    pub(crate) fn fill(&self, kernels: Kernels, g: &mut TorchGenerator, out: &mut [f32]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        match *self {
            TruncNormal::Normals { mean, std, lo, hi } => {
                normal_(kernels, g, mean, std, as_uninit(out));
                let outside = |v: f32| v < lo || v > hi;
                let mut fresh = vec![0.0f32; n];
                while out.iter().any(|&v| outside(v)) {
                    normal_(kernels, g, mean, std, as_uninit(&mut fresh));
                    for (o, &f) in out.iter_mut().zip(&fresh) {
                        if outside(*o) {
                            *o = f;
                        }
                    }
                }
            }
            TruncNormal::Uniforms { from, to, .. } => {
                let mut candidates = vec![0.0f32; n];
                let mut u = vec![0.0f32; n];
                let mut pending = vec![false; n];
                uniform_(kernels, g, from, to, as_uninit(out));
                uniform_(kernels, g, 0.0, 1.0, as_uninit(&mut u));
                let mut any = false;
                for ((p, &c), &u) in pending.iter_mut().zip(out.iter()).zip(&u) {
                    *p = log_f32(u) > self.log_density(c);
                    any |= *p;
                }
                while any {
                    uniform_(kernels, g, from, to, as_uninit(&mut candidates));
                    uniform_(kernels, g, 0.0, 1.0, as_uninit(&mut u));
                    any = false;
                    for (((p, o), &c), &u) in pending
                        .iter_mut()
                        .zip(out.iter_mut())
                        .zip(&candidates)
                        .zip(&u)
                    {
                        if *p {
                            *o = c;
                            *p = log_f32(u) > self.log_density(c);
                            any |= *p;
                        }
                    }
                }
            }
        }
    }
}

/// `log_()` on a uniform `k · 2⁻²⁴`: the correctly rounded `f32` logarithm
/// (through `f64`). PyTorch's x86 builds use MKL's `vsLn`, which differs
/// from it in the last bit on 15 372 of the 2²⁴ possible inputs (measured
/// with torch 2.15.0); an acceptance test changes only if the candidate's
/// threshold equals one of the two neighbours exactly (about 1e-10 per
/// test), so in practice the results are PyTorch's.
fn log_f32(u: f32) -> f32 {
    (u as f64).ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_follows_p() {
        assert!(matches!(
            TruncNormal::new(0.0, 1.0, -2.0, 2.0).unwrap(),
            TruncNormal::Normals { .. }
        ));
        assert!(matches!(
            TruncNormal::new(0.0, 1.0, 2.0, 3.0).unwrap(),
            TruncNormal::Uniforms { .. }
        ));
        assert!(matches!(
            TruncNormal::new(0.0, 1.0, 0.0, f64::INFINITY).unwrap(),
            TruncNormal::Normals { .. }
        ));
        assert!(TruncNormal::new(0.0, 1.0, 5.0, f64::INFINITY).is_err());
        assert!(TruncNormal::new(0.0, 1.0, -1e30, -1e29).is_err());
        assert!(TruncNormal::new(0.0, 1.0, 40.0, 41.0).is_ok());
        assert!(TruncNormal::new(0.0, 1e-3, 1e10, 1e10 + 1.0).is_err());
        assert!(TruncNormal::new(0.0, 0.0, 0.0, 1.0).is_err());
        assert!(TruncNormal::new(0.0, 1.0, 1.0, 1.0).is_err());
    }

    #[test]
    fn norm_cdf_is_accurate() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((norm_cdf(2.0) - 0.977_249_868_051_820_8).abs() < 1e-15);
        assert!((norm_cdf(-2.0) - 0.022_750_131_948_179_2).abs() < 1e-15);
    }
}
