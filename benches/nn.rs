//! The `nn` layer: Linear forward against raw `matrixmultiply::sgemm`, the
//! chapter network's forward, and building large layers with default init.
//!
//! Run: `cargo bench --bench nn` (groups `linear_forward`, `chapter_forward`,
//! `build_8x_linear_4096`). Linear forward throughput is reported in
//! elements/s where one element is one floating-point operation, so
//! criterion's `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nninit::nn::{Linear, Module, ReLU, Sequential};
use nninit::{Generator, Tensor};

const BATCH: usize = 256;
const IN: usize = 1024;
const OUT: usize = 1024;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// `Y = X·Wᵀ + b` with matrixmultiply called directly on one thread: the
/// bias is written first and the product accumulated onto it (β = 1).
fn raw_sgemm(x: &Tensor, w: &Tensor, b: &Tensor, y: &mut [f32]) {
    for row in y.chunks_exact_mut(OUT) {
        row.copy_from_slice(b.as_slice());
    }
    // SAFETY: x is BATCH×IN row-major, w is OUT×IN row-major read as its
    // transpose (row stride 1, column stride IN), y is BATCH×OUT row-major;
    // all three buffers have exactly those sizes.
    unsafe {
        matrixmultiply::sgemm(
            BATCH,
            IN,
            OUT,
            1.0,
            x.as_slice().as_ptr(),
            IN as isize,
            1,
            w.as_slice().as_ptr(),
            1,
            IN as isize,
            1.0,
            y.as_mut_ptr(),
            OUT as isize,
            1,
        );
    }
}

fn linear_forward(c: &mut Criterion) {
    let mut g = Generator::new(1);
    let x = Tensor::randn(&[BATCH, IN], Some(&mut g)).unwrap();
    let mut layer = Linear::with_options(IN, OUT, true, Some(&mut g)).unwrap();
    let w = layer.weight.data().unwrap().clone();
    let b = layer.bias.as_ref().unwrap().data().unwrap().clone();
    let mut y = vec![0.0f32; BATCH * OUT];

    let mut group = c.benchmark_group("linear_forward");
    group.throughput(Throughput::Elements((2 * BATCH * IN * OUT) as u64));
    group.sample_size(30);
    group.bench_function("matrixmultiply_sgemm/1thread", |bch| {
        bch.iter(|| raw_sgemm(black_box(&x), &w, &b, &mut y))
    });
    for threads in [1, 2] {
        let pool = pool(threads);
        group.bench_function(format!("nninit_linear/{threads}thread"), |bch| {
            pool.install(|| bch.iter(|| layer.forward(black_box(&x)).unwrap()))
        });
    }
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
    use nninit::gemm::{MatMut, MatRef, gemm};
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
    chapter_forward,
    build_layers,
    train_step
);
criterion_main!(benches);
