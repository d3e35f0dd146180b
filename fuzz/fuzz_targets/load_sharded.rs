//! A checkpoint directory made of arbitrary parts: the input split at
//! `SPLIT` gives the index text (empty: no index) and then up to three files
//! under the names a sharded checkpoint uses. `check_sharded` and
//! `load_sharded` never panic; a directory that checks lists every index entry
//! once and loads non-strictly into a module without names, every name
//! unexpected; one that does not check does not load either.
//!
//! Seeds (`corpus/load_sharded`) are real checkpoints joined the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nninit::io::checkpoint::{INDEX_FILE, SINGLE_FILE, check_sharded, load_sharded, parse_index};
use nninit::nn::Sequential;
use std::path::PathBuf;

/// The separator between the parts of an input.
const SPLIT: &[u8] = b"\xffNNSPLIT";

/// The names the parts after the index get, in order.
const NAMES: [&str; 3] = [
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    SINGLE_FILE,
];

/// One scratch directory per fuzzing process, emptied for each input.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nninit-fuzz-sharded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `data` split at every `SPLIT`.
fn parts(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SPLIT.len()).position(|w| w == SPLIT) {
        out.push(&rest[..at]);
        rest = &rest[at + SPLIT.len()..];
    }
    out.push(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let parts = parts(data);
    let index = parts[0];
    if !index.is_empty() {
        std::fs::write(dir.join(INDEX_FILE), index).unwrap();
    }
    for (bytes, name) in parts[1..].iter().zip(NAMES) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    match check_sharded(&dir) {
        Ok(names) => {
            if !index.is_empty() {
                let text = std::str::from_utf8(index).expect("an index that checks is text");
                let (_, map) = parse_index(text).expect("an index that checks parses");
                for tensor in map.keys() {
                    assert!(
                        names.iter().any(|(n, _)| n == tensor),
                        "{tensor} is in the index but not listed"
                    );
                }
            }
            for w in names.windows(2) {
                assert!(w[0].0 < w[1].0, "names not sorted and unique");
            }
            let report = load_sharded(&Sequential::new(), &dir, false)
                .expect("a checked checkpoint loads non-strictly");
            assert_eq!(report.unexpected_keys.len(), names.len());
            assert!(report.missing_keys.is_empty());
        }
        Err(_) => assert!(load_sharded(&Sequential::new(), &dir, false).is_err()),
    }
    let _ = std::fs::remove_dir_all(&dir);
});
