//! The tar of an export: written as a stream cut into chunk files (each hashed as it is
//! written, and the whole stream too), and read back as a stream that accepts only what an
//! export holds: regular files with relative names that stay inside the archive.
//!
//! Headers are ustar, built with the `tar` crate's [`tar::Header`]; the streams themselves are
//! async (artifacts are read from storage, which may be S3) and never hold a file in memory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};

/// A tar block.
const BLOCK: u64 = 512;

/// The largest chunk Pulp accepts (1 TiB).
pub const MAX_CHUNK_BYTES: u64 = 1 << 40;

/// `"512MB"`, `"5KB"`, `"1GB"`, `"100"`: a size as Pulp's `chunk_size` takes it (units B, KB,
/// MB, GB, TB, powers of 1024; a number alone is bytes). Pulp's messages.
pub fn parse_chunk_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("chunk_size '{text}' is not valid (valid units are B/KB/MB/GB/TB)");
    let upper = text.trim().to_ascii_uppercase();
    let split = upper
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(upper.len());
    let (number, unit) = upper.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return Err(invalid()),
    };
    let number: f64 = number.trim().parse().map_err(|_| invalid())?;
    if !number.is_finite() {
        return Err(invalid());
    }
    let size = number * factor as f64;
    if size < 1.0 {
        return Err(format!(
            "Chunk size {} is not greater than zero!",
            size as i64
        ));
    }
    if size > MAX_CHUNK_BYTES as f64 {
        return Err(format!(
            "Chunk size in bytes {} is greater than max-chunk-size {MAX_CHUNK_BYTES}!",
            size as u64
        ));
    }
    Ok(size as u64)
}

/// The table of contents written next to an export (`<name>-toc.json`), as Pulp writes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct TableOfContents {
    /// `checksum_type`, `file` (the unchunked name), `global_hash`, `chunk_size`, and what the
    /// export request put in `meta`.
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Each output file's name (no directory) and its digest.
    pub files: std::collections::BTreeMap<String, String>,
}

/// The files an export wrote.
#[derive(Debug)]
pub struct Written {
    /// Each file (full path) with its sha256, in order.
    pub files: Vec<(PathBuf, String)>,
    /// sha256 of the whole stream (all chunks in order).
    pub global_hash: String,
}

/// An output stream cut into files of at most `chunk_size` bytes (`<base>.0000`, `.0001`, …),
/// or written whole to `<base>` without one.
pub struct ChunkedFile {
    base: PathBuf,
    chunk_size: Option<u64>,
    /// The file being written, with the hash of its bytes when the stream is chunked (whole,
    /// the file's hash is the stream's: hashed once).
    current: Option<(
        tokio::io::BufWriter<tokio::fs::File>,
        Option<Sha256>,
        PathBuf,
    )>,
    in_current: u64,
    written: Vec<(PathBuf, String)>,
    whole: Sha256,
}

impl ChunkedFile {
    /// An output at `base` (nothing is created before the first byte).
    pub fn new(base: PathBuf, chunk_size: Option<u64>) -> Self {
        Self {
            base,
            chunk_size,
            current: None,
            in_current: 0,
            written: Vec::new(),
            whole: Sha256::new(),
        }
    }

    async fn open_next(&mut self) -> std::io::Result<()> {
        let path = match self.chunk_size {
            Some(_) => {
                let mut name = self.base.as_os_str().to_owned();
                name.push(format!(".{:04}", self.written.len()));
                PathBuf::from(name)
            }
            None => self.base.clone(),
        };
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        self.current = Some((
            tokio::io::BufWriter::with_capacity(1 << 20, file),
            self.chunk_size.map(|_| Sha256::new()),
            path,
        ));
        self.in_current = 0;
        Ok(())
    }

    async fn close_current(&mut self) -> std::io::Result<()> {
        if let Some((mut writer, hasher, path)) = self.current.take() {
            writer.flush().await?;
            writer.get_mut().sync_all().await?;
            // Unchunked, the digest is the whole stream's, filled in by `finish`.
            let digest = hasher.map(|hasher| hex::encode(hasher.finalize()));
            self.written.push((path, digest.unwrap_or_default()));
        }
        Ok(())
    }

