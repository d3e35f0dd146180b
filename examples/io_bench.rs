//! Times saving and loading a model of 8 × `Linear(4096, 4096)` (134M
//! parameters, 537 MB of f32) with `io::safetensors::save_module` and
//! `load_module`, and reports the peak resident set size (`VmHWM`) after
//! building the model and after each step, so the overhead of the file
//! layer shows beside the model itself. `scripts/bench_io.py` does the same
//! with PyTorch and `safetensors.torch.save_model`/`load_model`.
//!
//! ```text
//! cargo run --release --example io_bench -- save /tmp/m.safetensors
//! cargo run --release --example io_bench -- load /tmp/m.safetensors
//! ```
//! (two runs, so that each peak is its own step's).

use nninit::io::safetensors;
use nninit::nn::{Linear, Module, Sequential};
use nninit::{Generator, Result};
use std::time::Instant;

/// The peak resident set size of this process, in MB.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A field of `/proc/self/status` in kB, as MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1000.0)
}

fn model() -> Result<Sequential> {
    let mut g = Generator::new(0);
    let mut net = Sequential::new();
    for _ in 0..8 {
        net.push(Linear::with_options(4096, 4096, true, Some(&mut g))?);
    }
    Ok(net)
}

fn run(mode: &str, path: &str) -> Result<()> {
    let net = model()?;
    let built = peak_rss_mb();
    let bytes: usize = net
        .parameters()
        .iter()
        .map(|p| p.shape().map_or(0, |s| s.iter().product::<usize>()) * 4)
        .sum();
    let t = Instant::now();
    match mode {
        "save" => safetensors::save_module(&net, path)?,
        "load" => {
            safetensors::load_module(&net, path, true)?;
        }
        _ => unreachable!(),
    }
    let s = t.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    println!(
        "{mode}: {:.1} MB in {s:.3} s ({:.2} GB/s); peak RSS {built:.0} MB with the model built, \
         {peak:.0} MB after {mode} (+{:.0} MB)",
        bytes as f64 / 1e6,
        bytes as f64 / s / 1e9,
        peak - built
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: io_bench save|load FILE");
        std::process::exit(2);
    };
    if mode != "save" && mode != "load" {
        eprintln!("usage: io_bench save|load FILE");
        std::process::exit(2);
    }
    if let Err(e) = run(mode, path) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
