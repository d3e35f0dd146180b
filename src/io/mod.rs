//! Reading and writing tensors in other programs' formats.
//!
//! * [`npy`]: numpy's `.npy` (float32, C order), for looking at what an
//!   initializer drew with numpy or any other tool.
//! * [`safetensors`]: state dicts in the safetensors format, which Python's
//!   `safetensors` package and PyTorch read and write; streamed, written
//!   atomically, read memory-mapped.
//! * [`dtype`]: the element types of files (`F32`, `BF16`, `F16`, `I64`).
//! * [`checkpoint`]: sharded checkpoints in Hugging Face's layout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Result;

pub mod checkpoint;
pub mod dtype;
pub mod npy;
pub mod safetensors;

/// Bytes buffered between the writer and the file.
const WRITE_BUFFER: usize = 1 << 20;

/// A temporary name beside `path`: `.NAME.tmp-PID-NANOS`.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "nninit".into(), |n| n.to_string_lossy().into_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

/// Writes a file as databases do: `write` fills a temporary file in the
/// same directory (through a 1 MiB buffer), which is flushed, `fsync`ed and
/// renamed over `path`; then the directory is synced. A failure (or a crash)
/// at any point leaves the previous `path` as it was; on an error the
/// temporary file is removed.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| -> Result<()> {
        let file = File::options().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A file's bytes, memory-mapped (read only).
pub(crate) struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `path` (an empty file maps to no bytes).
    pub(crate) fn open(path: &Path) -> Result<MappedFile> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: the map is read only and lives no longer than this value.
        // Its soundness rests on the file not being truncated or written in
        // place while mapped; this crate never does either (every write goes
        // to a new file renamed over the old one, which keeps the old inode
        // alive for existing maps), and files are documented to be written
        // that way.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(MappedFile { map: Some(map) })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Drops the pages wholly inside `part` (a sub-slice of [`Self::bytes`])
    /// from this process's memory: they stay in the page cache and are read
    /// back on the next access. A loader calls it after copying a tensor out,
    /// so the mapped file does not add its size to the resident set.
    pub(crate) fn release(&self, part: &[u8]) {
        let Some(map) = &self.map else { return };
        let base = map.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        assert!(
            start >= base && start + part.len() <= base + map.len(),
            "release: not a part of this map"
        );
        const PAGE: usize = 4096;
        let from = (start - base).div_ceil(PAGE) * PAGE;
        let to = (start - base + part.len()) / PAGE * PAGE;
        if to > from {
            // SAFETY: the map is private and read only, so MADV_DONTNEED
            // discards nothing but clean copies of the file's pages; every
            // later access (the references into the map stay valid) faults
            // the same bytes back in from the file, which this crate never
            // modifies while mapped (see `open`). The range lies inside the
            // map (checked above) and starts on a page boundary.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
}
