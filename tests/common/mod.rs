//! Statistics shared by the integration tests: Kolmogorov–Smirnov tests and
//! the CDFs they compare against, computed in `f64`.

#![allow(dead_code)] // each test binary uses a different subset

/// `c(α)` of the asymptotic KS critical value `c(α)/√n` for α = 0.001:
/// `√(−ln(α/2)/2)`.
pub(crate) const KS_C_ALPHA_0_001: f64 = 1.949_466_6;

// The crate's own `erfc` (one implementation, anchored to published values
// by its test `erfc_reference_values`).
#[path = "../../src/special.rs"]
mod special;
pub(crate) use special::erfc;

/// The standard normal CDF.
pub(crate) fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The KS statistic `D = sup |F_n(x) − F(x)|` of `samples` against `cdf`.
pub(crate) fn ks_statistic(samples: &[f32], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut xs: Vec<f64> = samples.iter().map(|&x| x as f64).collect();
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < xs.len() {
        // Ties (the samples are discrete): the empirical CDF jumps once.
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == xs[i] {
            j += 1;
        }
        let f = cdf(xs[i]);
        d = d
            .max((f - i as f64 / n).abs())
            .max(((j + 1) as f64 / n - f).abs());
        i = j + 1;
    }
    d
}

/// Asserts that `samples` pass a KS test against `cdf` at α = 0.001.
pub(crate) fn assert_ks(samples: &[f32], cdf: impl Fn(f64) -> f64, what: &str) {
    let n = samples.len();
    assert!(n >= 1_000_000, "{what}: a KS test needs n >= 1e6, got {n}");
    let d = ks_statistic(samples, cdf);
    let critical = KS_C_ALPHA_0_001 / (n as f64).sqrt();
    assert!(
        d < critical,
        "{what}: KS D = {d:.3e} >= {critical:.3e} (n = {n})"
    );
}

/// Mean and (population) variance, in `f64`.
pub(crate) fn moments(samples: &[f32]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// Runs `f` on a fresh rayon pool of `threads` threads.
pub(crate) fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// The bits of a slice, for exact comparisons that treat NaN sanely.
pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn ks_detects_a_wrong_distribution() {
    // A shifted uniform must fail against U[0, 1).
    let samples: Vec<f32> = (0..1_000_000)
        .map(|i| (i as f32 / 1e6 + 0.01).min(0.999))
        .collect();
    let d = ks_statistic(&samples, |x| x.clamp(0.0, 1.0));
    assert!(d > KS_C_ALPHA_0_001 / 1000.0);
}
