//! Sharded checkpoints in Hugging Face's layout: `model-00001-of-00004.safetensors`
//! … plus `model.safetensors.index.json` (`{"metadata": {"total_size": N},
//! "weight_map": {name: file}}`), or a single `model.safetensors` when
//! everything fits in one shard, as `save_pretrained` writes them.
//!
//! # The plan
//! [`ShardPlan::for_module`] assigns tensors to files as `huggingface_hub`'s
//! `split_state_dict_into_shards_factory` does, deterministically: tensors in
//! state-dict order (each tied storage once, under its first name), a new
//! file when the next tensor would pass `max_shard_size` bytes, and a tensor
//! larger than the limit in a file of its own. Sizes are in the dtype
//! written. Every process of a job computes the same plan from the same
//! model, so each can write just its files
//! ([`crate::dist::save_sharded`]); the index is written last.
//!
//! Each file is an ordinary safetensors file (streamed, atomic; see
//! [`super::safetensors`]); its `__metadata__` records the ties of its
//! tensors and `"nninit_plan"`, a hash of the whole plan, so that files of
//! different plans are never mixed into one checkpoint.
//!
//! # Loading
//! [`load_sharded`] reads the index (or the single file), checks it
//! strictly (every index entry present in its file with the declared shape,
//! no tensor in two files, the files' sizes adding up to `total_size`,
//! missing files named; files the index does not name are ignored), then
//! loads into a module by name as [`crate::nn::Module::load_state_dict`]
//! does, straight from the memory-mapped files.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::dtype::Dtype;
use super::safetensors::{self, DataRef, ModuleSource, Parsed, SaveOptions, WriteSource};
use super::{MappedFile, write_atomically};
use crate::error::{Error, Result};
use crate::nn::{self, LoadReport, LoadSource, Module, Shared};

/// The index file's name.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// The file of a checkpoint that fits in one shard.
pub const SINGLE_FILE: &str = "model.safetensors";
/// `huggingface_hub`'s default maximum shard size (5 GB).
pub const DEFAULT_MAX_SHARD_SIZE: u64 = 5_000_000_000;

/// `"5GB"` → 5 000 000 000, as `huggingface_hub.parse_size_to_int` reads
/// sizes (decimal units `KB`, `MB`, `GB`, `TB`; a fractional value is
/// truncated); a bare number is bytes.
///
/// ```
/// use nninit::io::checkpoint::parse_size;
/// assert_eq!(parse_size("5GB").unwrap(), 5_000_000_000);
/// assert_eq!(parse_size("1.5mb").unwrap(), 1_500_000);
/// assert_eq!(parse_size("4096").unwrap(), 4096);
/// assert!(parse_size("5GiB").is_err());
/// ```
///
/// # Errors
/// [`Error::Format`] naming the text.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let bad = || Error::Format {
        format: "size",
        reason: format!("cannot parse {text:?}: expected a number with KB, MB, GB or TB"),
    };
    if let Ok(bytes) = t.parse::<u64>() {
        return Ok(bytes);
    }
    if t.len() < 2 || !t.is_char_boundary(t.len() - 2) {
        return Err(bad());
    }
    let (value, unit) = t.split_at(t.len() - 2);
    let multiplier: f64 = match unit.to_ascii_uppercase().as_str() {
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let v: f64 = value.trim().parse().map_err(|_| bad())?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(bad());
    }
    Ok((v * multiplier) as u64)
}

/// One tensor of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Its name (the first name of its storage).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The dtype written.
    pub dtype: Dtype,
    /// The file it goes to (an index into [`ShardPlan::files`]).
    pub file: usize,
}

/// Which tensors go to which file (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    tensors: Vec<PlannedTensor>,
    files: Vec<String>,
    /// `alias → kept name` for the tied names not written.
    ties: BTreeMap<String, String>,
    total_size: u64,
}

