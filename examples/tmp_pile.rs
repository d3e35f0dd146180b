//! temp
use nninit::Stream;
use nninit::distributions::{Distribution, TruncatedNormal};
fn phi(x: f64) -> f64 {
    0.5 * libm_erfc(-x / std::f64::consts::SQRT_2)
}
fn libm_erfc(x: f64) -> f64 {
    // crude: use series via std? fallback numerical integration
    // high-accuracy via continued fraction / series like tests/common
    if x < 0.0 {
        return 2.0 - libm_erfc(-x);
    }
    if x < 2.0 {
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        1.0 - sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let tiny = 1e-300;
        let (mut f, mut c, mut d) = (x, x, 0.0);
        for n in 1..500 {
            let a = n as f64 / 2.0;
            d = x + a * d;
            if d.abs() < tiny {
                d = tiny
            };
            c = x + a / c;
            if c.abs() < tiny {
                c = tiny
            };
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    }
}
fn main() {
    let n = 4_000_000;
    for (m, s, a, b) in [
        (0.0, 1.0, 1.0, 1.001),
        (0.0, 1.0, 1.0, 1.0001),
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 1.0, 2.0, 3.0),
        (0.0, 1.0, 5.0, 5.01),
        (0.0, 1.0, -0.001, 0.001),
        (0.0, 1.0, 12.0, 13.0),
    ] {
        let d = TruncatedNormal::new(m, s, a, b).unwrap();
        let (lo, hi) = d.support();
        let cdf =
            |x: f64| (phi((x - m) / s) - phi((a - m) / s)) / (phi((b - m) / s) - phi((a - m) / s));
        let mut out = vec![0.0f32; n];
        d.fill_at(Stream::from_key(5), 0, &mut out);
        let at_lo = out.iter().filter(|&&x| x == lo).count();
        let at_hi = out.iter().filter(|&&x| x == hi).count();
        let e_lo = cdf((lo as f64 + lo.next_up() as f64) / 2.0) * n as f64;
        let e_hi = (1.0 - cdf((hi as f64 + hi.next_down() as f64) / 2.0)) * n as f64;
        println!(
            "[{a}, {b}]: at a {at_lo} (expected {e_lo:.1}), at b {at_hi} (expected {e_hi:.1})"
        );
    }
}
