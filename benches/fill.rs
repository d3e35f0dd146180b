//! Fill kernels on 16M f32 (64 MiB, larger than the last-level cache) beside
//! same-run baselines, at 1 thread and at all threads.
//!
//! Baselines: `slice::fill` (the memory-bandwidth bound of a pure write), an
//! in-place read-modify-write loop (the bound for masking), and scalar
//! `Xoshiro256PlusPlus` + `rand_distr` loops (with one generator per 64 Ki
//! chunk under rayon at all threads).
//!
//! Run: `cargo bench --bench fill` (or with `-- 1thread` / `-- threads`, or
//! `-- 'slice_fill|nninit_normal|trunc'` for `trunc_normal_` beside its
//! baselines, or `-- torch` for the torch-exact generator's fills).

use std::hint::black_box;

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use nninit::Stream;
use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::kernels::Kernels;
use rand::SeedableRng;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

const N: usize = 16 << 20;
const CHUNK: usize = 64 << 10;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn baseline_fill(buf: &mut [f32], threads: usize) {
    if threads == 1 {
        buf.fill(black_box(0.5));
    } else {
        buf.par_chunks_mut(CHUNK)
            .for_each(|c| c.fill(black_box(0.5)));
    }
}

fn baseline_rmw(buf: &mut [f32], threads: usize) {
    let op = |c: &mut [f32]| {
        for x in c {
            *x += 1.0;
        }
    };
    if threads == 1 {
        op(buf);
    } else {
        buf.par_chunks_mut(CHUNK).for_each(op);
    }
}

fn baseline_rand_distr<D: rand::distr::Distribution<f32> + Sync>(
    buf: &mut [f32],
    dist: &D,
    threads: usize,
) {
    let op = |(i, c): (usize, &mut [f32])| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(i as u64);
        for x in c {
            *x = dist.sample(&mut rng);
        }
    };
    if threads == 1 {
        op((0, buf));
    } else {
        buf.par_chunks_mut(CHUNK).enumerate().for_each(op);
    }
}

fn group(c: &mut Criterion, threads: usize) {
    let name = if threads == 1 {
        "fill/1thread".to_string()
    } else {
        format!("fill/{threads}threads")
    };
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(3));
    let pool = pool(threads);
    let mut buf = vec![0.0f32; N];
    let kernels = Kernels::active();
    let stream = Stream::from_key(1);

    fn bench(
        g: &mut BenchmarkGroup<'_, WallTime>,
        pool: &rayon::ThreadPool,
        buf: &mut [f32],
        id: &str,
        f: &(dyn Fn(&mut [f32]) + Sync),
    ) {
        g.bench_function(id, |b| b.iter(|| pool.install(|| f(buf))));
    }

    bench(&mut g, &pool, &mut buf, "baseline_slice_fill", &|b| {
        baseline_fill(b, threads)
    });
    bench(&mut g, &pool, &mut buf, "baseline_rmw_loop", &|b| {
        baseline_rmw(b, threads)
    });
    let unit = rand::distr::Uniform::new(-1.0f32, 1.0).unwrap();
    bench(
        &mut g,
        &pool,
        &mut buf,
        "baseline_rand_distr_uniform",
        &|b| baseline_rand_distr(b, &unit, threads),
    );
    bench(
        &mut g,
        &pool,
        &mut buf,
        "baseline_rand_distr_normal",
        &|b| baseline_rand_distr(b, &StandardNormal, threads),
    );

    let uniform = Uniform::new(-1.0, 1.0).unwrap();
    let normal = Normal::new(0.0, 1.0).unwrap();
    bench(&mut g, &pool, &mut buf, "nninit_uniform", &|b| {
        uniform.fill_with(kernels, stream, 0, b)
    });
    bench(&mut g, &pool, &mut buf, "nninit_normal", &|b| {
        normal.fill_with(kernels, stream, 0, b)
    });
    // trunc_normal_ with PyTorch's defaults, and a window in the upper tail.
    let trunc = TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap();
    let trunc_tail = TruncatedNormal::new(0.0, 1.0, 2.0, 3.0).unwrap();
    bench(&mut g, &pool, &mut buf, "nninit_trunc_normal", &|b| {
        trunc.fill_with(kernels, stream, 0, b)
    });
    bench(&mut g, &pool, &mut buf, "nninit_trunc_normal_2_3", &|b| {
        trunc_tail.fill_with(kernels, stream, 0, b)
    });
    bench(&mut g, &pool, &mut buf, "nninit_constant", &|b| {
        kernels.fill_constant(b, black_box(0.5))
    });
    if threads == 1 {
        // The torch-exact generator: PyTorch's serial MT19937 stream, so one
        // thread whatever the pool (PyTorch's own: `scripts/bench_torch.py`).
        let mut torch = nninit::Generator::torch(0);
        let std_uniform = Uniform::new(-1.0, 1.0).unwrap();
        g.bench_function("nninit_torch_uniform", |b| {
            b.iter(|| std_uniform.fill(&mut buf, Some(&mut torch)))
        });
        g.bench_function("nninit_torch_normal", |b| {
            b.iter(|| normal.fill(&mut buf, Some(&mut torch)))
        });
    }
    // Mask a normal fill in place: the threshold zeroes about half.
    normal.fill_with(kernels, stream, 0, &mut buf);
    bench(&mut g, &pool, &mut buf, "nninit_mask", &|b| {
        kernels.threshold_mask(b, black_box(0.67)).unwrap()
    });
    g.finish();
}

fn fills(c: &mut Criterion) {
    group(c, 1);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all > 1 {
        group(c, all);
    }
}

criterion_group!(benches, fills);
criterion_main!(benches);