impl ShardPlan {
    /// The plan for `tensors` (`(name, shape, is_int)` in state-dict order,
    /// ties already removed), written with `float_dtype`, in files of at
    /// most `max_shard_size` bytes of tensor data.
    pub(crate) fn new(
        tensors: Vec<(String, Vec<usize>, bool)>,
        ties: BTreeMap<String, String>,
        float_dtype: Dtype,
        max_shard_size: u64,
    ) -> ShardPlan {
        let mut shards: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        let mut current_size = 0u64;
        let mut total_size = 0u64;
        let dtypes: Vec<Dtype> = tensors
            .iter()
            .map(|(_, _, int)| if *int { Dtype::I64 } else { float_dtype })
            .collect();
        for (i, ((_, shape, _), dtype)) in tensors.iter().zip(&dtypes).enumerate() {
            let size = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
            total_size += size;
            if size > max_shard_size {
                shards.push(vec![i]);
                continue;
            }
            if current_size + size > max_shard_size {
                shards.push(std::mem::take(&mut current));
                current_size = 0;
            }
            current.push(i);
            current_size += size;
        }
        if !current.is_empty() || shards.is_empty() {
            shards.push(current);
        }
        let n = shards.len();
        let files: Vec<String> = if n == 1 {
            vec![SINGLE_FILE.to_string()]
        } else {
            (1..=n)
                .map(|k| format!("model-{k:05}-of-{n:05}.safetensors"))
                .collect()
        };
        let mut file_of = vec![0usize; tensors.len()];
        for (f, shard) in shards.iter().enumerate() {
            for &i in shard {
                file_of[i] = f;
            }
        }
        let planned = tensors
            .into_iter()
            .zip(dtypes)
            .zip(file_of)
            .map(|(((name, shape, _), dtype), file)| PlannedTensor {
                name,
                shape,
                dtype,
                file,
            })
            .collect();
        ShardPlan {
            tensors: planned,
            files,
            ties,
            total_size,
        }
    }

    /// The plan for `module`'s state (on meta or materialized).
    pub fn for_module(module: &dyn Module, float_dtype: Dtype, max_shard_size: u64) -> ShardPlan {
        let source = ModuleSource::new(module);
        let (tensors, ties) = source.ordered();
        ShardPlan::new(tensors, ties, float_dtype, max_shard_size)
    }

    /// The tensors, in state-dict order.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    /// The file names.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Bytes of tensor data in all files (the index's `total_size`).
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Whether the checkpoint has an index (more than one file).
    pub fn is_sharded(&self) -> bool {
        self.files.len() > 1
    }

    /// A hash of the whole plan (names, shapes, dtypes, files, ties): equal
    /// plans, equal hashes. Written into every file.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for t in &self.tensors {
            let _ = writeln!(
                text,
                "{}\t{:?}\t{}\t{}",
                t.name, t.shape, t.dtype, self.files[t.file]
            );
        }
        for (a, k) in &self.ties {
            let _ = writeln!(text, "tie\t{a}\t{k}");
        }
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    /// The index JSON.
    pub fn index_json(&self) -> String {
        let weight_map: BTreeMap<&str, &str> = self
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), self.files[t.file].as_str()))
            .collect();
        let index = serde_json::json!({
            "metadata": {"total_size": self.total_size},
            "weight_map": weight_map,
        });
        serde_json::to_string_pretty(&index).expect("JSON serializes") + "\n"
    }
}

/// FNV-1a 64.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The tensors of one file of a plan, as a write source.
struct FileSource<'a> {
    inner: &'a dyn WriteSource,
    /// Indices into `inner`'s tensors.
    picks: Vec<usize>,
    ties: BTreeMap<String, String>,
}

impl WriteSource for FileSource<'_> {
    fn tensors(&self) -> Vec<(String, Vec<usize>, bool)> {
        let all = self.inner.tensors();
        self.picks.iter().map(|&i| all[i].clone()).collect()
    }

    fn ties(&self) -> BTreeMap<String, String> {
        self.ties.clone()
    }

    fn with_data(&self, i: usize, f: &mut dyn FnMut(DataRef<'_>) -> Result<()>) -> Result<()> {
        self.inner.with_data(self.picks[i], f)
    }
}

