//! Arbitrary names, shapes and dtypes loaded into a fixed model (the
//! chapter's tied network, then a convolution and a BatchNorm with its int64
//! `num_batches_tracked`), strict or not: either an error, with the model
//! unchanged, or a model whose state dict holds exactly the loaded values.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nninit::nn::{BatchNorm2d, Conv2d, ConvOptions, Linear, Module, ReLU, Sequential, StateDict};
use nninit::{Generator, IntTensor, Tensor};

const NAMES: [&str; 15] = [
    "0.weight",
    "0.bias",
    "2.weight",
    "2.bias",
    "4.weight",
    "4.bias",
    "6.weight",
    "6.bias",
    "1.weight",
    "",
    "7.weight",
    "8.weight",
    "8.running_mean",
    "8.running_var",
    "8.num_batches_tracked",
];

#[derive(Debug, Arbitrary)]
struct Entry {
    /// An index into NAMES, or a free name.
    known: Option<u8>,
    free: String,
    shape: Vec<u8>,
    fill: f32,
    int: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    entries: Vec<Entry>,
    strict: bool,
}

fn model() -> Sequential {
    let mut g = Generator::new(1);
    let shared = Linear::with_options(8, 8, true, Some(&mut g)).unwrap();
    Sequential::new()
        .with(Linear::with_options(4, 8, true, Some(&mut g)).unwrap())
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(shared)
        .with(ReLU::new())
        .with(Linear::with_options(8, 1, true, Some(&mut g)).unwrap())
        .with(
            Conv2d::new(
                1,
                2,
                [1, 1],
                ConvOptions::default().bias(false),
                Some(&mut g),
            )
            .unwrap(),
        )
        .with(BatchNorm2d::new(2).unwrap())
}

fuzz_target!(|input: Input| {
    let mut sd = StateDict::new();
    for e in input.entries.iter().take(16) {
        let name = match e.known {
            Some(i) => NAMES[i as usize % NAMES.len()].to_string(),
            None => e.free.clone(),
        };
        let shape: Vec<usize> = e
            .shape
            .iter()
            .take(4)
            .map(|&d| usize::from(d % 12))
            .collect();
        if e.int {
            let Ok(mut t) = IntTensor::zeros(&shape) else {
                return;
            };
            t.as_mut_slice().fill(e.fill as i64);
            sd.insert(name, t);
        } else {
            let Ok(t) = Tensor::full(&shape, e.fill) else {
                return;
            };
            sd.insert(name, t);
        }
    }
    let net = model();
    let before = net.state_dict();
    match net.load_state_dict(&sd, input.strict) {
        Err(_) => assert!(
            net.state_dict() == before,
            "a failed load changed the model"
        ),
        Ok(report) => {
            let after = net.state_dict();
            let root = |n: &str| after.tied_to(n).unwrap_or(n).to_string();
            let bits = |t: &Tensor| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for (name, t) in after.iter().filter_map(|(n, t)| Some((n, t.as_f32()?))) {
                if sd.get_any(name).is_none() {
                    assert!(report.missing_keys.iter().any(|k| k == name));
                }
                // The value is what the state dict gave for some name of
                // the same storage (a tie loaded under two names keeps one).
                let group: Vec<&str> = after.keys().filter(|n| root(n) == root(name)).collect();
                let sources: Vec<&Tensor> = group.iter().filter_map(|n| sd.get(n)).collect();
                if !sources.is_empty() {
                    assert!(
                        sources.iter().any(|s| bits(s) == bits(t)),
                        "{name} not loaded"
                    );
                }
            }
            for k in &report.unexpected_keys {
                assert!(after.get_any(k).is_none());
            }
        }
    }
});
