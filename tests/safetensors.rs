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

/// A tied network (positions 2 and 4) drawn from seed `seed`.
fn tied_network(seed: u64) -> Sequential {
    tied(&mut Generator::new(seed), 2, 4)
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

#[test]
fn bf16_and_f16_files_round_trip_within_their_precision() {
    use nninit::io::dtype::Dtype;
    use nninit::io::safetensors::{SaveOptions, deserialize, serialize_with};
    let mut g = Generator::new(3);
    let mut sd = StateDict::new();
    sd.insert("w", Tensor::randn(&[64, 33], Some(&mut g)).unwrap());
    sd.insert("n", nninit::IntTensor::scalar(5));
    for (dtype, rel) in [(Dtype::BF16, 2f32.powi(-8)), (Dtype::F16, 2f32.powi(-11))] {
        let bytes = serialize_with(&sd, &SaveOptions::default().dtype(dtype)).unwrap();
        let h = header(&bytes);
        assert_eq!(h["w"]["dtype"], dtype.name());
        assert_eq!(h["n"]["dtype"], "I64", "int64 entries stay I64");
        let back = deserialize(&bytes).unwrap();
        let (a, b) = (sd.get("w").unwrap(), back.get("w").unwrap());
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert!((x - y).abs() <= rel * x.abs(), "{dtype}: {x} -> {y}");
        }
        assert_eq!(back.get_any("n"), sd.get_any("n"));
        // Written again as the same dtype: the same bytes (the conversion is
        // exact for values it produced).
        assert_eq!(
            serialize_with(&back, &SaveOptions::default().dtype(dtype)).unwrap(),
            bytes
        );
    }
    assert!(serialize_with(&sd, &SaveOptions::default().dtype(Dtype::I64)).is_err());
}

#[test]
fn save_module_streams_the_same_file_and_load_module_reads_in_place() {
    use nninit::io::dtype::Dtype;
    use nninit::io::safetensors::{self, SaveOptions};
    let net = tied_network(9);
    let dir = std::env::temp_dir().join(format!("nninit-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    safetensors::save_module(&net, &a).unwrap();
    safetensors::save(&net.state_dict(), &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Loading in place gives the same model as loading a state dict.
    let other = tied_network(10);
    safetensors::load_module(&other, &a, true).unwrap();
    assert_bit_exact(&other.state_dict(), &net.state_dict());
    // A bf16 file loads into the module (converted), still strict.
    safetensors::save_module_with(&net, &a, &SaveOptions::default().dtype(Dtype::BF16)).unwrap();
    let third = tied_network(11);
    safetensors::load_module(&third, &a, true).unwrap();
    let (x, y) = (third.state_dict(), net.state_dict());
    for (name, t) in y.iter() {
        let (t, u) = (t.as_f32().unwrap(), x.get(name).unwrap());
        for (p, q) in t.as_slice().iter().zip(u.as_slice()) {
            assert!((p - q).abs() <= p.abs() / 256.0, "{name}");
        }
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child side of `a_killed_writer_leaves_the_previous_file_intact`:
/// writes a large file to `NNINIT_KILL_TARGET` in a loop until killed.
#[test]
#[ignore = "run by a_killed_writer_leaves_the_previous_file_intact in a child process"]
fn killed_writer_child() {
    let Ok(path) = std::env::var("NNINIT_KILL_TARGET") else {
        return;
    };
    let mut sd = StateDict::new();
    sd.insert("big", Tensor::full(&[64 << 20], 2.0).unwrap());
    loop {
        nninit::io::safetensors::save(&sd, &path).unwrap();
    }
}

#[test]
fn a_killed_writer_leaves_the_previous_file_intact() {
    let dir = std::env::temp_dir().join(format!("nninit-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut old = StateDict::new();
    old.insert("big", Tensor::full(&[1000], 1.0).unwrap());
    nninit::io::safetensors::save(&old, &path).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_writer_child", "--ignored", "--nocapture"])
        .env("NNINIT_KILL_TARGET", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a temporary file is being written, then kill -9 mid-write.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let writing = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name().to_string_lossy().contains(".tmp-")
                    && e.metadata().is_ok_and(|m| m.len() > (16 << 20))
            });
        if writing || std::time::Instant::now() > deadline {
            assert!(writing, "the child never started writing");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The file is the old one or a complete new one, never a torn one.
    let back = nninit::io::safetensors::load(&path).unwrap();
    let t = back.get("big").unwrap();
    assert!(
        (t.numel() == 1000 && t.as_slice().iter().all(|&v| v == 1.0))
            || (t.numel() == 64 << 20 && t.as_slice().iter().all(|&v| v == 2.0))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
