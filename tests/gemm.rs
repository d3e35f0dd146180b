//! `gemm`: against a naive f64 reference over random shapes (0- and 1-sized
//! dimensions, odd sizes, transposed views, β accumulation), and the same
//! bits for any thread count.

mod common;

use nninit::gemm::{self, MatMut, MatRef, gemm};
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
