//! Safetensors state dicts: bit-exact round trips (tied and untied models,
//! empty and 0-d tensors, NaN/inf/-0 bits), the tie metadata as Python's
//! `save_model` writes it, and files written by Python (`safetensors.numpy`,
//! and PyTorch's `save_model`).

mod common;

#[path = "../examples/train_tied.rs"]
#[allow(dead_code)]
mod train_tied;

use std::collections::BTreeMap;

use nninit::io::safetensors::{self, deserialize, deserialize_with_metadata, serialize};
use nninit::nn::{Linear, Module, ReLU, Sequential, StateDict};
use nninit::{Generator, Tensor};

fn header(bytes: &[u8]) -> serde_json::Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

fn assert_bit_exact(a: &StateDict, b: &StateDict) {
    assert_eq!(a.len(), b.len());
    for (name, t) in a.iter() {
        let t = t.as_f32().expect("float entries");
        let u = b.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(t.shape(), u.shape(), "{name}");
        assert_eq!(
            common::bits(t.as_slice()),
            common::bits(u.as_slice()),
            "{name}"
        );
        assert_eq!(
            a.tied_to(name).is_some(),
            b.tied_to(name).is_some(),
            "{name}"
        );
    }
}

fn tied(g: &mut Generator, first: usize, second: usize) -> Sequential {
    let shared = Linear::with_options(8, 8, true, Some(&mut *g)).unwrap();
    let mut net = Sequential::new().with(Linear::with_options(4, 8, true, Some(&mut *g)).unwrap());
    for i in 1..=second.max(first) {
        if i == first || i == second {
            net.push(shared.clone());
        } else {
            net.push(ReLU::new());
        }
    }
    net
}

#[test]
fn untied_round_trip_is_bit_exact() {
    let mut g = Generator::new(1);
    let net = Sequential::new()
        .with(Linear::with_options(5, 3, true, Some(&mut g)).unwrap())
        .with(ReLU::new())
        .with(Linear::with_options(3, 2, false, Some(&mut g)).unwrap());
    let sd = net.state_dict();
    let bytes = serialize(&sd).unwrap();
    let back = deserialize(&bytes).unwrap();
    assert_bit_exact(&sd, &back);
    assert!(back == sd);
    let h = header(&bytes);
    assert_eq!(h["0.weight"]["dtype"], "F32");
    assert_eq!(h["0.weight"]["shape"], serde_json::json!([3, 5]));
    assert_eq!(h["__metadata__"], serde_json::json!({"format": "pt"}));
    // Into a fresh model of the same architecture.
    let other = Sequential::new()
        .with(Linear::new(5, 3).unwrap())
        .with(ReLU::new())
        .with(Linear::with_options(3, 2, false, None).unwrap());
    other.load_state_dict(&back, true).unwrap();
    assert_bit_exact(&other.state_dict(), &sd);
}

#[test]
fn tied_round_trip_writes_once_and_restores_the_tie() {
    let net = tied(&mut Generator::new(2), 2, 4);
    let sd = net.state_dict();
    let bytes = serialize(&sd).unwrap();
    let h = header(&bytes);
    let names: Vec<&String> = h.as_object().unwrap().keys().collect();
    assert!(!names.contains(&&"4.weight".to_string()));
    assert_eq!(
        h["__metadata__"],
        serde_json::json!({"format": "pt", "4.weight": "2.weight", "4.bias": "2.bias"})
    );
    let back = deserialize(&bytes).unwrap();
    assert_eq!(back.tied_to("4.weight"), Some("2.weight"));
    assert_bit_exact(&sd, &back);
    assert!(back == sd);
    // Loading the file into a model with the same tie, strictly.
    let fresh = tied(&mut Generator::new(99), 2, 4);
    fresh.load_state_dict(&back, true).unwrap();
    assert!(fresh.state_dict() == sd);
    let w2 = fresh.child::<Linear>(2).unwrap().weight.clone();
    assert!(w2.ptr_eq(&fresh.child::<Linear>(4).unwrap().weight));
}

#[test]
fn the_kept_name_is_the_smallest_as_in_python() {
    // Names "2.*" and "10.*": Python keeps sorted(...)[0] == "10.weight".
    let net = tied(&mut Generator::new(3), 2, 10);
    let bytes = serialize(&net.state_dict()).unwrap();
    let h = header(&bytes);
    assert_eq!(h["__metadata__"]["2.weight"], "10.weight");
    assert!(h.get("10.weight").is_some() && h.get("2.weight").is_none());
    let back = deserialize(&bytes).unwrap();
    assert!(back == net.state_dict());
}

