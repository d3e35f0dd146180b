#!/usr/bin/env python3
"""Derives the polynomial coefficients used by `src/kernels/math.rs`.

Weighted least squares on Chebyshev nodes (a close, simple stand-in for a
minimax fit), coefficients rounded to f32, then the f32 Horner evaluation with
fused multiply-adds is emulated in f64 to estimate the error. The Rust test
`kernels::math::tests` measures the real error of the shipped constants over a
dense grid; this script only explains where the constants come from.

Run: python3 scripts/fit_coefficients.py   (needs numpy)
"""
import numpy as np

f32 = np.float32


def cheb_nodes(lo, hi, n=4000):
    k = np.arange(n)
    x = np.cos((2 * k + 1) * np.pi / (2 * n))
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * x


def fit(xs, target, weight, degree):
    a = np.vstack([xs ** j for j in range(degree + 1)]).T
    coef, *_ = np.linalg.lstsq(a * weight[:, None], target * weight, rcond=None)
    return [f32(c) for c in coef]


def fma32(a, b, c):
    return f32(np.float64(a) * np.float64(b) + np.float64(c))


def horner32(coefs, x):
    acc = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = fma32(acc, x, c)
    return acc


def report(name, coefs, xs, approx, exact):
    err = np.abs((approx - exact) / np.where(exact == 0, 1, exact))
    print(f"{name}: max rel err {err.max():.3e} ({err.max() / 2**-24:.2f} half-ulp units)")
    for c in coefs:
        print(f"    {float(c)!r:>26}  // {np.float32(c).view(np.uint32):#010x}")


# sin(2*pi*f) = f * S(f^2), |f| <= 1/8
f = cheb_nodes(1e-6, 0.125)
y = f * f
for deg in (3, 4):
    s = fit(y, np.sin(2 * np.pi * f) / f, f / np.sin(2 * np.pi * f), deg)
    fs = f.astype(f32)
    approx = np.array([f32(x) * horner32(s, f32(x) * f32(x)) for x in fs], dtype=np.float64)
    report(f"sin(2 pi f), S degree {deg}", s, fs, approx, np.sin(2 * np.pi * fs.astype(np.float64)))

# cos(2*pi*f) = C(f^2), |f| <= 1/8
for deg in (4, 5):
    c = fit(y, np.cos(2 * np.pi * f), 1 / np.cos(2 * np.pi * f), deg)
    fs = f.astype(f32)
    approx = np.array([horner32(c, f32(x) * f32(x)) for x in fs], dtype=np.float64)
    report(f"cos(2 pi f), C degree {deg}", c, fs, approx, np.cos(2 * np.pi * fs.astype(np.float64)))

# ln(1 + t) = t + t^2 * R(t), t in [sqrt(1/2) - 1, sqrt(2) - 1]
t = cheb_nodes(np.sqrt(0.5) - 1, np.sqrt(2) - 1)
t = t[np.abs(t) > 1e-5]
for deg in (7, 8, 9):
    r = fit(t, (np.log1p(t) - t) / (t * t), (t * t) / np.abs(np.log1p(t)), deg)
    ts = t.astype(f32)
    approx = np.array([fma32(f32(x) * f32(x), horner32(r, f32(x)), f32(x)) for x in ts], dtype=np.float64)
    report(f"ln(1+t), R degree {deg}", r, ts, approx, np.log1p(ts.astype(np.float64)))

print("\n# Candidates for the shorter transform")
for deg in (2,):
    s = fit(y, np.sin(2 * np.pi * f) / f, f / np.sin(2 * np.pi * f), deg)
    fs = f.astype(f32)
    approx = np.array([f32(x) * horner32(s, f32(x) * f32(x)) for x in fs], dtype=np.float64)
    report(f"sin(2 pi f), S degree {deg}", s, fs, approx, np.sin(2 * np.pi * fs.astype(np.float64)))
for deg in (3,):
    c = fit(y, np.cos(2 * np.pi * f), 1 / np.cos(2 * np.pi * f), deg)
    fs = f.astype(f32)
    approx = np.array([horner32(c, f32(x) * f32(x)) for x in fs], dtype=np.float64)
    report(f"cos(2 pi f), C degree {deg}", c, fs, approx, np.cos(2 * np.pi * fs.astype(np.float64)))
t = cheb_nodes(-1/3, 1/3)
t = t[np.abs(t) > 1e-5]
for deg in (5, 6, 7):
    r = fit(t, (np.log1p(t) - t) / (t * t), (t * t) / np.abs(np.log1p(t)), deg)
    ts = t.astype(f32)
    approx = np.array([fma32(f32(x) * f32(x), horner32(r, f32(x)), f32(x)) for x in ts], dtype=np.float64)
    report(f"ln(1+t) on [-1/3, 1/3], R degree {deg}", r, ts, approx, np.log1p(ts.astype(np.float64)))
