//! `gemm`: every instruction set's kernels against an f64 reference and
//! against the documented summation order bit for bit (one fma chain per
//! element, then the epilogue) over random shapes (0, 1, primes, sizes that
//! are not multiples of any register tile, `k` past the `k` block, transposed
//! and strided operands and outputs, α/β cases), the same bits on every
//! instruction set and thread count, and the error texts.

mod common;

use nninit::gemm::{self, Element, MatMut, MatRef, gemm, gemm_with};
use nninit::kernels::{Isa, Kernels};
use nninit::{Error, Generator, Tensor};
use proptest::prelude::*;

/// `α·op(A)·op(B) + β·C` in f64, element by element.
fn reference(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &[f32]) -> Vec<f64> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j)))
                .sum();
            let prior = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta) * f64::from(c[i * n + j])
            };
            out[i * n + j] = f64::from(alpha) * dot + prior;
        }
    }
    out
}

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn(shape, Some(g)).unwrap()
}

/// Runs one product with A and B optionally transposed, checks it against
/// the reference with an error bound that grows with `k`.
fn check(m: usize, k: usize, n: usize, ta: bool, tb: bool, beta: f32, seed: u64) {
    let mut g = Generator::new(seed);
    let a = if ta {
        randn(&[k, m], &mut g)
    } else {
        randn(&[m, k], &mut g)
    };
    let b = if tb {
        randn(&[n, k], &mut g)
    } else {
        randn(&[k, n], &mut g)
    };
    let c0 = randn(&[m, n], &mut g);
    let va = MatRef::from_tensor(&a).unwrap();
    let vb = MatRef::from_tensor(&b).unwrap();
    let (va, vb) = (if ta { va.t() } else { va }, if tb { vb.t() } else { vb });
    let want = reference(0.5, va, vb, beta, c0.as_slice());
    let mut c = c0.clone();
    gemm(0.5, va, vb, beta, MatMut::from_tensor(&mut c).unwrap()).unwrap();
    let tol = 1e-5 * (k as f64).sqrt().max(1.0) * 4.0;
    for (i, (got, want)) in c.as_slice().iter().zip(&want).enumerate() {
        assert!(
            (f64::from(*got) - want).abs() <= tol * want.abs().max(1.0),
            "{m}x{k}x{n} ta={ta} tb={tb} beta={beta}: element {i} is {got}, want {want}"
        );
    }
}

