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
//! Names are the init function names without the trailing underscore;
//! `sample --help` lists them, `sample NAME --help` their parameters. Bad
//! arguments (or parameters an initializer rejects) print a one-line error and
//! exit with code 2.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nninit::distributions::{Distribution, Normal, TruncatedNormal, Uniform};
use nninit::init::{FanMode, Init, Nonlinearity};
use nninit::kernels::{Isa, Kernels};
use nninit::{Generator, Tensor};

/// Draws a tensor from one of nninit's fills and prints the throughput.
#[derive(Parser)]
#[command(name = "sample", arg_required_else_help = false)]
pub(crate) struct Args {
    #[command(subcommand)]
    dist: Dist,
    /// The subcommand's name (`kaiming_normal`).
    #[arg(skip)]
    name: String,
    /// The tensor's shape, comma-separated (empty: a 0-d tensor) [required]
    #[arg(long, global = true, value_name = "D0,D1,...", value_parser = parse_shape)]
    shape: Option<Shape>,
    /// Counter-based streams, or PyTorch's own numbers
    /// (torch.manual_seed(N); nn.init.NAME_(torch.empty(shape), ...))
    #[arg(long, global = true, value_enum, default_value_t = GeneratorKind::Counter)]
    generator: GeneratorKind,
    /// Generator seed [default: PyTorch's default seed]
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Rayon threads [default: one per core]
    #[arg(long, global = true)]
    threads: Option<NonZeroUsize>,
    /// Force an instruction set: scalar, avx2 or avx512 (uniform, normal,
    /// trunc_normal, constant, zeros, ones; set NNINIT_ISA for the initializers)
    #[arg(long, global = true)]
    isa: Option<Isa>,
    /// Write the tensor as a float32 C-order .npy
    #[arg(long, global = true, value_name = "FILE.npy")]
    out: Option<String>,
}

/// A shape (an alias, so that clap takes it as one value, not a list).
type Shape = Vec<usize>;

