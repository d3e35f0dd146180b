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
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Result;

pub mod checkpoint;
pub mod dtype;
pub mod npy;
pub mod safetensors;

/// Bytes buffered between the writer and the file (a multiple of
/// [`DIRECT_ALIGN`]).
const WRITE_BUFFER: usize = 8 << 20;

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
/// same directory (through a [`DirectWriter`]), which is flushed, `fsync`ed
/// and renamed over `path`; then the directory is synced. A failure (or a
/// crash) at any point leaves the previous `path` as it was; on an error the
/// temporary file is removed.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| -> Result<()> {
        let mut w = DirectWriter::create_new(&tmp)?;
        write(&mut w)?;
        let file = w.finish()?;
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

/// The alignment `O_DIRECT` writes need (the largest logical block size in
/// use; 512 would do on most disks).
const DIRECT_ALIGN: usize = 4096;

/// A writer for a new file that bypasses the page cache where it can, and
/// writes on a thread of its own while the caller produces the next bytes.
///
/// Bytes gather in aligned buffers of [`WRITE_BUFFER`] bytes; each full one
/// goes to the writer thread, which writes it with `O_DIRECT` while the
/// caller fills the other (two buffers in all: the memory used is 16 MiB
/// whatever the file's size). On the machines we measured, buffered writes of
/// a large file ran at a quarter to a third of the disk's rate (the kernel's
/// dirty-page throttling; `dd` shows the same), direct ones at the disk's,
/// and without the thread generating the data and writing it took turns. The
/// tail (less than a buffer) is written after switching `O_DIRECT` off, so
/// any length works. Where the file system refuses `O_DIRECT` (tmpfs, some
/// network file systems) it writes through the page cache instead; the
/// bytes are the same either way. Small files never reach a direct write.
pub(crate) struct DirectWriter {
    /// The buffer being filled.
    current: AlignedBuffer,
    /// A second buffer, when the writer thread is not holding it.
    spare: Option<AlignedBuffer>,
    /// Full buffers to the writer thread.
    to_writer: Option<std::sync::mpsc::SyncSender<AlignedBuffer>>,
    /// Written buffers back, or the error that stopped the thread.
    from_writer: std::sync::mpsc::Receiver<std::io::Result<AlignedBuffer>>,
    /// The writer thread; it hands the file back when its input ends.
    thread: Option<std::thread::JoinHandle<std::io::Result<File>>>,
}

/// [`WRITE_BUFFER`] bytes at a [`DIRECT_ALIGN`]ed address.
struct AlignedBuffer {
    /// `WRITE_BUFFER + DIRECT_ALIGN` bytes: the buffer is the aligned part.
    storage: Vec<u8>,
    /// Offset of the aligned part in `storage`.
    start: usize,
    /// Bytes held.
    len: usize,
}

impl AlignedBuffer {
    fn new() -> AlignedBuffer {
        let storage = vec![0u8; WRITE_BUFFER + DIRECT_ALIGN];
        let start = storage.as_ptr().align_offset(DIRECT_ALIGN);
        AlignedBuffer {
            storage,
            start,
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// Turns `O_DIRECT` off on `file`.
fn direct_off(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open file descriptor owned by `file`, borrowed for
    // the call; F_GETFL and F_SETFL only read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl DirectWriter {
    /// Creates `path` (which must not exist) and starts the writer thread.
    pub(crate) fn create_new(path: &Path) -> std::io::Result<DirectWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = File::options();
        options.write(true).create_new(true);
        let (mut file, mut direct) = match options.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (options.open(path)?, false),
            Err(e) => return Err(e),
        };
        let (to_writer, input) = std::sync::mpsc::sync_channel::<AlignedBuffer>(1);
        let (back, from_writer) = std::sync::mpsc::sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("nninit-writer".into())
            .spawn(move || -> std::io::Result<File> {
                for buf in input {
                    let mut r = file.write_all(buf.bytes());
                    // Some file systems accept the flag at open and refuse
                    // the write: the same bytes through the page cache.
                    if direct && matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
                        direct = false;
                        r = direct_off(&file).and_then(|()| file.write_all(buf.bytes()));
                    }
                    match r {
                        Ok(()) => {
                            let _ = back.send(Ok(buf));
                        }
                        Err(e) => {
                            let kind = e.kind();
                            let _ = back.send(Err(e));
                            return Err(std::io::Error::new(kind, "an earlier write failed"));
                        }
                    }
                }
                if direct {
                    direct_off(&file)?;
                }
                Ok(file)
            })?;
        Ok(DirectWriter {
            current: AlignedBuffer::new(),
            spare: Some(AlignedBuffer::new()),
            to_writer: Some(to_writer),
            from_writer,
            thread: Some(thread),
        })
    }

