//! The fill kernels: statistics, the determinism contract, and every path
//! against every other.

mod common;

use common::{assert_ks, bits, moments, phi, with_threads};
use nninit::distributions::{Distribution, NORMAL_MAX_ABS_Z, Normal, TruncatedNormal, Uniform};
use nninit::kernels::{INLINE_MAX, Isa, Kernels, STREAMING_MIN};
use nninit::rng::BLOCK;
use nninit::{Error, Generator, Stream, Tensor};

const N: usize = 2_000_000;

/// The kernels of every instruction set this CPU has; the others are named
/// on stderr as skipped, with the reason.
fn all_kernels() -> Vec<Kernels> {
    for isa in Isa::ALL {
        if let Err(e) = Kernels::new(isa) {
            eprintln!("note: skipping the {isa} kernels: {e}");
        }
    }
    Isa::supported()
        .into_iter()
        .map(|i| Kernels::new(i).unwrap())
        .collect()
}

fn draw(
    dist: &(impl Distribution + ?Sized),
    kernels: Kernels,
    stream: Stream,
    offset: u64,
    n: usize,
) -> Vec<f32> {
    let mut out = vec![f32::NAN; n];
    dist.fill_with(kernels, stream, offset, &mut out);
    out
}

fn uniforms() -> Vec<Uniform> {
    vec![
        Uniform::new(0.0, 1.0).unwrap(),
        Uniform::new(-3.0, 7.5).unwrap(),
        Uniform::new(1e-3, 1e-3 + 1e-6).unwrap(),
    ]
}

fn normals() -> Vec<Normal> {
    vec![
        Normal::new(0.0, 1.0).unwrap(),
        Normal::new(-2.5, 0.3).unwrap(),
        Normal::new(50.0, 4.0).unwrap(),
        Normal::new(0.0, 1e-3).unwrap(),
    ]
}

#[test]
fn uniform_passes_ks_and_moments() {
    for (k, u) in uniforms().into_iter().enumerate() {
        let (a, b) = (u.from() as f64, u.to() as f64);
        let x = draw(
            &u,
            Kernels::active(),
            Generator::new(k as u64).next_stream(),
            0,
            N,
        );
        assert!(
            x.iter().all(|&v| v >= u.from() && v < u.to()),
            "U[{a}, {b}) out of range"
        );
        // The samples sit on a grid of 2^24 points; compare with the CDF of
        // the continuous law, which the grid matches to 2^-24.
        assert_ks(
            &x,
            |v| ((v - a) / (b - a)).clamp(0.0, 1.0),
            &format!("U[{a}, {b})"),
        );
        let (mean, var) = moments(&x);
        let width = b - a;
        let sd_of_mean = width / 12f64.sqrt() / (N as f64).sqrt();
        assert!(
            (mean - (a + b) / 2.0).abs() < 5.0 * sd_of_mean,
            "U[{a}, {b}) mean {mean}"
        );
        assert!(
            (var / (width * width / 12.0) - 1.0).abs() < 0.01,
            "U[{a}, {b}) var {var}"
        );
    }
}

#[test]
fn normal_passes_ks_and_moments() {
    for (k, d) in normals().into_iter().enumerate() {
        let (mu, sigma) = (d.mean() as f64, d.std() as f64);
        let x = draw(
            &d,
            Kernels::active(),
            Generator::new(100 + k as u64).next_stream(),
            0,
            N,
        );
        assert!(x.iter().all(|v| v.is_finite()));
        let zmax = x
            .iter()
            .map(|&v| ((v as f64 - mu) / sigma).abs())
            .fold(0.0, f64::max);
        assert!(
            zmax <= NORMAL_MAX_ABS_Z * 1.0001,
            "N({mu}, {sigma}): |z| = {zmax}"
        );
        assert_ks(&x, |v| phi((v - mu) / sigma), &format!("N({mu}, {sigma})"));
        let (mean, var) = moments(&x);
        assert!(
            (mean - mu).abs() < 5.0 * sigma / (N as f64).sqrt(),
            "N({mu}, {sigma}) mean {mean}"
        );
        assert!(
            (var / (sigma * sigma) - 1.0).abs() < 0.01,
            "N({mu}, {sigma}) var {var}"
        );
    }
}

