//! Arbitrary bytes as a safetensors file: never a panic; whatever loads
//! re-saves to a file that loads to the same state dict (bit for bit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nninit::io::safetensors::{deserialize, serialize};
use nninit::nn::StateDict;

/// The names sharing `name`'s storage, sorted.
fn group(sd: &StateDict, name: &str) -> Vec<String> {
    let root = |n: &str| sd.tied_to(n).unwrap_or(n).to_string();
    let mut g: Vec<String> = sd
        .keys()
        .filter(|n| root(n) == root(name))
        .map(String::from)
        .collect();
    g.sort();
    g
}

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = deserialize(data) else { return };
    let bytes = serialize(&sd).expect("a loaded state dict re-serializes");
    let again = deserialize(&bytes).expect("a written file loads");
    assert_eq!(sd.len(), again.len());
    for (name, t) in sd.iter() {
        let u = again.get_any(name).expect("same names");
        assert!(t.bit_eq(u), "{name} changed");
        // The same names share storage (which one is the root may change:
        // the writer keeps the smallest name of each group).
        assert_eq!(
            group(&sd, name),
            group(&again, name),
            "{name}: ties changed"
        );
    }
});
