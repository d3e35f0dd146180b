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

criterion_group!(benches, linear_forward, chapter_forward, build_layers);
criterion_main!(benches);
