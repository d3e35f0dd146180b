//! torchvision's `resnet18()` built with nninit: the same module tree and
//! names (`conv1.weight`, `layer2.0.downsample.1.running_mean`, `fc.bias`,
//! ...), initialized as torchvision does it, run on an input and saved.
//!
//! ```text
//! cargo run --release --example resnet18 -- --out DIR [--generator torch --seed S] [--batch N]
//! ```
//!
//! writes `DIR/resnet18.safetensors` (the state dict, which
//! `torchvision.models.resnet18().load_state_dict(load_file(...))` takes with
//! `strict=True`) and `DIR/io.safetensors` (`X`, a `[N, 3, 224, 224]`
//! standard normal input drawn after the model, and `Y`, the inference-mode
//! output). With `--generator torch --seed S` the state dict equals
//! `torch.manual_seed(S); torchvision.models.resnet18().state_dict()` bit for
//! bit, and `X` is `torch.randn(N, 3, 224, 224)` drawn after it.
//!
//! `tests/resnet18.rs` includes this file.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use nninit::init::{self, FanMode, Nonlinearity};
use nninit::io::safetensors;
use nninit::nn::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvOptions, Flatten, Linear, MaxPool2d, Module,
    Parameter, PoolOptions, ReLU, Sequential, StateDict,
};
use nninit::{Generator, Result, Tensor};

/// `conv3x3(in, out, stride)`: 3×3, padding 1, no bias.
fn conv3x3(
    in_planes: usize,
    out_planes: usize,
    stride: usize,
    g: Option<&mut Generator>,
) -> Result<Conv2d> {
    let o = ConvOptions::default()
        .stride([stride, stride])
        .padding([1, 1])
        .bias(false);
    Conv2d::new(in_planes, out_planes, [3, 3], o, g)
}

/// `conv1x1(in, out, stride)`: 1×1, no bias.
fn conv1x1(
    in_planes: usize,
    out_planes: usize,
    stride: usize,
    g: Option<&mut Generator>,
) -> Result<Conv2d> {
    let o = ConvOptions::default().stride([stride, stride]).bias(false);
    Conv2d::new(in_planes, out_planes, [1, 1], o, g)
}

/// torchvision's `BasicBlock`: two 3×3 convolutions with BatchNorm and ReLU,
/// plus the input (through `downsample` when the shape changes).
#[derive(Debug)]
pub(crate) struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    relu: ReLU,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    downsample: Option<Sequential>,
}

impl BasicBlock {
    /// Built in torchvision's order: `conv1`, `bn1`, `conv2`, `bn2` (the
    /// `downsample` is built by the caller, before the block).
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        downsample: Option<Sequential>,
        mut g: Option<&mut Generator>,
    ) -> Result<BasicBlock> {
        Ok(BasicBlock {
            conv1: conv3x3(inplanes, planes, stride, g.as_deref_mut())?,
            bn1: BatchNorm2d::new(planes)?,
            relu: ReLU::inplace(),
            conv2: conv3x3(planes, planes, 1, g)?,
            bn2: BatchNorm2d::new(planes)?,
            downsample,
        })
    }
}

impl Module for BasicBlock {
    fn type_name(&self) -> &'static str {
        "BasicBlock"
    }

    fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = self.conv1.forward(x)?;
        let out = self.bn1.forward(&out)?;
        let out = self.relu.forward(&out)?;
        let out = self.conv2.forward(&out)?;
        let mut out = self.bn2.forward(&out)?;
        match &mut self.downsample {
            Some(d) => out.add_(&d.forward(x)?)?,
            None => out.add_(x)?,
        }
        self.relu.forward(&out)
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        let mut v: Vec<(&str, &dyn Module)> = vec![
            ("conv1", &self.conv1),
            ("bn1", &self.bn1),
            ("relu", &self.relu),
            ("conv2", &self.conv2),
            ("bn2", &self.bn2),
        ];
        if let Some(d) = &self.downsample {
            v.push(("downsample", d));
        }
        v
    }

    fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
        let mut v: Vec<(&str, &mut dyn Module)> = vec![
            ("conv1", &mut self.conv1),
            ("bn1", &mut self.bn1),
            ("relu", &mut self.relu),
            ("conv2", &mut self.conv2),
            ("bn2", &mut self.bn2),
        ];
        if let Some(d) = &mut self.downsample {
            v.push(("downsample", d));
        }
        v
    }
}

