//! `nninit`: initialize a model's checkpoint without holding the model.
//!
//! ```text
//! nninit init --config config.json --out DIR [--dtype bf16] [--max-shard-size 5GB] [--seed S]
//! nninit init --plan plan.json --out DIR ...
//! ```
//!
//! writes `DIR` as Hugging Face's `save_pretrained` does: `config.json`
//! (copied), the shards and `model.safetensors.index.json` (or one
//! `model.safetensors`), initialized as the model's `_init_weights` does
//! (Llama family: `normal(0, initializer_range)` for linear and embedding
//! weights, ones for the RMSNorm weights), from nninit's counter-based
//! generator with seed `S`. Each tensor is generated as it is written, so
//! memory stays constant whatever the model's size. Under `mpirun -n K`
//! (or `srun`, `torchrun`) each rank writes its share of the files and rank
//! 0 the index last; the files are the same for any `K`. A progress bar is
//! drawn on a terminal, none in a pipe. Built with the cargo feature `cli`
//! (and `mpi` for MPI's rank and barrier).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nninit::dist::{ShardedSave, World, save_sharded_with_progress};
use nninit::io::checkpoint::{self, ShardPlan};
use nninit::io::dtype::Dtype;
use nninit::nn::planned::PlannedModel;
use nninit::{Generator, Result};

#[derive(Parser, Debug)]
#[command(
    name = "nninit",
    version,
    about = "Initialize model checkpoints, in constant memory, on one or many processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write an initialized checkpoint directory.
    Init {
        /// A Hugging Face Llama-family `config.json`.
        #[arg(long, conflicts_with = "plan", required_unless_present = "plan")]
        config: Option<PathBuf>,
        /// A generic plan: `{"tensors": [{"name", "shape", "init"}]}`.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// The output directory.
        #[arg(long)]
        out: PathBuf,
        /// The dtype of the float tensors: f32, bf16 or f16.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// The most bytes of tensor data per file (`5GB` style).
        #[arg(long, default_value = "5GB")]
        max_shard_size: String,
        /// The generator's seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Seconds rank 0 waits for the other ranks' files (without MPI).
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
}

/// The world: MPI's when built with `mpi` and launched by `mpirun`, else the
/// launcher's environment.
fn world() -> Result<World> {
    #[cfg(feature = "mpi")]
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() || std::env::var_os("PMI_SIZE").is_some()
    {
        return World::mpi();
    }
    World::from_env()
}

fn run(cli: Cli) -> std::result::Result<(), String> {
    let Command::Init {
        config,
        plan,
        out,
        dtype,
        max_shard_size,
        seed,
        timeout,
    } = cli.command;
    let err = |e: nninit::Error| e.to_string();
    let dtype: Dtype = dtype.parse().map_err(err)?;
    if !dtype.is_float() {
        return Err(format!("--dtype {dtype}: expected f32, bf16 or f16"));
    }
    let max_shard_size = checkpoint::parse_size(&max_shard_size).map_err(err)?;
    let world = world().map_err(err)?;
    let mut g = Generator::new(seed);
    let start = Instant::now();
    let model = match (&config, &plan) {
        (Some(path), _) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
            let model = PlannedModel::llama(&value, Some(&mut g)).map_err(err)?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            if world.rank() == 0 {
                std::fs::write(out.join("config.json"), &text)
                    .map_err(|e| format!("config.json: {e}"))?;
            }
            model
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            PlannedModel::from_plan_json(&text, Some(&mut g)).map_err(err)?
        }
        (None, None) => unreachable!("clap requires --config or --plan"),
    };
    let shard_plan = ShardPlan::for_module(&model, dtype, max_shard_size);
    let mine: u64 = shard_plan
        .tensors()
        .iter()
        .filter(|t| t.file % world.size() == world.rank())
        .map(|t| t.shape.iter().product::<usize>() as u64 * t.dtype.size() as u64)
        .sum();
    let bar = ProgressBar::with_draw_target(Some(mine), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("rank {}/{}", world.rank(), world.size()));
    let written = Arc::new(AtomicU64::new(0));
    let progress = {
        let (bar, written) = (bar.clone(), Arc::clone(&written));
        move |bytes: u64| {
            written.fetch_add(bytes, Ordering::Relaxed);
            bar.inc(bytes);
        }
    };
    let options = ShardedSave {
        float_dtype: dtype,
        max_shard_size,
        timeout: std::time::Duration::from_secs(timeout),
    };
    save_sharded_with_progress(&model, &out, &options, &world, &progress).map_err(err)?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let bytes = written.load(Ordering::Relaxed);
    println!(
        "rank {}/{}: {} of {} files, {} parameters in all, {:.2} GB written in {:.2} s ({:.2} GB/s){}",
        world.rank(),
        world.size(),
        (0..shard_plan.files().len())
            .filter(|f| f % world.size() == world.rank())
            .count(),
        shard_plan.files().len(),
        model.numel(),
        bytes as f64 / 1e9,
        seconds,
        bytes as f64 / 1e9 / seconds.max(1e-9),
        match (world.rank(), shard_plan.is_sharded()) {
            (0, true) => ", index written",
            (0, false) => " (one file: model.safetensors)",
            _ => "",
        }
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nninit: {e}");
            ExitCode::from(2)
        }
    }
}
