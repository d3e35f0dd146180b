//! The whole-tensor initializers: `eye_`, `dirac_`, `orthogonal_`, `sparse_`.
//! Values, the identity a Dirac weight computes, orthogonality, zero counts,
//! statistics (KS at n >= 1e6), and determinism across thread counts.

mod common;

use common::{assert_ks, bits, phi, with_threads};
use nninit::init::{self, Init};
use nninit::{Generator, Stream, Tensor};

fn filled(shape: &[usize], v: f32) -> Tensor {
    Tensor::full(shape, v).unwrap()
}

// ---- eye_ -------------------------------------------------------------------

#[test]
fn eye_is_the_identity_for_any_rectangle() {
    for (rows, cols) in [(1, 1), (4, 4), (3, 5), (5, 3), (1, 7), (7, 1), (64, 33)] {
        let mut w = filled(&[rows, cols], 7.0);
        init::eye_(&mut w).unwrap();
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(
                    w[[i, j]],
                    (i == j) as u8 as f32,
                    "{rows}x{cols} at ({i}, {j})"
                );
            }
        }
    }
}

#[test]
fn eye_of_an_empty_tensor_is_a_no_op_whatever_its_shape() {
    init::eye_(&mut Tensor::zeros(&[0, 4]).unwrap()).unwrap();
    init::eye_(&mut Tensor::zeros(&[0]).unwrap()).unwrap();
    init::eye_(&mut Tensor::zeros(&[2, 0, 3]).unwrap()).unwrap();
}

// ---- dirac_ -----------------------------------------------------------------

#[test]
fn dirac_counts_and_sums() {
    let cases: &[(&[usize], usize)] = &[
        (&[4, 4, 3], 1),
        (&[4, 4, 3], 2),
        (&[4, 4, 3], 4),
        (&[2, 5, 3], 1),    // in > out per group
        (&[6, 2, 5, 5], 1), // out per group > in
        (&[6, 2, 5, 5], 3),
        (&[8, 4, 3, 3], 2),
        (&[6, 3, 3, 3, 3], 3),
        (&[4, 4, 2, 4], 2), // even kernels: the tap at size / 2
        (&[3, 3, 1], 1),
    ];
    for &(shape, groups) in cases {
        let mut w = filled(shape, 5.0);
        init::dirac_(&mut w, groups).unwrap();
        let opg = shape[0] / groups;
        let want = (opg.min(shape[1]) * groups) as f64;
        let ones = w.as_slice().iter().filter(|&&x| x == 1.0).count();
        let zeros = w.as_slice().iter().filter(|&&x| x == 0.0).count();
        assert_eq!(ones as f64, want, "{shape:?} groups {groups}: ones");
        assert_eq!(ones + zeros, w.numel(), "{shape:?}: only zeros and ones");
        assert_eq!(w.sum(), want, "{shape:?} groups {groups}: sum");
        // The ones are at the centre taps of [g·opg + d, d].
        let centre: Vec<usize> = shape[2..].iter().map(|k| k / 2).collect();
        for g in 0..groups {
            for d in 0..opg.min(shape[1]) {
                let mut idx = vec![g * opg + d, d];
                idx.extend(&centre);
                assert_eq!(
                    w.get(&idx).unwrap(),
                    1.0,
                    "{shape:?} groups {groups} at {idx:?}"
                );
            }
        }
    }
}

/// Naive grouped conv1d, stride 1, zero padding `k / 2` (odd `k`):
/// `x` is `[c_in, len]`, `w` is `[c_out, c_in / groups, k]`.
fn conv1d(x: &[f32], c_in: usize, len: usize, w: &Tensor, groups: usize) -> Vec<f32> {
    let [c_out, ipg, k] = w.shape().try_into().unwrap();
    let opg = c_out / groups;
    assert_eq!(ipg * groups, c_in);
    let mut y = vec![0.0f32; c_out * len];
    for o in 0..c_out {
        let g = o / opg;
        for t in 0..len {
            let mut s = 0.0f32;
            for i in 0..ipg {
                for tap in 0..k {
                    let pos = t as isize + tap as isize - (k / 2) as isize;
                    if (0..len as isize).contains(&pos) {
                        s += w[[o, i, tap]] * x[(g * ipg + i) * len + pos as usize];
                    }
                }
            }
            y[o * len + t] = s;
        }
    }
    y
}

