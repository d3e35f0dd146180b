//! A candle-nn MLP and a small conv net whose variables come from nninit
//! (`nninit::candle`), with a forward pass each: the shapes, the variables
//! and checksums printed, for the keyed mode and the torch-exact one.
//!
//! ```text
//! cargo run --release --features candle --example candle_mlp [-- SEED]
//! ```
//!
//! The same seed prints the same checksums on every run and machine.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Activation, Conv2dConfig, VarBuilder, conv2d, linear, seq};
use nninit::candle::{InitBackend, VarRegistry};

/// The sum of all elements, in `f64`.
fn checksum(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()
}

/// Builds both models from `vb`, runs them on fixed inputs and prints.
fn run(mode: &str, vb: VarBuilder<'_>, vars: &VarRegistry) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    println!("== {mode}");

    // MLP: 784 -> 128 -> ReLU -> 10.
    let mlp = seq()
        .add(linear(784, 128, vb.pp("mlp").pp(0))?)
        .add(Activation::Relu)
        .add(linear(128, 10, vb.pp("mlp").pp(2))?);
    let x = Tensor::arange(0f32, 4.0 * 784.0, &dev)?.reshape((4, 784))?;
    let x = (x / (4.0 * 784.0))?;
    let y = mlp.forward(&x)?;
    println!(
        "mlp: input {:?} -> output {:?}, checksum {:.6}",
        x.dims(),
        y.dims(),
        checksum(&y)?
    );

    // A small conv net: conv(1->8, 3x3, pad 1) -> ReLU -> conv(8->16, 3x3,
    // stride 2) -> ReLU -> global mean -> linear(16 -> 10).
    let pad = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let stride = Conv2dConfig {
        stride: 2,
        ..Default::default()
    };
    let c1 = conv2d(1, 8, 3, pad, vb.pp("conv").pp("c1"))?;
    let c2 = conv2d(8, 16, 3, stride, vb.pp("conv").pp("c2"))?;
    let head = linear(16, 10, vb.pp("conv").pp("head"))?;
    let img = Tensor::arange(0f32, 2.0 * 28.0 * 28.0, &dev)?.reshape((2, 1, 28, 28))?;
    let img = (img / (2.0 * 28.0 * 28.0))?;
    let h1 = c1.forward(&img)?.relu()?;
    let h2 = c2.forward(&h1)?.relu()?;
    let pooled = h2.mean((2, 3))?;
    let out = head.forward(&pooled)?;
    println!(
        "conv: input {:?} -> {:?} -> {:?} -> output {:?}, checksum {:.6}",
        img.dims(),
        h1.dims(),
        h2.dims(),
        out.dims(),
        checksum(&out)?
    );

    let mut total = 0.0;
    for (name, var) in vars.vars() {
        let sum = checksum(var.as_tensor())?;
        total += sum;
        println!("  {name:<18} {:?} sum {sum:+.6}", var.dims());
    }
    println!("{} variables, checksum {total:.6}", vars.len());
    Ok(())
}

fn main() -> candle_core::Result<()> {
    let seed = match std::env::args().nth(1) {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(seed) => seed,
            Err(e) => {
                eprintln!("candle_mlp: SEED must be an integer: {e}");
                std::process::exit(2);
            }
        },
    };
    for (mode, backend) in [
        (format!("keyed({seed})"), InitBackend::keyed(seed)),
        (format!("torch({seed})"), InitBackend::torch(seed)),
    ] {
        let vars = backend.registry();
        run(
            &mode,
            backend.into_var_builder(DType::F32, &Device::Cpu),
            &vars,
        )?;
    }
    Ok(())
}
