//! The `nn` layer and the GEMM under it, each beside same-run baselines:
//! raw `matrixmultiply::sgemm`, the `gemm` crate (faer's kernels) and
//! `faer::linalg::matmul`, for the Linear forward (256×1024 · 1024×1024 plus
//! bias), a square 2048³ product and the MLP train step's products; the
//! chapter network's forward; building large layers; `orthogonal_` 1024²
//! against faer's QR.
//!
//! Run: `cargo bench --bench nn` (groups `linear_forward`,
//! `gemm_square_2048`, `chapter_forward`, `build_8x_linear_4096`,
//! `train_step_784_256_256_10_b128`, `orthogonal_1024`). GEMM throughput is
//! reported in elements/s where one element is one floating-point operation,
//! so criterion's `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nninit::gemm::{MatMut, MatRef, gemm};
use nninit::nn::{Linear, Module, ReLU, Sequential};
use nninit::{Generator, Tensor, init};

const BATCH: usize = 256;
const IN: usize = 1024;
const OUT: usize = 1024;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// `C (m×n, row-major) ← C + A·B` with matrixmultiply on one thread (its own
/// threading is not enabled), where `A` is `m×k` row-major and `B` is given
/// by its strides.
#[allow(clippy::too_many_arguments)]
fn mm_sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    rsb: isize,
    csb: isize,
    c: &mut [f32],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: `a` is m×k row-major, `b` a k×n view with strides (rsb, csb)
    // inside its slice (the callers pass a row-major k×n or the transpose of
    // a row-major n×k), `c` is m×n row-major; all sizes asserted above.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            rsb,
            csb,
            1.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The same with the `gemm` crate on `threads` rayon threads of the current
/// pool.
#[allow(clippy::too_many_arguments)]
fn crate_sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    rsb: isize,
    csb: isize,
    c: &mut [f32],
    threads: usize,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // SAFETY: as in `mm_sgemm` (the `gemm` crate takes column strides
    // first); dst ← 1·dst + 1·A·B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            csb,
            rsb,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

fn faer_par(threads: usize) -> faer::Par {
    if threads == 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    }
}

/// `Y = X·Wᵀ + b`: the bias is written into `y` first and the product
/// accumulated onto it, for the baselines; nninit fuses the bias.
fn linear_forward(c: &mut Criterion) {
    let mut g = Generator::new(1);
    let x = Tensor::randn(&[BATCH, IN], Some(&mut g)).unwrap();
    let mut layer = Linear::with_options(IN, OUT, true, Some(&mut g)).unwrap();
    let w = layer.weight.data().unwrap().clone();
    let b = layer.bias.as_ref().unwrap().data().unwrap().clone();
    let mut y = vec![0.0f32; BATCH * OUT];
    let fill_bias = |y: &mut [f32]| {
        for row in y.chunks_exact_mut(OUT) {
            row.copy_from_slice(b.as_slice());
        }
    };
    let (xs, ws) = (x.as_slice(), w.as_slice());

    let mut group = c.benchmark_group("linear_forward");
    group.throughput(Throughput::Elements((2 * BATCH * IN * OUT) as u64));
    group.sample_size(30);
    group.bench_function("baseline_matrixmultiply/1thread", |bch| {
        bch.iter(|| {
            fill_bias(&mut y);
            mm_sgemm(BATCH, IN, OUT, black_box(xs), ws, 1, IN as isize, &mut y)
        })
    });
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("baseline_gemm_crate/{threads}thread"), |bch| {
            pool.install(|| {
                bch.iter(|| {
                    fill_bias(&mut y);
                    crate_sgemm(
                        BATCH,
                        IN,
                        OUT,
                        black_box(xs),
                        ws,
                        1,
                        IN as isize,
                        &mut y,
                        threads,
                    )
                })
            })
        });
        group.bench_function(format!("baseline_faer/{threads}thread"), |bch| {
            let xf = faer::MatRef::from_row_major_slice(xs, BATCH, IN);
            let wt = faer::MatRef::from_row_major_slice(ws, OUT, IN).transpose();
            pool.install(|| {
                bch.iter(|| {
                    fill_bias(&mut y);
                    let yf = faer::MatMut::from_row_major_slice_mut(&mut y, BATCH, OUT);
                    faer::linalg::matmul::matmul(
                        yf,
                        faer::Accum::Add,
                        black_box(xf),
                        wt,
                        1.0f32,
                        faer_par(threads),
                    );
                })
            })
        });
        // The layer in inference mode keeps `Wᵀ` packed between forwards;
        // `gemm::linear` packs it on every call.
        group.bench_function(format!("nninit_linear/{threads}thread"), |bch| {
            pool.install(|| bch.iter(|| layer.forward(black_box(&x)).unwrap()))
        });
        group.bench_function(
            format!("nninit_gemm_linear_unpacked/{threads}thread"),
            |bch| {
                pool.install(|| {
                    bch.iter(|| nninit::gemm::linear(black_box(&x), &w, Some(&b)).unwrap())
                })
            },
        );
    }
    group.finish();
}