/// Naive grouped conv2d, stride 1, zero padding `k / 2` (odd kernels):
/// `x` is `[c_in, h, wd]`, `w` is `[c_out, c_in / groups, kh, kw]`.
fn conv2d(x: &[f32], c_in: usize, h: usize, wd: usize, w: &Tensor, groups: usize) -> Vec<f32> {
    let [c_out, ipg, kh, kw] = w.shape().try_into().unwrap();
    let opg = c_out / groups;
    assert_eq!(ipg * groups, c_in);
    let mut y = vec![0.0f32; c_out * h * wd];
    for o in 0..c_out {
        let g = o / opg;
        for r in 0..h {
            for c in 0..wd {
                let mut s = 0.0f32;
                for i in 0..ipg {
                    for a in 0..kh {
                        for b in 0..kw {
                            let pr = r as isize + a as isize - (kh / 2) as isize;
                            let pc = c as isize + b as isize - (kw / 2) as isize;
                            if (0..h as isize).contains(&pr) && (0..wd as isize).contains(&pc) {
                                let xi = ((g * ipg + i) * h + pr as usize) * wd + pc as usize;
                                s += w[[o, i, a, b]] * x[xi];
                            }
                        }
                    }
                }
                y[(o * h + r) * wd + c] = s;
            }
        }
    }
    y
}

#[test]
fn a_dirac_conv_weight_is_the_identity() {
    let x = Tensor::randn(&[6 * 9 * 7], Some(&mut Generator::new(3))).unwrap();
    let x = x.as_slice();
    for groups in [1, 2, 3, 6] {
        // conv1d: 6 channels in and out, kernel 3 and 5.
        for k in [1, 3, 5] {
            let mut w = filled(&[6, 6 / groups, k], 0.5);
            init::dirac_(&mut w, groups).unwrap();
            let y = conv1d(&x[..6 * 20], 6, 20, &w, groups);
            assert_eq!(bits(&y), bits(&x[..6 * 20]), "conv1d k {k} groups {groups}");
        }
        // conv2d: 6 channels, 9x7 images, 3x3 and 3x5 kernels.
        for (kh, kw) in [(3, 3), (3, 5), (1, 1)] {
            let mut w = filled(&[6, 6 / groups, kh, kw], -1.0);
            init::dirac_(&mut w, groups).unwrap();
            let y = conv2d(x, 6, 9, 7, &w, groups);
            assert_eq!(bits(&y), bits(x), "conv2d {kh}x{kw} groups {groups}");
        }
    }
}

#[test]
fn dirac_of_an_empty_tensor_is_a_no_op_once_groups_is_valid() {
    init::dirac_(&mut Tensor::zeros(&[0, 3, 3]).unwrap(), 1).unwrap();
    // Shape rules are skipped for zero elements: 2-D, and 3 % 2 != 0.
    init::dirac_(&mut Tensor::zeros(&[3, 0]).unwrap(), 1).unwrap();
    init::dirac_(&mut Tensor::zeros(&[3, 0, 3]).unwrap(), 2).unwrap();
    assert!(init::dirac_(&mut Tensor::zeros(&[0, 3, 3]).unwrap(), 0).is_err());
}

// ---- orthogonal_ ------------------------------------------------------------