fn parse_shape(text: &str) -> Result<Shape, String> {
    if text.is_empty() {
        return Ok(Vec::new()); // a 0-d tensor
    }
    text.split(',')
        .map(|d| d.trim().parse().map_err(|_| format!("bad dimension {d:?}")))
        .collect()
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum GeneratorKind {
    Counter,
    Torch,
}

/// The fills, named as the init functions without their trailing underscore.
#[derive(Subcommand, Clone, Copy)]
#[command(rename_all = "snake_case")]
enum Dist {
    /// U[a, b)
    Uniform {
        #[arg(long, default_value_t = 0.0)]
        a: f64,
        #[arg(long, default_value_t = 1.0)]
        b: f64,
    },
    /// N(mean, std^2)
    Normal {
        #[arg(long, default_value_t = 0.0)]
        mean: f64,
        #[arg(long, default_value_t = 1.0)]
        std: f64,
    },
    /// N(mean, std^2) conditioned on [a, b] (a, b absolute, may be -inf/inf)
    TruncNormal {
        #[arg(long, default_value_t = 0.0)]
        mean: f64,
        #[arg(long, default_value_t = 1.0)]
        std: f64,
        #[arg(long, default_value_t = -2.0)]
        a: f64,
        #[arg(long, default_value_t = 2.0)]
        b: f64,
    },
    /// Every element VAL
    Constant {
        #[arg(long)]
        val: f64,
    },
    /// Every element 0
    Zeros,
    /// Every element 1
    Ones,
    /// The identity (2-D)
    Eye,
    /// The Dirac delta (3/4/5-D)
    Dirac {
        #[arg(long, default_value_t = 1)]
        groups: usize,
    },
    /// A semi-orthogonal matrix times gain
    Orthogonal(Gain),
    /// N(0, std^2), ceil(sparsity * rows) zeros per column
    Sparse {
        #[arg(long)]
        sparsity: f64,
        #[arg(long, default_value_t = 0.01)]
        std: f64,
    },
    /// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
    XavierUniform(Gain),
    /// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
    XavierNormal(Gain),
    /// U(-bound, bound), bound = gain * sqrt(3 / fan)
    KaimingUniform(Kaiming),
    /// N(0, std^2), std = gain / sqrt(fan)
    KaimingNormal(Kaiming),
}

#[derive(clap::Args, Clone, Copy)]
struct Gain {
    #[arg(long, default_value_t = 1.0)]
    gain: f64,
}

#[derive(clap::Args, Clone, Copy)]
struct Kaiming {
    /// The negative slope of leaky_relu
    #[arg(long, default_value_t = 0.0)]
    a: f64,
    /// fan_in or fan_out
    #[arg(long, default_value = "fan_in")]
    mode: FanMode,
    /// Its gain is calculate_gain(NONLINEARITY, a)
    #[arg(long, default_value = "leaky_relu")]
    nonlinearity: Nonlinearity,
}

/// Parses `argv` (the arguments after the program name). Values may start
/// with `-` (`--a -inf`).
pub(crate) fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, clap::Error> {
    let command = Args::command().mut_subcommands(|s| s.allow_hyphen_values(true));
    let matches = command.try_get_matches_from(std::iter::once("sample".into()).chain(argv))?;
    let mut args = Args::from_arg_matches(&matches)?;
    args.name = matches.subcommand_name().unwrap_or_default().to_string();
    Ok(args)
}

impl Dist {
    /// The initializer (the plain fills as `nn.init.uniform_`, ...).
    fn init(self) -> Init {
        match self {
            Dist::Uniform { a, b } => Init::Uniform { a, b },
            Dist::Normal { mean, std } => Init::Normal { mean, std },
            Dist::TruncNormal { mean, std, a, b } => Init::TruncNormal { mean, std, a, b },
            Dist::Constant { val } => Init::Constant { val },
            Dist::Zeros => Init::Constant { val: 0.0 },
            Dist::Ones => Init::Constant { val: 1.0 },
            Dist::Eye => Init::Eye,
            Dist::Dirac { groups } => Init::Dirac { groups },
            Dist::Orthogonal(Gain { gain }) => Init::Orthogonal { gain },
            Dist::Sparse { sparsity, std } => Init::Sparse { sparsity, std },
            Dist::XavierUniform(Gain { gain }) => Init::XavierUniform { gain },
            Dist::XavierNormal(Gain { gain }) => Init::XavierNormal { gain },
            Dist::KaimingUniform(Kaiming {
                a,
                mode,
                nonlinearity,
            }) => Init::KaimingUniform {
                a,
                mode,
                nonlinearity,
            },
            Dist::KaimingNormal(Kaiming {
                a,
                mode,
                nonlinearity,
            }) => Init::KaimingNormal {
                a,
                mode,
                nonlinearity,
            },
        }
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
    let shape = args.shape.as_deref().ok_or("--shape is required")?;
    let seed = args.seed.unwrap_or(nninit::rng::DEFAULT_SEED);
    let mut generator = match args.generator {
        GeneratorKind::Counter => Generator::new(seed),
        GeneratorKind::Torch => Generator::torch(seed),
    };
    let kernels = match args.isa {
        None => Kernels::active(),
        Some(isa) => Kernels::new(isa).map_err(|e| e.to_string())?,
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        NonZeroUsize::get,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;

    // The plain fills on the counter-based generator run the kernels
    // directly (so `--isa` applies); the rest go through their initializer.
    // Parameters are validated before anything is allocated.
    let fill = match args.dist {
        _ if generator.is_torch() => None,
        Dist::Uniform { a, b } => Some(random(Uniform::new(a, b))?),
        Dist::Normal { mean, std } => Some(random(Normal::new(mean, std))?),
        Dist::TruncNormal { mean, std, a, b } => {
            Some(random(TruncatedNormal::new(mean, std, a, b))?)
        }
        Dist::Constant { val } => {
            if !(val as f32).is_finite() && val.is_finite() {
                return Err(format!("--val {val} overflows float"));
            }
            Some(Fill::Constant(val as f32))
        }
        Dist::Zeros => Some(Fill::Constant(0.0)),
        Dist::Ones => Some(Fill::Constant(1.0)),
        _ => None,
    };
    let Some(fill) = fill else {
        if args.isa.is_some() && kernels.isa() != Kernels::active().isa() {
            return Err(format!(
                "--isa does not apply to {}: set NNINIT_ISA={} instead",
                args.name,
                kernels.isa()
            ));
        }
        // The initializer checks its parameters and the shape before it
        // takes a stream; the tensor is allocated first (it is its target).
        let mut tensor = Tensor::zeros(shape).map_err(|e| e.to_string())?;
        let start = Instant::now();
        pool.install(|| args.dist.init().apply(&mut tensor, Some(&mut generator)))
            .map_err(|e| e.to_string())?;
        let seconds = start.elapsed().as_secs_f64();
        return Ok(Sampled {
            tensor,
            seconds,
            kernels: Kernels::active(),
            threads,
            generator,
        });
    };

    let mut tensor = Tensor::zeros(shape).map_err(|e| e.to_string())?;
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

/// A plain fill, run by the kernels.
enum Fill {
    Random(Box<dyn Distribution>),
    Constant(f32),
}

/// A plain random fill, or the error its parameters give.
fn random<D: Distribution + 'static>(d: nninit::Result<D>) -> Result<Fill, String> {
    d.map(|d| Fill::Random(Box::new(d)))
        .map_err(|e| e.to_string())
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
    if let Some(path) = &args.out {
        nninit::io::npy::save(tensor, path).map_err(|e| format!("{path}: {e}"))?;
        println!("wrote {path} (float32, shape {:?})", tensor.shape());
    }
    Ok(())
}

/// A clap error in one line: its first paragraph, without `error: ` and the
/// usage that follows.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    let result = match parse_args(std::env::args().skip(1)) {
        Ok(args) => run(&args),
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        Err(e) => Err(one_line(&e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} (see --help)");
            ExitCode::from(2)
        }
    }
}
