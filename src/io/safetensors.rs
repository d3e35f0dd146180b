//! State dicts as [safetensors](https://github.com/huggingface/safetensors)
//! files, readable by Python's `safetensors` package and by PyTorch.
//!
//! # Format
//! 8 bytes: the header length `n` (u64, little-endian); `n` bytes: a JSON
//! object `{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin,
//! end]}, "__metadata__": {string: string}}`; then the data, little-endian and
//! row-major, which the offsets (relative to the data's start) cover exactly,
//! without gaps or overlaps.
//!
//! # What we write
//! Every entry of the [`StateDict`] under its dotted name, in name order:
//! `float32` entries as `F32` (or `BF16` / `F16`, rounded to nearest even,
//! with [`SaveOptions::dtype`]), `int64` entries (BatchNorm's
//! `num_batches_tracked`) as `I64`. The header is padded with spaces to a
//! multiple of 8 bytes, so the data is aligned. A tied parameter is written
//! once, as Python's `safetensors.torch.save_model` does: within each group of
//! names sharing storage the lexicographically smallest is kept, and
//! `__metadata__` maps each dropped name to the kept one (`{"4.weight":
//! "2.weight"}`). We also write `"format": "pt"`, which the Hugging Face tools
//! expect.
//!
//! **Streaming and atomic.** A file is written as databases write theirs: to
//! a temporary file in the same directory, the header and then each tensor
//! straight from its own storage through a 1 MiB buffer (no copy of the
//! model, so memory stays the model plus a few MiB; [`save_module`] reads the
//! parameters in place, under their locks), then flushed, `fsync`ed and
//! renamed over the destination, and the directory synced. A process that
//! dies mid-write leaves the previous file intact (and a `.tmp` file beside
//! it).
//!
//! # What we read
//! `F32`, `BF16`, `F16` (converted to `float32`) and `I64` tensors: any
//! other dtype is an error naming it, never reinterpreted bytes. Data need
//! not be aligned. Files are memory-mapped, and [`load_module`] copies from
//! the map straight into the module's parameters (no intermediate state
//! dict). Each `__metadata__` entry whose key is not a tensor of the file
//! and whose value is one restores a tie: the key gets the same tensor and
//! [`StateDict::tied_to`] reports it. Other metadata is returned by
//! [`deserialize_with_metadata`]. Loading into a module checks names and
//! shapes as [`Module::load_state_dict`] does.
//!
//! Every malformed file is an [`Error::Format`] naming the problem, never a
//! panic: fewer than 8 bytes, a header length past the end or over the 100 MB
//! limit, a header that is not UTF-8 or not a JSON object of the right form,
//! duplicate names, offsets out of range, overlapping or leaving holes, shape
//! × dtype size not matching the bytes.
//!
//! ```
//! use nninit::io::safetensors;
//! use nninit::nn::{Linear, Module};
//!
//! let net = Linear::new(3, 2).unwrap();
//! let bytes = safetensors::serialize(&net.state_dict()).unwrap();
//! let back = safetensors::deserialize(&bytes).unwrap();
//! assert_eq!(back, net.state_dict());
//! assert!(safetensors::deserialize(&bytes[..20]).is_err());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::dtype::{self, Dtype};
use crate::error::{Error, Result};
use crate::nn::{self, LoadReport, LoadSource, Module, Shared, StateDict, ValueMut, ValueRef};
use crate::tensor::{AnyTensor, IntTensor, Tensor};

/// Header lengths above this are refused (the `safetensors` crate's limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Bytes of tensor data converted or copied per write call.
const CHUNK_BYTES: usize = 1 << 20;

fn format_error(reason: impl Into<String>) -> Error {
    Error::Format {
        format: "safetensors",
        reason: reason.into(),
    }
}

