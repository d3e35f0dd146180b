//! torchvision's ResNet-18 built by `examples/resnet18.rs`: names, shapes and
//! the parameter count; with the torch-exact generator, torchvision's own
//! state dict bit for bit (per-tensor hashes from `scripts/resnet_fixtures.py`)
//! and its output; a ResNet-like network written by PyTorch's `save_model`
//! loads bit for bit and gives PyTorch's output.

#[path = "../examples/resnet18.rs"]
#[allow(dead_code)]
mod resnet18;

#[path = "common/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use nninit::io::safetensors;
use nninit::nn::Module;
use nninit::{AnyTensor, Generator, Tensor};

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// FNV-1a 64 of the little-endian bytes, as the fixture script computes it.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn hash(t: &AnyTensor) -> String {
    match t {
        AnyTensor::F32(t) => fnv1a(t.as_slice().iter().flat_map(|v| v.to_le_bytes())),
        AnyTensor::I64(t) => fnv1a(t.as_slice().iter().flat_map(|v| v.to_le_bytes())),
    }
}

fn torchvision() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("resnet18_torch.json")).unwrap())
        .unwrap()
}

#[test]
fn names_shapes_and_count_are_torchvisions() {
    let net = resnet18::resnet18(Some(&mut Generator::new(1))).unwrap();
    assert_eq!(resnet18::parameter_count(&net), 11_689_512);
    let sd = net.state_dict();
    let tv = torchvision();
    let entries = tv["seeds"]["0"]["entries"].as_array().unwrap();
    let mine: Vec<(&str, Vec<usize>, &str)> = sd
        .iter()
        .map(|(k, t)| (k, t.shape().to_vec(), t.dtype_name()))
        .collect();
    let theirs: Vec<(&str, Vec<usize>, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect(),
                e["dtype"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mine, theirs,
        "state dict names, shapes and dtypes in torchvision's order"
    );
    for name in [
        "conv1.weight",
        "bn1.running_mean",
        "layer2.0.downsample.1.num_batches_tracked",
        "fc.bias",
    ] {
        assert!(sd.contains_key(name), "{name}");
    }
    let printed = net.to_string();
    assert!(printed.starts_with(
        "ResNet(\n  (conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)\n  \
         (bn1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n  \
         (relu): ReLU(inplace=True)\n  \
         (maxpool): MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)\n  \
         (layer1): Sequential(\n    (0): BasicBlock(\n      (conv1): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
    ), "{printed}");
    assert!(printed.contains("(downsample): Sequential(\n        (0): Conv2d(64, 128, kernel_size=(1, 1), stride=(2, 2), bias=False)"));
    assert!(printed.ends_with("(avgpool): AdaptiveAvgPool2d(output_size=(1, 1))\n  (fc): Linear(in_features=512, out_features=1000, bias=True)\n)"));
}

#[test]
fn torch_exact_resnet18_is_torchvisions_bit_for_bit() {
    let tv = torchvision();
    for seed in [0u64, 7] {
        let mut g = Generator::torch(seed);
        let mut net = resnet18::resnet18(Some(&mut g)).unwrap();
        let sd = net.state_dict();
        let entries = tv["seeds"][seed.to_string()]["entries"].as_array().unwrap();
        assert_eq!(sd.len(), entries.len());
        for e in entries {
            let name = e["name"].as_str().unwrap();
            assert_eq!(
                hash(sd.get_any(name).unwrap()),
                e["fnv1a"].as_str().unwrap(),
                "seed {seed}: {name} is not torchvision's"
            );
        }
        if seed == 0 {
            let x = Tensor::randn(&[2, 3, 224, 224], Some(&mut g)).unwrap();
            assert_eq!(
                hash(&AnyTensor::F32(x.clone())),
                tv["seeds"]["0"]["X_fnv1a"].as_str().unwrap()
            );
            let y = net.forward(&x).unwrap();
            let want = safetensors::load(fixture_path("resnet18_y.safetensors")).unwrap();
            let want = want.get("Y").unwrap();
            assert_eq!(y.shape(), want.shape());
            let scale = want.as_slice().iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in y.as_slice().iter().zip(want.as_slice()) {
                assert!((a - b).abs() <= 1e-4 * scale, "{a} vs torchvision {b}");
            }
        }
    }
}

#[test]
fn runs_at_a_reduced_size() {
    let mut net = resnet18::resnet18(Some(&mut Generator::new(2))).unwrap();
    let x = Tensor::randn(&[1, 3, 64, 64], Some(&mut Generator::new(3))).unwrap();
    let y = net.forward(&x).unwrap();
    assert_eq!(y.shape(), &[1, 1000]);
    assert!(y.as_slice().iter().all(|v| v.is_finite()));
}

#[test]
fn a_file_written_by_pytorch_loads_bit_for_bit() {
    let mut net = resnet18::ResNet::new([1, 1, 1, 1], 4, 5, Some(&mut Generator::new(0))).unwrap();
    let file = safetensors::load(fixture_path("mini_resnet.safetensors")).unwrap();
    let report = net.load_state_dict(&file, true).unwrap();
    assert!(report.missing_keys.is_empty() && report.unexpected_keys.is_empty());
    let sd = net.state_dict();
    assert_eq!(sd.len(), file.len());
    for (name, t) in file.iter() {
        assert!(sd.get_any(name).unwrap().bit_eq(t), "{name}");
    }
    assert!(matches!(
        sd.get_any("layer3.0.downsample.1.num_batches_tracked"),
        Some(AnyTensor::I64(t)) if t.as_slice() == [7]
    ));
    let io = safetensors::load(fixture_path("mini_resnet_io.safetensors")).unwrap();
    let y = net.forward(io.get("X").unwrap()).unwrap();
    let want = io.get("Y").unwrap();
    for (a, b) in y.as_slice().iter().zip(want.as_slice()) {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{a} vs PyTorch {b}"
        );
    }
    // And what we write loads back the same.
    let bytes = safetensors::serialize(&sd).unwrap();
    assert_eq!(safetensors::deserialize(&bytes).unwrap(), sd);
}
