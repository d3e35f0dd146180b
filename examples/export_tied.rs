//! Writes the chapter's tied network for other programs:
//! `DIR/tied.safetensors` (its state dict, the tie recorded in
//! `__metadata__` as Python's `save_model` records it) and
//! `DIR/xy.safetensors` (an input `X` `[16, 4]` and the network's output `Y`).
//! `tests/interop/check.py` reads both with numpy and recomputes `Y`.
//!
//! ```text
//! cargo run --release --example export_tied -- DIR
//! ```

#[path = "train_tied.rs"]
#[allow(dead_code)]
mod train_tied;

use nninit::io::safetensors;
use nninit::nn::{Module, StateDict};
use nninit::{Generator, Result, Tensor};

fn export(dir: &std::path::Path) -> Result<()> {
    let mut g = Generator::new(7);
    let mut net = train_tied::shared_mlp(&mut g)?;
    let x = Tensor::randn(&[16, 4], Some(&mut g))?;
    let y = net.forward(&x)?;
    safetensors::save_module(&net, dir.join("tied.safetensors"))?;
    let mut xy = StateDict::new();
    xy.insert("X", x);
    xy.insert("Y", y);
    safetensors::save(&xy, dir.join("xy.safetensors"))?;
    // Read back: bit-exact.
    let back = safetensors::load(dir.join("tied.safetensors"))?;
    assert!(
        back == net.state_dict(),
        "round trip changed the state dict"
    );
    println!("{}", net);
    println!("wrote {}", dir.join("tied.safetensors").display());
    println!("wrote {}", dir.join("xy.safetensors").display());
    Ok(())
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: export_tied DIR");
        std::process::exit(2);
    };
    if let Err(e) = export(std::path::Path::new(&dir)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
