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
//! `--plot FILE.svg` draws the values' histogram (as a density: each bar's
//! area is its share of the values), the law one element should follow on
//! top, and in the title the Kolmogorov–Smirnov distance `sup |F_n − F|`
//! between the values' empirical CDF and that law's (for `n` independent
//! draws of the law it is about `0.9/√n`; a wrong law shows as a curve off
//! the bars and a larger distance):
//!
//! ```text
//! cargo run --release --example sample -- kaiming_normal --shape 256,1024 \
//!     --plot docs/sample_kaiming_normal.svg
//! ```
//!
//! The law, by name (fans from the shape, as the initializers compute them):
//!
//! * `uniform`, `xavier_uniform`, `kaiming_uniform`: the flat density of
//!   `U[a, b)`, `U(±gain·√(6/(fan_in + fan_out)))`, `U(±gain·√(3/fan))`;
//! * `normal`, `xavier_normal`, `kaiming_normal`: the Gaussian density of
//!   `N(mean, std²)`, `std = gain·√(2/(fan_in + fan_out))`, `gain/√fan`;
//! * `trunc_normal`: the Gaussian density renormalized on `[a, b]`;
//! * `constant`, `zeros`, `ones`: one atom, drawn as a stem with a dot as
//!   high as the histogram's bar at that value should be (mass / bin width);
//! * `eye`, `dirac`: atoms at 0 and 1, the mass at 1 being the share of ones
//!   the fill must write (`min(rows, cols)`, `groups·min(out/groups, in)`
//!   of the elements): the fill is not random, so the distance is 0 or the
//!   count is wrong;
//! * `sparse`: an atom at 0 of mass `⌈sparsity·rows⌉/rows` plus the rest of
//!   `N(0, std²)`;
//! * `orthogonal`: one entry of a uniformly distributed (semi-)orthogonal
//!   `rows × cols` matrix, `gain` times one coordinate of a uniform point on
//!   the unit sphere of `R^m`, `m = max(rows, cols)` (a column of the tall
//!   factor): density ∝ `(1 − t²)^((m − 3)/2)` on `[−1, 1]`, integrated
//!   numerically. For `m < 3` no law is drawn and the title says so.
//!
//! The entries of an orthogonal or sparse matrix are not independent (unit
//! columns, a fixed number of zeros per column), so their distance describes
//! the fit rather than being a test.
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

// The crate's own `erfc`, for the normal CDF of `--plot`'s KS distance.
#[path = "../src/special.rs"]
mod special;

