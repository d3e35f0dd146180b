//! Arbitrary parameters, offsets and lengths for the fill kernels.
//!
//! Invariants checked (not only "does not crash"):
//! * invalid parameters are rejected by the constructors, valid ones fill;
//! * every value is finite and inside the documented range;
//! * the active instruction set gives the same bits as the scalar path;
//! * a fill split at an arbitrary point equals the fill in one piece.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::Stream;
use nninit::distributions::{Distribution, NORMAL_MAX_ABS_Z, Normal, TruncatedNormal, Uniform};
use nninit::kernels::Kernels;

#[derive(Debug, Arbitrary)]
enum Params {
    Uniform { a: f64, b: f64 },
    Normal { mean: f64, std: f64 },
    TruncNormal { mean: f64, std: f64, a: f64, b: f64 },
    Mask { threshold: f32 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    params: Params,
    key: u64,
    offset: u64,
    len: u16,
    split: u16,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_fill(dist: &dyn Distribution, input: &Input, in_range: impl Fn(f32) -> bool) {
    let stream = Stream::from_key(input.key);
    // Keep the offset where `offset + len` cannot overflow.
    let offset = input.offset >> 1;
    let len = input.len as usize;
    let mut active = vec![0.0f32; len];
    let mut scalar = vec![0.0f32; len];
    dist.fill_with(Kernels::active(), stream, offset, &mut active);
    dist.fill_with(Kernels::scalar(), stream, offset, &mut scalar);
    assert_eq!(
        bits(&active),
        bits(&scalar),
        "{dist:?}: active and scalar paths differ"
    );
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
            let active = Kernels::active().threshold_mask(&mut data, threshold);
            let reference = Kernels::scalar().threshold_mask(&mut scalar, threshold);
            assert_eq!(active.is_err(), threshold.is_nan());
            assert_eq!(active.is_ok(), reference.is_ok());
            assert_eq!(
                bits(&data),
                bits(&scalar),
                "mask differs from the scalar path"
            );
            for &v in &data {
                assert!(v == 0.0 || !(v.abs() < threshold));
            }
        }
    }
});
