//! Arbitrary parameters and shapes for every initializer.
//!
//! Invariants: either an error, or every value finite and inside the
//! documented range; for the element-wise initializers the scalar path gives
//! the same bits (through `Init::fill_shard_with`), and so does a shard; a
//! call that fails takes no stream from the generator.
//!
//! With `torch` set, the generator is torch-exact: the same invariants (with
//! the torch samplers' ranges), a failed call leaves the state untouched,
//! and `Init::apply_with(Kernels::scalar(), ..)` gives the same bits and the
//! same generator state.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::distributions::NORMAL_MAX_ABS_Z;
use nninit::init::{FanMode, Init, Nonlinearity};
use nninit::kernels::Kernels;
use nninit::{Generator, Tensor};

#[derive(Debug, Arbitrary)]
enum Which {
    Uniform { a: f64, b: f64 },
    Normal { mean: f64, std: f64 },
    TruncNormal { mean: f64, std: f64, a: f64, b: f64 },
    Constant { val: f64 },
    XavierUniform { gain: f64 },
    XavierNormal { gain: f64 },
    KaimingUniform { a: f64, fan_out: bool, nl: u8 },
    KaimingNormal { a: f64, fan_out: bool, nl: u8 },
    Eye,
    Dirac { groups: u8 },
    Orthogonal { gain: f64 },
    Sparse { sparsity: f64, std: f64 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    which: Which,
    shape: Vec<u8>,
    seed: u64,
    split: u16,
    torch: bool,
}

fn nonlinearity(i: u8) -> Nonlinearity {
    Nonlinearity::ALL[i as usize % Nonlinearity::ALL.len()]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fuzz_target!(|input: Input| {
    // At most 4 dims of at most 24, so at most ~330k elements.
    let shape: Vec<usize> = input
        .shape
        .iter()
        .take(4)
        .map(|&d| usize::from(d % 25))
        .collect();
    let mode = |fan_out: bool| {
        if fan_out {
            FanMode::FanOut
        } else {
            FanMode::FanIn
        }
    };
    let init = match input.which {
        Which::Uniform { a, b } => Init::Uniform { a, b },
        Which::Normal { mean, std } => Init::Normal { mean, std },
        Which::TruncNormal { mean, std, a, b } => Init::TruncNormal { mean, std, a, b },
        Which::Constant { val } => Init::Constant { val },
        Which::XavierUniform { gain } => Init::XavierUniform { gain },
        Which::XavierNormal { gain } => Init::XavierNormal { gain },
        Which::KaimingUniform { a, fan_out, nl } => Init::KaimingUniform {
            a,
            mode: mode(fan_out),
            nonlinearity: nonlinearity(nl),
        },
        Which::KaimingNormal { a, fan_out, nl } => Init::KaimingNormal {
            a,
            mode: mode(fan_out),
            nonlinearity: nonlinearity(nl),
        },
        Which::Eye => Init::Eye,
        Which::Dirac { groups } => Init::Dirac {
            groups: usize::from(groups % 8),
        },
        Which::Orthogonal { gain } => Init::Orthogonal { gain },
        Which::Sparse { sparsity, std } => Init::Sparse { sparsity, std },
    };
    let mut g = if input.torch {
        Generator::torch(input.seed)
    } else {
        Generator::new(input.seed)
    };
    let before = g.state();
    let t = match init.tensor(&shape, Some(&mut g)) {
        Err(_) => {
            assert_eq!(g.state(), before, "{init:?}: a failed call took a stream");
            return;
        }
        Ok(t) => t,
    };
    assert_eq!(t.shape(), &shape[..]);
    let v = t.as_slice();
    // Every value is finite, except what `constant_` is asked to write
    // (PyTorch's `constant_` writes NaN or ±inf when asked, and so do we).
    if !matches!(init, Init::Constant { .. }) {
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{init:?}: non-finite value"
        );
    }

    // The documented range of each initializer.
    let numel = v.len();
    let fans = nninit::init::calculate_fan_in_and_fan_out(&shape).ok();
    // PyTorch's double-precision path reaches √(−2 ln 2⁻⁵³) ≈ 8.57.
    let max_z = if input.torch { 8.58 } else { NORMAL_MAX_ABS_Z };
    let normal_bound = |mean: f64, std: f64| {
        let (m, s) = (mean as f32 as f64, std as f32 as f64);
        move |x: f32| (x as f64 - m).abs() <= max_z * s * (1.0 + 1e-6) + m.abs() * 1e-6 + 1e-37
    };
    let sym_bound = |bound: f64| move |x: f32| (x as f64).abs() <= bound * (1.0 + 1e-6) + 1e-37;
    let ok: Box<dyn Fn(f32) -> bool> = match init {
        Init::Uniform { a, b } => {
            let (a, b) = (a as f32, b as f32);
            Box::new(move |x| x == a || (x >= a && x < b))
        }
        Init::Normal { mean, std } => Box::new(normal_bound(mean, std)),
        // The torch sampler tests against the bounds rounded to f32.
        Init::TruncNormal { a, b, .. } if input.torch => {
            Box::new(move |x| x >= a as f32 && x <= b as f32)
        }
        Init::TruncNormal { a, b, .. } => Box::new(move |x| (x as f64) >= a && (x as f64) <= b),
        Init::Constant { val } => Box::new(move |x| x.to_bits() == (val as f32).to_bits()),
        Init::XavierUniform { gain } | Init::XavierNormal { gain } if numel > 0 => {
            let (fi, fo) = fans.expect("a filled xavier tensor has fans");
            let std = gain.abs() * (2.0 / (fi + fo) as f64).sqrt();
            let k = if matches!(init, Init::XavierUniform { .. }) {
                3f64.sqrt()
            } else {
                max_z
            };
            Box::new(sym_bound(k * std))
        }
        Init::KaimingUniform {
            a,
            mode,
            nonlinearity,
        }
        | Init::KaimingNormal {
            a,
            mode,
            nonlinearity,
        } if numel > 0 => {
            let fan = nninit::init::calculate_correct_fan(&shape, mode).unwrap() as f64;
            let gain = nninit::init::calculate_gain(nonlinearity, Some(a)).unwrap();
            let std = gain.abs() / fan.sqrt();
            let k = if matches!(init, Init::KaimingUniform { .. }) {
                3f64.sqrt()
            } else {
                max_z
            };
            Box::new(sym_bound(k * std))
        }
        Init::Eye | Init::Dirac { .. } => Box::new(|x| x == 0.0 || x == 1.0),
        Init::Orthogonal { gain } => Box::new(sym_bound(gain.abs() * (1.0 + 1e-5))),
        Init::Sparse { std, .. } => Box::new(normal_bound(0.0, std)),
        _ => Box::new(|_| true),
    };
    for &x in v {
        assert!(ok(x), "{init:?} on {shape:?}: {x} out of range");
    }
    if let Init::Sparse { sparsity, .. } = init
        && let [rows, cols] = shape[..]
    {
        let zeros = (sparsity * rows as f64).ceil() as usize;
        for c in 0..cols {
            let z = (0..rows).filter(|&r| v[r * cols + c] == 0.0).count();
            assert!(
                z >= zeros,
                "sparse_: column {c} has {z} zeros, want {zeros}"
            );
        }
    }

    if input.torch {
        // The scalar kernels draw the same words and give the same bits.
        let mut g2 = Generator::torch(input.seed);
        let mut scalar = Tensor::zeros(&shape).unwrap();
        init.apply_with(Kernels::scalar(), &mut scalar, Some(&mut g2))
            .unwrap();
        assert_eq!(
            bits(scalar.as_slice()),
            bits(v),
            "{init:?}: torch scalar path differs"
        );
        assert_eq!(
            g2.state(),
            g.state(),
            "{init:?}: torch scalar path drew differently"
        );
        return;
    }

    // Element-wise initializers: the scalar path and a split shard give the
    // same bits as the whole tensor.
    if init.is_shardable() && numel > 0 {
        let stream = Generator::new(input.seed).next_stream();
        let mut scalar = vec![0.0f32; numel];
        init.fill_shard_with(Kernels::scalar(), &shape, 0, &mut scalar, stream)
            .unwrap();
        assert_eq!(bits(&scalar), bits(v), "{init:?}: scalar path differs");
        let split = (input.split as usize) % (numel + 1);
        let mut tail = vec![0.0f32; numel - split];
        init.fill_shard(&shape, split as u64, &mut tail, stream)
            .unwrap();
        assert_eq!(
            bits(&tail),
            bits(&v[split..]),
            "{init:?}: shard at {split} differs"
        );
    }
    let _ = Tensor::scalar(0.0);
});