#[test]
fn normal_tail_and_symmetry() {
    // 4e6 standard normals: the fraction beyond 3 sigma and the skew.
    let n = 4_000_000;
    let x = draw(
        &Normal::standard(),
        Kernels::active(),
        Stream::from_key(77),
        0,
        n,
    );
    let beyond3 = x.iter().filter(|v| v.abs() > 3.0).count() as f64 / n as f64;
    let p = 2.0 * phi(-3.0);
    let sd = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (beyond3 - p).abs() < 5.0 * sd,
        "P(|z| > 3) = {beyond3}, want {p}"
    );
    let skew = x.iter().map(|&v| (v as f64).powi(3)).sum::<f64>() / n as f64;
    assert!(
        skew.abs() < 5.0 * (15.0 / n as f64).sqrt(),
        "third moment {skew}"
    );
    let kurt = x.iter().map(|&v| (v as f64).powi(4)).sum::<f64>() / n as f64;
    assert!(
        (kurt - 3.0).abs() < 5.0 * (96.0 / n as f64).sqrt(),
        "fourth moment {kurt}"
    );
}

#[test]
fn extreme_parameters_stay_finite() {
    let u = Uniform::new(-1.7e38, 1.7e38).unwrap();
    let x = draw(&u, Kernels::active(), Stream::from_key(1), 0, 100_000);
    assert!(x.iter().all(|v| v.is_finite() && *v < 1.7e38));
    let n = Normal::new(0.0, 5e37).unwrap();
    let x = draw(&n, Kernels::active(), Stream::from_key(2), 0, 100_000);
    assert!(x.iter().all(|v| v.is_finite()));
    let tiny = Normal::new(0.0, 1e-40).unwrap(); // subnormal std
    let x = draw(&tiny, Kernels::active(), Stream::from_key(3), 0, 10_000);
    assert!(x.iter().all(|v| v.is_finite() && v.abs() <= 1e-39));
}

#[test]
fn same_bits_for_any_thread_count() {
    let n = 3 * BLOCK * 7 + 12345; // many blocks and a ragged tail
    for kernels in all_kernels() {
        for offset in [0u64, 5, BLOCK as u64 - 3, 1 << 40] {
            let stream = Stream::from_key(offset ^ 0xabc);
            let fills: Vec<Box<dyn Fn() -> Vec<f32> + Sync>> = vec![
                Box::new(move || {
                    draw(
                        &Uniform::new(-1.0, 2.0).unwrap(),
                        kernels,
                        stream,
                        offset,
                        n,
                    )
                }),
                Box::new(move || draw(&Normal::new(0.5, 2.0).unwrap(), kernels, stream, offset, n)),
                Box::new(move || {
                    let d = TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap();
                    draw(&d, kernels, stream, offset, n)
                }),
                Box::new(move || {
                    let d = TruncatedNormal::new(1.0, 0.5, 2.0, 2.5).unwrap();
                    draw(&d, kernels, stream, offset, n)
                }),
                Box::new(move || {
                    let mut v = draw(&Normal::standard(), kernels, stream, offset, n);
                    kernels.threshold_mask(&mut v, 0.7).unwrap();
                    v
                }),
                Box::new(move || {
                    let mut v = vec![0.0; n];
                    kernels.fill_constant(&mut v, -0.25);
                    v
                }),
            ];
            for (k, fill) in fills.iter().enumerate() {
                let reference = bits(&with_threads(1, fill));
                for threads in [2, 3, 16] {
                    let got = bits(&with_threads(threads, fill));
                    assert!(
                        got == reference,
                        "{} fill {k}, offset {offset}: {threads} threads differ from 1",
                        kernels.isa()
                    );
                }
            }
        }
    }
}

