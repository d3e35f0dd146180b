//! `kaiming_uniform_` on a 4096×4096 `Array2<f32>` beside `ndarray-rand`'s
//! `Array::random` with the same distribution, in one group:
//! `U(−b, b)` with `b = 1/√4096` (`nn.Linear`'s default, `a = √5`,
//! leaky_relu, fan_in).
//!
//! * `nninit_in_place`: fills an existing array (its own memory, no copy) on
//!   the global rayon pool;
//! * `nninit_in_place/1thread`: the same on one thread;
//! * `tensor_in_place` and `tensor_in_place/1thread`: the same fill on a
//!   `Tensor` (the ndarray path should cost the same);
//! * `nninit_fresh_array`: `Array2::zeros` then the fill, a new array each
//!   time, as `Array::random` makes one (allocation and first-touch page
//!   faults included);
//! * `ndarray_rand_random`: `Array::random((4096, 4096), Uniform::new(−b, b))`
//!   (serial, `rand`'s thread generator).
//!
//! Run: `cargo bench --features ndarray --bench ndarray`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Uniform;
use nninit::init::{self, FanMode, Nonlinearity};
use nninit::{Generator, Tensor};

const SIDE: usize = 4096;

fn kaiming(w: &mut Array2<f32>, g: &mut Generator) {
    init::kaiming_uniform_(
        w,
        black_box(5f64.sqrt()),
        FanMode::FanIn,
        Nonlinearity::LeakyRelu,
        Some(g),
    )
    .unwrap();
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ndarray_kaiming_uniform_4096x4096");
    group.sample_size(10);
    group.throughput(Throughput::Elements((SIDE * SIDE) as u64));
    let mut g = Generator::new(0);
    let mut w = Array2::<f32>::zeros((SIDE, SIDE));
    group.bench_function("nninit_in_place", |b| b.iter(|| kaiming(&mut w, &mut g)));
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("nninit_in_place/1thread", |b| {
        b.iter(|| one.install(|| kaiming(&mut w, &mut g)))
    });
    let mut t = Tensor::zeros(&[SIDE, SIDE]).unwrap();
    let tensor_kaiming = |t: &mut Tensor, g: &mut Generator| {
        init::kaiming_uniform_(
            t,
            black_box(5f64.sqrt()),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            Some(g),
        )
        .unwrap()
    };
    group.bench_function("tensor_in_place", |b| {
        b.iter(|| tensor_kaiming(&mut t, &mut g))
    });
    group.bench_function("tensor_in_place/1thread", |b| {
        b.iter(|| one.install(|| tensor_kaiming(&mut t, &mut g)))
    });
    group.bench_function("nninit_fresh_array", |b| {
        b.iter(|| {
            let mut fresh = Array2::<f32>::zeros((SIDE, SIDE));
            kaiming(&mut fresh, &mut g);
            fresh
        })
    });
    let bound = 1.0 / (SIDE as f32).sqrt();
    let uniform = Uniform::new(-bound, bound).unwrap();
    group.bench_function("ndarray_rand_random", |b| {
        b.iter(|| Array2::random((SIDE, SIDE), black_box(uniform)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