#[test]
fn special_values_and_shapes_round_trip() {
    let mut sd = StateDict::new();
    sd.insert("scalar", Tensor::scalar(-0.0));
    sd.insert("empty", Tensor::zeros(&[0]).unwrap());
    sd.insert("empty2d", Tensor::zeros(&[3, 0]).unwrap());
    sd.insert(
        "special",
        Tensor::from_vec(
            vec![
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::MIN_POSITIVE / 2.0,
                -0.0,
            ],
            &[5],
        )
        .unwrap(),
    );
    sd.insert("name with spaces.0", Tensor::ones(&[1, 1, 2]).unwrap());
    let mut extra = BTreeMap::new();
    extra.insert("author".to_string(), "nninit tests".to_string());
    let bytes = safetensors::serialize_with_metadata(&sd, &extra).unwrap();
    let (back, meta) = deserialize_with_metadata(&bytes).unwrap();
    assert_bit_exact(&sd, &back);
    assert_eq!(back["scalar"].shape(), &[] as &[usize]);
    assert_eq!(meta["author"], "nninit tests");
    assert_eq!(meta["format"], "pt");
    // An empty state dict too.
    let empty = deserialize(&serialize(&StateDict::new()).unwrap()).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn unaligned_data_is_read_by_value() {
    // A header of odd length puts the data at an odd offset.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} "#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&1.5f32.to_le_bytes());
    file.extend_from_slice(&(-2.0f32).to_le_bytes());
    assert_eq!(deserialize(&file).unwrap()["a"].as_slice(), &[1.5, -2.0]);
}

#[test]
fn files_on_disk_and_modules() {
    let dir = std::env::temp_dir().join(format!("nninit-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    let net = tied(&mut Generator::new(4), 2, 4);
    safetensors::save_module(&net, &path).unwrap();
    let fresh = tied(&mut Generator::new(5), 2, 4);
    let report = safetensors::load_module(&fresh, &path, true).unwrap();
    assert!(report.missing_keys.is_empty() && report.unexpected_keys.is_empty());
    assert!(fresh.state_dict() == net.state_dict());
    let err = safetensors::load(dir.join("absent.safetensors")).unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Values the Python script writes: `arange(n) / 100 - 0.5` in f32.
fn python_values(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32) / 100.0 - 0.5).collect()
}

#[test]
fn reads_a_file_written_by_python_safetensors() {
    // .ci/run points this at a file the script has just written; the
    // checked-in copy was written by the same script.
    let path = std::env::var("NNINIT_PY_SAFETENSORS")
        .unwrap_or_else(|_| "tests/interop/from_python.safetensors".to_string());
    let sd = safetensors::load(&path).unwrap();
    let shapes: [(&str, &[usize]); 6] = [
        ("0.weight", &[8, 4]),
        ("0.bias", &[8]),
        ("2.weight", &[8, 8]),
        ("2.bias", &[8]),
        ("6.weight", &[1, 8]),
        ("6.bias", &[1]),
    ];
    for (name, shape) in shapes {
        let t = &sd[name];
        assert_eq!(t.shape(), shape, "{name}");
        let n = t.numel();
        let want = python_values(n);
        for (a, b) in t.as_slice().iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6, "{name}: {a} vs {b}");
        }
    }
    assert_eq!(sd.tied_to("4.weight"), Some("2.weight"));
    assert_eq!(sd.tied_to("4.bias"), Some("2.bias"));
    let net = tied(&mut Generator::new(6), 2, 4);
    let net = net.with(ReLU::new()).with(Linear::new(8, 1).unwrap());
    net.load_state_dict(&sd, true).unwrap();
    assert_eq!(
        net.child::<Linear>(4)
            .unwrap()
            .weight
            .data()
            .unwrap()
            .as_slice()[..3],
        python_values(3)[..]
    );
}

#[test]
fn reads_a_file_written_by_pytorch_save_model() {
    // `examples/export_tied.rs` wrote its network; PyTorch loaded it with
    // `safetensors.torch.load_model` and wrote it back with `save_model`
    // (the README's Python example). The values are the export's, bit for bit.
    let sd = safetensors::load("tests/interop/from_torch.safetensors").unwrap();
    let net = train_tied::shared_mlp(&mut Generator::new(7)).unwrap();
    assert_eq!(sd.tied_to("4.weight"), Some("2.weight"));
    assert_bit_exact(&sd, &net.state_dict());
    assert!(sd == net.state_dict());
}

#[test]
fn int64_entries_round_trip_as_i64() {
    use nninit::{AnyTensor, IntTensor};
    let mut sd = StateDict::new();
    sd.insert("bn.weight", Tensor::ones(&[3]).unwrap());
    sd.insert("bn.num_batches_tracked", IntTensor::scalar(i64::MAX - 7));
    sd.insert(
        "idx",
        IntTensor::from_vec(vec![-1, 0, 1 << 40], &[3]).unwrap(),
    );
    let bytes = nninit::io::safetensors::serialize(&sd).unwrap();
    let header = header(&bytes);
    assert_eq!(header["bn.num_batches_tracked"]["dtype"], "I64");
    assert_eq!(
        header["bn.num_batches_tracked"]["shape"],
        serde_json::json!([])
    );
    let back = nninit::io::safetensors::deserialize(&bytes).unwrap();
    assert_eq!(back, sd);
    assert!(
        matches!(back.get_any("idx"), Some(AnyTensor::I64(t)) if t.as_slice() == [-1, 0, 1 << 40])
    );
    assert!(back.get("idx").is_none(), "get gives float entries only");
}
