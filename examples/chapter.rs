//! The tour of Dive into Deep Learning's "Parameter Management" and
//! "Parameter Initialization", cell by cell, printed as PyTorch prints it.
//!
//! ```text
//! cargo run --release --example chapter
//! cargo run --release --example chapter -- --generator torch --seed 0
//! ```
//!
//! With `--generator torch --seed S` the global generator is torch-exact
//! (`nninit::torch::manual_seed(S)`), and the tour also prints, as `## label`
//! blocks, every tensor that the chapter's cells print in PyTorch
//! (`python torch-rng/chapter_cells.py S` in the shared folder), with
//! PyTorch's own values: the same draws in the same order.
//!
//! `tests/chapter.rs` includes this file and asserts every item.

use std::fmt::Write;

#[path = "train_tied.rs"]
#[allow(dead_code)]
mod train_tied;

use nninit::gemm::{self, MatMut, MatRef};
use nninit::init;
use nninit::io::safetensors;
use nninit::nn::{Buffer, Linear, Module, ReLU, Sequential};
use nninit::{Error, Result, Tensor, manual_seed};

/// `nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())`.
pub(crate) fn block1() -> Result<Sequential> {
    Ok(Sequential::new()
        .with(Linear::new(4, 8)?)
        .with(ReLU::new())
        .with(Linear::new(8, 4)?)
        .with(ReLU::new()))
}

/// Four `block1()` under the names `block 0` … `block 3`.
pub(crate) fn block2() -> Result<Sequential> {
    let mut net = Sequential::new();
    for i in 0..4 {
        net.add_module(&format!("block {i}"), block1()?)?;
    }
    Ok(net)
}

/// `nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))`.
pub(crate) fn lazy_net() -> Sequential {
    Sequential::new()
        .with(Linear::lazy(8))
        .with(ReLU::new())
        .with(Linear::lazy(1))
}

/// The chapter's tied network: one `Linear(8, 8)` at positions 2 and 4.
pub(crate) fn tied_net() -> Result<Sequential> {
    let shared = Linear::new(8, 8)?;
    Ok(Sequential::new()
        .with(Linear::new(4, 8)?)
        .with(ReLU::new())
        .with(shared.clone())
        .with(ReLU::new())
        .with(shared)
        .with(ReLU::new())
        .with(Linear::new(8, 1)?))
}

/// `init_normal`: weights N(0, 0.01²), biases zero, for every `Linear`.
pub(crate) fn init_normal(m: &mut dyn Module) -> Result<()> {
    if let Some(l) = m.downcast_ref::<Linear>() {
        init::normal_(&l.weight, 0.0, 0.01, None)?;
        if let Some(b) = &l.bias {
            init::zeros_(b)?;
        }
    }
    Ok(())
}

/// `init_constant`: weights 1, biases zero, for every `Linear`.
pub(crate) fn init_constant(m: &mut dyn Module) -> Result<()> {
    if let Some(l) = m.downcast_ref::<Linear>() {
        init::constant_(&l.weight, 1.0)?;
        if let Some(b) = &l.bias {
            init::zeros_(b)?;
        }
    }
    Ok(())
}

/// `my_init`: weights U(−10, 10), then every |w| < 5 set to 0; prints the
/// first parameter's name and shape from inside, as the chapter does.
pub(crate) fn my_init(m: &mut dyn Module, out: &mut String) -> Result<()> {
    if let Some(l) = m.downcast_ref::<Linear>() {
        let (name, p) = &l.named_parameters()[0];
        writeln!(out, "Init {name} {:?}", p.shape().unwrap_or_default()).unwrap();
        init::uniform_(&l.weight, -10.0, 10.0, None)?;
        init::threshold_mask_(&l.weight, 5.0)?;
    }
    Ok(())
}

