//! Fill kernels on 16M f32 (64 MiB, larger than the last-level cache share
//! of a core) beside same-run baselines, at 1 thread and at all threads,
//! once per instruction set this CPU has.
//!
//! Baselines:
//! * `baseline_nt_store`: the write bound of a fill, a constant written with
//!   non-temporal stores (`_mm512_stream_ps` where the CPU has AVX-512F,
//!   else `_mm256_stream_ps`), which skip the read for ownership as the
//!   kernels' streaming stores do;
//! * `baseline_slice_fill`: `slice::fill` (ordinary stores: a read for
//!   ownership per line, so about 2/3 of the NT bound);
//! * `baseline_rmw_loop`: an in-place read-modify-write loop (the bound for
//!   masking);
//! * scalar `Xoshiro256PlusPlus` + `rand_distr` loops (with one generator
//!   per 64 Ki chunk under rayon at all threads).
//!
//! The nninit rows are named `nninit_<fill>_<isa>` and use
//! `Kernels::new(isa)`, so one run shows every path side by side (the scalar
//! path only at 1 thread: it is the reference, not a fast path). The
//! torch-exact rows (`nninit_torch_uniform_<isa>`, `nninit_torch_normal_<isa>`)
//! draw PyTorch's serial MT19937 stream through `Init::apply_with`, so they
//! are single-threaded whatever the pool and appear in the 1-thread group
//! only (PyTorch's own: `scripts/bench_torch.py`).
//!
//! `nninit_zeros_fresh` / `nninit_randn_fresh` allocate a new tensor per
//! iteration (the active kernels), so they include first-touch page faults.
//!
//! Run: `cargo bench --bench fill` (then `python3 scripts/bench_table.py
//! fill`), or a filter such as `-- 1thread`, `-- 'nt_store|uniform'`,
//! `-- torch`.

use std::hint::black_box;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::init::Init;
use nninit::kernels::{Isa, Kernels};
use nninit::{Generator, Stream, Tensor};
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

/// Non-temporal stores of `v` over `buf`, 64 bytes per instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn nt_store_avx512(buf: &mut [f32], v: f32) {
    use std::arch::x86_64::*;
    let head = buf.as_ptr().align_offset(64).min(buf.len());
    let (first, rest) = buf.split_at_mut(head);
    first.fill(v);
    let mut chunks = rest.chunks_exact_mut(16);
    let x = _mm512_set1_ps(v);
    for c in &mut chunks {
        // SAFETY: `c` is 16 valid floats (64 bytes), 64-byte aligned because
        // `rest` starts on a 64-byte boundary and every chunk is 64 bytes;
        // the caller checked AVX-512F.
        unsafe { _mm512_stream_ps(c.as_mut_ptr(), x) };
    }
    _mm_sfence();
    chunks.into_remainder().fill(v);
}

/// Non-temporal stores of `v` over `buf`, 32 bytes per instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn nt_store_avx(buf: &mut [f32], v: f32) {
    use std::arch::x86_64::*;
    let head = buf.as_ptr().align_offset(32).min(buf.len());
    let (first, rest) = buf.split_at_mut(head);
    first.fill(v);
    let mut chunks = rest.chunks_exact_mut(8);
    let x = _mm256_set1_ps(v);
    for c in &mut chunks {
        // SAFETY: `c` is 8 valid floats (32 bytes), 32-byte aligned as above;
        // the caller checked AVX.
        unsafe { _mm256_stream_ps(c.as_mut_ptr(), x) };
    }
    _mm_sfence();
    chunks.into_remainder().fill(v);
}

/// The write bound: `buf` filled with non-temporal stores.
fn nt_store(buf: &mut [f32], v: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was just detected.
            return unsafe { nt_store_avx512(buf, v) };
        }
        if is_x86_feature_detected!("avx") {
            // SAFETY: AVX was just detected.
            return unsafe { nt_store_avx(buf, v) };
        }
    }
    buf.fill(v);
}

