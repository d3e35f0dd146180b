//! The chapter's exercise: an MLP whose hidden layer is *shared* (one
//! `Linear(8, 8)` at two positions), trained by SGD on a synthetic regression
//! task. Every few steps it prints the loss and, for each layer, the norms of
//! the parameters and of their gradients; the shared layer's gradient is the
//! sum of its two uses.
//!
//! ```text
//! cargo run --release --example train_tied [-- STEPS]
//! ```

use std::fmt::Write;

use nninit::nn::{Linear, MSELoss, Module, ReLU, SGD, Sequential, SgdOptions};
use nninit::{Generator, Result, Tensor};

/// `Linear(4,8) ReLU shared ReLU shared ReLU Linear(8,1)`, from `g`.
pub(crate) fn shared_mlp(g: &mut Generator) -> Result<Sequential> {
    let shared = Linear::with_options(8, 8, true, Some(g))?;
    Ok(Sequential::new()
        .with(Linear::with_options(4, 8, true, Some(g))?)
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(shared)
        .with(ReLU::new())
        .with(Linear::with_options(8, 1, true, Some(g))?))
}

/// `n` inputs in `U[-1, 1)⁴` and targets `x₀·x₁ + sin(2x₂) − x₃²/2`.
pub(crate) fn regression_data(n: usize, g: &mut Generator) -> Result<(Tensor, Tensor)> {
    let mut x = Tensor::rand(&[n, 4], Some(g))?;
    for v in x.as_mut_slice() {
        *v = 2.0 * *v - 1.0;
    }
    let y: Vec<f32> = (0..n)
        .map(|i| {
            let r = &x.as_slice()[4 * i..4 * i + 4];
            r[0] * r[1] + (2.0 * r[2]).sin() - r[3] * r[3] / 2.0
        })
        .collect();
    Ok((x, Tensor::from_vec(y, &[n, 1])?))
}

fn norm(t: &Tensor) -> f64 {
    t.as_slice()
        .iter()
        .map(|v| f64::from(*v) * f64::from(*v))
        .sum::<f64>()
        .sqrt()
}

/// Trains for `steps` full-batch SGD steps, writing a report every `every`
/// steps to `out`; returns the losses of every step.
pub(crate) fn train(steps: usize, every: usize, out: &mut String) -> Result<Vec<f32>> {
    let mut g = Generator::new(2024);
    let mut net = shared_mlp(&mut g)?;
    let (x, y) = regression_data(256, &mut g)?;
    let mut opt = SGD::with_options(
        net.parameters(),
        SgdOptions {
            lr: 0.05,
            momentum: 0.9,
            ..SgdOptions::default()
        },
    )?;
    let mut loss_fn = MSELoss::new();
    let mut losses = Vec::with_capacity(steps);
    net.train(true);
    for step in 0..steps {
        opt.zero_grad();
        let pred = net.forward(&x)?;
        let loss = loss_fn.forward(&pred, &y)?.item()?;
        net.backward(&loss_fn.backward()?)?;
        if step % every == 0 || step + 1 == steps {
            writeln!(out, "step {step:4}  loss {loss:.6}").unwrap();
            for (name, p) in net.named_parameters() {
                let grad = p.grad().map(|g| norm(&g)).unwrap_or(0.0);
                writeln!(
                    out,
                    "    {name:9} |p| {:8.4}  |grad| {grad:8.5}",
                    norm(&*p.data()?)
                )
                .unwrap();
            }
        }
        opt.step()?;
        losses.push(loss);
    }
    net.eval();
    Ok(losses)
}

#[allow(dead_code)]
fn main() {
    let steps = match std::env::args().nth(1).map(|s| s.parse::<usize>()) {
        None => 300,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: train_tied [STEPS > 0]");
            std::process::exit(2);
        }
    };
    let mut out = String::new();
    let result = train(steps, 50, &mut out);
    print!("{out}");
    match result {
        Ok(losses) => println!("loss: {:.6} -> {:.6}", losses[0], losses[losses.len() - 1]),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
