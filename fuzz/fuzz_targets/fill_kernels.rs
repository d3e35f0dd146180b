//! Arbitrary parameters, offsets and lengths for the fill kernels.
//!
//! Invariants checked (not only "does not crash"):
//! * invalid parameters are rejected by the constructors, valid ones fill;
//! * every value is finite and inside the documented range;
//! * every instruction set this CPU has (scalar, AVX2, AVX-512) gives the
//!   same bits as the scalar path, into destinations at any float offset
//!   of a 64-byte line;
//! * a fill split at an arbitrary point equals the fill in one piece;
//! * the torch-exact fills (`uniform_`, `normal_` on PyTorch's MT19937) give
//!   the scalar path's bits and leave the generator in the same state on
//!   every instruction set.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::distributions::{Distribution, NORMAL_MAX_ABS_Z, Normal, TruncatedNormal, Uniform};
use nninit::init::Init;
use nninit::kernels::{Isa, Kernels};
use nninit::{Generator, Stream, Tensor};

#[derive(Debug, Arbitrary)]
enum Params {
    Uniform { a: f64, b: f64 },
    Normal { mean: f64, std: f64 },
    TruncNormal { mean: f64, std: f64, a: f64, b: f64 },
    Mask { threshold: f32 },
    Constant { value: f32 },
    TorchUniform { seed: u64, skip: u16, a: f64, b: f64 },
    TorchNormal { seed: u64, skip: u16, mean: f64, std: f64 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    params: Params,
    key: u64,
    offset: u64,
    len: u16,
    split: u16,
    /// Misalignment of the destination, in floats (taken mod 16).
    shift: u8,
}

/// Every instruction set this CPU has, the scalar reference first.
fn every_isa() -> impl Iterator<Item = Kernels> {
    Isa::supported().into_iter().map(|i| Kernels::new(i).unwrap())
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_fill(dist: &dyn Distribution, input: &Input, in_range: impl Fn(f32) -> bool) {
    let stream = Stream::from_key(input.key);
    // Keep the offset where `offset + len` cannot overflow.
    let offset = input.offset >> 1;
    let len = input.len as usize;
    let shift = (input.shift % 16) as usize;
    let mut scalar = vec![0.0f32; len];
    dist.fill_with(Kernels::scalar(), stream, offset, &mut scalar);
    let mut buf = Tensor::zeros(&[len + 16]).unwrap();
    for k in every_isa() {
        let out = &mut buf.as_mut_slice()[shift..shift + len];
        dist.fill_with(k, stream, offset, out);
        assert_eq!(
            bits(out),
            bits(&scalar),
            "{dist:?}: {} and scalar paths differ (shift {shift})",
            k.isa()
        );
    }
    let active = scalar;
    for &v in &active {
        assert!(v.is_finite() && in_range(v), "{dist:?}: {v} out of range");
    }
    let split = (input.split as usize).min(len);
    let mut pieces = vec![0.0f32; len];
    let (head, tail) = pieces.split_at_mut(split);
    dist.fill_with(Kernels::active(), stream, offset, head);
    dist.fill_with(Kernels::active(), stream, offset + split as u64, tail);
    assert_eq!(
        bits(&pieces),
        bits(&active),
        "{dist:?}: split at {split} differs"
    );
}

fuzz_target!(|input: Input| {
    match input.params {
        Params::Uniform { a, b } => {
            let Ok(u) = Uniform::new(a, b) else {
                // Rejected: then the parameters really are outside the domain.
                let (fa, fb) = (a as f32, b as f32);
                assert!(!(fa.is_finite() && fb.is_finite() && a <= b && (fb - fa).is_finite()));
                return;
            };
            let (lo, hi) = (u.from(), u.to());
            check_fill(&u, &input, |v| v >= lo && (v < hi || lo == hi));
        }
        Params::Normal { mean, std } => {
            let Ok(n) = Normal::new(mean, std) else {
                return;
            };
            let (m, s) = (n.mean() as f64, n.std() as f64);
            let bound = NORMAL_MAX_ABS_Z * s * (1.0 + 1e-6) + m.abs() * 1e-6 + 1e-37;
            check_fill(&n, &input, |v| (v as f64 - m).abs() <= bound);
        }
        Params::TruncNormal { mean, std, a, b } => {
            let Ok(d) = TruncatedNormal::new(mean, std, a, b) else {
                // Rejected parameters are covered row by row in tests/bad_input.rs.
                return;
            };
            // Every value inside [a, b] (compared exactly, in f64).
            check_fill(&d, &input, |v| a <= v as f64 && v as f64 <= b);
        }
        Params::Mask { threshold } => {
            let mut data = vec![0.0f32; input.len as usize];
            Normal::new(0.0, 3.0)
                .unwrap()
                .fill_at(Stream::from_key(input.key), 0, &mut data);
            let mut scalar = data.clone();
            let reference = Kernels::scalar().threshold_mask(&mut scalar, threshold);
            assert_eq!(reference.is_err(), threshold.is_nan());
            let shift = (input.shift % 16) as usize;
            let mut buf = Tensor::zeros(&[data.len() + 16]).unwrap();
            for k in every_isa() {
                let out = &mut buf.as_mut_slice()[shift..shift + data.len()];
                out.copy_from_slice(&data);
                let got = k.threshold_mask(out, threshold);
                assert_eq!(got.is_ok(), reference.is_ok());
                assert_eq!(
                    bits(out),
                    bits(&scalar),
                    "{}: mask differs from the scalar path",
                    k.isa()
                );
            }
            for &v in &scalar {
                assert!(v == 0.0 || !(v.abs() < threshold));
            }
        }
        Params::Constant { value } => {
            let len = input.len as usize;
            let shift = (input.shift % 16) as usize;
            let mut buf = Tensor::zeros(&[len + 16]).unwrap();
            for k in every_isa() {
                buf.as_mut_slice().fill(1.0);
                k.fill_constant(&mut buf.as_mut_slice()[shift..shift + len], value);
                let s = buf.as_slice();
                assert!(s[..shift].iter().all(|&x| x == 1.0), "{}: wrote before", k.isa());
                assert!(
                    s[shift..shift + len]
                        .iter()
                        .all(|x| x.to_bits() == value.to_bits()),
                    "{}: constant",
                    k.isa()
                );
                assert!(s[shift + len..].iter().all(|&x| x == 1.0), "{}: wrote after", k.isa());
            }
        }
        Params::TorchUniform { seed, skip, a, b } => {
            check_torch(&Init::Uniform { a, b }, seed, skip, &input)
        }
        Params::TorchNormal {
            seed,
            skip,
            mean,
            std,
        } => check_torch(&Init::Normal { mean, std }, seed, skip, &input),
    }
});

/// A torch-exact fill on every instruction set: the scalar path's values and
/// generator state, or the same error.
fn check_torch(init: &Init, seed: u64, skip: u16, input: &Input) {
    let mut g = Generator::torch(seed);
    // Move the engine to an arbitrary point of its 624-word cycle.
    let mut burn = Tensor::zeros(&[(skip % 1300) as usize]).unwrap();
    Init::Uniform { a: 0.0, b: 1.0 }
        .apply_with(Kernels::scalar(), &mut burn, Some(&mut g))
        .unwrap();
    let run = |k: Kernels| {
        let mut g = g.clone();
        let mut t = Tensor::zeros(&[input.len as usize]).unwrap();
        let r = init.apply_with(k, &mut t, Some(&mut g)).map_err(|e| e.to_string());
        (r, bits(t.as_slice()), g)
    };
    let want = run(Kernels::scalar());
    for k in every_isa() {
        assert!(run(k) == want, "{init:?}: {} differs from scalar", k.isa());
    }
    if want.0.is_ok() && matches!(init, Init::Uniform { .. }) {
        for v in want.1.iter().map(|&b| f32::from_bits(b)) {
            assert!(v.is_finite(), "{init:?}: {v}");
        }
    }
}
