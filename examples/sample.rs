//! Draws a tensor from one of nninit's fills, prints the throughput, and
//! optionally writes it as a float32 C-order `.npy` for numpy.
//!
//! ```text
//! cargo run --release --example sample -- normal --shape 4096,4096 \
//!     --mean 0 --std 1 --seed 7 --threads 2 --out x.npy
//! ```
//!
//! ```text
//! cargo run --release --example sample -- orthogonal --shape 1024,1024 --gain 1 --out q.npy
//! cargo run --release --example sample -- kaiming_normal --shape 256,128 \
//!     --a 0 --mode fan_out --nonlinearity relu --out w.npy
//! ```
//!
//! ```text
//! cargo run --release --example sample -- kaiming_uniform --shape 64,32 \
//!     --generator torch --seed 3 --out w.npy
//! ```
//!
//! With `--generator torch` the tensor is PyTorch's own:
//! `torch.manual_seed(S); nn.init.NAME_(torch.empty(shape), ...)` gives the
//! same values, bit for bit (`normal`, `uniform`, `trunc_normal` are
//! `nn.init.normal_`, `uniform_` and `trunc_normal_` then; `orthogonal`
//! matches to 1e-5, its QR being this crate's).
//!
//! Names are the init function names without the trailing underscore. Bad
//! arguments (or parameters an initializer rejects) print a one-line error and
//! exit with code 2.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::init::{FanMode, Init, Nonlinearity};
use nninit::kernels::{Isa, Kernels};
use nninit::{Generator, Tensor};

const USAGE: &str = "\
usage: sample <NAME> --shape D0,D1,... [options]
  uniform   --a A --b B            U[a, b) (defaults 0, 1)
  normal    --mean M --std S       N(mean, std^2) (defaults 0, 1)
  trunc_normal --mean M --std S --a A --b B
                                   N(mean, std^2) conditioned on [a, b]
                                   (defaults 0, 1, -2, 2; a, b absolute, may be -inf/inf)
  constant  --val V                every element V
  zeros, ones
  eye                              identity (2-D)
  dirac     --groups G             Dirac delta (3/4/5-D; default 1)
  orthogonal --gain G              semi-orthogonal times gain (default 1)
  sparse    --sparsity S --std S   N(0, std^2), ceil(S*rows) zeros per column
                                   (sparsity required, std default 0.01)
  xavier_uniform, xavier_normal --gain G          (default 1)
  kaiming_uniform, kaiming_normal --a A --mode fan_in|fan_out --nonlinearity NAME
                                   (defaults 0, fan_in, leaky_relu)