#[test]
fn fixed_shapes_against_f64() {
    let shapes = [
        (0, 0, 0),
        (0, 3, 4),
        (3, 0, 4),
        (3, 4, 0),
        (1, 1, 1),
        (1, 7, 1),
        (7, 1, 5),
        (5, 13, 1),
        (17, 31, 23),
        (64, 64, 64),
        (65, 129, 33),
        (300, 70, 9),    // large m: row split
        (9, 70, 300),    // large n: column split
        (257, 300, 263), // both, odd
    ];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for beta in [0.0, 1.0, -0.5] {
                check(m, k, n, ta, tb, beta, i as u64);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_shapes_against_f64(
        m in 0usize..40, k in 0usize..40, n in 0usize..40,
        ta: bool, tb: bool, beta in prop_oneof![Just(0.0f32), Just(1.0f32), Just(0.25f32)],
        seed: u64,
    ) {
        check(m, k, n, ta, tb, beta, seed);
    }
}

#[test]
fn beta_zero_ignores_nan_in_the_output() {
    let a = Tensor::ones(&[2, 3]).unwrap();
    let b = Tensor::ones(&[3, 2]).unwrap();
    let mut c = Tensor::full(&[2, 2], f32::NAN).unwrap();
    gemm(
        1.0,
        MatRef::from_tensor(&a).unwrap(),
        MatRef::from_tensor(&b).unwrap(),
        0.0,
        MatMut::from_tensor(&mut c).unwrap(),
    )
    .unwrap();
    assert_eq!(c.as_slice(), &[3.0; 4]);
}

#[test]
fn same_bits_for_any_thread_count() {
    // Sizes past the inline threshold, tall (row split) and wide (column split).
    for (m, k, n) in [(512, 256, 96), (96, 256, 512), (333, 200, 301)] {
        let mut g = Generator::new(9);
        let x = randn(&[m, k], &mut g);
        let w = randn(&[n, k], &mut g);
        let b = randn(&[n], &mut g);
        let runs: Vec<Vec<u32>> = [1, 2, 3, 16]
            .iter()
            .map(|&t| {
                common::with_threads(t, || {
                    common::bits(gemm::linear(&x, &w, Some(&b)).unwrap().as_slice())
                })
            })
            .collect();
        for r in &runs[1..] {
            assert!(*r == runs[0], "{m}x{k}x{n}: thread counts disagree");
        }
    }
}

#[test]
fn linear_matches_reference_and_shapes() {
    let mut g = Generator::new(4);
    let x = randn(&[2, 3, 5], &mut g);
    let w = randn(&[4, 5], &mut g);
    let b = randn(&[4], &mut g);
    let y = gemm::linear(&x, &w, Some(&b)).unwrap();
    assert_eq!(y.shape(), &[2, 3, 4]);
    for r in 0..6 {
        for o in 0..4 {
            let want: f64 = (0..5)
                .map(|i| f64::from(x.as_slice()[r * 5 + i]) * f64::from(w[[o, i]]))
                .sum::<f64>()
                + f64::from(b[[o]]);
            assert!((f64::from(y.as_slice()[r * 4 + o]) - want).abs() < 1e-5);
        }
    }
    // A 1-D input gives a 1-D output.
    let v = randn(&[5], &mut g);
    assert_eq!(gemm::linear(&v, &w, None).unwrap().shape(), &[4]);
    // Empty batch and zero features.
    let e = Tensor::zeros(&[0, 5]).unwrap();
    assert_eq!(gemm::linear(&e, &w, Some(&b)).unwrap().shape(), &[0, 4]);
    let w0 = Tensor::zeros(&[3, 0]).unwrap();
    let b3 = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap();
    let y = gemm::linear(&Tensor::zeros(&[2, 0]).unwrap(), &w0, Some(&b3)).unwrap();
    assert_eq!(y.as_slice(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
}

#[test]
fn errors_name_the_shapes() {
    let w = Tensor::zeros(&[8, 4]).unwrap();
    let x = Tensor::zeros(&[2, 5]).unwrap();
    assert_eq!(
        gemm::linear(&x, &w, None).unwrap_err().to_string(),
        "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)"
    );
    let x3 = Tensor::zeros(&[2, 3, 5]).unwrap();
    assert_eq!(
        gemm::linear(&x3, &w, None).unwrap_err().to_string(),
        "mat1 and mat2 shapes cannot be multiplied (6x5 and 4x8)"
    );
    assert_eq!(
        gemm::linear(&Tensor::scalar(1.0), &w, None)
            .unwrap_err()
            .to_string(),
        "both arguments to linear need to be at least 1D, but they are 0D and 2D"
    );
    let bad_bias = Tensor::zeros(&[7]).unwrap();
    assert_eq!(
        gemm::linear(&Tensor::zeros(&[2, 4]).unwrap(), &w, Some(&bad_bias))
            .unwrap_err()
            .to_string(),
        "bias must have shape [8] to match the weight's out_features, but found shape [7]"
    );
    assert!(matches!(
        gemm::matmul(&x, &w),
        Err(Error::MatmulShape {
            left: [2, 5],
            right: [8, 4]
        })
    ));
    let mut c = [0.0f32; 4];
    let a = [0.0f32; 6];
    let err = gemm(
        1.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&a, 3, 2).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 1, 4).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "gemm output must be 2x2, but found 1x4");
}

/// The floats the tests multiply: `f32` and `f64`.
trait Float: Element + Into<f64> + std::fmt::Display {
    fn of(x: f64) -> Self;
    fn fma(self, b: Self, c: Self) -> Self;
    fn bits(self) -> u64;
    const EPS: f64;
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
    const EPS: f64 = f32::EPSILON as f64;
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    const EPS: f64 = f64::EPSILON;
}

/// A reproducible buffer with entries in [-1, 1) (an xorshift, so the test
/// does not depend on the generator under test).
fn buffer<T: Float>(len: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::of((s >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        })
        .collect()
}

/// How an operand is laid out in its buffer.
#[derive(Debug, Clone, Copy)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major with padded rows (`ld = cols + 3`), starting 5 elements in.
    Padded,
    /// A general strided view: row stride 2·cols + 1, column stride 2.
    Strided,
}