#[test]
fn same_bits_on_every_instruction_set() {
    let scalar = Kernels::scalar();
    let dists: Vec<Box<dyn Distribution>> = vec![
        Box::new(Uniform::new(0.0, 1.0).unwrap()),
        Box::new(Uniform::new(-10.0, 10.0).unwrap()),
        Box::new(Normal::new(0.0, 1.0).unwrap()),
        Box::new(Normal::new(3.0, 0.01).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, -1.0, 3.0).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, 2.0, 3.0).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, -6.0, -5.0).unwrap()),
        Box::new(TruncatedNormal::new(0.5, 1e-3, -2.0, 2.0).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, 1.0, 1.001).unwrap()), // narrow kernel
    ];
    for kernels in all_kernels() {
        for (k, dist) in dists.iter().enumerate() {
            let stream = Stream::from_key(k as u64);
            // Every length 0..=200 (past a whole batch of groups on every
            // width) at every start slot of two steps (a 16-lane group) and
            // across a block boundary.
            for offset in (0..=66u64).chain([BLOCK as u64 - 35, BLOCK as u64 - 1]) {
                for len in 0..=200 {
                    let mut a = vec![0.0; len];
                    let mut b = vec![0.0; len];
                    dist.fill_with(scalar, stream, offset, &mut a);
                    dist.fill_with(kernels, stream, offset, &mut b);
                    assert_eq!(
                        bits(&a),
                        bits(&b),
                        "{} {dist:?} offset {offset} len {len}",
                        kernels.isa()
                    );
                }
            }
            // Large, parallel, misaligned destinations (every float offset
            // within a 64-byte line).
            let n = INLINE_MAX * 3 + 77;
            let reference = draw(dist.as_ref(), scalar, stream, 999, n);
            for shift in 0..16 {
                let mut buf = vec![0.0; n + 16];
                dist.fill_with(kernels, stream, 999, &mut buf[shift..shift + n]);
                assert_eq!(
                    bits(&buf[shift..shift + n]),
                    bits(&reference),
                    "{} shift {shift}",
                    kernels.isa()
                );
            }
        }
        // Masking and constants, every length and misalignment.
        let data = draw(
            &Normal::new(0.0, 3.0).unwrap(),
            scalar,
            Stream::from_key(5),
            0,
            4096,
        );
        for start in 0..17 {
            for len in (0..=200).chain([4000]) {
                let mut a = data[start..start + len].to_vec();
                let mut b = a.clone();
                scalar.threshold_mask(&mut a, 2.0).unwrap();
                kernels.threshold_mask(&mut b, 2.0).unwrap();
                assert_eq!(bits(&a), bits(&b), "mask start {start} len {len}");
                kernels.fill_constant(&mut b, 1.5);
                assert!(b.iter().all(|&x| x == 1.5));
            }
        }
    }
}

#[test]
fn shards_equal_the_whole() {
    let n = 5 * BLOCK + 4321;
    let stream = Generator::new(2024).next_stream();
    let dists: Vec<Box<dyn Distribution>> = vec![
        Box::new(Uniform::new(-0.5, 0.5).unwrap()),
        Box::new(Normal::new(0.0, 0.02).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 0.02, -0.04, 0.04).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, 3.0, 4.0).unwrap()),
    ];
    let splits: Vec<Vec<usize>> = vec![
        vec![0, n],
        vec![0, 1, n],
        vec![0, 17, 33, BLOCK, BLOCK + 1, n],
        vec![0, BLOCK - 1, 2 * BLOCK + 15, 3 * BLOCK, n - 1, n],
        (0..=n).step_by(n / 7).chain([n]).collect(),
        (0..=n).step_by(1000).chain([n]).collect(),
    ];
    for kernels in all_kernels() {
        for dist in &dists {
            let whole = with_threads(2, || draw(dist.as_ref(), kernels, stream, 0, n));
            for cuts in &splits {
                for threads in [1, 3] {
                    let mut pieced = Vec::with_capacity(n);
                    with_threads(threads, || {
                        for w in cuts.windows(2) {
                            pieced.extend(draw(
                                dist.as_ref(),
                                kernels,
                                stream,
                                w[0] as u64,
                                w[1] - w[0],
                            ));
                        }
                    });
                    assert_eq!(
                        bits(&pieced),
                        bits(&whole),
                        "{} {dist:?} cuts {cuts:?}",
                        kernels.isa()
                    );
                }
            }
        }
    }
}

#[test]
fn generators_advance_and_reproduce() {
    let mut g = Generator::new(9);
    let a = Tensor::randn(&[1000], Some(&mut g)).unwrap();
    let b = Tensor::randn(&[1000], Some(&mut g)).unwrap();
    assert_ne!(a, b, "two calls must differ");
    let mut h = Generator::new(9);
    assert_eq!(Tensor::randn(&[1000], Some(&mut h)).unwrap(), a);
    // A fill takes one stream whatever its size: the next call is the same.
    let mut g2 = Generator::new(9);
    let _ = Tensor::rand(&[5], Some(&mut g2)).unwrap();
    assert_eq!(Tensor::randn(&[1000], Some(&mut g2)).unwrap(), b);
    // rand: [0, 1)
    let r = Tensor::rand(&[3, 7], Some(&mut g)).unwrap();
    assert!(r.as_slice().iter().all(|&x| (0.0..1.0).contains(&x)));
}

#[test]
fn global_generator_follows_manual_seed() {
    // The only test in this binary that touches the global generator.
    nninit::manual_seed(1234);
    assert_eq!(nninit::initial_seed(), 1234);
    let a = Tensor::rand(&[64], None).unwrap();
    nninit::manual_seed(1234);
    let b = Tensor::rand(&[64], None).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a,
        Tensor::rand(&[64], Some(&mut Generator::new(1234))).unwrap()
    );
}