/// torchvision's `ResNet` with `BasicBlock`s: `resnet18()` is
/// `ResNet::new([2, 2, 2, 2], 64, 1000, ..)`. `width` is the first stage's
/// width (torchvision's 64; smaller for tests).
#[derive(Debug)]
pub(crate) struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    relu: ReLU,
    maxpool: MaxPool2d,
    layers: [Sequential; 4],
    avgpool: AdaptiveAvgPool2d,
    flatten: Flatten,
    fc: Linear,
}

const LAYER_NAMES: [&str; 4] = ["layer1", "layer2", "layer3", "layer4"];

impl ResNet {
    /// Builds the network as torchvision's constructor does: every layer's
    /// default init as it is constructed (`conv1`, `layer1`..`layer4` with
    /// each block's `downsample` before the block, `fc`), then
    /// `kaiming_normal_(mode='fan_out', nonlinearity='relu')` on every
    /// convolution and ones/zeros on every BatchNorm, in `modules()` order.
    pub(crate) fn new(
        blocks: [usize; 4],
        width: usize,
        num_classes: usize,
        mut g: Option<&mut Generator>,
    ) -> Result<ResNet> {
        let stem = ConvOptions::default()
            .stride([2, 2])
            .padding([3, 3])
            .bias(false);
        let conv1 = Conv2d::new(3, width, [7, 7], stem, g.as_deref_mut())?;
        let mut inplanes = width;
        let mut layers: Vec<Sequential> = Vec::with_capacity(4);
        for (stage, &n) in blocks.iter().enumerate() {
            let planes = width << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            let downsample = if stride != 1 || inplanes != planes {
                Some(
                    Sequential::new()
                        .with(conv1x1(inplanes, planes, stride, g.as_deref_mut())?)
                        .with(BatchNorm2d::new(planes)?),
                )
            } else {
                None
            };
            let mut layer = Sequential::new();
            layer.push(BasicBlock::new(
                inplanes,
                planes,
                stride,
                downsample,
                g.as_deref_mut(),
            )?);
            inplanes = planes;
            for _ in 1..n {
                layer.push(BasicBlock::new(
                    inplanes,
                    planes,
                    1,
                    None,
                    g.as_deref_mut(),
                )?);
            }
            layers.push(layer);
        }
        let fc = Linear::with_options(inplanes, num_classes, true, g.as_deref_mut())?;
        let net = ResNet {
            conv1,
            bn1: BatchNorm2d::new(width)?,
            relu: ReLU::inplace(),
            maxpool: MaxPool2d::new(PoolOptions::new([3, 3]).stride([2, 2]).padding([1, 1]))?,
            layers: layers.try_into().expect("four stages"),
            avgpool: AdaptiveAvgPool2d::new([Some(1), Some(1)]),
            flatten: Flatten::new(),
            fc,
        };
        // torchvision's re-init loop over `self.modules()` (pre-order).
        for (_, m) in net.named_modules() {
            if let Some(c) = m.downcast_ref::<Conv2d>() {
                init::kaiming_normal_(
                    &c.weight,
                    0.0,
                    FanMode::FanOut,
                    Nonlinearity::Relu,
                    g.as_deref_mut(),
                )?;
            } else if let Some(bn) = m.downcast_ref::<BatchNorm2d>() {
                if let Some(w) = &bn.weight {
                    init::constant_(w, 1.0)?;
                }
                if let Some(b) = &bn.bias {
                    init::constant_(b, 0.0)?;
                }
            }
        }
        Ok(net)
    }
}