    /// Appends bytes, starting a new chunk whenever the current one is full.
    pub async fn write_all(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        self.whole.update(bytes);
        while !bytes.is_empty() {
            if let Some(limit) = self.chunk_size
                && self.in_current == limit
            {
                self.close_current().await?;
            }
            if self.current.is_none() {
                self.open_next().await?;
            }
            let room = self
                .chunk_size
                .map_or(bytes.len() as u64, |limit| limit - self.in_current);
            let take = (bytes.len() as u64).min(room) as usize;
            let (writer, hasher, _) = self.current.as_mut().expect("a chunk is open");
            writer.write_all(&bytes[..take]).await?;
            if let Some(hasher) = hasher {
                hasher.update(&bytes[..take]);
            }
            self.in_current += take as u64;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Flushes and syncs the last file; answers what was written.
    pub async fn finish(mut self) -> std::io::Result<Written> {
        self.close_current().await?;
        let global_hash = hex::encode(self.whole.finalize());
        for (_, digest) in &mut self.written {
            if digest.is_empty() {
                digest.clone_from(&global_hash);
            }
        }
        Ok(Written {
            files: self.written,
            global_hash,
        })
    }
}

/// Writes a tar stream of regular files into a [`ChunkedFile`].
pub struct TarWriter {
    out: ChunkedFile,
    /// Every entry is stamped with the time the archive was begun, so one archive's entries agree.
    mtime: u64,
}

impl TarWriter {
    /// A tar written to `out`, its entries dated now.
    pub fn new(out: ChunkedFile) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Self::dated(out, now)
    }

    /// A tar written to `out`, its entries dated `mtime` (seconds since the epoch).
    pub fn dated(out: ChunkedFile, mtime: u64) -> Self {
        Self { out, mtime }
    }

    /// Starts an entry of `size` bytes named `name` (at most 255 bytes, split as ustar splits).
    async fn header(&mut self, name: &str, size: u64) -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(self.mtime);
        header.set_cksum();
        self.out.write_all(header.as_bytes()).await
    }

    async fn pad(&mut self, size: u64) -> std::io::Result<()> {
        let rest = (BLOCK - size % BLOCK) % BLOCK;
        self.out.write_all(&vec![0; rest as usize]).await
    }

    /// Adds a file held in memory.
    pub async fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.header(name, bytes.len() as u64).await?;
        self.out.write_all(bytes).await?;
        self.pad(bytes.len() as u64).await
    }

    /// Adds a file of `size` bytes read from `body`; fails if `body` has not exactly that many.
    pub async fn append_stream(
        &mut self,
        name: &str,
        size: u64,
        body: &mut (impl AsyncRead + Unpin),
    ) -> std::io::Result<()> {
        self.header(name, size).await?;
        let mut buffer = vec![0; 256 * 1024];
        let mut copied = 0;
        loop {
            let read = body.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            copied += read as u64;
            if copied > size {
                break;
            }
            self.out.write_all(&buffer[..read]).await?;
        }
        if copied != size {
            return Err(std::io::Error::other(format!(
                "{name}: expected {size} bytes, read {copied}"
            )));
        }
        self.pad(size).await
    }

    /// Adds a file from the disk.
    pub async fn append_file(&mut self, name: &str, path: &Path) -> std::io::Result<()> {
        let mut file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        self.append_stream(name, size, &mut file).await
    }

    /// Ends the archive (two empty blocks) and the output.
    pub async fn finish(mut self) -> std::io::Result<Written> {
        self.out.write_all(&[0; 2 * BLOCK as usize]).await?;
        self.out.finish().await
    }
}

