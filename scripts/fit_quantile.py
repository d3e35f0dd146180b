#!/usr/bin/env python3
"""Derives the central rational approximation of the normal quantile used by
`lower_quantile` in `src/kernels/math.rs`.

Phi^-1(1/2 + q) = q * A(r) / B(r) with r = R0 - q^2, for |q| <= QMAX
(p >= 0.0222, just below Phi(-2)), A and B of degree 4, B(0) = 1. The fit is
Sanathanan-Koerner iterations (linearized least squares, reweighted by the
previous denominator) with Lawson weights pushing toward minimax relative
error. Prints the coefficients and the max relative error in exact
arithmetic; the Rust test `quantile_accuracy` measures the shipped f32
evaluation.

Run: python3 scripts/fit_quantile.py   (needs numpy and mpmath)
"""
import mpmath
import numpy as np

mpmath.mp.dps = 30
QMAX = 0.4778
R0 = 0.2283

qs = np.unique(np.concatenate([np.linspace(1e-4, QMAX, 4000),
                               QMAX * np.sin(np.linspace(0, np.pi / 2, 4000))]))
qs = qs[(qs >= 1e-4) & (qs <= QMAX)]
g = np.array([float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(q))) / q for q in qs])
r = R0 - qs * qs


def fit(m, n, iters=60):
    lawson = np.ones_like(r)
    q_prev = np.ones_like(r)
    for it in range(iters):
        a = np.hstack([np.vstack([r ** j for j in range(m + 1)]).T,
                       -(g[:, None]) * np.vstack([r ** j for j in range(1, n + 1)]).T])
        wt = lawson / (np.abs(g) * np.abs(q_prev))
        sol, *_ = np.linalg.lstsq(a * wt[:, None], g * wt, rcond=None)
        p, q = sol[:m + 1], np.concatenate([[1], sol[m + 1:]])
        q_prev = np.polyval(q[::-1], r)
        err = np.abs((np.polyval(p[::-1], r) / q_prev - g) / g)
        if it >= 10:
            lawson = lawson * (err / err.max()) ** 0.3 + 1e-12
            lawson /= lawson.sum()
    return p, q, err.max()


p, q, e = fit(4, 4)
print(f"max relative error {e:.3e}")
print("A:", [float(c) for c in p])
print("B:", [float(c) for c in q])