/// The largest `|(WᵀW or WWᵀ) − gain²·I|` entry of `w` viewed as
/// `rows × (numel / rows)`, computed in f64, relative to `gain²`.
fn orthogonality_error(w: &Tensor, gain: f64) -> f64 {
    let rows = w.shape()[0];
    let cols = w.numel() / rows;
    let x = w.as_slice();
    // The short side's vectors, each contiguous: rows of a wide W, columns
    // of a tall one.
    let (n, len) = if rows < cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let mut v = vec![0.0f64; n * len];
    for i in 0..rows {
        for j in 0..cols {
            let (p, k) = if rows < cols { (i, j) } else { (j, i) };
            v[p * len + k] = x[i * cols + j] as f64;
        }
    }
    let mut worst = 0.0f64;
    for p in 0..n {
        for q in p..n {
            let a = &v[p * len..(p + 1) * len];
            let b = &v[q * len..(q + 1) * len];
            let d: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let want = if p == q { gain * gain } else { 0.0 };
            worst = worst.max((d - want).abs() / (gain * gain));
        }
    }
    worst
}

#[test]
fn orthogonal_is_orthogonal_for_tall_wide_square_and_nd_shapes() {
    let shapes: &[&[usize]] = &[
        &[1, 1],
        &[64, 64],
        &[100, 30],
        &[30, 100],
        &[1, 10],
        &[10, 1],
        &[129, 65],
        &[8, 4, 3, 3], // 8 x 36: wide
        &[40, 2, 2],   // 40 x 4: tall
        &[16, 4, 2, 2, 2],
        &[300, 300],
        &[1024, 1024],
        &[2048, 100],
        &[64, 64, 3, 3], // 64 x 576
    ];
    for &shape in shapes {
        for gain in [1.0, 2.5] {
            let mut w = Tensor::zeros(shape).unwrap();
            init::orthogonal_(&mut w, gain, Some(&mut Generator::new(11))).unwrap();
            let err = orthogonality_error(&w, gain);
            eprintln!("{shape:?} gain {gain}: |WᵀW − g²I|/g² = {err:.2e}");
            assert!(
                err < 1e-5,
                "{shape:?} gain {gain}: |WᵀW − g²I|/g² = {err:e}"
            );
        }
    }
}

#[test]
fn orthogonal_is_q_of_the_normal_fill_with_a_positive_r_diagonal() {
    // With M the matrix normal_(t, 0, 1) writes from the same generator state,
    // R = WᵀM (tall) or R = W Mᵀ (wide) must be upper triangular with a
    // positive diagonal: W is PyTorch's sign-corrected Q.
    for (rows, cols) in [(50, 20), (20, 50), (33, 33)] {
        let mut w = Tensor::zeros(&[rows, cols]).unwrap();
        init::orthogonal_(&mut w, 1.0, Some(&mut Generator::new(5))).unwrap();
        let mut m = Tensor::zeros(&[rows, cols]).unwrap();
        init::normal_(&mut m, 0.0, 1.0, Some(&mut Generator::new(5))).unwrap();
        let n = rows.min(cols);
        for i in 0..n {
            for j in 0..n {
                let r: f64 = if rows >= cols {
                    (0..rows).map(|k| w[[k, i]] as f64 * m[[k, j]] as f64).sum()
                } else {
                    (0..cols).map(|k| w[[i, k]] as f64 * m[[j, k]] as f64).sum()
                };
                if i == j {
                    assert!(r > 0.0, "{rows}x{cols}: R[{i}, {i}] = {r}");
                } else if i > j {
                    assert!(r.abs() < 1e-4, "{rows}x{cols}: R[{i}, {j}] = {r}");
                }
            }
        }
    }
}

#[test]
fn orthogonal_gives_the_same_bits_on_any_thread_count() {
    for shape in [[256usize, 256], [300, 100], [70, 500]] {
        let run = |threads| {
            with_threads(threads, || {
                let mut w = Tensor::zeros(&shape).unwrap();
                init::orthogonal_(&mut w, 1.5, Some(&mut Generator::new(99))).unwrap();
                bits(w.as_slice())
            })
        };
        let one = run(1);
        assert_eq!(one, run(2), "{shape:?}: 2 threads");
        assert_eq!(one, run(3), "{shape:?}: 3 threads");
    }
}