fn baseline_nt_store(buf: &mut [f32], threads: usize) {
    if threads == 1 {
        nt_store(buf, black_box(0.5));
    } else {
        buf.par_chunks_mut(CHUNK)
            .for_each(|c| nt_store(c, black_box(0.5)));
    }
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

fn bench(
    g: &mut BenchmarkGroup<'_, WallTime>,
    pool: &rayon::ThreadPool,
    buf: &mut [f32],
    id: &str,
    f: &(dyn Fn(&mut [f32]) + Sync),
) {
    g.bench_function(id, |b| b.iter(|| pool.install(|| f(buf))));
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
    // Equal iterations per sample: the scalar rows take half a second per
    // iteration, and linear sampling would run them 210 times.
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(3));
    let pool = pool(threads);
    // The crate's own storage (64-byte aligned, 2 MiB for this size, with
    // transparent huge pages), the same buffer for every row.
    let mut t = Tensor::zeros(&[N]).unwrap();
    let stream = Stream::from_key(1);

    bench(&mut g, &pool, t.as_mut_slice(), "baseline_nt_store", &|b| {
        baseline_nt_store(b, threads)
    });
    bench(
        &mut g,
        &pool,
        t.as_mut_slice(),
        "baseline_slice_fill",
        &|b| baseline_fill(b, threads),
    );
    bench(&mut g, &pool, t.as_mut_slice(), "baseline_rmw_loop", &|b| {
        baseline_rmw(b, threads)
    });
    let unit = rand::distr::Uniform::new(-1.0f32, 1.0).unwrap();
    bench(
        &mut g,
        &pool,
        t.as_mut_slice(),
        "baseline_rand_distr_uniform",
        &|b| baseline_rand_distr(b, &unit, threads),
    );
    bench(
        &mut g,
        &pool,
        t.as_mut_slice(),
        "baseline_rand_distr_normal",
        &|b| baseline_rand_distr(b, &StandardNormal, threads),
    );

    let uniform = Uniform::new(-1.0, 1.0).unwrap();
    let normal = Normal::new(0.0, 1.0).unwrap();
    // trunc_normal_ with PyTorch's defaults, and a window in the upper tail.
    let trunc = TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap();
    let trunc_tail = TruncatedNormal::new(0.0, 1.0, 2.0, 3.0).unwrap();
    let isas: Vec<Isa> = Isa::supported()
        .into_iter()
        .filter(|&i| threads == 1 || i != Isa::Scalar)
        .collect();
    // Each fill's rows for every instruction set next to each other.
    type Row<'a> = (&'a str, &'a (dyn Fn(Kernels, &mut [f32]) + Sync));
    let rows: [Row<'_>; 6] = [
        ("uniform", &|k, b| uniform.fill_with(k, stream, 0, b)),
        ("normal", &|k, b| normal.fill_with(k, stream, 0, b)),
        ("trunc_normal", &|k, b| trunc.fill_with(k, stream, 0, b)),
        ("trunc_normal_2_3", &|k, b| {
            trunc_tail.fill_with(k, stream, 0, b)
        }),
        ("constant", &|k, b| k.fill_constant(b, black_box(0.5))),
        // Masks a normal fill in place (the threshold zeroes about half);
        // after the first pass the data no longer changes, the traffic
        // does not either.
        ("mask", &|k, b| {
            k.threshold_mask(b, black_box(0.67)).unwrap()
        }),
    ];
    for (fill, f) in rows {
        if fill == "mask" {
            normal.fill_with(Kernels::active(), stream, 0, t.as_mut_slice());
        }
        for &isa in &isas {
            let k = Kernels::new(isa).unwrap();
            let id = format!("nninit_{fill}_{isa}");
            bench(&mut g, &pool, t.as_mut_slice(), &id, &|b| f(k, b));
        }
    }
    // Fresh tensors: allocation, first touch (page faults, the kernel
    // zeroing each 2 MiB page) and the fill, then the free; against the
    // in-place rows above this is what a new parameter costs beyond its
    // fill. 64 MiB is past glibc's largest mmap threshold, so every
    // iteration maps new memory.
    g.bench_function("nninit_zeros_fresh", |b| {
        b.iter(|| pool.install(|| black_box(Tensor::zeros(&[N]).unwrap())))
    });
    g.bench_function("nninit_randn_fresh", |b| {
        let mut gen_ = Generator::new(3);
        b.iter(|| pool.install(|| black_box(Tensor::randn(&[N], Some(&mut gen_)).unwrap())))
    });
    if threads == 1 {
        // The torch-exact generator: PyTorch's serial MT19937 stream.
        let mut torch = Generator::torch(0);
        let torch_rows = [
            ("uniform", Init::Uniform { a: -1.0, b: 1.0 }),
            (
                "normal",
                Init::Normal {
                    mean: 0.0,
                    std: 1.0,
                },
            ),
        ];
        for (fill, init) in torch_rows {
            for &isa in &isas {
                let k = Kernels::new(isa).unwrap();
                g.bench_function(format!("nninit_torch_{fill}_{isa}"), |b| {
                    b.iter(|| init.apply_with(k, &mut t, Some(&mut torch)).unwrap())
                });
            }
        }
    }
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