/// Draws a tensor from one of nninit's fills and prints the throughput.
#[derive(Parser)]
#[command(name = "sample", arg_required_else_help = false)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) dist: Dist,
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
    /// Draw the values' histogram, the target density and their KS distance
    /// as an SVG picture
    #[arg(long, global = true, value_name = "FILE.svg")]
    plot: Option<String>,
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
pub(crate) enum Dist {
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
pub(crate) struct Gain {
    #[arg(long, default_value_t = 1.0)]
    gain: f64,
}

#[derive(clap::Args, Clone, Copy)]
pub(crate) struct Kaiming {
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

/// Everything `main` does with `argv` (the arguments after the program
/// name) but exit: `Err` is the one-line message of a bad argument, which
/// `main` prints before exiting with code 2.
pub(crate) fn run(argv: impl IntoIterator<Item = String>) -> Result<(), String> {
    let args = match parse_args(argv) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help
            return Ok(());
        }
        Err(e) => return Err(one_line(&e)),
    };
    let s = sample(&args)?;
    report(&args, &s.tensor, s.seconds, s.kernels, s.threads)
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

/// Prints the throughput line and writes `--out` and `--plot`.
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
    if let Some(path) = &args.plot {
        let what = format!("{} {:?}", args.name, tensor.shape());
        let law = match tensor.numel() {
            0 => return Err("--plot: the tensor is empty".into()),
            _ => target(args.dist, tensor.shape())?,
        };
        let (svg, ks) = plot(&what, tensor.as_slice(), law.as_ref())?;
        std::fs::write(path, svg).map_err(|e| format!("{path}: {e}"))?;
        match (ks, law) {
            (Some(d), Some(law)) => {
                println!("wrote {path} (KS distance {} from {})", sig(d), law.name)
            }
            _ => println!("wrote {path} (no target law for this shape)"),
        }
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

// ---- --plot: the histogram against the target law ----

/// The law of one element of the tensor (at a position chosen uniformly):
/// a mixture of `parts` with the given weights (summing to 1).
pub(crate) struct Law {
    /// The legend's description (`N(0, 0.0884²)`).
    name: String,
    parts: Vec<(f64, Part)>,
}

enum Part {
    /// All its mass at one value.
    Atom(f64),
    /// `U[a, b)`.
    Uniform { a: f64, b: f64 },
    /// `N(mean, std²)` conditioned on `[a, b]` (`±∞` for no truncation).
    Normal { mean: f64, std: f64, a: f64, b: f64 },
    /// A density tabulated at `lo + i·step`, with its CDF there.
    Table {
        lo: f64,
        step: f64,
        pdf: Vec<f64>,
        cdf: Vec<f64>,
    },
}

/// The standard normal CDF (0 and 1 at -inf and inf).
fn phi(z: f64) -> f64 {
    if z.is_infinite() {
        return if z > 0.0 { 1.0 } else { 0.0 };
    }
    0.5 * special::erfc(-z / std::f64::consts::SQRT_2)
}

impl Part {
    fn uniform(a: f64, b: f64) -> Part {
        if a == b {
            Part::Atom(a)
        } else {
            Part::Uniform { a, b }
        }
    }

    fn normal(mean: f64, std: f64, a: f64, b: f64) -> Part {
        if std == 0.0 {
            Part::Atom(mean.clamp(a, b))
        } else {
            Part::Normal { mean, std, a, b }
        }
    }

    /// The density of the continuous parts (0 for an atom).
    fn pdf(&self, x: f64) -> f64 {
        match *self {
            Part::Atom(_) => 0.0,
            Part::Uniform { a, b } if a <= x && x < b => 1.0 / (b - a),
            Part::Uniform { .. } => 0.0,
            Part::Normal { mean, std, a, b } => {
                if x < a || x > b {
                    return 0.0;
                }
                let z = (x - mean) / std;
                let mass = phi((b - mean) / std) - phi((a - mean) / std);
                (-0.5 * z * z).exp() / (std * (2.0 * std::f64::consts::PI).sqrt() * mass)
            }
            Part::Table {
                lo, step, ref pdf, ..
            } => interpolate(pdf, lo, step, x, 0.0),
        }
    }

    /// `P(X <= x)`, or `P(X < x)` if `left`.
    fn cdf(&self, x: f64, left: bool) -> f64 {
        match *self {
            Part::Atom(v) if v < x || (v == x && !left) => 1.0,
            Part::Atom(_) => 0.0,
            Part::Uniform { a, b } => ((x - a) / (b - a)).clamp(0.0, 1.0),
            Part::Normal { mean, std, a, b } => {
                let (pa, pb) = (phi((a - mean) / std), phi((b - mean) / std));
                ((phi((x.clamp(a, b) - mean) / std) - pa) / (pb - pa)).clamp(0.0, 1.0)
            }
            Part::Table {
                lo, step, ref cdf, ..
            } => {
                let above = if x > lo { 1.0 } else { 0.0 };
                interpolate(cdf, lo, step, x, above)
            }
        }
    }

    /// Where the density jumps (the ends of a support).
    fn edges(&self) -> Vec<f64> {
        match *self {
            Part::Uniform { a, b } | Part::Normal { a, b, .. } => vec![a, b],
            _ => Vec::new(),
        }
    }
}

/// `table` at `x` by linear interpolation on the grid `lo + i·step`;
/// `outside` beyond it.
fn interpolate(table: &[f64], lo: f64, step: f64, x: f64, outside: f64) -> f64 {
    let t = (x - lo) / step;
    if !(0.0..=(table.len() - 1) as f64).contains(&t) {
        return outside;
    }
    let i = (t as usize).min(table.len() - 2);
    table[i] + (t - i as f64) * (table[i + 1] - table[i])
}

impl Law {
    fn one(name: String, part: Part) -> Law {
        Law {
            name,
            parts: vec![(1.0, part)],
        }
    }

    fn pdf(&self, x: f64) -> f64 {
        self.parts.iter().map(|(w, p)| w * p.pdf(x)).sum()
    }

    fn cdf(&self, x: f64, left: bool) -> f64 {
        self.parts.iter().map(|(w, p)| w * p.cdf(x, left)).sum()
    }

    /// The atoms and their masses.
    fn atoms(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.parts.iter().filter_map(|(w, p)| match p {
            Part::Atom(v) => Some((*v, *w)),
            _ => None,
        })
    }
}

/// A number to 4 significant digits, without trailing zeros.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    match 3 - x.abs().log10().floor() as i32 {
        0 => format!("{x:.0}"),
        digits @ 1..=8 => {
            let text = format!("{x:.*}", digits as usize);
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => format!("{x:.3e}"),
    }
}

/// The law of one element of what `dist` fills a tensor of `shape` with, or
/// `None` where none is drawn (see the module documentation).
pub(crate) fn target(dist: Dist, shape: &[usize]) -> Result<Option<Law>, String> {
    use nninit::init::{calculate_correct_fan, calculate_fan_in_and_fan_out, calculate_gain};
    let e = |e: nninit::Error| e.to_string();
    let inf = f64::INFINITY;
    let normal = |mean: f64, std: f64| {
        Law::one(
            format!("N({}, {}²)", sig(mean), sig(std)),
            Part::normal(mean, std, -inf, inf),
        )
    };
    let symmetric_uniform = |bound: f64| {
        Law::one(
            format!("U(-{0}, {0})", sig(bound)),
            Part::uniform(-bound, bound),
        )
    };
    let numel: usize = shape.iter().product();
    // Masses at 0 and 1 for `ones` ones among the elements.
    let zeros_and_ones = |ones: usize| {
        let p1 = ones as f64 / numel as f64;
        Law {
            name: format!("1 with mass {}, else 0", sig(p1)),
            parts: vec![(1.0 - p1, Part::Atom(0.0)), (p1, Part::Atom(1.0))],
        }
    };
    let constant = |v: f64| {
        let v = f64::from(v as f32);
        Law::one(format!("every element {}", sig(v)), Part::Atom(v))
    };
    Ok(Some(match dist {
        Dist::Uniform { a, b } => {
            Law::one(format!("U[{}, {})", sig(a), sig(b)), Part::uniform(a, b))
        }
        Dist::Normal { mean, std } => normal(mean, std),
        Dist::TruncNormal { mean, std, a, b } => Law::one(
            format!(
                "N({}, {}²) on [{}, {}]",
                sig(mean),
                sig(std),
                sig(a),
                sig(b)
            ),
            Part::normal(mean, std, a, b),
        ),
        Dist::Constant { val } => constant(val),
        Dist::Zeros => constant(0.0),
        Dist::Ones => constant(1.0),
        Dist::Eye => zeros_and_ones(shape[0].min(shape[1])),
        Dist::Dirac { groups } => zeros_and_ones(groups * (shape[0] / groups).min(shape[1])),
        Dist::Orthogonal(Gain { gain }) => {
            // Each column of a Haar (semi-)orthogonal m × k matrix (m >= k) is
            // uniform on the sphere in R^m: one coordinate t has the density
            // ∝ (1 − t²)^((m − 3)/2) on [−1, 1], tabulated here.
            let rows = shape[0];
            let m = rows.max(numel / rows);
            if m < 3 {
                return Ok(None);
            }
            if gain == 0.0 {
                return Ok(Some(constant(0.0)));
            }
            let (g, k) = (gain.abs(), (m as f64 - 3.0) / 2.0);
            let r = (12.0 / (m as f64).sqrt()).min(1.0); // beyond: below e^-70
            let n = 4001;
            let step = 2.0 * r / (n - 1) as f64;
            let pdf: Vec<f64> = (0..n)
                .map(|i| {
                    let t = -r + i as f64 * step;
                    (1.0 - t * t).max(0.0).powf(k)
                })
                .collect();
            let mut cdf = vec![0.0; n];
            for i in 1..n {
                cdf[i] = cdf[i - 1] + 0.5 * step * (pdf[i - 1] + pdf[i]);
            }
            let total = cdf[n - 1];
            Law::one(
                format!(
                    "{} × a coordinate of a uniform point on the sphere of R^{m}",
                    sig(g)
                ),
                Part::Table {
                    lo: -r * g,
                    step: step * g,
                    pdf: pdf.iter().map(|p| p / (total * g)).collect(),
                    cdf: cdf.iter().map(|c| c / total).collect(),
                },
            )
        }
        Dist::Sparse { sparsity, std } => {
            let rows = shape[0];
            let p0 = (sparsity * rows as f64).ceil() / rows as f64;
            Law {
                name: format!("0 with mass {}, else N(0, {}²)", sig(p0), sig(std)),
                parts: vec![
                    (p0, Part::Atom(0.0)),
                    (1.0 - p0, Part::normal(0.0, std, -inf, inf)),
                ],
            }
        }
        Dist::XavierUniform(Gain { gain }) | Dist::XavierNormal(Gain { gain }) => {
            let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape).map_err(e)?;
            let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
            match dist {
                Dist::XavierUniform(_) => symmetric_uniform(3f64.sqrt() * std),
                _ => normal(0.0, std),
            }
        }
        Dist::KaimingUniform(k) | Dist::KaimingNormal(k) => {
            let gain = calculate_gain(k.nonlinearity, Some(k.a)).map_err(e)?;
            let std = gain / (calculate_correct_fan(shape, k.mode).map_err(e)? as f64).sqrt();
            match dist {
                Dist::KaimingUniform(_) => symmetric_uniform(3f64.sqrt() * std),
                _ => normal(0.0, std),
            }
        }
    }))
}