options:
  --generator counter|torch
                    counter-based streams (default), or PyTorch's own numbers
                    (torch.manual_seed(N); nn.init.NAME_(torch.empty(shape), ...))
  --seed N          generator seed (default: PyTorch's default seed)
  --threads N       rayon threads (default: one per core)
  --isa scalar|avx2 force an instruction set (uniform, normal, constant,
                    zeros, ones; set NNINIT_ISA for the initializers)
  --out FILE.npy    write the tensor as a float32 C-order .npy";

/// The parameters each name accepts, beyond the common options.
const NAMES: &[(&str, &[&str])] = &[
    ("uniform", &["a", "b"]),
    ("normal", &["mean", "std"]),
    ("trunc_normal", &["mean", "std", "a", "b"]),
    ("constant", &["val"]),
    ("zeros", &[]),
    ("ones", &[]),
    ("eye", &[]),
    ("dirac", &["groups"]),
    ("orthogonal", &["gain"]),
    ("sparse", &["sparsity", "std"]),
    ("xavier_uniform", &["gain"]),
    ("xavier_normal", &["gain"]),
    ("kaiming_uniform", &["a", "mode", "nonlinearity"]),
    ("kaiming_normal", &["a", "mode", "nonlinearity"]),
];
const COMMON: &[&str] = &["shape", "seed", "generator", "threads", "isa", "out"];

pub(crate) struct Args {
    name: String,
    values: BTreeMap<String, String>,
}

impl Args {
    pub(crate) fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let name = argv.next().ok_or("missing the distribution name")?;
        if name == "-h" || name == "--help" {
            return Err(String::new());
        }
        let allowed = NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("unknown distribution {name:?}"))?;
        let mut values = BTreeMap::new();
        while let Some(flag) = argv.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected an option, found {flag:?}"))?;
            if !allowed.contains(&key) && !COMMON.contains(&key) {
                return Err(format!("{name} does not take --{key}"));
            }
            let value = argv
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            if values.insert(key.to_string(), value).is_some() {
                return Err(format!("--{key} given twice"));
            }
        }
        Ok(Args { name, values })
    }

    fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.values
            .get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{key}: cannot parse {v:?}"))
            })
            .transpose()
    }

    /// An option parsed by a `FromStr` whose error is an `nninit::Error`
    /// (its message names the value).
    fn parsed<T: std::str::FromStr<Err = nninit::Error>>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e: nninit::Error| format!("--{key}: {e}")),
        }
    }

    /// The initializer for an `init` name, or `None` for the plain fills.
    fn init(&self) -> Result<Option<Init>, String> {
        let kaiming = || -> Result<(f64, FanMode, Nonlinearity), String> {
            Ok((
                self.number("a", Some(0.0))?,
                self.parsed("mode", FanMode::FanIn)?,
                self.parsed("nonlinearity", Nonlinearity::LeakyRelu)?,
            ))
        };
        Ok(Some(match self.name.as_str() {
            "eye" => Init::Eye,
            "dirac" => Init::Dirac {
                groups: self.get("groups")?.unwrap_or(1),
            },
            "orthogonal" => Init::Orthogonal {
                gain: self.number("gain", Some(1.0))?,
            },
            "sparse" => Init::Sparse {
                sparsity: self.number("sparsity", None)?,
                std: self.number("std", Some(0.01))?,
            },
            "xavier_uniform" => Init::XavierUniform {
                gain: self.number("gain", Some(1.0))?,
            },
            "xavier_normal" => Init::XavierNormal {
                gain: self.number("gain", Some(1.0))?,
            },
            "kaiming_uniform" => {
                let (a, mode, nonlinearity) = kaiming()?;
                Init::KaimingUniform {
                    a,
                    mode,
                    nonlinearity,
                }
            }
            "kaiming_normal" => {
                let (a, mode, nonlinearity) = kaiming()?;
                Init::KaimingNormal {
                    a,
                    mode,
                    nonlinearity,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The plain fills as initializers (`nn.init.uniform_`, ...), for the
    /// torch-exact generator.
    fn plain_init(&self) -> Result<Init, String> {
        Ok(match self.name.as_str() {
            "uniform" => Init::Uniform {
                a: self.number("a", Some(0.0))?,
                b: self.number("b", Some(1.0))?,
            },
            "normal" => Init::Normal {
                mean: self.number("mean", Some(0.0))?,
                std: self.number("std", Some(1.0))?,
            },
            "trunc_normal" => Init::TruncNormal {
                mean: self.number("mean", Some(0.0))?,
                std: self.number("std", Some(1.0))?,
                a: self.number("a", Some(-2.0))?,
                b: self.number("b", Some(2.0))?,
            },
            "constant" => Init::Constant {
                val: self.number("val", None)?,
            },
            "zeros" => Init::Constant { val: 0.0 },
            "ones" => Init::Constant { val: 1.0 },
            other => unreachable!("{other} is an initializer"),
        })
    }

    /// `--generator` and `--seed`.
    fn generator(&self) -> Result<Generator, String> {
        let seed = self.get("seed")?.unwrap_or(nninit::rng::DEFAULT_SEED);
        match self.values.get("generator").map(String::as_str) {
            None | Some("counter") => Ok(Generator::new(seed)),
            Some("torch") => Ok(Generator::torch(seed)),
            Some(other) => Err(format!(
                "--generator: expected counter or torch, found {other:?}"
            )),
        }
    }

    fn number(&self, key: &str, default: Option<f64>) -> Result<f64, String> {
        self.get(key)?
            .or(default)
            .ok_or_else(|| format!("{} needs --{key}", self.name))
    }

    fn shape(&self) -> Result<Vec<usize>, String> {
        let text = self.values.get("shape").ok_or("--shape is required")?;
        if text.is_empty() {
            return Ok(Vec::new()); // a 0-d tensor
        }
        text.split(',')
            .map(|d| {
                d.trim()
                    .parse()
                    .map_err(|_| format!("--shape: bad dimension {d:?}"))
            })
            .collect()
    }
}

fn run(args: &Args) -> Result<(), String> {
    let s = sample(args)?;
    report(args, &s.tensor, s.seconds, s.kernels, s.threads)
}

/// What [`sample`] made.
pub(crate) struct Sampled {
    pub(crate) tensor: Tensor,
    /// Seconds the fill took.
    pub(crate) seconds: f64,
    pub(crate) kernels: Kernels,
    pub(crate) threads: usize,
    /// The generator after the fill (`tests/torch_exact.rs` checks its state).
    #[allow(dead_code)]
    pub(crate) generator: Generator,
}

/// The tensor `args` describe.
pub(crate) fn sample(args: &Args) -> Result<Sampled, String> {
    let shape = args.shape()?;
    let mut generator = args.generator()?;
    let kernels = match args.get::<String>("isa")? {
        None => Kernels::active(),
        Some(name) => Kernels::new(name.parse::<Isa>()?).map_err(|e| e.to_string())?,
    };
    let threads = args
        .get("threads")?
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;

    let init = match args.init()? {
        None if generator.is_torch() => Some(args.plain_init()?),
        init => init,
    };
    if let Some(init) = init {
        if args.values.contains_key("isa") && kernels.isa() != Kernels::active().isa() {
            return Err(format!(
                "--isa does not apply to {}: set NNINIT_ISA={} instead",
                args.name,
                kernels.isa()
            ));
        }
        // The initializer checks its parameters and the shape before it
        // takes a stream; the tensor is allocated first (it is its target).
        let mut tensor = Tensor::zeros(&shape).map_err(|e| e.to_string())?;
        let start = Instant::now();
        pool.install(|| init.apply(&mut tensor, Some(&mut generator)))
            .map_err(|e| e.to_string())?;
        let seconds = start.elapsed().as_secs_f64();
        return Ok(Sampled {
            tensor,
            seconds,
            kernels: Kernels::active(),
            threads,
            generator,
        });
    }

    // Parameters are validated before anything is allocated.
    enum Fill {
        Random(Box<dyn Distribution>),
        Constant(f32),
    }
    let fill = match args.name.as_str() {
        "uniform" => Fill::Random(Box::new(
            Uniform::new(args.number("a", Some(0.0))?, args.number("b", Some(1.0))?)
                .map_err(|e| e.to_string())?,
        )),
        "normal" => Fill::Random(Box::new(
            Normal::new(
                args.number("mean", Some(0.0))?,
                args.number("std", Some(1.0))?,
            )
            .map_err(|e| e.to_string())?,
        )),
        "trunc_normal" => Fill::Random(Box::new(
            TruncatedNormal::new(
                args.number("mean", Some(0.0))?,
                args.number("std", Some(1.0))?,
                args.number("a", Some(-2.0))?,
                args.number("b", Some(2.0))?,
            )
            .map_err(|e| e.to_string())?,
        )),
        "constant" => {
            let v = args.number("val", None)?;
            if !(v as f32).is_finite() && v.is_finite() {
                return Err(format!("--val {v} overflows float"));
            }
            Fill::Constant(v as f32)
        }
        "zeros" => Fill::Constant(0.0),
        "ones" => Fill::Constant(1.0),
        other => unreachable!("{other} was checked by the parser"),
    };

    let mut tensor = Tensor::zeros(&shape).map_err(|e| e.to_string())?;
    let stream = generator.next_stream();
    let start = Instant::now();
    pool.install(|| match &fill {
        Fill::Random(d) => d.fill_with(kernels, stream, 0, tensor.as_mut_slice()),
        Fill::Constant(v) => kernels.fill_constant(tensor.as_mut_slice(), *v),
    });
    let seconds = start.elapsed().as_secs_f64();
    Ok(Sampled {
        tensor,
        seconds,
        kernels,
        threads,
        generator,
    })
}

/// Prints the throughput line and writes `--out`.
fn report(
    args: &Args,
    tensor: &Tensor,
    seconds: f64,
    kernels: Kernels,
    threads: usize,
) -> Result<(), String> {
    let n = tensor.numel();
    println!(
        "{}: {n} values in {:.3} ms = {:.3} G values/s ({}, {threads} thread{})",
        args.name,
        seconds * 1e3,
        n as f64 / seconds.max(1e-12) / 1e9,
        kernels.isa(),
        if threads == 1 { "" } else { "s" },
    );
    if let Some(path) = args.values.get("out") {
        nninit::io::npy::save(tensor, path).map_err(|e| format!("{path}: {e}"))?;
        println!("wrote {path} (float32, shape {:?})", tensor.shape());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = Args::parse(std::env::args().skip(1)).and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e} (see --help)");
            ExitCode::from(2)
        }
    }
}
