//! `trunc_normal_`: KS tests against the truncated normal CDF (α = 0.001,
//! n ≥ 10⁶) for windows in the centre, far in a tail, asymmetric, and for
//! tiny `std`; support, pile-up and finiteness; the initializer and its
//! shards.

mod common;

use common::{KS_C_ALPHA_0_001, bits, phi, with_threads};
use nninit::distributions::{Distribution, TruncatedNormal};
use nninit::init::{self, Init};
use nninit::kernels::{Isa, Kernels};
use nninit::rng::BLOCK;
use nninit::{Generator, Stream, Tensor};

const N: usize = 1_000_000;

/// `Q(x) = Φ(−x)`.
fn q(x: f64) -> f64 {
    if x.is_infinite() {
        return if x > 0.0 { 0.0 } else { 1.0 };
    }
    phi(-x)
}

/// The CDF of `d`, computed from the tail that keeps it accurate.
fn trunc_cdf(d: &TruncatedNormal) -> impl Fn(f64) -> f64 {
    let (m, s) = (d.mean() as f64, d.std() as f64);
    let (alpha, beta) = ((d.a() - m) / s, (d.b() - m) / s);
    move |x: f64| {
        let z = ((x - m) / s).clamp(alpha, beta);
        let f = if alpha >= 0.0 {
            (q(alpha) - q(z)) / (q(alpha) - q(beta))
        } else if beta <= 0.0 {
            (q(-z) - q(-alpha)) / (q(-beta) - q(-alpha))
        } else {
            (q(-z) - q(-alpha)) / (1.0 - q(-alpha) - q(beta))
        };
        f.clamp(0.0, 1.0)
    }
}

/// The KS distance between `samples` and the law of `X` rounded to the
/// nearest `f32`, where `X` has CDF `cdf`: the value `x` stands for
/// `(mid(x⁻, x), mid(x, x⁺)]`. Exact for `f32` outputs, so windows narrower
/// than a few thousand ulps (or a tiny `std` beside a large mean) can be
/// tested too.
fn ks_rounded(samples: &[f32], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut xs = samples.to_vec();
    xs.sort_by(f32::total_cmp);
    let n = xs.len() as f64;
    let mid = |a: f32, b: f32| (a as f64 + b as f64) / 2.0;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < xs.len() {
        let x = xs[i];
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == x {
            j += 1;
        }
        let below = cdf(mid(x.next_down(), x));
        let at = cdf(mid(x, x.next_up()));
        d = d
            .max((below - i as f64 / n).abs())
            .max(((j + 1) as f64 / n - at).abs());
        i = j + 1;
    }
    d
}

fn draw(d: &TruncatedNormal, kernels: Kernels, stream: Stream, offset: u64, n: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; n];
    d.fill_with(kernels, stream, offset, &mut out);
    out
}

/// The law, the support, no pile-up at the bounds.
fn check(mean: f64, std: f64, a: f64, b: f64, seed: u64) {
    let d = TruncatedNormal::new(mean, std, a, b).unwrap();
    let what = format!("trunc_normal(mean {mean}, std {std}, [{a}, {b}])");
    let x = draw(
        &d,
        Kernels::active(),
        Generator::new(seed).next_stream(),
        0,
        N,
    );
    assert!(x.iter().all(|v| v.is_finite()), "{what}: not finite");
    let outside = x
        .iter()
        .filter(|&&v| !(a..=b).contains(&(v as f64)))
        .count();
    assert_eq!(outside, 0, "{what}: {outside} values outside [a, b]");
    let cdf = trunc_cdf(&d);
    // Values equal to a bound: as many as rounding the exact law to f32 puts
    // there (a Poisson count), no pile-up.
    let (lo, hi) = d.support();
    for (bound, p) in [
        (lo, cdf((lo as f64 + lo.next_up() as f64) / 2.0)),
        (hi, 1.0 - cdf((hi.next_down() as f64 + hi as f64) / 2.0)),
    ] {
        let count = x.iter().filter(|&&v| v == bound).count();
        let expected = p * N as f64;
        assert!(
            (count as f64 - expected).abs() <= 5.0 * expected.sqrt() + 5.0,
            "{what}: {count} values at the bound {bound} (expected {expected:.2})"
        );
    }
    let dist = ks_rounded(&x, &cdf);
    let critical = KS_C_ALPHA_0_001 / (N as f64).sqrt();
    eprintln!("{what}: KS D = {dist:.3e} (critical {critical:.3e})");
    assert!(
        dist < critical,
        "{what}: KS D = {dist:.3e} >= {critical:.3e}"
    );
}

#[test]
fn default_window() {
    check(0.0, 1.0, -2.0, 2.0, 1);
}

#[test]
fn non_standard_mean_and_std() {
    check(3.0, 0.5, 2.0, 5.0, 2);
    check(-10.0, 4.0, -20.0, -1.0, 3);
    check(0.0, 0.02, -0.04, 0.04, 4); // the usual ViT weight init
}

#[test]
fn windows_far_in_a_tail() {
    check(0.0, 1.0, 2.0, 3.0, 5);
    check(0.0, 1.0, 5.0, 6.0, 6);
    check(0.0, 1.0, -6.0, -5.0, 7);
    check(0.0, 1.0, 12.0, 12.5, 8);
    check(1.0, 0.1, 4.0, 4.2, 9); // [30σ, 32σ]
    check(0.0, 1.0, 36.0, f64::INFINITY, 10);
}

