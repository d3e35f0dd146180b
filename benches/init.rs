//! Initializers beside the fills they are built on, in the same group:
//! xavier/kaiming against the plain uniform/normal fill of a 4096×4096 weight
//! (they should cost the same: the fans are computed once), `sparse_`
//! against its normal fill, `eye_` and `dirac_` against a zero fill, and
//! `orthogonal_` at 256×256 and 1024×1024 (one thread: the QR is
//! single-threaded).
//!
//! Run: `cargo bench --bench init` (or `-- 1thread`, `-- orthogonal`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nninit::distributions::{Distribution, Normal, Uniform};
use nninit::init::{self, FanMode, Nonlinearity};
use nninit::kernels::Kernels;
use nninit::{Generator, Stream, Tensor};

const SIDE: usize = 4096;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn elementwise(c: &mut Criterion, threads: usize) {
    let name = if threads == 1 {
        "init_4096x4096/1thread".to_string()
    } else {
        format!("init_4096x4096/{threads}threads")
    };
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    let pool = pool(threads);
    let kernels = Kernels::active();
    let stream = Stream::from_key(1);
    let mut w = Tensor::zeros(&[SIDE, SIDE]).unwrap();
    let mut generator = Generator::new(0);
    g.throughput(Throughput::Elements((SIDE * SIDE) as u64));

    // The uniform family. xavier_uniform_ with gain 1 on a square weight is
    // U(±√(6 / 8192)); the baseline draws from the same distribution.
    let bound = (6.0f64 / (2 * SIDE) as f64).sqrt();
    let uniform = Uniform::new(-bound, bound).unwrap();
    g.bench_function("xavier_uniform_", |b| {
        b.iter(|| {
            pool.install(|| init::xavier_uniform_(&mut w, black_box(1.0), Some(&mut generator)))
        })
    });
    g.bench_function("baseline_uniform_", |b| {
        b.iter(|| {
            pool.install(|| init::uniform_(&mut w, -bound, black_box(bound), Some(&mut generator)))
        })
    });
    // The same fill through `Distribution::fill_with` called from this crate.
    // (Measured ~13x slower than `uniform_` here, on 2026-11-28: a
    // cross-crate codegen effect worth a look; kept as evidence.)
    g.bench_function("baseline_uniform_fill_with", |b| {
        b.iter(|| pool.install(|| uniform.fill_with(kernels, stream, 0, w.as_mut_slice())))
    });
    g.bench_function("kaiming_uniform_", |b| {
        b.iter(|| {
            pool.install(|| {
                init::kaiming_uniform_(
                    &mut w,
                    black_box(5f64.sqrt()),
                    FanMode::FanIn,
                    Nonlinearity::LeakyRelu,
                    Some(&mut generator),
                )
            })
        })
    });

    // The normal family.
    let std = (2.0f64 / (2 * SIDE) as f64).sqrt();
    let normal = Normal::new(0.0, std).unwrap();
    g.bench_function("baseline_normal_", |b| {
        b.iter(|| pool.install(|| init::normal_(&mut w, 0.0, black_box(std), Some(&mut generator))))
    });
    g.bench_function("baseline_normal_fill_with", |b| {
        b.iter(|| pool.install(|| normal.fill_with(kernels, stream, 0, w.as_mut_slice())))
    });
    g.bench_function("xavier_normal_", |b| {
        b.iter(|| {
            pool.install(|| init::xavier_normal_(&mut w, black_box(1.0), Some(&mut generator)))
        })
    });
    g.bench_function("kaiming_normal_", |b| {
        b.iter(|| {
            pool.install(|| {
                init::kaiming_normal_(
                    &mut w,
                    black_box(0.0),
                    FanMode::FanIn,
                    Nonlinearity::Relu,
                    Some(&mut generator),
                )
            })
        })
    });
    g.bench_function("sparse_0.1", |b| {
        b.iter(|| {
            pool.install(|| init::sparse_(&mut w, black_box(0.1), 0.01, Some(&mut generator)))
        })
    });

    // The deterministic ones, beside a zero fill.
    g.bench_function("baseline_zero_fill", |b| {
        b.iter(|| pool.install(|| kernels.fill_constant(w.as_mut_slice(), black_box(0.0))))
    });
    g.bench_function("eye_", |b| b.iter(|| pool.install(|| init::eye_(&mut w))));
    // A conv weight of the same element count: [4096, 1024, 2, 2].
    let mut conv = Tensor::zeros(&[SIDE, SIDE / 4, 2, 2]).unwrap();
    g.bench_function("dirac_", |b| {
        b.iter(|| pool.install(|| init::dirac_(&mut conv, black_box(1))))
    });
    g.finish();
}

fn orthogonal(c: &mut Criterion) {
    let mut g = c.benchmark_group("orthogonal/1thread");
    g.sample_size(10);
    let pool = pool(1);
    let mut generator = Generator::new(0);
    for n in [256usize, 1024] {
        let mut w = Tensor::zeros(&[n, n]).unwrap();
        g.throughput(Throughput::Elements((n * n) as u64));
        g.bench_function(format!("{n}x{n}"), |b| {
            b.iter(|| {
                pool.install(|| init::orthogonal_(&mut w, black_box(1.0), Some(&mut generator)))
            })
        });
    }
    g.finish();
}

fn inits(c: &mut Criterion) {
    elementwise(c, 1);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all > 1 {
        elementwise(c, all);
    }
    orthogonal(c);
}

criterion_group!(benches, inits);
criterion_main!(benches);