/// The Kolmogorov–Smirnov distance `sup |F_n(x) − F(x)|` of `values` from
/// `law`: at each distinct value x, `F(x−)` against the empirical CDF just
/// below x and `F(x)` against it at x (so atoms and ties count exactly).
pub(crate) fn ks_distance(values: &[f32], law: &Law) -> f64 {
    let mut xs = values.to_vec();
    xs.sort_unstable_by(f32::total_cmp);
    let n = xs.len() as f64;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < xs.len() {
        let j = i + xs[i..].partition_point(|&y| y == xs[i]);
        let x = f64::from(xs[i]);
        d = d
            .max((law.cdf(x, true) - i as f64 / n).abs())
            .max((law.cdf(x, false) - j as f64 / n).abs());
        i = j;
    }
    d
}

/// The SVG picture of `values`: a density histogram, `law`'s density over it
/// (its atoms as stems to the height the histogram would give them), the KS
/// distance in the title after `what`. Returns the picture and the distance.
fn plot(what: &str, values: &[f32], law: Option<&Law>) -> Result<(String, Option<f64>), String> {
    use plotters::prelude::*;
    if values.iter().any(|x| !x.is_finite()) {
        return Err("--plot: not every value is finite".into());
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(f64::from(x)), hi.max(f64::from(x)))
        });
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let n = values.len();
    let bins = ((n as f64).sqrt() as usize).clamp(10, 100);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &x in values {
        counts[(((f64::from(x) - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let bars: Vec<(f64, f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                lo + i as f64 * width,
                lo + (i + 1) as f64 * width,
                c as f64 / (n as f64 * width),
            )
        })
        .collect();
    let pad = 0.03 * (hi - lo);
    let (x0, x1) = (lo - pad, hi + pad);
    // The density at 600 points and on both sides of each jump; the atoms.
    let (mut curve, mut stems) = (Vec::new(), Vec::new());
    let ks = law.map(|law| ks_distance(values, law));
    let title = match ks {
        Some(d) => format!("{what}: KS distance {} from the target", sig(d)),
        None => format!("{what}: histogram only (no target law for this shape)"),
    };
    if let Some(law) = law {
        let mut xs: Vec<f64> = (0..=600)
            .map(|i| x0 + (x1 - x0) * i as f64 / 600.0)
            .collect();
        for (_, part) in &law.parts {
            for e in part.edges().into_iter().filter(|e| (x0..=x1).contains(e)) {
                xs.extend([e - 1e-9 * (x1 - x0), e, e + 1e-9 * (x1 - x0)]);
            }
        }
        xs.sort_by(f64::total_cmp);
        curve = xs.iter().map(|&x| (x, law.pdf(x))).collect();
        stems = law
            .atoms()
            .map(|(v, mass)| (v, mass / width + law.pdf(v)))
            .collect();
    }
    let top = bars
        .iter()
        .map(|b| b.2)
        .chain(curve.iter().chain(&stems).map(|p| p.1))
        .fold(0.0, f64::max)
        * 1.1;

    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 13))
            .x_desc("value")
            .y_desc("density")
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        let bar_style = BLUE.mix(0.35).filled();
        chart
            .draw_series(
                bars.iter()
                    .map(|&(a, b, h)| Rectangle::new([(a, 0.0), (b, h)], bar_style)),
            )?
            .label(format!("{n} values, {bins} bins"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], bar_style));
        if let Some(law) = law {
            let line = RED.stroke_width(2);
            chart
                .draw_series(LineSeries::new(curve.iter().copied(), line))?
                .label(format!("target: {}", law.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], line));
            chart.draw_series(
                stems
                    .iter()
                    .map(|&(v, h)| PathElement::new([(v, 0.0), (v, h)], line)),
            )?;
            chart.draw_series(stems.iter().map(|&p| Circle::new(p, 4, RED.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| format!("--plot: {e}"))?;
    Ok((svg, ks))
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} (see --help)");
            ExitCode::from(2)
        }
    }
}