/// D2L's `FixedHiddenMLP`: one `Linear(20, 20)` used twice, a constant
/// random weight held as a *buffer* (in `state_dict`, not trained), and a
/// forward that halves its output while the sum of its absolute values
/// exceeds 1, returning the sum. Its backward is written out by hand, as any
/// user module's would be.
#[derive(Debug)]
pub(crate) struct FixedHiddenMLP {
    rand_weight: Buffer,
    linear: Linear,
    training: bool,
    /// Per training forward: the ReLU output and the final scale.
    records: Vec<(Tensor, f32)>,
}

impl FixedHiddenMLP {
    pub(crate) fn new() -> Result<FixedHiddenMLP> {
        Ok(FixedHiddenMLP {
            rand_weight: Buffer::new(Tensor::rand(&[20, 20], None)?),
            linear: Linear::new(20, 20)?,
            training: false,
            records: Vec::new(),
        })
    }
}

impl std::fmt::Display for FixedHiddenMLP {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&nninit::nn::repr(self))
    }
}

impl Module for FixedHiddenMLP {
    fn type_name(&self) -> &'static str {
        "FixedHiddenMLP"
    }

    fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear.forward(x)?;
        // relu(h · rand_weight + 1)
        let mut a = gemm::matmul(&h, &*self.rand_weight.data()?)?;
        for v in a.as_mut_slice() {
            let z = *v + 1.0;
            *v = if z < 0.0 { 0.0 } else { z };
        }
        let y = self.linear.forward(&a)?;
        // `while X.abs().sum() > 1: X /= 2`, stopping on a non-finite sum
        // (PyTorch's loop never ends on an infinite one).
        let mut scale = 1.0f32;
        let abs_sum: f64 = y.as_slice().iter().map(|v| f64::from(v.abs())).sum();
        let mut s = abs_sum;
        while s > 1.0 && s.is_finite() {
            scale /= 2.0;
            s /= 2.0;
        }
        let out = y.sum() * f64::from(scale);
        if self.training {
            self.records.push((a, scale));
        }
        Ok(Tensor::scalar(out as f32))
    }

    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let (a, scale) = self.records.pop().ok_or(Error::BackwardBeforeForward {
            module: "FixedHiddenMLP".to_string(),
        })?;
        let dy = Tensor::full(&[a.shape()[0], 20], grad_output.item()? * scale)?;
        let mut da = self.linear.backward(&dy)?;
        for (d, &v) in da.as_mut_slice().iter_mut().zip(a.as_slice()) {
            if v <= 0.0 {
                *d = 0.0;
            }
        }
        // dh = da · rand_weightᵀ
        let mut dh = Tensor::zeros(da.shape())?;
        let w = self.rand_weight.data()?;
        gemm::gemm(
            1.0,
            MatRef::from_tensor(&da)?,
            MatRef::from_tensor(&w)?.t(),
            0.0,
            MatMut::from_tensor(&mut dh)?,
        )?;
        drop(w);
        self.linear.backward(&dh)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.records.clear();
        }
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        vec![("linear", &self.linear)]
    }

    fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
        vec![("linear", &mut self.linear)]
    }

    fn own_buffers(&self) -> Vec<(&str, &Buffer)> {
        vec![("rand_weight", &self.rand_weight)]
    }
}

/// The losses of 100 steps of `examples/train_tied.rs`, its report in `out`.
pub(crate) fn train_tied_losses(out: &mut String) -> Result<Vec<f32>> {
    train_tied::train(100, 25, out)
}

/// Which global generator the tour runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `manual_seed(42)`: the counter-based default.
    Counter,
    /// `nninit::torch::manual_seed(seed)`, and PyTorch's printed tensors.
    Torch(u64),
}

/// A Python list of strings: `['0.weight', '0.bias']`.
fn py_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A name, or Python's `None`.
fn py_name(name: Option<&str>) -> String {
    name.map_or_else(|| "None".to_string(), |n| format!("'{n}'"))
}

/// In torch mode, one `## label` block of PyTorch's cells (`chapter_cells.py`).
fn show(out: &mut String, mode: Mode, label: &str, value: &dyn std::fmt::Display) {
    if let Mode::Torch(_) = mode {
        writeln!(out, "## {label}\n{value}").unwrap();
    }
}

