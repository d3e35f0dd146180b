//! Many processes, one job: a rank's place in it, read from the launcher's
//! environment, and the barrier that orders its steps.
//!
//! [`World::from_env`] reads the rank and world size that `mpirun`
//! (OpenMPI's `OMPI_COMM_WORLD_RANK`/`_SIZE`, MPICH's `PMI_RANK`/`PMI_SIZE`),
//! `srun` (`SLURM_PROCID`/`SLURM_NTASKS`) or `torchrun` (`RANK`/`WORLD_SIZE`)
//! give each process; a process started alone is rank 0 of 1. With the cargo
//! feature `mpi`, `World::mpi` takes them from MPI itself (OpenMPI through
//! the `mpi` crate) and its barrier is `MPI_Barrier`.
//!
//! A checkpoint written by many ranks needs one ordering point: the index is
//! written after every shard. Without MPI that barrier is the files
//! themselves: every shard is renamed into place atomically, so rank 0 waits
//! until each one exists ([`crate::io::checkpoint`]).

use crate::error::{Error, Result};

/// A process's rank and the number of processes.
#[derive(Debug)]
pub struct World {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<MpiWorld>,
}

#[cfg(feature = "mpi")]
struct MpiWorld {
    _universe: mpi::environment::Universe,
    world: mpi::topology::SimpleCommunicator,
}

#[cfg(feature = "mpi")]
impl std::fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MpiWorld")
    }
}

/// The environment variables launchers set: `(rank, size)` pairs, first
/// found wins.
const LAUNCHERS: [(&str, &str); 4] = [
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMI_RANK", "PMI_SIZE"),
    ("SLURM_PROCID", "SLURM_NTASKS"),
    ("RANK", "WORLD_SIZE"),
];

impl World {
    /// Rank 0 of 1.
    pub fn single() -> World {
        World::new(0, 1).expect("0 < 1")
    }

    /// Rank `rank` of `size`.
    ///
    /// # Errors
    /// [`Error::Rank`] unless `rank < size`.
    pub fn new(rank: usize, size: usize) -> Result<World> {
        if rank >= size {
            return Err(Error::Rank {
                rank: rank.to_string(),
                size: size.to_string(),
            });
        }
        Ok(World {
            rank,
            size,
            #[cfg(feature = "mpi")]
            mpi: None,
        })
    }

    /// The rank and size the launcher's environment gives (see the module
    /// docs); rank 0 of 1 if none does.
    ///
    /// # Errors
    /// [`Error::Rank`] for values that are not numbers or a rank not below
    /// the size.
    pub fn from_env() -> Result<World> {
        for (rank, size) in LAUNCHERS {
            if let (Ok(r), Ok(s)) = (std::env::var(rank), std::env::var(size)) {
                let parse = |v: &str| v.trim().parse::<usize>().ok();
                return match (parse(&r), parse(&s)) {
                    (Some(r), Some(s)) => World::new(r, s),
                    _ => Err(Error::Rank { rank: r, size: s }),
                };
            }
        }
        Ok(World::single())
    }