/// How a file is written.
///
/// ```
/// use nninit::io::dtype::Dtype;
/// use nninit::io::safetensors::SaveOptions;
/// let o = SaveOptions::default().dtype(Dtype::BF16);
/// assert_eq!(o.float_dtype, Dtype::BF16);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SaveOptions {
    /// The dtype of the `float32` entries in the file: `F32` (the default),
    /// `BF16` or `F16` (rounded to nearest even; `int64` entries stay `I64`).
    pub float_dtype: Dtype,
    /// Extra `__metadata__` entries (the tie entries win over entries of the
    /// same key).
    pub metadata: BTreeMap<String, String>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            float_dtype: Dtype::F32,
            metadata: BTreeMap::new(),
        }
    }
}

impl SaveOptions {
    /// With `float_dtype`.
    pub fn dtype(mut self, dtype: Dtype) -> Self {
        self.float_dtype = dtype;
        self
    }

    /// With `metadata`.
    pub fn metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A tensor of the write, borrowed.
pub(crate) enum DataRef<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
}

/// `(name, shape, is_int)` of the tensors a write source writes, in order.
pub(crate) type TensorList = Vec<(String, Vec<usize>, bool)>;

/// What a write needs from its source: names in file order with shapes
/// and kinds, the tie metadata, and each tensor's data when its turn comes.
pub(crate) trait WriteSource {
    /// `(name, shape, is_int)` of every tensor written, in file order.
    fn tensors(&self) -> Vec<(String, Vec<usize>, bool)>;
    /// `alias → kept name` of the names not written.
    fn ties(&self) -> BTreeMap<String, String>;
    /// Runs `f` on tensor `i`'s data.
    fn with_data(&self, i: usize, f: &mut dyn FnMut(DataRef<'_>) -> Result<()>) -> Result<()>;
}

/// Which of `names` (with their tie roots) are written and the
/// `__metadata__` for the dropped aliases: per group of tied names, the
/// smallest name is kept; the kept names come out sorted.
fn plan_ties<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
) -> (Vec<&'a str>, BTreeMap<String, String>) {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, root) in names {
        groups.entry(root).or_default().push(name);
    }
    let mut kept = Vec::new();
    let mut metadata = BTreeMap::new();
    for names in groups.values() {
        let keep = *names.iter().min().expect("groups are non-empty");
        kept.push(keep);
        for &n in names {
            if n != keep {
                metadata.insert(n.to_string(), keep.to_string());
            }
        }
    }
    kept.sort_unstable();
    (kept, metadata)
}

/// A state dict as a write source.
struct DictSource<'a> {
    sd: &'a StateDict,
    kept: Vec<&'a str>,
    ties: BTreeMap<String, String>,
}

impl<'a> DictSource<'a> {
    fn new(sd: &'a StateDict) -> DictSource<'a> {
        let (kept, ties) = plan_ties(sd.keys().map(|k| (k, sd.tied_to(k).unwrap_or(k))));
        DictSource { sd, kept, ties }
    }
}

impl WriteSource for DictSource<'_> {
    fn tensors(&self) -> Vec<(String, Vec<usize>, bool)> {
        self.kept
            .iter()
            .map(|&n| {
                let t = self
                    .sd
                    .get_any(n)
                    .expect("planned from the dict's own keys");
                (
                    n.to_string(),
                    t.shape().to_vec(),
                    matches!(t, AnyTensor::I64(_)),
                )
            })
            .collect()
    }

    fn ties(&self) -> BTreeMap<String, String> {
        self.ties.clone()
    }

    fn with_data(&self, i: usize, f: &mut dyn FnMut(DataRef<'_>) -> Result<()>) -> Result<()> {
        match self.sd.get_any(self.kept[i]).expect("planned") {
            AnyTensor::F32(t) => f(DataRef::F32(t.as_slice())),
            AnyTensor::I64(t) => f(DataRef::I64(t.as_slice())),
        }
    }
}

/// A module's parameters and buffers as a write source, read in place
/// (tensors on meta are generated as they are written).
pub(crate) struct ModuleSource {
    slots: Vec<(String, Shared)>,
    ties: BTreeMap<String, String>,
}

impl ModuleSource {
    /// The written tensors in state-dict order, and the ties.
    pub(crate) fn ordered(&self) -> (TensorList, BTreeMap<String, String>) {
        (self.tensors(), self.ties.clone())
    }