const LAYOUTS: [Layout; 4] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::Padded,
    Layout::Strided,
];

/// `(offset, row stride, column stride, buffer length)` of a `rows × cols`
/// operand laid out as `layout`.
fn geometry(layout: Layout, rows: usize, cols: usize) -> (usize, usize, usize, usize) {
    let (off, rs, cs) = match layout {
        Layout::RowMajor => (0, cols, 1),
        Layout::ColMajor => (0, 1, rows),
        Layout::Padded => (5, cols + 3, 1),
        Layout::Strided => (1, 2 * cols + 1, 2),
    };
    let len = off + rows * rs.max(1) + cols * cs + 1;
    (off, rs, cs, len)
}

fn view<T: Float>(data: &[T], layout: Layout, rows: usize, cols: usize) -> MatRef<'_, T> {
    let (off, rs, cs, _) = geometry(layout, rows, cols);
    MatRef::new(&data[off..], rows, cols, rs, cs).unwrap()
}

/// The documented result, computed independently: for each element the
/// chain `acc = fma(a[i,p], b[p,j], acc)` over `p` ascending from +0, then
/// `α ⊗ acc` (β = 0) or `fma(β, c, α ⊗ acc)`.
fn chain<T: Float>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: &[T]) -> Vec<T> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut out = c.to_vec();
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            if alpha != T::ZERO {
                for p in 0..k {
                    acc = a.at(i, p).fma(b.at(p, j), acc);
                }
            }
            let t = T::of(alpha.into() * acc.into());
            out[i * n + j] = if beta == T::ZERO {
                t
            } else {
                beta.fma(c[i * n + j], t)
            };
        }
    }
    out
}

/// One product on `isa`: `C` (row-major `m × n`, or written through a
/// `layout_c` view of a larger buffer) against the chain (bit for bit) and
/// the f64 value (within the usual `γ_k Σ|a||b|` bound).
#[allow(clippy::too_many_arguments)]
fn check_product<T: Float>(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    (la, lb, lc): (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
    seed: u64,
) -> Vec<u64> {
    let (alpha, beta) = (T::of(alpha), T::of(beta));
    let da: Vec<T> = buffer(geometry(la, m, k).3, seed);
    let db: Vec<T> = buffer(geometry(lb, k, n).3, seed + 1);
    let c0: Vec<T> = buffer(m * n, seed + 2);
    let (a, b) = (view(&da, la, m, k), view(&db, lb, k, n));
    let (off, rs, cs, len) = geometry(lc, m, n);
    let mut dc = vec![T::of(f64::NAN); len];
    for i in 0..m {
        for j in 0..n {
            dc[off + i * rs + j * cs] = c0[i * n + j];
        }
    }
    let cm = MatMut::new(&mut dc[off..], m, n, rs, cs).unwrap();
    gemm_with(Kernels::new(isa).unwrap(), alpha, a, b, beta, cm).unwrap();
    let got: Vec<T> = (0..m * n)
        .map(|e| dc[off + (e / n) * rs + (e % n) * cs])
        .collect();
    let want = chain(alpha, a, b, beta, &c0);
    let what = format!("{isa} {m}x{k}x{n} {la:?}/{lb:?}/{lc:?} alpha={alpha} beta={beta}");
    for (e, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.bits(),
            w.bits(),
            "{what}: element {e} is {g}, the chain gives {w}"
        );
    }
    // The f64 value, and the bound γ_k Σ|a||b| (plus the epilogue's roundings).
    for i in 0..m {
        for j in 0..n {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let (x, y): (f64, f64) = (a.at(i, p).into(), b.at(p, j).into());
                dot += x * y;
                mag += (x * y).abs();
            }
            let (al, be): (f64, f64) = (alpha.into(), beta.into());
            let old: f64 = c0[i * n + j].into();
            let exact = al * dot + if be == 0.0 { 0.0 } else { be * old };
            let bound = ((k as f64 + 2.0) * T::EPS) * (al.abs() * mag + be.abs() * old.abs())
                + T::EPS * exact.abs()
                + f64::MIN_POSITIVE;
            let g: f64 = got[i * n + j].into();
            assert!(
                (g - exact).abs() <= bound,
                "{what}: ({i}, {j}) is {g}, exact {exact}"
            );
        }
    }
    // NaN outside C's elements stays: nothing else was written.
    let mut inside = vec![false; len];
    for i in 0..m {
        for j in 0..n {
            inside[off + i * rs + j * cs] = true;
        }
    }
    for (x, inside) in dc.iter().zip(&inside) {
        if !inside {
            let v: f64 = (*x).into();
            assert!(v.is_nan(), "{what}: wrote outside C");
        }
    }
    got.iter().map(|x| x.bits()).collect()
}