/// `C = A·B`, all 2048×2048 row-major.
fn gemm_square(c: &mut Criterion) {
    const N: usize = 2048;
    let mut g = Generator::new(5);
    let a = Tensor::randn(&[N, N], Some(&mut g)).unwrap();
    let b = Tensor::randn(&[N, N], Some(&mut g)).unwrap();
    let (a, b) = (a.as_slice(), b.as_slice());
    let mut out = vec![0.0f32; N * N];
    let mut group = c.benchmark_group("gemm_square_2048");
    group.throughput(Throughput::Elements((2 * N * N * N) as u64));
    group.sample_size(10);
    group.bench_function("baseline_matrixmultiply/1thread", |bch| {
        bch.iter(|| mm_sgemm(N, N, N, black_box(a), b, N as isize, 1, &mut out))
    });
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("baseline_gemm_crate/{threads}thread"), |bch| {
            pool.install(|| {
                bch.iter(|| crate_sgemm(N, N, N, black_box(a), b, N as isize, 1, &mut out, threads))
            })
        });
        group.bench_function(format!("baseline_faer/{threads}thread"), |bch| {
            let af = faer::MatRef::from_row_major_slice(a, N, N);
            let bf = faer::MatRef::from_row_major_slice(b, N, N);
            pool.install(|| {
                bch.iter(|| {
                    let of = faer::MatMut::from_row_major_slice_mut(&mut out, N, N);
                    faer::linalg::matmul::matmul(
                        of,
                        faer::Accum::Replace,
                        black_box(af),
                        bf,
                        1.0f32,
                        faer_par(threads),
                    );
                })
            })
        });
        group.bench_function(format!("nninit_gemm/{threads}thread"), |bch| {
            pool.install(|| {
                bch.iter(|| {
                    gemm(
                        1.0,
                        MatRef::row_major(black_box(a), N, N).unwrap(),
                        MatRef::row_major(b, N, N).unwrap(),
                        0.0,
                        MatMut::row_major(&mut out, N, N).unwrap(),
                    )
                    .unwrap()
                })
            })
        });
    }
    group.finish();
}

/// `orthogonal_` on a 1024×1024 tensor (normal fill, blocked QR, sign
/// correction) beside faer's QR with the thin `Q` of the same matrix size.
fn orthogonal(c: &mut Criterion) {
    const N: usize = 1024;
    let mut group = c.benchmark_group("orthogonal_1024");
    group.sample_size(10);
    let mut t = Tensor::zeros(&[N, N]).unwrap();
    let a = Tensor::randn(&[N, N], Some(&mut Generator::new(8))).unwrap();
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("nninit/{threads}thread"), |bch| {
            pool.install(|| {
                bch.iter(|| init::orthogonal_(&mut t, 1.0, Some(&mut Generator::new(3))).unwrap())
            })
        });
        group.bench_function(format!("baseline_faer_qr_thin_q/{threads}thread"), |bch| {
            let af = faer::MatRef::from_row_major_slice(a.as_slice(), N, N);
            faer::set_global_parallelism(faer_par(threads));
            pool.install(|| bch.iter(|| black_box(af.qr().compute_thin_Q())));
        });
    }
    faer::set_global_parallelism(faer::Par::rayon(0));
    group.finish();
}