/// An entry of an archive being read.
#[derive(Debug)]
pub struct Entry {
    /// Its name, relative, `/`-separated, without `.` or `..` components.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Reads a tar stream written by [`TarWriter`]. Between [`TarReader::next`] calls the reader
/// reads the current entry's bytes (as an [`AsyncRead`] that ends where the entry does); what
/// is left of it is skipped by the next `next`.
pub struct TarReader<R> {
    inner: R,
    /// Bytes of the current entry not read yet.
    left: u64,
    /// Padding after the current entry.
    padding: u64,
    ended: bool,
}

impl<R: AsyncRead + Unpin> TarReader<R> {
    /// Reads `inner` as a tar stream.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            left: 0,
            padding: 0,
            ended: false,
        }
    }

    /// The next entry, or `None` at the end of the archive. Anything but a regular file with
    /// a safe relative name is an error, as is a header whose checksum is wrong.
    pub async fn next(&mut self) -> std::io::Result<Option<Entry>> {
        if self.ended {
            return Ok(None);
        }
        let skip = self.left + self.padding;
        if skip > 0 {
            let skipped =
                tokio::io::copy(&mut (&mut self.inner).take(skip), &mut tokio::io::sink()).await?;
            if skipped != skip {
                return Err(invalid("the archive ends inside an entry"));
            }
        }
        self.left = 0;
        self.padding = 0;
        let mut block = [0u8; BLOCK as usize];
        match self.inner.read_exact(&mut block).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(invalid("the archive ends without its end marker"));
            }
            Err(error) => return Err(error),
        }
        if block.iter().all(|byte| *byte == 0) {
            self.ended = true;
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&block);
        let stored = header
            .cksum()
            .map_err(|_| invalid("a header's checksum is unreadable"))?;
        let computed: u32 = block[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&block[156..])
            .map(|byte| u32::from(*byte))
            .sum();
        if stored != computed {
            return Err(invalid("a header's checksum is wrong"));
        }
        let name = header
            .path()
            .map_err(|_| invalid("an entry's name is unreadable"))?
            .to_str()
            .ok_or_else(|| invalid("an entry's name is not UTF-8"))?
            .to_owned();
        if !matches!(
            header.entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(invalid(&format!("{name:?} is not a regular file")));
        }
        if !safe_name(&name) {
            return Err(invalid(&format!(
                "{name:?} is not a relative path inside the archive"
            )));
        }
        let size = header
            .size()
            .map_err(|_| invalid(&format!("{name:?} has an unreadable size")))?;
        self.left = size;
        self.padding = (BLOCK - size % BLOCK) % BLOCK;
        Ok(Some(Entry { name, size }))
    }

    /// Reads the whole current entry into memory, refusing one larger than `limit` bytes.
    pub async fn read_small(&mut self, entry: &Entry, limit: u64) -> std::io::Result<Vec<u8>> {
        if entry.size > limit {
            return Err(invalid(&format!(
                "{} has {} bytes, more than the {limit} such a file may have",
                entry.name, entry.size
            )));
        }
        let mut bytes = Vec::with_capacity(entry.size as usize);
        self.read_to_end(&mut bytes).await?;
        Ok(bytes)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TarReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Ok(()));
        }
        let room = (buf.remaining() as u64).min(self.left) as usize;
        let this = &mut *self;
        // Read into the part of `buf` this entry may fill (zeroed first, which keeps this safe).
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let read = limited.filled().len();
                if read == 0 && room > 0 {
                    return Poll::Ready(Err(invalid("the archive ends inside an entry")));
                }
                buf.advance(read);
                this.left -= read as u64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// A relative `/`-separated name without empty, `.` or `..` components.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_read_as_pulp_reads_them() {
        assert_eq!(parse_chunk_size("5KB"), Ok(5 * 1024));
        assert_eq!(parse_chunk_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_chunk_size("0.5 MB"), Ok(512 * 1024));
        assert_eq!(parse_chunk_size("100"), Ok(100));
        assert!(parse_chunk_size("5XB").unwrap_err().contains("valid units"));
        assert!(
            parse_chunk_size("0KB")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(
            parse_chunk_size("2TB")
                .unwrap_err()
                .contains("max-chunk-size")
        );
    }

    async fn written(chunk_size: Option<u64>, dir: &Path) -> Written {
        // One date for both archives: written a second apart, they must still be byte for byte equal.
        let mut tar = TarWriter::dated(
            ChunkedFile::new(dir.join("export.tar"), chunk_size),
            1_700_000_000,
        );
        tar.append_bytes("versions.json", b"[]").await.unwrap();
        let body = vec![7u8; 3000];
        tar.append_stream("artifacts/ab/abcd", 3000, &mut body.as_slice())
            .await
            .unwrap();
        tar.finish().await.unwrap()
    }

    #[tokio::test]
    async fn an_archive_cut_into_chunks_reads_back_whole() {
        let dir = std::env::temp_dir().join(format!("granary-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = written(None, &dir).await;
        let chunked_dir = dir.join("chunked");
        std::fs::create_dir_all(&chunked_dir).unwrap();
        let chunked = written(Some(1000), &chunked_dir).await;
        assert_eq!(whole.files.len(), 1);
        assert!(chunked.files.len() > 4, "{:?}", chunked.files);
        let mut joined = Vec::new();
        for (path, sha256) in &chunked.files {
            let bytes = std::fs::read(path).unwrap();
            assert!(bytes.len() <= 1000);
            assert_eq!(&hex::encode(Sha256::digest(&bytes)), sha256);
            joined.extend(bytes);
        }
        assert_eq!(joined, std::fs::read(&whole.files[0].0).unwrap());
        assert_eq!(chunked.global_hash, whole.files[0].1);

        let mut reader = TarReader::new(joined.as_slice());
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!((first.name.as_str(), first.size), ("versions.json", 2));
        assert_eq!(reader.read_small(&first, 10).await.unwrap(), b"[]");
        let second = reader.next().await.unwrap().unwrap();
        assert_eq!(second.name, "artifacts/ab/abcd");
        // Not read: skipped by the next `next`.
        assert!(reader.next().await.unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn archive_with(name: &str, kind: tar::EntryType) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        // Written raw: `set_path` itself refuses `..`, a hostile archive does not.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(1);
        header.set_entry_type(kind);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend([b'x']);
        bytes.resize(bytes.len() + 511, 0);
        bytes.extend([0; 1024]);
        bytes
    }

    #[tokio::test]
    async fn hostile_entries_are_refused() {
        for (name, kind) in [
            ("../escape", tar::EntryType::Regular),
            ("/etc/passwd", tar::EntryType::Regular),
            ("a/./b", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("dir", tar::EntryType::Directory),
        ] {
            let bytes = archive_with(name, kind);
            let error = TarReader::new(bytes.as_slice()).next().await.unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{name}");
        }
        let mut corrupt = archive_with("fine", tar::EntryType::Regular);
        corrupt[0] = b'g';
        let error = TarReader::new(corrupt.as_slice()).next().await.unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
        let cut = &archive_with("fine", tar::EntryType::Regular)[..600];
        let mut reader = TarReader::new(cut);
        reader.next().await.unwrap().unwrap();
        assert!(reader.next().await.is_err(), "ends inside an entry");
    }
}