#[test]
fn orthogonal_differs_between_generators() {
    let mut a = Tensor::zeros(&[16, 16]).unwrap();
    let mut b = Tensor::zeros(&[16, 16]).unwrap();
    init::orthogonal_(&mut a, 1.0, Some(&mut Generator::new(1))).unwrap();
    init::orthogonal_(&mut b, 1.0, Some(&mut Generator::new(2))).unwrap();
    assert_ne!(a, b);
}

// ---- sparse_ ----------------------------------------------------------------

fn zeros_per_column(w: &Tensor) -> Vec<usize> {
    let [rows, cols] = w.shape().try_into().unwrap();
    (0..cols)
        .map(|c| (0..rows).filter(|&r| w[[r, c]] == 0.0).count())
        .collect()
}

#[test]
fn sparse_has_exactly_ceil_sparsity_rows_zeros_per_column() {
    for (rows, cols) in [(37, 11), (100, 7), (1, 5), (5, 1), (64, 130)] {
        for sparsity in [0.0, 0.01, 0.1, 1.0 / 3.0, 0.5, 0.9, 0.999, 1.0] {
            let mut w = Tensor::zeros(&[rows, cols]).unwrap();
            init::sparse_(&mut w, sparsity, 0.5, Some(&mut Generator::new(8))).unwrap();
            let want = ((sparsity * rows as f64).ceil() as usize).min(rows);
            assert_eq!(
                zeros_per_column(&w),
                vec![want; cols],
                "{rows}x{cols} sparsity {sparsity}"
            );
        }
    }
}

#[test]
fn sparse_keeps_the_normal_values_it_does_not_zero() {
    let mut w = Tensor::zeros(&[50, 40]).unwrap();
    init::sparse_(&mut w, 0.3, 0.02, Some(&mut Generator::new(4))).unwrap();
    let mut n = Tensor::zeros(&[50, 40]).unwrap();
    init::normal_(&mut n, 0.0, 0.02, Some(&mut Generator::new(4))).unwrap();
    for (x, y) in w.as_slice().iter().zip(n.as_slice()) {
        assert!(*x == 0.0 || x.to_bits() == y.to_bits());
    }
}

#[test]
fn sparse_nonzeros_are_normal() {
    // 2048 x 1024 at sparsity 0.1: 1843 x 1024 ≈ 1.89e6 non-zeros.
    let std = 0.5;
    let mut w = Tensor::zeros(&[2048, 1024]).unwrap();
    init::sparse_(&mut w, 0.1, std, Some(&mut Generator::new(2024))).unwrap();
    let nonzero: Vec<f32> = w.as_slice().iter().copied().filter(|&x| x != 0.0).collect();
    assert_eq!(nonzero.len(), (2048 - 205) * 1024);
    assert_ks(
        &nonzero,
        |x| phi(x / std),
        "sparse_ non-zeros vs N(0, 0.5²)",
    );
}

#[test]
fn sparse_zero_rows_are_uniform() {
    // 3 zeros in each of 100 000 columns of 10 rows: each row is zero in
    // 30 000 columns on average (sd ≈ 145); 5 sd is a generous bound.
    let (rows, cols) = (10, 100_000);
    let mut w = Tensor::zeros(&[rows, cols]).unwrap();
    init::sparse_(&mut w, 0.3, 1.0, Some(&mut Generator::new(6))).unwrap();
    for r in 0..rows {
        let z = w.row(r).unwrap().iter().filter(|&&x| x == 0.0).count() as f64;
        assert!((z - 30_000.0).abs() < 5.0 * 145.0, "row {r}: {z} zeros");
    }
}