fn chapter_forward(c: &mut Criterion) {
    let mut net = Sequential::new()
        .with(Linear::lazy(8))
        .with(ReLU::new())
        .with(Linear::lazy(1));
    let x = Tensor::rand(&[2, 4], Some(&mut Generator::new(2))).unwrap();
    net.forward(&x).unwrap();
    c.bench_function("chapter_forward/2x4", |b| {
        b.iter(|| net.forward(black_box(&x)).unwrap())
    });
}

fn build_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_8x_linear_4096");
    group.sample_size(10);
    group.throughput(Throughput::Elements(8 * (4096 * 4096 + 4096)));
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("{threads}thread"), |b| {
            pool.install(|| {
                b.iter(|| {
                    let layers: Vec<Linear> =
                        (0..8).map(|_| Linear::new(4096, 4096).unwrap()).collect();
                    black_box(layers)
                })
            })
        });
    }
    group.finish();
}

/// One training step (forward, MSE, backward, SGD with momentum) of a
/// 784-256-256-10 MLP at batch 128, beside the same step's GEMMs alone (the
/// three forward products, three weight gradients and three input
/// gradients, at the same shapes), so the share of time in GEMM is the
/// ratio of the two medians.
fn train_step(c: &mut Criterion) {
    use nninit::nn::{MSELoss, SGD, SgdOptions};

    const B: usize = 128;
    let dims = [784, 256, 256, 10];
    let mut g = Generator::new(3);
    let x = Tensor::randn(&[B, 784], Some(&mut g)).unwrap();
    let y = Tensor::randn(&[B, 10], Some(&mut g)).unwrap();
    let mut net = Sequential::new();
    for (i, w) in dims.windows(2).enumerate() {
        net.push(Linear::with_options(w[0], w[1], true, Some(&mut g)).unwrap());
        if i < 2 {
            net.push(ReLU::new());
        }
    }
    net.train(true);
    let mut opt = SGD::with_options(
        net.parameters(),
        SgdOptions {
            lr: 1e-3,
            momentum: 0.9,
            ..SgdOptions::default()
        },
    )
    .unwrap();
    let mut loss = MSELoss::new();

    let mut group = c.benchmark_group("train_step_784_256_256_10_b128");
    group.sample_size(30);
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("step/{threads}thread"), |b| {
            pool.install(|| {
                b.iter(|| {
                    opt.zero_grad();
                    let pred = net.forward(&x).unwrap();
                    loss.forward(&pred, &y).unwrap();
                    net.backward(&loss.backward().unwrap()).unwrap();
                    opt.step().unwrap();
                })
            })
        });
        // The same nine products on preallocated buffers.
        let acts: Vec<Vec<f32>> = dims.iter().map(|&d| vec![0.5f32; B * d]).collect();
        let weights: Vec<Vec<f32>> = dims
            .windows(2)
            .map(|w| vec![0.01f32; w[0] * w[1]])
            .collect();
        let mut outs: Vec<Vec<f32>> = dims.iter().map(|&d| vec![0.0f32; B * d]).collect();
        let mut grads: Vec<Vec<f32>> = weights.iter().map(|w| vec![0.0f32; w.len()]).collect();
        group.bench_function(format!("gemm_only/{threads}thread"), |b| {
            pool.install(|| {
                b.iter(|| {
                    for l in 0..3 {
                        let (i, o) = (dims[l], dims[l + 1]);
                        let xa = MatRef::row_major(&acts[l], B, i).unwrap();
                        let w = MatRef::row_major(&weights[l], o, i).unwrap();
                        let dy = MatRef::row_major(&acts[l + 1], B, o).unwrap();
                        // forward: Y = X·Wᵀ
                        let out = MatMut::row_major(&mut outs[l + 1], B, o).unwrap();
                        gemm(1.0, xa, w.t(), 1.0, out).unwrap();
                        // dW += dYᵀ·X
                        let gw = MatMut::row_major(&mut grads[l], o, i).unwrap();
                        gemm(1.0, dy.t(), xa, 1.0, gw).unwrap();
                        // dX = dY·W
                        let dx = MatMut::row_major(&mut outs[l], B, i).unwrap();
                        gemm(1.0, dy, w, 0.0, dx).unwrap();
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    linear_forward,
    gemm_square,
    chapter_forward,
    build_layers,
    train_step,
    orthogonal
);
criterion_main!(benches);