/// Shapes around every register tile (MR ∈ {4, 6, 12}, NR ∈ {4, 8, 16, 32,
/// 64}) and the `k` blocks (128 and 256 on AVX2, 512 and 1024 on AVX-512:
/// 2113 is three of them), primes, and the degenerate ones.
const SHAPES: [(usize, usize, usize); 19] = [
    (0, 5, 7),
    (5, 0, 7),
    (5, 7, 0),
    (1, 1, 1),
    (1, 13, 1),
    (2, 4, 8),
    (7, 1, 3),
    (13, 17, 19),
    (12, 31, 64),
    (25, 40, 65),
    (37, 129, 33),
    (6, 300, 16),
    (61, 257, 97),
    (100, 3, 130),
    (31, 520, 7),
    (97, 600, 45),
    (3, 1031, 70),
    (130, 67, 129),
    (19, 2113, 37),
];

fn every_isa_matches_the_chain<T: Float>() {
    let isas = Isa::supported();
    for (s, &shape) in SHAPES.iter().enumerate() {
        let (m, k, n) = shape;
        let big = m * k * n > 200_000;
        if cfg!(debug_assertions) && m * k * n > 20_000 {
            continue; // unoptimized builds (the sanitizer run): small shapes only
        }
        for (l, &la) in LAYOUTS.iter().enumerate() {
            for &lb in &LAYOUTS {
                // Every output layout with the first A layout, row-major
                // otherwise (and fewer combinations for the big shapes).
                let outs: &[Layout] = if l == 0 {
                    &LAYOUTS
                } else {
                    &[Layout::RowMajor]
                };
                if big && l > 1 {
                    continue;
                }
                for &lc in outs {
                    for (alpha, beta) in
                        [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (0.0, 0.5), (2.0, 0.0)]
                    {
                        let runs: Vec<Vec<u64>> = isas
                            .iter()
                            .map(|&isa| {
                                check_product::<T>(isa, shape, (la, lb, lc), alpha, beta, s as u64)
                            })
                            .collect();
                        for (isa, r) in isas.iter().zip(&runs) {
                            assert!(*r == runs[0], "{isa} differs from scalar on {shape:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_isa_matches_the_chain_f32() {
    every_isa_matches_the_chain::<f32>();
}

#[test]
fn every_isa_matches_the_chain_f64() {
    every_isa_matches_the_chain::<f64>();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(debug_assertions) { 8 } else { 48 }))]

    /// Random shapes and layouts: every instruction set gives the chain's
    /// bits (and so the same bits as each other).
    #[test]
    fn random_products_follow_the_chain(
        m in 0usize..80, k in 0usize..300, n in 0usize..150,
        la in 0usize..4, lb in 0usize..4, lc in 0usize..4,
        ab in 0usize..4, seed in 0u64..1000,
    ) {
        let (alpha, beta) = [(1.0, 0.0), (1.0, 1.0), (0.75, -1.5), (-1.0, 0.0)][ab];
        for isa in Isa::supported() {
            check_product::<f32>(isa, (m, k, n), (LAYOUTS[la], LAYOUTS[lb], LAYOUTS[lc]), alpha, beta, seed);
        }
    }
}

#[test]
fn alpha_zero_reads_neither_operand() {
    // NaN in A and B: with α = 0 the product is not computed (BLAS's rule).
    let a = [f32::NAN; 6];
    let mut c = [1.0f32, 2.0, 3.0, 4.0];
    for isa in Isa::supported() {
        gemm_with(
            Kernels::new(isa).unwrap(),
            0.0,
            MatRef::row_major(&a, 2, 3).unwrap(),
            MatRef::row_major(&a, 3, 2).unwrap(),
            2.0,
            MatMut::row_major(&mut c, 2, 2).unwrap(),
        )
        .unwrap();
    }
    let scale = 2f32.powi(Isa::supported().len() as i32);
    assert_eq!(c, [scale, 2.0 * scale, 3.0 * scale, 4.0 * scale]);
}

#[test]
fn linear_fuses_the_bias_as_beta_one_would() {
    // `linear` adds the bias in the epilogue: the same bits as the product
    // accumulated (β = 1) onto a bias-filled output, on every instruction set.
    for (rows, inf, outf) in [(1, 3, 2), (7, 33, 65), (256, 300, 70), (5, 1030, 3)] {
        let mut g = Generator::new(rows as u64);
        let x = randn(&[rows, inf], &mut g);
        let w = randn(&[outf, inf], &mut g);
        let b = randn(&[outf], &mut g);
        let mut want = vec![0.0f32; rows * outf];
        for row in want.chunks_exact_mut(outf) {
            row.copy_from_slice(b.as_slice());
        }
        gemm_with(
            Kernels::scalar(),
            1.0,
            MatRef::from_tensor(&x).unwrap(),
            MatRef::from_tensor(&w).unwrap().t(),
            1.0,
            MatMut::row_major(&mut want, rows, outf).unwrap(),
        )
        .unwrap();
        for isa in Isa::supported() {
            let y = gemm::linear_with(Kernels::new(isa).unwrap(), &x, &w, Some(&b)).unwrap();
            assert_eq!(
                common::bits(y.as_slice()),
                common::bits(&want),
                "{isa} {rows}x{inf}x{outf}"
            );
        }
    }
}

#[test]
fn same_bits_for_any_thread_count_and_isa() {
    // Past the inline threshold, `k` past the `k` block, both orientations
    // (a column-major output is computed as Cᵀ = Bᵀ·Aᵀ), f32 and f64.
    let shapes = if cfg!(debug_assertions) {
        vec![(130, 300, 70)]
    } else {
        vec![(300, 600, 200), (64, 1100, 257), (513, 129, 20)]
    };
    for (m, k, n) in shapes {
        for lc in [Layout::RowMajor, Layout::ColMajor] {
            let mut runs32 = Vec::new();
            let mut runs64 = Vec::new();
            for isa in Isa::supported() {
                for threads in [1, 2, 3, 16] {
                    common::with_threads(threads, || {
                        let layouts = (Layout::RowMajor, Layout::Padded, lc);
                        runs32.push(check_product::<f32>(isa, (m, k, n), layouts, 1.0, 0.5, 7));
                        runs64.push(check_product::<f64>(isa, (m, k, n), layouts, -1.0, 0.0, 8));
                    });
                }
            }
            assert!(
                runs32.iter().all(|r| *r == runs32[0]),
                "{m}x{k}x{n} {lc:?}: f32 runs differ"
            );
            assert!(
                runs64.iter().all(|r| *r == runs64[0]),
                "{m}x{k}x{n} {lc:?}: f64 runs differ"
            );
        }
    }
}