    pub(crate) fn new(module: &dyn Module) -> ModuleSource {
        let all: Vec<(String, Shared, Option<String>)> = nn::named_slots(module)
            .into_iter()
            .filter(|(_, slot, _)| slot.shape_of().is_some())
            .collect();
        let (kept, ties) = plan_ties(
            all.iter()
                .map(|(n, _, tie)| (n.as_str(), tie.as_deref().unwrap_or(n.as_str()))),
        );
        let by_name: HashMap<&str, &Shared> = all.iter().map(|(n, s, _)| (n.as_str(), s)).collect();
        let slots = kept
            .iter()
            .map(|&n| (n.to_string(), by_name[n].clone()))
            .collect();
        ModuleSource { slots, ties }
    }
}

impl WriteSource for ModuleSource {
    fn tensors(&self) -> Vec<(String, Vec<usize>, bool)> {
        self.slots
            .iter()
            .map(|(n, s)| (n.clone(), s.shape_of().unwrap_or_default(), s.is_int()))
            .collect()
    }

    fn ties(&self) -> BTreeMap<String, String> {
        self.ties.clone()
    }

    fn with_data(&self, i: usize, f: &mut dyn FnMut(DataRef<'_>) -> Result<()>) -> Result<()> {
        let slot = &self.slots[i].1;
        if let Some(d) = slot.deferred() {
            return write_deferred(&d, f);
        }
        slot.with_value(|v| match v {
            ValueRef::F32(t) => f(DataRef::F32(t.as_slice())),
            ValueRef::I64(t) => f(DataRef::I64(t.as_slice())),
        })
        .unwrap_or(Ok(()))
    }
}

/// Elements generated at a time when a tensor on meta is written.
const GENERATE_ELEMENTS: usize = 1 << 20;

/// Generates a tensor on meta for writing: in chunks of
/// [`GENERATE_ELEMENTS`] (constant memory), or whole for the initializers
/// that need the whole tensor (orthogonal, sparse, eye, dirac).
pub(crate) fn write_deferred(
    d: &crate::init::Deferred,
    f: &mut dyn FnMut(DataRef<'_>) -> Result<()>,
) -> Result<()> {
    let numel: usize = d.shape().iter().product();
    if !d.init().is_shardable() {
        let t = d.tensor()?;
        return f(DataRef::F32(t.as_slice()));
    }
    let mut chunk = vec![0.0f32; GENERATE_ELEMENTS.min(numel)];
    let mut at = 0;
    while at < numel {
        let n = GENERATE_ELEMENTS.min(numel - at);
        d.fill(at as u64, &mut chunk[..n])?;
        f(DataRef::F32(&chunk[..n]))?;
        at += n;
    }
    Ok(())
}

/// The header bytes (padded with spaces to a multiple of 8) for `tensors`
/// written in order with `dtypes`, and the data length.
fn header_bytes(
    tensors: &[(String, Vec<usize>, bool)],
    dtypes: &[Dtype],
    metadata: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, u64)> {
    let mut map = serde_json::Map::new();
    map.insert(
        "__metadata__".to_string(),
        serde_json::to_value(metadata).expect("strings serialize"),
    );
    let mut offset = 0u64;
    for ((name, shape, _), dtype) in tensors.iter().zip(dtypes) {
        if name == "__metadata__" {
            return Err(format_error(
                "a tensor cannot be named \"__metadata__\" (the name is reserved for metadata)",
            ));
        }
        let bytes = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
        map.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype.name(),
                "shape": shape,
                "data_offsets": [offset, offset + bytes],
            }),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(map)).expect("JSON serializes");
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    Ok((header, offset))
}

/// Writes `source` as a safetensors file to `w` (streaming); returns the
/// bytes written.
pub(crate) fn write_source(
    source: &dyn WriteSource,
    options: &SaveOptions,
    w: &mut dyn Write,
) -> Result<u64> {
    if !options.float_dtype.is_float() {
        return Err(format_error(format!(
            "float tensors cannot be written as {}",
            options.float_dtype
        )));
    }
    let tensors = source.tensors();
    let dtypes: Vec<Dtype> = tensors
        .iter()
        .map(|(_, _, int)| {
            if *int {
                Dtype::I64
            } else {
                options.float_dtype
            }
        })
        .collect();
    let mut metadata = options.metadata.clone();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.extend(source.ties());
    let (header, data_len) = header_bytes(&tensors, &dtypes, &metadata)?;
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    for (i, &dtype) in dtypes.iter().enumerate() {
        source.with_data(i, &mut |data| {
            match data {
                DataRef::F32(v) if dtype == Dtype::F32 && cfg!(target_endian = "little") => {
                    // SAFETY: any initialized `f32` memory is valid as bytes;
                    // the byte slice covers exactly the `v.len() * 4` bytes of
                    // `v` and borrows it for the same lifetime. On a
                    // little-endian target these are the file's bytes.
                    let bytes = unsafe {
                        std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v))
                    };
                    // In pieces of 1 MiB: one huge write(2) per tensor
                    // stalls in the kernel's dirty-page throttling (a 64 MiB
                    // write ran at half the rate of 1 MiB ones here).
                    for piece in bytes.chunks(CHUNK_BYTES) {
                        w.write_all(piece)?;
                    }
                }
                DataRef::F32(v) => {
                    for chunk in v.chunks(CHUNK_BYTES / 4) {
                        buf.clear();
                        dtype::encode_f32(chunk, dtype, &mut buf);
                        w.write_all(&buf)?;
                    }
                }
                DataRef::I64(v) => {
                    for chunk in v.chunks(CHUNK_BYTES / 8) {
                        buf.clear();
                        buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                        w.write_all(&buf)?;
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(8 + header.len() as u64 + data_len)
}

/// The bytes of a safetensors file holding `state_dict` (ties recorded in
/// `__metadata__`, see the module docs).
///
/// # Errors
/// [`Error::Format`] if a name is `__metadata__` (reserved by the format).
pub fn serialize(state_dict: &StateDict) -> Result<Vec<u8>> {
    serialize_with(state_dict, &SaveOptions::default())
}

/// [`serialize`] with extra `__metadata__` entries (the tie entries win over
/// entries of the same key).
///
/// # Errors
/// As [`serialize`].
pub fn serialize_with_metadata(
    state_dict: &StateDict,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    serialize_with(
        state_dict,
        &SaveOptions::default().metadata(metadata.clone()),
    )
}

/// [`serialize`] with `options` (dtype of the float tensors, metadata).
///
/// # Errors
/// As [`serialize`], and a non-float `float_dtype`.
pub fn serialize_with(state_dict: &StateDict, options: &SaveOptions) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_source(&DictSource::new(state_dict), options, &mut out)?;
    Ok(out)
}

/// Writes `state_dict` to `path` as safetensors, atomically (see the module
/// docs).
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; as [`serialize`].
pub fn save(state_dict: &StateDict, path: impl AsRef<Path>) -> Result<()> {
    save_with(state_dict, path, &SaveOptions::default())
}

/// [`save`] with `options`.
///
/// ```
/// use nninit::io::dtype::Dtype;
/// use nninit::io::safetensors::{self, SaveOptions};
/// use nninit::nn::{Linear, Module};
///
/// let net = Linear::new(3, 2).unwrap();
/// let path = std::env::temp_dir().join(format!("nninit-doc-{}.safetensors", std::process::id()));
/// safetensors::save_with(&net.state_dict(), &path, &SaveOptions::default().dtype(Dtype::BF16)).unwrap();
/// let back = safetensors::load(&path).unwrap();
/// let w = back.get("weight").unwrap();
/// assert!((w.as_slice()[0] - net.weight.data().unwrap().as_slice()[0]).abs() < 1e-2);
/// std::fs::remove_file(&path).unwrap();
/// ```
///
/// # Errors
/// As [`save`].
pub fn save_with(
    state_dict: &StateDict,
    path: impl AsRef<Path>,
    options: &SaveOptions,
) -> Result<()> {
    super::write_atomically(path.as_ref(), |w| {
        write_source(&DictSource::new(state_dict), options, w).map(drop)
    })
}

/// Writes `module`'s state to `path` without copying it: each parameter
/// and buffer is written from its own storage, under its read lock (the
/// file equals `save(&module.state_dict(), path)`'s).
///
/// # Errors
/// As [`save`].
pub fn save_module(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save_module_with(module, path, &SaveOptions::default())
}

/// [`save_module`] with `options`.
///
/// # Errors
/// As [`save`].
pub fn save_module_with(
    module: &dyn Module,
    path: impl AsRef<Path>,
    options: &SaveOptions,
) -> Result<()> {
    let source = ModuleSource::new(module);
    super::write_atomically(path.as_ref(), |w| {
        write_source(&source, options, w).map(drop)
    })
}

/// The state dict in the bytes of a safetensors file, ties restored.
///
/// # Errors
/// [`Error::Format`] naming the problem for any malformed input (see the
/// module docs) and for dtypes other than `F32`, `BF16`, `F16` and `I64`.
pub fn deserialize(bytes: &[u8]) -> Result<StateDict> {
    deserialize_with_metadata(bytes).map(|(sd, _)| sd)
}

/// Reads `path` (memory-mapped; see [`deserialize`]).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; as [`deserialize`].
pub fn load(path: impl AsRef<Path>) -> Result<StateDict> {
    let file = super::MappedFile::open(path.as_ref())?;
    deserialize(file.bytes())
}

/// Reads `path` into `module` by name (see [`Module::load_state_dict`]),
/// copying from the memory-mapped file straight into the parameters and
/// buffers (converting `BF16`/`F16`/`I64` to the slot's dtype).
///
/// # Errors
/// As [`load`] and [`Module::load_state_dict`].
pub fn load_module(
    module: &dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport> {
    let file = super::MappedFile::open(path.as_ref())?;
    let parsed = parse(file.bytes())?.releasing(&file);
    nn::load_from(module, &parsed, strict)
}

/// One tensor entry of the header.
#[derive(Debug)]
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    offsets: [u64; 2],
}

/// The parsed header: tensor entries in header order, and the metadata.
#[derive(Debug, Default)]
struct Header {
    entries: Vec<Entry>,
    metadata: BTreeMap<String, String>,
}

/// Deserializes the header object entry by entry, so that a duplicate name
/// is seen (a map type would keep the last silently) and every problem is
/// named.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensor entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header::default();
        let mut seen = std::collections::HashSet::new();
        let mut seen_metadata = false;
        while let Some(name) = map.next_key::<String>()? {
            if name == "__metadata__" {
                if seen_metadata {
                    return Err(de::Error::custom(
                        "duplicate \"__metadata__\" in the header",
                    ));
                }
                seen_metadata = true;
                let m: Option<BTreeMap<String, String>> = map.next_value().map_err(|e| {
                    de::Error::custom(format!("\"__metadata__\" must map strings to strings: {e}"))
                })?;
                header.metadata = m.unwrap_or_default();
                continue;
            }
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate tensor name {name:?} in the header"
                )));
            }
            let raw: RawEntry = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("entry for tensor {name:?}: {e}")))?;
            header.entries.push(Entry {
                name,
                dtype: raw.dtype,
                shape: raw.shape,
                offsets: raw.data_offsets,
            });
        }
        Ok(header)
    }
}