    /// The world of MPI's `MPI_COMM_WORLD` (initializing MPI).
    ///
    /// # Errors
    /// [`Error::Rank`] if MPI cannot be initialized (already initialized in
    /// this process, say).
    #[cfg(feature = "mpi")]
    pub fn mpi() -> Result<World> {
        use mpi::traits::Communicator;
        let universe = mpi::initialize().ok_or(Error::Rank {
            rank: "?".into(),
            size: "MPI could not be initialized".into(),
        })?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(World {
            rank,
            size,
            mpi: Some(MpiWorld {
                _universe: universe,
                world,
            }),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this world runs over MPI (its [`barrier`](Self::barrier) is
    /// `MPI_Barrier`).
    pub fn is_mpi(&self) -> bool {
        #[cfg(feature = "mpi")]
        {
            self.mpi.is_some()
        }
        #[cfg(not(feature = "mpi"))]
        {
            false
        }
    }

    /// Waits until every rank reaches the barrier: `MPI_Barrier` over MPI,
    /// nothing otherwise (the callers then synchronize through files).
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::collective::CommunicatorCollectives;
            m.world.barrier();
        }
    }
}

/// How [`save_sharded`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedSave {
    /// The dtype of the float tensors in the files.
    pub float_dtype: crate::io::dtype::Dtype,
    /// The most bytes of tensor data per file.
    pub max_shard_size: u64,
    /// How long rank 0 waits for the other ranks' files (without MPI).
    pub timeout: std::time::Duration,
}

impl Default for ShardedSave {
    fn default() -> Self {
        ShardedSave {
            float_dtype: crate::io::dtype::Dtype::F32,
            max_shard_size: crate::io::checkpoint::DEFAULT_MAX_SHARD_SIZE,
            timeout: std::time::Duration::from_secs(3600),
        }
    }
}

/// Writes `module`'s checkpoint into `dir` as rank `world.rank()` of
/// `world.size()`: every rank computes the same plan, writes the files
/// `k` with `k % size == rank` (a module on meta generates each tensor as it
/// is written, so a rank allocates only what it writes), and rank 0 writes
/// the index last, once every file of the plan is in place (after
/// [`World::barrier`] over MPI; without MPI it waits for the files, which
/// appear atomically). A checkpoint without its index is visibly incomplete:
/// rank 0 removes an old index first. The files do not depend on the world
/// size: they are those of a single process writing everything.
///
/// ```
/// use nninit::dist::{save_sharded, ShardedSave, World};
/// use nninit::nn::{meta, Linear, Module, Sequential};
/// use nninit::Generator;
///
/// let mut g = Generator::new(1);
/// let net = meta::on_meta(|| -> nninit::Result<Sequential> {
///     Ok(Sequential::new().with(Linear::with_options(64, 64, true, Some(&mut g))?).with(Linear::with_options(64, 8, true, Some(&mut g))?))
/// }).unwrap();
/// let dir = std::env::temp_dir().join(format!("nninit-doc-sharded-{}", std::process::id()));
/// let options = ShardedSave { max_shard_size: 10_000, ..Default::default() };
/// let plan = save_sharded(&net, &dir, &options, &World::single()).unwrap();
/// assert_eq!(plan.files(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
/// assert!(dir.join("model.safetensors.index.json").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// I/O errors; [`Error::Checkpoint`] if a file of another plan is found (the
/// ranks disagree about the model) or rank 0 times out waiting for a file
/// (a rank died: rerunning completes the checkpoint).
pub fn save_sharded(
    module: &dyn crate::nn::Module,
    dir: impl AsRef<std::path::Path>,
    options: &ShardedSave,
    world: &World,
) -> Result<crate::io::checkpoint::ShardPlan> {
    save_sharded_with_progress(module, dir, options, world, &|_| {})
}

/// [`save_sharded`], calling `progress(bytes)` after each tensor this rank
/// writes.
///
/// # Errors
/// As [`save_sharded`].
pub fn save_sharded_with_progress(
    module: &dyn crate::nn::Module,
    dir: impl AsRef<std::path::Path>,
    options: &ShardedSave,
    world: &World,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<crate::io::checkpoint::ShardPlan> {
    use crate::io::checkpoint::{self, ShardPlan};
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir)?;
    let plan = ShardPlan::for_module(module, options.float_dtype, options.max_shard_size);
    if world.rank == 0 {
        match std::fs::remove_file(dir.join(checkpoint::INDEX_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    checkpoint::write_files(
        module,
        dir,
        &plan,
        |file| file % world.size == world.rank,
        progress,
    )?;
    world.barrier();
    if world.rank == 0 {
        if !world.is_mpi() {
            checkpoint::wait_for_files(dir, &plan, options.timeout)?;
        }
        checkpoint::write_index(dir, &plan)?;
    }
    Ok(plan)
}