impl Module for ResNet {
    fn type_name(&self) -> &'static str {
        "ResNet"
    }

    fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.conv1.forward(x)?;
        x = self.bn1.forward(&x)?;
        x = self.relu.forward(&x)?;
        x = self.maxpool.forward(&x)?;
        for layer in &mut self.layers {
            x = layer.forward(&x)?;
        }
        x = self.avgpool.forward(&x)?;
        x = self.flatten.forward(&x)?;
        self.fc.forward(&x)
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        let mut v: Vec<(&str, &dyn Module)> = vec![
            ("conv1", &self.conv1),
            ("bn1", &self.bn1),
            ("relu", &self.relu),
            ("maxpool", &self.maxpool),
        ];
        for (name, layer) in LAYER_NAMES.iter().zip(&self.layers) {
            v.push((name, layer));
        }
        v.push(("avgpool", &self.avgpool));
        v.push(("fc", &self.fc));
        v
    }

    fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
        let mut v: Vec<(&str, &mut dyn Module)> = vec![
            ("conv1", &mut self.conv1),
            ("bn1", &mut self.bn1),
            ("relu", &mut self.relu),
            ("maxpool", &mut self.maxpool),
        ];
        for (name, layer) in LAYER_NAMES.iter().zip(&mut self.layers) {
            v.push((name, layer));
        }
        v.push(("avgpool", &mut self.avgpool));
        v.push(("fc", &mut self.fc));
        v
    }
}

impl fmt::Display for ResNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&nninit::nn::repr(self))
    }
}

/// torchvision's `resnet18()`.
pub(crate) fn resnet18(g: Option<&mut Generator>) -> Result<ResNet> {
    ResNet::new([2, 2, 2, 2], 64, 1000, g)
}

/// The number of parameter elements of `m`.
pub(crate) fn parameter_count(m: &dyn Module) -> usize {
    m.parameters()
        .iter()
        .map(|p: &Parameter| p.shape().map_or(0, |s| s.iter().product()))
        .sum()
}

struct Args {
    out: Option<PathBuf>,
    torch: bool,
    seed: u64,
    batch: usize,
}

fn parse_args(args: &[String]) -> std::result::Result<Args, String> {
    let mut a = Args {
        out: None,
        torch: false,
        seed: 0,
        batch: 2,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--generator" => match value()?.as_str() {
                "torch" => a.torch = true,
                "counter" => a.torch = false,
                other => {
                    return Err(format!(
                        "--generator: expected torch or counter, found {other:?}"
                    ));
                }
            },
            "--seed" => {
                let v = value()?;
                a.seed = v.parse().map_err(|_| format!("--seed: not a u64: {v:?}"))?;
            }
            "--batch" => {
                let v = value()?;
                a.batch = v
                    .parse()
                    .map_err(|_| format!("--batch: not a count: {v:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn run(args: &Args) -> Result<()> {
    let mut g = if args.torch {
        Generator::torch(args.seed)
    } else {
        Generator::new(args.seed)
    };
    let start = Instant::now();
    let mut net = resnet18(Some(&mut g))?;
    println!(
        "resnet18: {} parameters, built in {:.1} ms ({} generator, seed {})",
        parameter_count(&net),
        start.elapsed().as_secs_f64() * 1e3,
        if args.torch {
            "torch-exact"
        } else {
            "counter-based"
        },
        args.seed
    );
    let x = Tensor::randn(&[args.batch, 3, 224, 224], Some(&mut g))?;
    let start = Instant::now();
    let y = net.forward(&x)?;
    println!(
        "forward [{}, 3, 224, 224] -> {:?} in {:.1} ms",
        args.batch,
        y.shape(),
        start.elapsed().as_secs_f64() * 1e3
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        safetensors::save_module(&net, dir.join("resnet18.safetensors"))?;
        let mut io = StateDict::new();
        io.insert("X", x);
        io.insert("Y", y);
        safetensors::save(&io, dir.join("io.safetensors"))?;
        println!(
            "wrote {}/resnet18.safetensors and io.safetensors",
            dir.display()
        );
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = parse_args(&args).unwrap_or_else(|e| {
        eprintln!("resnet18: {e}");
        std::process::exit(2);
    });
    if let Err(e) = run(&args) {
        eprintln!("resnet18: {e}");
        std::process::exit(1);
    }
}