impl<'de> serde::Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Header, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// A validated file: its tensors (with their bytes), the ties its
/// metadata records and the rest of the metadata.
pub(crate) struct Parsed<'a> {
    tensors: Vec<ParsedTensor<'a>>,
    /// Position in `tensors` of every name, aliases included.
    index: HashMap<String, usize>,
    /// `(alias, kept)` pairs restored from the metadata, in metadata order.
    aliases: Vec<(String, String)>,
    /// Metadata entries that are not ties.
    other: BTreeMap<String, String>,
    /// The map `bytes` came from, if any: a tensor's pages are released
    /// from it once loaded (see [`Parsed::releasing`]).
    map: Option<&'a super::MappedFile>,
}

impl<'a> Parsed<'a> {
    /// Releases each tensor's pages of `map` (which `self` was parsed from)
    /// once it is loaded, so that loading a file keeps only the parameters
    /// resident, not the parameters and the whole mapped file.
    pub(crate) fn releasing(mut self, map: &'a super::MappedFile) -> Parsed<'a> {
        self.map = Some(map);
        self
    }
}

/// One tensor of a [`Parsed`] file.
pub(crate) struct ParsedTensor<'a> {
    pub(crate) name: String,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: &'a [u8],
}

impl ParsedTensor<'_> {
    /// The tensor, converted to this crate's dtypes (`float32`, `int64`).
    fn materialize(&self) -> Result<AnyTensor> {
        let n = self.bytes.len() / self.dtype.size();
        Ok(if self.dtype == Dtype::I64 {
            let values: Vec<i64> = self
                .bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            AnyTensor::I64(IntTensor::from_vec(values, &self.shape)?)
        } else {
            let dtype = self.dtype;
            let bytes = self.bytes;
            AnyTensor::F32(Tensor::filled_with(&self.shape, |out| {
                let out = crate::kernels::math::zeroed(out);
                debug_assert_eq!(out.len(), n);
                dtype::decode_to_f32(bytes, dtype, out);
            })?)
        })
    }
}