/// Writes file `file` of `plan` into `dir`, from `source` (whose tensors are
/// the plan's, in order).
pub(crate) fn write_file(
    dir: &Path,
    plan: &ShardPlan,
    file: usize,
    source: &dyn WriteSource,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let picks: Vec<usize> = (0..plan.tensors.len())
        .filter(|&i| plan.tensors[i].file == file)
        .collect();
    let names: std::collections::HashSet<&str> = picks
        .iter()
        .map(|&i| plan.tensors[i].name.as_str())
        .collect();
    let ties = plan
        .ties
        .iter()
        .filter(|(_, kept)| names.contains(kept.as_str()))
        .map(|(a, k)| (a.clone(), k.clone()))
        .collect();
    let mut meta = metadata.clone();
    meta.insert("nninit_plan".to_string(), plan.fingerprint());
    let float_dtype = plan
        .tensors
        .iter()
        .map(|t| t.dtype)
        .find(|d| d.is_float())
        .unwrap_or(Dtype::F32);
    let options = SaveOptions::default().dtype(float_dtype).metadata(meta);
    let sub = FileSource {
        inner: source,
        picks,
        ties,
    };
    write_atomically(&dir.join(&plan.files[file]), |w| {
        safetensors::write_source(&sub, &options, w).map(drop)
    })
}

/// Writes the index of `plan` into `dir` (atomically), after checking
/// that every file of the plan is there and was written for this plan.
///
/// # Errors
/// [`Error::Checkpoint`] naming a missing file or one of another plan.
pub(crate) fn write_index(dir: &Path, plan: &ShardPlan) -> Result<()> {
    let want = plan.fingerprint();
    for file in &plan.files {
        let found = file_fingerprint(&dir.join(file))?;
        if found.as_deref() != Some(want.as_str()) {
            return Err(Error::Checkpoint {
                file: file.clone(),
                reason: format!(
                    "it was written for another plan ({}), not this one ({want}): the ranks disagree \
                     about the model",
                    found.unwrap_or_else(|| "none recorded".into())
                ),
            });
        }
    }
    if plan.is_sharded() {
        write_atomically(&dir.join(INDEX_FILE), |w| {
            w.write_all(plan.index_json().as_bytes())?;
            Ok(())
        })?;
    }
    Ok(())
}