#[test]
fn isa_names_parse() {
    assert_eq!("scalar".parse::<Isa>().unwrap(), Isa::Scalar);
    assert_eq!("AVX2".parse::<Isa>().unwrap(), Isa::Avx2Fma);
    assert_eq!("avx512".parse::<Isa>().unwrap(), Isa::Avx512);
    assert!("sse9".parse::<Isa>().is_err());
    for isa in Isa::ALL {
        assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        assert_eq!(isa.to_string(), isa.name());
    }
    assert!(Isa::Scalar.is_supported());
    assert_eq!(Isa::best(), *Isa::supported().last().unwrap());
}

/// Each instruction set is offered exactly when the CPU has its features,
/// and an unsupported one is an `IsaUnsupported` error naming it.
#[test]
fn isa_support_follows_the_cpu() {
    for isa in Isa::ALL {
        match Kernels::new(isa) {
            Ok(k) => {
                assert_eq!(k.isa(), isa);
                assert!(isa.is_supported());
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::IsaUnsupported { isa: name } if name == isa.name()),
                    "{isa}: {e:?}"
                );
                assert!(!isa.is_supported());
                eprintln!("{isa}: {e}");
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let avx512 = avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl");
        assert_eq!(Isa::Avx2Fma.is_supported(), avx2);
        assert_eq!(Isa::Avx512.is_supported(), avx512);
    }
    #[cfg(not(target_arch = "x86_64"))]
    assert_eq!(Isa::supported(), [Isa::Scalar]);
}

/// Outputs large enough for streaming stores (at least `STREAMING_MIN`
/// elements), in the crate's aligned storage and shifted by every float
/// offset of a 64-byte line, at 1 and 2 threads: every instruction set
/// gives the scalar path's bits.
#[test]
fn streaming_fills_equal_the_scalar_path() {
    let n = STREAMING_MIN + 4321;
    let stream = Stream::from_key(99);
    let dists: Vec<Box<dyn Distribution>> = vec![
        Box::new(Uniform::new(-1.0, 1.0).unwrap()),
        Box::new(Normal::new(0.0, 1.0).unwrap()),
        Box::new(TruncatedNormal::new(0.0, 1.0, -2.0, 2.0).unwrap()),
    ];
    let mut t = Tensor::zeros(&[n + 16]).unwrap();
    for dist in &dists {
        let reference = bits(&draw(dist.as_ref(), Kernels::scalar(), stream, 5, n));
        for kernels in all_kernels() {
            for shift in [0, 1, 4, 8, 15] {
                for threads in [1, 2] {
                    let out = &mut t.as_mut_slice()[shift..shift + n];
                    with_threads(threads, || dist.fill_with(kernels, stream, 5, out));
                    assert!(
                        bits(out) == reference,
                        "{} {dist:?} shift {shift} threads {threads}",
                        kernels.isa()
                    );
                }
            }
        }
    }
    for kernels in all_kernels() {
        for shift in [0, 3, 8] {
            let out = &mut t.as_mut_slice()[shift..shift + n];
            kernels.fill_constant(out, -7.5);
            assert!(out.iter().all(|&x| x == -7.5), "{} constant", kernels.isa());
        }
    }
}

/// A large allocation (64 MiB) is backed by transparent huge pages where the
/// kernel offers them for `madvise`d memory: `Tensor` storage asks for them,
/// and the first touch (the parallel fill) faults them in.
#[cfg(target_os = "linux")]
#[test]
fn large_tensors_get_huge_pages() {
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !(mode.contains("[always]") || mode.contains("[madvise]")) {
        eprintln!("note: transparent huge pages are off here ({mode:?}); not checked");
        return;
    }
    let check = |what: &str, t: &Tensor| {
        let at = t.as_slice().as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut in_range = false;
        let mut huge_kb = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                in_range = (lo..hi).contains(&at);
            } else if in_range && let Some(kb) = line.strip_prefix("AnonHugePages:") {
                huge_kb = kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok();
            }
        }
        let huge_kb = huge_kb.expect("the tensor's mapping is in smaps");
        eprintln!("{what}: {huge_kb} kB in huge pages");
        assert!(
            huge_kb >= 32 << 10,
            "{what}: only {huge_kb} kB in huge pages"
        );
    };
    let n = 16 << 20;
    check("zeros", &Tensor::zeros(&[n]).unwrap());
    check(
        "randn",
        &Tensor::randn(&[n], Some(&mut Generator::new(1))).unwrap(),
    );
    let t = Tensor::rand(&[n], Some(&mut Generator::new(2))).unwrap();
    check("clone", &t.clone());
    check(
        "from_slice",
        &Tensor::from_slice(t.as_slice(), &[n]).unwrap(),
    );
}