impl<'a> Parsed<'a> {
    /// `(name, data bytes)` of every tensor.
    pub(crate) fn tensor_sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.tensors
            .iter()
            .map(|t| (t.name.as_str(), t.bytes.len() as u64))
    }

    /// The names restored as ties from the metadata.
    pub(crate) fn alias_names(&self) -> impl Iterator<Item = &str> {
        self.aliases.iter().map(|(a, _)| a.as_str())
    }

    /// The metadata entries that are not ties.
    pub(crate) fn metadata(&self) -> &BTreeMap<String, String> {
        &self.other
    }

    fn get(&self, name: &str) -> Option<&ParsedTensor<'a>> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }
}

impl LoadSource for Parsed<'_> {
    fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
        v.extend(self.aliases.iter().map(|(a, _)| a.as_str()));
        v
    }

    fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.get(name).map(|t| t.shape.as_slice())
    }

    fn load_into(&self, name: &str, slot: &Shared) -> Result<()> {
        let t = self.get(name).expect("checked by load_from");
        let loaded = slot.load_with(&t.shape, |dst| match dst {
            ValueMut::F32(out) => {
                // In pieces, each released from the map once copied: the
                // resident set grows by a piece, not by the tensor.
                // Pieces in parallel (both cores copy).
                use rayon::prelude::*;
                let per = CHUNK_BYTES / t.dtype.size();
                out.par_chunks_mut(per)
                    .zip(t.bytes.par_chunks(CHUNK_BYTES))
                    .for_each(|(o, b)| {
                        dtype::decode_to_f32(b, t.dtype, o);
                        if let Some(map) = self.map {
                            map.release(b);
                        }
                    });
            }
            ValueMut::I64(out) => {
                if t.dtype == Dtype::I64 {
                    for (o, b) in out.iter_mut().zip(t.bytes.chunks_exact(8)) {
                        *o = i64::from_le_bytes(b.try_into().expect("8 bytes"));
                    }
                } else {
                    // PyTorch's `copy_` from float to long truncates.
                    let mut tmp = vec![0.0f32; out.len()];
                    dtype::decode_to_f32(t.bytes, t.dtype, &mut tmp);
                    for (o, v) in out.iter_mut().zip(tmp) {
                        *o = v as i64;
                    }
                }
            }
        });
        if let Some(map) = self.map {
            map.release(t.bytes);
        }
        loaded
    }
}