/// The `nninit_plan` a file records.
fn file_fingerprint(path: &Path) -> Result<Option<String>> {
    let file = MappedFile::open(path).map_err(|e| Error::Checkpoint {
        file: path.display().to_string(),
        reason: format!("cannot be read: {e}"),
    })?;
    let parsed = safetensors::parse(file.bytes()).map_err(|e| Error::Checkpoint {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(parsed.metadata().get("nninit_plan").cloned())
}

/// Writes the files `select` accepts of `plan` (computed for `module`) into
/// `dir`.
///
/// # Errors
/// I/O errors, and those of [`super::safetensors::save`].
pub fn write_files(
    module: &dyn Module,
    dir: &Path,
    plan: &ShardPlan,
    select: impl Fn(usize) -> bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let source = Progress {
        inner: ModuleSource::new(module),
        plan,
        progress,
    };
    for file in (0..plan.files.len()).filter(|&f| select(f)) {
        write_file(dir, plan, file, &source, &BTreeMap::new())?;
    }
    Ok(())
}

/// A write source that reports the bytes of each tensor once written.
struct Progress<'a> {
    inner: ModuleSource,
    plan: &'a ShardPlan,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl WriteSource for Progress<'_> {
    fn tensors(&self) -> Vec<(String, Vec<usize>, bool)> {
        self.inner.tensors()
    }
    fn ties(&self) -> BTreeMap<String, String> {
        self.inner.ties()
    }
    fn with_data(&self, i: usize, f: &mut dyn FnMut(DataRef<'_>) -> Result<()>) -> Result<()> {
        self.inner.with_data(i, f)?;
        let t = &self.plan.tensors[i];
        (self.progress)(t.shape.iter().product::<usize>() as u64 * t.dtype.size() as u64);
        Ok(())
    }
}

/// Waits until every file of `plan` is in `dir`, written for this plan
/// (the files appear atomically).
///
/// # Errors
/// [`Error::Checkpoint`] naming the first file still missing after
/// `timeout`, or a file of another plan.
pub fn wait_for_files(dir: &Path, plan: &ShardPlan, timeout: std::time::Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let want = plan.fingerprint();
    for file in &plan.files {
        let path = dir.join(file);
        loop {
            if path.exists() {
                match file_fingerprint(&path)? {
                    Some(f) if f == want => break,
                    other => {
                        return Err(Error::Checkpoint {
                            file: file.clone(),
                            reason: format!(
                                "it was written for another plan ({}), not this one ({want}): the \
                                 ranks disagree about the model",
                                other.unwrap_or_else(|| "none recorded".into())
                            ),
                        });
                    }
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Checkpoint {
                    file: file.clone(),
                    reason: format!(
                        "not written within {:?}: a rank did not finish (rerun to complete the \
                         checkpoint)",
                        timeout
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Writes the whole checkpoint of `module` into `dir` from this process:
/// every file, then the index. `max_shard_size` in bytes of tensor data.
///
/// # Errors
/// I/O errors, and those of [`super::safetensors::save`].
pub fn save_sharded(
    module: &dyn Module,
    dir: impl AsRef<Path>,
    float_dtype: Dtype,
    max_shard_size: u64,
) -> Result<ShardPlan> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir)?;
    let plan = ShardPlan::for_module(module, float_dtype, max_shard_size);
    write_files(module, dir, &plan, |_| true, &|_| {})?;
    write_index(dir, &plan)?;
    Ok(plan)
}

/// Parses `model.safetensors.index.json`.
///
/// # Errors
/// [`Error::Checkpoint`] naming what is wrong.
pub fn parse_index(text: &str) -> Result<(u64, BTreeMap<String, String>)> {
    let bad = |reason: String| Error::Checkpoint {
        file: INDEX_FILE.to_string(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let total = v
        .get("metadata")
        .and_then(|m| m.get("total_size"))
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| bad("no metadata.total_size (a non-negative integer)".into()))?;
    let map = v
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| bad("no weight_map object".into()))?;
    let mut weight_map = BTreeMap::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map[{name:?}] is not a file name")))?;
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(bad(format!(
                "weight_map[{name:?}] names {file:?}, which is not a file of the directory"
            )));
        }
        weight_map.insert(name.clone(), file.to_string());
    }
    Ok((total, weight_map))
}

/// The index of a checkpoint directory.
struct Index {
    total_size: u64,
    weight_map: BTreeMap<String, String>,
}

impl Index {
    /// The index in `dir`, or `None` for a single-file checkpoint.
    fn read(dir: &Path) -> Result<Option<Index>> {
        match std::fs::read_to_string(dir.join(INDEX_FILE)) {
            Ok(text) => {
                let (total_size, weight_map) = parse_index(&text)?;
                Ok(Some(Index {
                    total_size,
                    weight_map,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The files of a checkpoint directory, mapped.
struct Files {
    index: Option<Index>,
    names: Vec<String>,
    maps: Vec<MappedFile>,
}

impl Files {
    /// Maps the files the index names (or the single file).
    fn open(dir: &Path) -> Result<Files> {
        let index = Index::read(dir)?;
        let names: Vec<String> = match &index {
            Some(ix) => {
                let mut f: Vec<String> = ix.weight_map.values().cloned().collect();
                f.sort();
                f.dedup();
                f
            }
            None => vec![SINGLE_FILE.to_string()],
        };
        let mut maps = Vec::with_capacity(names.len());
        for f in &names {
            let path = dir.join(f);
            if !path.exists() {
                return Err(Error::Checkpoint {
                    file: f.clone(),
                    reason: if index.is_some() {
                        "named by the index, but missing".to_string()
                    } else {
                        format!("missing, and there is no {INDEX_FILE} either")
                    },
                });
            }
            maps.push(MappedFile::open(&path)?);
        }
        Ok(Files { index, names, maps })
    }

    /// Parses every file and checks them against the index.
    fn check(&self) -> Result<Sharded<'_>> {
        let mut parsed = Vec::with_capacity(self.maps.len());
        let mut names = HashMap::new();
        let mut total = 0u64;
        for (k, (map, file)) in self.maps.iter().zip(&self.names).enumerate() {
            let p = safetensors::parse(map.bytes())
                .map_err(|e| Error::Checkpoint {
                    file: file.clone(),
                    reason: e.to_string(),
                })?
                .releasing(map);
            for (name, bytes) in p.tensor_sizes() {
                total += bytes;
                if let Some(prev) = names.insert(name.to_string(), k) {
                    return Err(Error::Checkpoint {
                        file: file.clone(),
                        reason: format!("tensor {name:?} is also in {}", self.names[prev]),
                    });
                }
            }
            for alias in p.alias_names() {
                names.entry(alias.to_string()).or_insert(k);
            }
            parsed.push(p);
        }
        if let Some(ix) = &self.index {
            for (tensor, file) in &ix.weight_map {
                match names.get(tensor) {
                    None => {
                        return Err(Error::Checkpoint {
                            file: file.clone(),
                            reason: format!(
                                "the index places tensor {tensor:?} here, but it is not in the file"
                            ),
                        });
                    }
                    Some(&k) if &self.names[k] != file => {
                        return Err(Error::Checkpoint {
                            file: file.clone(),
                            reason: format!(
                                "the index places tensor {tensor:?} here, but it is in {}",
                                self.names[k]
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            if total != ix.total_size {
                return Err(Error::Checkpoint {
                    file: INDEX_FILE.to_string(),
                    reason: format!(
                        "metadata.total_size is {}, but the files hold {total} bytes of tensor data",
                        ix.total_size
                    ),
                });
            }
        }
        Ok(Sharded { parsed, names })
    }
}

/// A checked checkpoint: a load source over its files.
struct Sharded<'a> {
    parsed: Vec<Parsed<'a>>,
    /// Name (aliases too) → the file holding it.
    names: HashMap<String, usize>,
}

impl LoadSource for Sharded<'_> {
    fn names(&self) -> Vec<&str> {
        self.names.keys().map(String::as_str).collect()
    }

    fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.parsed[*self.names.get(name)?].shape_of(name)
    }

    fn load_into(&self, name: &str, slot: &Shared) -> Result<()> {
        self.parsed[self.names[name]].load_into(name, slot)
    }
}

/// Loads the checkpoint in `dir` into `module` by name, strict or not (see
/// [`crate::nn::Module::load_state_dict`]), after checking the checkpoint
/// (see the module docs), straight from the memory-mapped files. A model on
/// meta gets the files' data with no random init.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file and the tensor for a broken
/// checkpoint; the errors of `load_state_dict`.
pub fn load_sharded(
    module: &dyn Module,
    dir: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport> {
    let files = Files::open(dir.as_ref())?;
    let source = files.check()?;
    nn::load_from(module, &source, strict)
}

/// Checks the checkpoint in `dir` without loading it (what
/// [`load_sharded`] checks first): its index, its files and their tensors.
///
/// # Errors
/// As [`load_sharded`]'s checks.
pub fn check_sharded(dir: impl AsRef<Path>) -> Result<Vec<(String, Vec<usize>)>> {
    let files = Files::open(dir.as_ref())?;
    let source = files.check()?;
    let mut v: Vec<(String, Vec<usize>)> = source
        .names
        .keys()
        .map(|n| (n.clone(), source.shape_of(n).unwrap_or_default().to_vec()))
        .collect();
    v.sort();
    Ok(v)
}

/// The paths of a plan's files in `dir`.
pub fn file_paths(dir: &Path, plan: &ShardPlan) -> Vec<PathBuf> {
    plan.files.iter().map(|f| dir.join(f)).collect()
}
