//! The layers of real models: `Conv2d(64, 64, 3, padding=1)` forward on
//! `[8, 64, 56, 56]` beside the crate's GEMM on the same products (the bound
//! an im2col convolution can reach), and torchvision's ResNet-18 forward at
//! batch 1 and 8, on 1 and 2 threads. Criterion "elements" are flops for the
//! convolution rows, images for the ResNet rows.
//!
//! Run: `cargo bench --bench layers` (PyTorch's own figures on the same
//! machine: `venv/bin/python scripts/bench_torch_layers.py`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nninit::gemm::{MatMut, MatRef, gemm};
use nninit::nn::{Conv2d, ConvOptions, Module};
use nninit::{Generator, Tensor};

#[path = "../examples/resnet18.rs"]
#[allow(dead_code)]
mod resnet18;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn conv(c: &mut Criterion) {
    let (n, ch, hw) = (8, 64, 56);
    let mut g = Generator::new(0);
    let mut layer = Conv2d::new(
        ch,
        ch,
        [3, 3],
        ConvOptions::default().padding([1, 1]),
        Some(&mut g),
    )
    .unwrap();
    let x = Tensor::randn(&[n, ch, hw, hw], Some(&mut g)).unwrap();
    let (k, p) = (ch * 9, hw * hw);
    let flops = 2 * n * ch * p * k;
    let w = Tensor::randn(&[ch, k], Some(&mut g)).unwrap();
    let cols = Tensor::randn(&[k, p], Some(&mut g)).unwrap();
    let mut out = vec![0.0f32; ch * p];
    for threads in [1, 2] {
        let pool = pool(threads);
        let mut grp = c.benchmark_group(format!("conv2d_64x64x3_b8/{threads}t"));
        grp.throughput(Throughput::Elements(flops as u64));
        grp.sample_size(10);
        grp.bench_function("nninit_conv2d_forward", |b| {
            b.iter(|| pool.install(|| black_box(layer.forward(&x).unwrap())))
        });
        grp.bench_function("baseline_gemm_same_products", |b| {
            b.iter(|| {
                pool.install(|| {
                    for _ in 0..n {
                        gemm(
                            1.0,
                            MatRef::row_major(w.as_slice(), ch, k).unwrap(),
                            MatRef::row_major(cols.as_slice(), k, p).unwrap(),
                            0.0,
                            MatMut::row_major(&mut out, ch, p).unwrap(),
                        )
                        .unwrap();
                    }
                    black_box(&out);
                })
            })
        });
        grp.finish();
    }
}

fn resnet(c: &mut Criterion) {
    let mut net = resnet18::resnet18(Some(&mut Generator::new(0))).unwrap();
    for batch in [1usize, 8] {
        let x = Tensor::randn(&[batch, 3, 224, 224], Some(&mut Generator::new(1))).unwrap();
        for threads in [1, 2] {
            let pool = pool(threads);
            let mut grp = c.benchmark_group(format!("resnet18_forward/b{batch}/{threads}t"));
            grp.throughput(Throughput::Elements(batch as u64));
            grp.sample_size(10);
            grp.bench_function("nninit", |b| {
                b.iter(|| pool.install(|| black_box(net.forward(&x).unwrap())))
            });
            grp.finish();
        }
    }
}

criterion_group!(benches, conv, resnet);
criterion_main!(benches);