/// Parses and validates a whole file (see the module docs for what is
/// checked).
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(format_error(format!(
            "the file has {} bytes, fewer than the 8 of the header length",
            bytes.len()
        )));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER_BYTES {
        return Err(format_error(format!(
            "header length {header_len} is over the limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    let available = bytes.len() as u64 - 8;
    if header_len > available {
        return Err(format_error(format!(
            "header length {header_len} runs past the end of the file ({available} bytes follow \
             the length)"
        )));
    }
    let header_end = 8 + header_len as usize;
    let text = std::str::from_utf8(&bytes[8..header_end])
        .map_err(|e| format_error(format!("the header is not UTF-8: {e}")))?;
    let header: Header = serde_json::from_str(text)
        .map_err(|e| format_error(format!("the header is not valid: {e}")))?;
    let data = &bytes[header_end..];

    // Offsets: in range, sizes matching shape × dtype, covering the data exactly.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(header.entries.len());
    let mut dtypes = Vec::with_capacity(header.entries.len());
    for e in &header.entries {
        let [begin, end] = e.offsets;
        if begin > end || end > data.len() as u64 {
            return Err(format_error(format!(
                "data_offsets [{begin}, {end}] of tensor {:?} are out of range for {} bytes of data",
                e.name,
                data.len()
            )));
        }
        let Some(dtype) = Dtype::from_header(&e.dtype) else {
            return Err(format_error(format!(
                "tensor {:?} has dtype {}: only F32, BF16, F16 and I64 are supported",
                e.name, e.dtype
            )));
        };
        let bytes_needed = e
            .shape
            .iter()
            .try_fold(dtype.size() as u64, |n, &d| n.checked_mul(d as u64))
            .filter(|&n| n <= isize::MAX as u64);
        if bytes_needed != Some(end - begin) {
            return Err(format_error(format!(
                "tensor {:?} of shape {} and dtype {} needs {} bytes, but its data_offsets \
                 [{begin}, {end}] cover {}",
                e.name,
                shape_str(&e.shape),
                e.dtype,
                bytes_needed.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                end - begin
            )));
        }
        spans.push((begin, end, &e.name));
        dtypes.push(dtype);
    }
    spans.sort_unstable();
    let mut covered = 0u64;
    for (i, &(begin, end, name)) in spans.iter().enumerate() {
        if begin < covered {
            let (_, prev_end, prev) = spans[i - 1];
            return Err(format_error(format!(
                "tensors {prev:?} (ending at byte {prev_end}) and {name:?} (starting at byte \
                 {begin}) overlap"
            )));
        }
        if begin > covered {
            return Err(format_error(format!(
                "bytes {covered}..{begin} of the data belong to no tensor"
            )));
        }
        covered = end;
    }
    if covered != data.len() as u64 {
        return Err(format_error(format!(
            "bytes {covered}..{} at the end of the data belong to no tensor",
            data.len()
        )));
    }

    let mut tensors: Vec<ParsedTensor<'_>> = header
        .entries
        .into_iter()
        .zip(dtypes)
        .map(|(e, dtype)| ParsedTensor {
            bytes: &data[e.offsets[0] as usize..e.offsets[1] as usize],
            name: e.name,
            dtype,
            shape: e.shape,
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut index: HashMap<String, usize> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut aliases = Vec::new();
    let mut other = BTreeMap::new();
    for (key, value) in header.metadata {
        match index.get(&value).copied() {
            Some(i) if !index.contains_key(&key) => {
                index.insert(key.clone(), i);
                aliases.push((key, value));
            }
            _ => {
                other.insert(key, value);
            }
        }
    }
    Ok(Parsed {
        tensors,
        index,
        aliases,
        other,
        map: None,
    })
}

/// [`deserialize`], also returning the `__metadata__` entries that are not
/// ties (such as `"format": "pt"`).
///
/// # Errors
/// As [`deserialize`].
pub fn deserialize_with_metadata(bytes: &[u8]) -> Result<(StateDict, BTreeMap<String, String>)> {
    let parsed = parse(bytes)?;
    let mut sd = StateDict::new();
    for t in &parsed.tensors {
        sd.insert(t.name.clone(), t.materialize()?);
    }
    for (alias, kept) in &parsed.aliases {
        let t = sd
            .get_any(kept)
            .expect("aliases name tensors of the file")
            .clone();
        sd.insert(alias.clone(), t);
        sd.tie(alias, kept);
    }
    Ok((sd, parsed.other))
}