    /// A written buffer back from the thread (waiting for it), or its error.
    fn returned(&mut self) -> std::io::Result<AlignedBuffer> {
        match self.from_writer.recv() {
            Ok(r) => r,
            Err(_) => Err(self
                .join()
                .err()
                .unwrap_or_else(|| std::io::Error::other("the writer thread ended early"))),
        }
    }

    /// Stops the thread and takes the file back.
    fn join(&mut self) -> std::io::Result<File> {
        self.to_writer = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| std::io::Error::other("the writer thread panicked"))?,
            None => Err(std::io::Error::other("the writer thread is gone")),
        }
    }

    /// Hands the full current buffer to the thread and takes an empty one.
    fn send_current(&mut self) -> std::io::Result<()> {
        let mut next = match self.spare.take() {
            Some(b) => b,
            None => self.returned()?,
        };
        next.len = 0;
        let full = std::mem::replace(&mut self.current, next);
        let sent = self.to_writer.as_ref().map(|t| t.send(full));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self
                .returned()
                .err()
                .unwrap_or_else(|| std::io::Error::other("the writer thread ended early")));
        }
        Ok(())
    }

    /// Writes what is left and returns the file (not yet synced).
    pub(crate) fn finish(mut self) -> std::io::Result<File> {
        let joined = self.join();
        // The first error of the thread, as it happened.
        while let Ok(r) = self.from_writer.try_recv() {
            r?;
        }
        let mut file = joined?;
        file.write_all(self.current.bytes())?;
        Ok(file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let buf = &mut self.current;
        let n = (WRITE_BUFFER - buf.len).min(data.len());
        let at = buf.start + buf.len;
        buf.storage[at..at + n].copy_from_slice(&data[..n]);
        buf.len += n;
        if buf.len == WRITE_BUFFER {
            self.send_current()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        // An abandoned writer (an error upstream): stop the thread.
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
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
            // SAFETY: the map is a read-only file mapping (`Mmap::map`:
            // shared, never written), so MADV_DONTNEED only unmaps clean
            // pages of the file from this process (the page cache keeps
            // them) and discards no data; every
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length around the buffer size, written in uneven pieces, on
    /// the temporary directory's file system and on tmpfs (which refuses
    /// `O_DIRECT`): the file holds exactly the bytes.
    #[test]
    fn direct_writer_writes_every_length() {
        let mut dirs = vec![std::env::temp_dir()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(PathBuf::from("/dev/shm"));
        }
        for dir in dirs {
            for len in [
                0,
                1,
                4095,
                WRITE_BUFFER - 1,
                WRITE_BUFFER,
                WRITE_BUFFER + 1,
                3 * WRITE_BUFFER + 17,
            ] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
                let path = dir.join(format!("nninit-direct-{}-{len}", std::process::id()));
                let _ = std::fs::remove_file(&path);
                let mut w = DirectWriter::create_new(&path).unwrap();
                let mut rest = &data[..];
                let mut step = 1;
                while !rest.is_empty() {
                    let n = step.min(rest.len());
                    w.write_all(&rest[..n]).unwrap();
                    rest = &rest[n..];
                    step = step * 3 + 1;
                }
                w.finish().unwrap().sync_all().unwrap();
                assert!(
                    std::fs::read(&path).unwrap() == data,
                    "{len} bytes in {dir:?}"
                );
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    /// A writer dropped without `finish` (an error upstream) stops its
    /// thread; `write_atomically` then leaves no temporary file and no
    /// target.
    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("nninit-abandon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.bin");
        let r = write_atomically(&target, |w| {
            w.write_all(&vec![1u8; 2 * WRITE_BUFFER + 5])?;
            Err(std::io::Error::other("stop").into())
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