/// Items 1 to 9 of the tour, written to `out`.
#[allow(dead_code)] // used by tests/chapter.rs
pub(crate) fn run(out: &mut String) -> Result<()> {
    run_with(out, Mode::Counter)
}

/// [`run`] on the generator `mode` names.
pub(crate) fn run_with(out: &mut String, mode: Mode) -> Result<()> {
    match mode {
        Mode::Counter => manual_seed(42),
        Mode::Torch(seed) => nninit::torch::manual_seed(seed),
    }

    // 1. A lazy network; shapes are inferred at the first forward.
    writeln!(out, "## 1. Lazy layers").unwrap();
    let x = Tensor::rand(&[2, 4], None)?;
    let mut net = lazy_net();
    writeln!(out, "before forward: {net}").unwrap();
    writeln!(out, "net[0].weight: {}", net.child::<Linear>(0)?.weight).unwrap();
    let y = net.forward(&x)?;
    writeln!(out, "X = {x}").unwrap();
    writeln!(out, "net(X).shape = {:?}", y.shape()).unwrap();
    writeln!(out, "{net}").unwrap();
    show(out, mode, "X", &x);
    show(out, mode, "net(X)", &y);

    // 2. Parameter access.
    writeln!(out, "\n## 2. Parameter access").unwrap();
    writeln!(out, "net[2].state_dict() = {}", net[2].state_dict()).unwrap();
    let last = net.child::<Linear>(2)?;
    show(out, mode, "net[2].weight", &last.weight);
    if let Some(b) = &last.bias {
        show(out, mode, "net[2].bias", b);
    }
    show(
        out,
        mode,
        "net[0].weight.data",
        &*net.child::<Linear>(0)?.weight.data()?,
    );
    let bias = last.bias.as_ref().expect("LazyLinear(1) has a bias");
    // The static type says it: `&nninit::nn::Parameter`.
    let _: &nninit::nn::Parameter = bias;
    writeln!(out, "type(net[2].bias) = nninit::nn::Parameter").unwrap();
    writeln!(out, "net[2].bias = {bias}").unwrap();
    writeln!(out, "net[2].bias.data = {}", *bias.data()?).unwrap();
    writeln!(
        out,
        "net[2].weight.grad is None: {}",
        last.weight.grad().is_none()
    )
    .unwrap();
    for (name, p) in net[0].named_parameters() {
        writeln!(
            out,
            "net[0]: ('{name}', {:?})",
            p.shape().unwrap_or_default()
        )
        .unwrap();
    }
    for (name, p) in net.named_parameters() {
        writeln!(out, "net: ('{name}', {:?})", p.shape().unwrap_or_default()).unwrap();
    }
    writeln!(
        out,
        "net.state_dict()['2.bias'] = {}",
        net.state_dict()["2.bias"]
    )
    .unwrap();

    // 3. Nested blocks.
    writeln!(out, "\n## 3. Nested blocks").unwrap();
    let mut rgnet = Sequential::new().with(block2()?).with(Linear::new(4, 1)?);
    let y = rgnet.forward(&x)?;
    writeln!(out, "rgnet(X) = {y}").unwrap();
    show(out, mode, "rgnet(X)", &y);
    writeln!(out, "{rgnet}").unwrap();
    let inner = rgnet[0][1][0].to::<Linear>()?;
    let bias = inner.bias.as_ref().expect("Linear(4, 8) has a bias");
    writeln!(out, "rgnet[0][1][0].bias.data = {}", *bias.data()?).unwrap();
    show(out, mode, "rgnet[0][1][0].bias.data", &*bias.data()?);
    let name = rgnet
        .named_parameters()
        .into_iter()
        .find(|(_, p)| p.ptr_eq(bias))
        .map(|(n, _)| n)
        .unwrap_or_default();
    writeln!(out, "its dotted name: {name}").unwrap();

    // 4. Built-in initialization through `apply`.
    writeln!(out, "\n## 4. Built-in initialization").unwrap();
    net.apply(&mut init_normal)?;
    let first = net.child::<Linear>(0)?;
    let row0 = Tensor::from_slice(first.weight.data()?.row(0)?, &[4])?;
    let b0 = first.bias.as_ref().expect("bias").data()?[[0]];
    writeln!(out, "init_normal: ({row0}, {})", Tensor::scalar(b0)).unwrap();
    show(out, mode, "init_normal net[0].weight.data[0]", &row0);
    show(out, mode, "init_normal net[0].weight", &first.weight);
    net.apply(&mut init_constant)?;
    let first = net.child::<Linear>(0)?;
    let row0 = Tensor::from_slice(first.weight.data()?.row(0)?, &[4])?;
    let b0 = first.bias.as_ref().expect("bias").data()?[[0]];
    writeln!(out, "init_constant: ({row0}, {})", Tensor::scalar(b0)).unwrap();
    net[0].apply(&mut |m| {
        if let Some(l) = m.downcast_ref::<Linear>() {
            init::xavier_uniform_(&l.weight, 1.0, None)?;
        }
        Ok(())
    })?;
    net[2].apply(&mut |m| {
        if let Some(l) = m.downcast_ref::<Linear>() {
            init::constant_(&l.weight, 42.0)?;
        }
        Ok(())
    })?;
    let row0 = Tensor::from_slice(net.child::<Linear>(0)?.weight.data()?.row(0)?, &[4])?;
    writeln!(out, "{row0}").unwrap();
    writeln!(out, "{}", *net.child::<Linear>(2)?.weight.data()?).unwrap();
    show(out, mode, "xavier net[0].weight.data[0]", &row0);
    show(
        out,
        mode,
        "xavier net[0].weight.data",
        &*net.child::<Linear>(0)?.weight.data()?,
    );

    // 5. Custom initialization.
    writeln!(out, "\n## 5. Custom initialization").unwrap();
    let mut printed = String::new();
    net.apply(&mut |m| my_init(m, &mut printed))?;
    out.push_str(&printed);
    let w = net.child::<Linear>(0)?.weight.data()?.narrow(0..2)?;
    writeln!(out, "net[0].weight[:2] = {w}").unwrap();
    show(out, mode, "my_init net[0].weight[:2]", &w);
    show(
        out,
        mode,
        "my_init net[0].weight",
        &*net.child::<Linear>(0)?.weight.data()?,
    );

    // 6. Setting parameters directly.
    writeln!(out, "\n## 6. Direct setting").unwrap();
    {
        let mut w = net.child::<Linear>(0)?.weight.data_mut()?;
        *w += 1.0;
        w[[0, 0]] = 42.0;
    }
    let row0 = Tensor::from_slice(net.child::<Linear>(0)?.weight.data()?.row(0)?, &[4])?;
    writeln!(out, "net[0].weight.data[0] = {row0}").unwrap();
    show(out, mode, "direct net[0].weight.data[0]", &row0);

    // 7. Tied parameters.
    writeln!(out, "\n## 7. Tied parameters").unwrap();
    let mut tied = tied_net()?;
    let y = tied.forward(&x)?;
    let row = |net: &Sequential, i: usize| -> Result<String> {
        Ok(Tensor::from_slice(net.child::<Linear>(i)?.weight.data()?.row(0)?, &[8])?.to_string())
    };
    show(out, mode, "tied net(X)", &y);
    show(out, mode, "tied net[2].weight.data[0]", &row(&tied, 2)?);
    writeln!(out, "{}", row(&tied, 2)? == row(&tied, 4)?).unwrap();
    tied.child::<Linear>(2)?.weight.data_mut()?[[0, 0]] = 100.0;
    writeln!(out, "{}", row(&tied, 2)? == row(&tied, 4)?).unwrap();
    let (w2, w4) = (
        &tied.child::<Linear>(2)?.weight,
        &tied.child::<Linear>(4)?.weight,
    );
    writeln!(out, "net[2].weight is net[4].weight: {}", w2.ptr_eq(w4)).unwrap();
    writeln!(
        out,
        "net[4].weight.data[0, 0] = {}",
        Tensor::scalar(w4.data()?[[0, 0]])
    )
    .unwrap();
    let names: Vec<String> = tied
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    writeln!(
        out,
        "named_parameters: {}",
        py_list(names.iter().map(String::as_str))
    )
    .unwrap();
    let sd = tied.state_dict();
    let keys: Vec<&str> = sd.keys().collect();
    writeln!(out, "state_dict keys: {}", py_list(keys.iter().copied())).unwrap();
    writeln!(
        out,
        "state_dict ties: '4.weight' is the storage of {}",
        py_name(sd.tied_to("4.weight"))
    )
    .unwrap();
    // Backward sums the gradients of both uses into the one parameter.
    tied.train(true);
    let y = tied.forward(&x)?;
    tied.backward(&Tensor::ones(y.shape())?)?;
    let grad = tied
        .child::<Linear>(2)?
        .weight
        .grad()
        .map(|g| g.shape().to_vec());
    let grad = grad.map_or_else(|| "None".to_string(), |s| format!("{s:?}"));
    writeln!(out, "net[2].weight.grad shape after one backward: {grad}").unwrap();

    // 8. Exercises.
    writeln!(out, "\n## 8. Exercises").unwrap();
    let mut mlp = FixedHiddenMLP::new()?;
    writeln!(out, "{mlp}").unwrap();
    for (name, p) in mlp.named_parameters() {
        writeln!(out, "parameter {name} {:?}", p.shape().unwrap_or_default()).unwrap();
    }
    for (name, b) in mlp.named_buffers() {
        writeln!(out, "buffer {name} {:?}", b.data()?.shape()).unwrap();
    }
    let sd = mlp.state_dict();
    writeln!(out, "state_dict keys: {}", py_list(sd.keys())).unwrap();
    let x20 = Tensor::rand(&[2, 20], None)?;
    writeln!(out, "FixedHiddenMLP()(X) = {}", mlp.forward(&x20)?).unwrap();
    writeln!(
        out,
        "training the shared-layer MLP (examples/train_tied.rs):"
    )
    .unwrap();
    let losses = train_tied_losses(out)?;
    writeln!(
        out,
        "loss {:.4} -> {:.4}",
        losses[0],
        losses[losses.len() - 1]
    )
    .unwrap();

    // 9. Saving.
    writeln!(out, "\n## 9. Saving").unwrap();
    let path =
        std::env::temp_dir().join(format!("nninit-chapter-{}.safetensors", std::process::id()));
    safetensors::save_module(&tied, &path)?;
    let back = safetensors::load(&path)?;
    let bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_file(&path)?;
    let mine = tied.state_dict();
    let exact = back == mine
        && back
            .iter()
            .all(|(name, t)| mine.get_any(name).is_some_and(|m| m.bit_eq(t)));
    writeln!(
        out,
        "saved the tied network ({bytes} bytes); read back bit-exactly: {exact}"
    )
    .unwrap();
    writeln!(
        out,
        "'4.weight' restored as a tie of {}",
        py_name(back.tied_to("4.weight"))
    )
    .unwrap();
    Ok(())
}

/// `--generator counter|torch` and `--seed S`, or a one-line error.
fn parse_args(args: &[String]) -> std::result::Result<Mode, String> {
    let (mut torch, mut seed) = (false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--generator" => match value("--generator")?.as_str() {
                "torch" => torch = true,
                "counter" => torch = false,
                other => {
                    return Err(format!(
                        "--generator: expected torch or counter, found {other:?}"
                    ));
                }
            },
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--seed: not a u64: {v:?}"))?,
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (torch, seed) {
        (true, seed) => Ok(Mode::Torch(seed.unwrap_or(0))),
        (false, None) => Ok(Mode::Counter),
        (false, Some(_)) => {
            Err("--seed needs --generator torch (the default tour uses seed 42)".into())
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("chapter: {e}");
        std::process::exit(2);
    });
    let mut out = String::new();
    let result = run_with(&mut out, mode);
    print!("{out}");
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