#[test]
fn sparse_is_the_same_on_any_thread_count_and_follows_the_generator() {
    let run = |threads, seed| {
        with_threads(threads, || {
            let mut w = Tensor::zeros(&[500, 700]).unwrap();
            init::sparse_(&mut w, 0.37, 1.0, Some(&mut Generator::new(seed))).unwrap();
            w
        })
    };
    let one = run(1, 10);
    assert_eq!(bits(one.as_slice()), bits(run(2, 10).as_slice()));
    assert_eq!(bits(one.as_slice()), bits(run(3, 10).as_slice()));
    let other = run(2, 11);
    let pattern = |w: &Tensor| w.as_slice().iter().map(|&x| x == 0.0).collect::<Vec<_>>();
    assert_ne!(
        pattern(&one),
        pattern(&other),
        "another seed, another zero pattern"
    );
    // The second call of one generator gives another pattern too.
    let mut g = Generator::new(10);
    let mut a = Tensor::zeros(&[500, 700]).unwrap();
    init::sparse_(&mut a, 0.37, 1.0, Some(&mut g)).unwrap();
    init::sparse_(&mut a, 0.37, 1.0, Some(&mut g)).unwrap();
    assert_ne!(pattern(&one), pattern(&a));
}

// ---- the shared rules -------------------------------------------------------

#[test]
fn random_calls_take_one_stream_failed_and_deterministic_ones_none() {
    let mut g = Generator::new(0);
    let mut w = Tensor::zeros(&[6, 4]).unwrap();
    let mut empty = Tensor::zeros(&[0, 4]).unwrap();
    init::orthogonal_(&mut w, 1.0, Some(&mut g)).unwrap();
    init::orthogonal_(&mut empty, 1.0, Some(&mut g)).unwrap();
    init::sparse_(&mut w, 0.5, 0.1, Some(&mut g)).unwrap();
    init::sparse_(&mut empty, 0.5, 0.1, Some(&mut g)).unwrap();
    assert_eq!(g.calls(), Some(4));
    assert!(init::orthogonal_(&mut w, f64::NAN, Some(&mut g)).is_err());
    assert!(init::orthogonal_(&mut Tensor::zeros(&[4]).unwrap(), 1.0, Some(&mut g)).is_err());
    assert!(init::sparse_(&mut w, 2.0, 0.1, Some(&mut g)).is_err());
    assert!(init::sparse_(&mut empty, f64::NAN, 0.1, Some(&mut g)).is_err());
    assert!(
        init::sparse_(
            &mut Tensor::zeros(&[2, 2, 2]).unwrap(),
            0.5,
            0.1,
            Some(&mut g)
        )
        .is_err()
    );
    assert_eq!(g.calls(), Some(4), "failed calls take no stream");
    // eye_ and dirac_ are not random: the global generator does not move.
    let before = nninit::with_global_generator(|g| g.state());
    init::eye_(&mut w).unwrap();
    init::dirac_(&mut Tensor::zeros(&[2, 2, 3]).unwrap(), 1).unwrap();
    assert_eq!(nninit::with_global_generator(|g| g.state()), before);
}

#[test]
fn init_values_build_the_same_tensors_and_refuse_shards() {
    let cases = [
        (Init::Eye, vec![5, 3]),
        (Init::Dirac { groups: 2 }, vec![4, 2, 3, 3]),
        (Init::Orthogonal { gain: 0.5 }, vec![20, 3, 3]),
        (
            Init::Sparse {
                sparsity: 0.2,
                std: 0.1,
            },
            vec![30, 20],
        ),
    ];
    for (init, shape) in cases {
        let a = init.tensor(&shape, Some(&mut Generator::new(7))).unwrap();
        let mut b = filled(&shape, 3.0);
        init.apply(&mut b, Some(&mut Generator::new(7))).unwrap();
        assert_eq!(bits(a.as_slice()), bits(b.as_slice()), "{init:?}");
        assert!(!init.is_shardable());
        let e = init
            .fill_shard(&shape, 0, &mut [0.0; 4], Stream::from_key(1))
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("cannot initialize a shard: it needs the whole tensor"),
            "{init:?}: {e}"
        );
    }
    assert!(
        Init::Normal {
            mean: 0.0,
            std: 1.0
        }
        .is_shardable()
    );
}