#[test]
fn asymmetric_windows() {
    check(0.0, 1.0, -1.0, 3.0, 11);
    check(0.0, 1.0, -0.5, 10.0, 12);
    check(0.0, 1.0, 0.0, 1.0, 13);
    check(0.0, 1.0, -3.0, 0.0, 14);
    check(0.0, 1.0, 1.0, 1.001, 15); // narrow: about 8000 floats
    check(0.0, 1.0, 1.0, 1.0001, 23); // about 840 floats
    check(0.0, 1.0, 5.0, 5.01, 24);
    check(0.0, 1.0, -0.001, 0.001, 25);
    check(0.5, 0.25, 0.5, 0.55, 26);
    check(2.0, 3.0, f64::NEG_INFINITY, 1.0, 16);
    check(2.0, 3.0, f64::NEG_INFINITY, f64::INFINITY, 17);
}

#[test]
fn tiny_std_is_an_untruncated_normal() {
    check(0.5, 1e-3, -2.0, 2.0, 18);
    check(0.5, 1e-6, -2.0, 2.0, 19);
    check(0.0, 1e-6, -2.0, 2.0, 20);
    // PyTorch #145498: no value may stray from the mean by more than the
    // largest z the kernel can produce.
    let d = TruncatedNormal::new(0.5, 1e-6, -2.0, 2.0).unwrap();
    let x = draw(&d, Kernels::active(), Stream::from_key(21), 0, N);
    let worst = x
        .iter()
        .map(|&v| (v as f64 - 0.5).abs())
        .fold(0.0, f64::max);
    assert!(worst < 7e-6, "|x - mean| = {worst:e}");
}

#[test]
fn a_window_of_one_float() {
    let one = 1.0f32;
    let d = TruncatedNormal::new(0.0, 1.0, one as f64, one.next_up() as f64 - 1e-12).unwrap();
    assert_eq!(d.support(), (one, one));
    let x = draw(&d, Kernels::active(), Stream::from_key(22), 0, 4096);
    assert!(x.iter().all(|&v| v == one));
}

#[test]
fn the_initializer_matches_the_distribution() {
    let mut g = Generator::new(5);
    let mut w = Tensor::zeros(&[300, 70]).unwrap();
    init::trunc_normal_(&mut w, 0.1, 0.02, -0.02, 0.15, Some(&mut g)).unwrap();
    let stream = Generator::new(5).next_stream();
    let d = TruncatedNormal::new(0.1, 0.02, -0.02, 0.15).unwrap();
    let want = draw(&d, Kernels::active(), stream, 0, w.numel());
    assert_eq!(bits(w.as_slice()), bits(&want));
    // The call took one stream: the next one differs.
    let mut w2 = Tensor::zeros(&[300, 70]).unwrap();
    init::trunc_normal_(&mut w2, 0.1, 0.02, -0.02, 0.15, Some(&mut g)).unwrap();
    assert_ne!(w, w2);
    // Init::tensor (one pass over fresh memory) gives the same values.
    let init = Init::TruncNormal {
        mean: 0.1,
        std: 0.02,
        a: -0.02,
        b: 0.15,
    };
    let t = init
        .tensor(&[300, 70], Some(&mut Generator::new(5)))
        .unwrap();
    assert_eq!(t, w);
}

#[test]
fn shards_equal_the_whole_initializer() {
    let shape = [5 * BLOCK / 64 + 3, 64];
    let n = shape[0] * shape[1];
    let init = Init::TruncNormal {
        mean: 0.0,
        std: 1.0,
        a: -2.0,
        b: 2.0,
    };
    let mut whole = Tensor::zeros(&shape).unwrap();
    init.apply(&mut whole, Some(&mut Generator::new(77)))
        .unwrap();
    let stream = Generator::new(77).next_stream();
    for cuts in [
        vec![0, n],
        vec![0, 64, 64 * 100, BLOCK + 64, n],
        (0..=n).step_by(64 * 37).chain([n]).collect::<Vec<_>>(),
    ] {
        for threads in [1, 2, 3, 16] {
            let mut pieced = Vec::with_capacity(n);
            with_threads(threads, || {
                for w in cuts.windows(2) {
                    let mut shard = vec![0.0; w[1] - w[0]];
                    init.fill_shard(&shape, w[0] as u64, &mut shard, stream)
                        .unwrap();
                    pieced.extend(shard);
                }
            });
            assert_eq!(bits(&pieced), bits(whole.as_slice()), "cuts {cuts:?}");
        }
    }
}

#[test]
fn every_instruction_set_gives_the_same_far_tail_bits() {
    // The cross-path tests in tests/kernels.rs use central windows; here the
    // scaled far-tail and mirrored paths.
    for (mean, std, a, b) in [
        (0.0, 1.0, 5.0, 6.0),
        (0.0, 1.0, -31.0, -30.0),
        (0.5, 1e-6, -2.0, 2.0),
        (0.0, 1.0, 1.0, 1.001),
    ] {
        let d = TruncatedNormal::new(mean, std, a, b).unwrap();
        let stream = Stream::from_key(a.to_bits());
        let reference = draw(&d, Kernels::scalar(), stream, 3, 100_003);
        for isa in Isa::supported() {
            let got = draw(&d, Kernels::new(isa).unwrap(), stream, 3, 100_003);
            assert_eq!(bits(&got), bits(&reference), "{isa} {d:?}");
        }
    }
}
