//! Finding one metadata file inside a distribution archive: a wheel's `*.dist-info/METADATA` (a
//! zip, read with the `zip` crate) or an sdist's `PKG-INFO` (a gzipped tar read with `tar` and
//! `flate2`, or a legacy zip).
//!
//! Uploads are read through the host in chunks (`granary_sdk::artifacts::Reader`), so a zip is
//! read from its end records, its central directory and the one entry wanted, and a tar is
//! streamed until `PKG-INFO`. Archives are untrusted input, and the crates read what an archive
//! tells them to, so the limits are set here: what a file inflates to ([`MAX_METADATA`]), how
//! much of a zip is read to list its files ([`MAX_ZIP_READ`], as the central directory is kept in
//! memory), the size of a tar's long-name and pax records (which `tar` would read whole), and
//! how much a tar.gz is unpacked while looking for its `PKG-INFO` ([`MAX_SDIST_INFLATED`],
//! [`MAX_SDIST_RATIO`], [`MAX_SDIST_ENTRIES`]), so that a gzip bomb fails in milliseconds instead
//! of running until the plugin's CPU limit.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use flate2::bufread::GzDecoder;
use zip::read::{ArchiveOffset, Config};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use crate::name::normalize;

/// Largest metadata file accepted (the host stores derived artifacts up to 4 MiB).
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Most bytes read from a zip to find one file in it: a central directory of up to 16 MiB (a
/// wheel with ~100k files), the metadata file's compressed bytes, and room for the end records,
/// the local header and re-reads after seeks.
///
/// This is also the zip's entry-count bound: `zip` parses every central directory entry, each
/// at least 46 bytes, so at most ~365k entries are ever read. What it reserves up front follows
/// the count the end record claims, which `zip` checks fits the archive (46 bytes an entry);
/// that is at most 65,535 in a plain zip, but a zip64 end record in a large upload can claim
/// more, and that reservation is bounded only by the plugin's memory limit (the call then fails
/// at that limit rather than with this module's message).
pub const MAX_ZIP_READ: u64 = 16 * 1024 * 1024 + MAX_METADATA + 1024 * 1024;
/// Most bytes a tar.gz is inflated to while looking for its `PKG-INFO`. Backends differ in where
/// they put it: setuptools adds the tree in sorted order, so `PKG-INFO` comes after the few
/// capitalised top-level names, while hatchling writes it last, after every file. The cap must
/// therefore hold whole real sdists: numpy's (~20 MB compressed) unpacks to ~100 MB, and the
/// largest ones on PyPI to a few hundred MB. 512 MiB leaves room for those and bounds what a
/// hostile archive that compresses just under [`MAX_SDIST_RATIO`] costs.
pub const MAX_SDIST_INFLATED: u64 = 512 * 1024 * 1024;
/// Most inflated bytes per compressed byte of a tar.gz, once past [`SDIST_RATIO_FLOOR`]. Source
/// trees compress about 3–10:1, while a run of zeros (a gzip bomb's payload) reaches deflate's
/// maximum of about 1000:1: at this ratio a bomb stops after [`SDIST_RATIO_FLOOR`] bytes.
pub const MAX_SDIST_RATIO: u64 = 100;
/// Inflated bytes after which [`MAX_SDIST_RATIO`] applies: below it a small archive with a
/// very compressible file (a test fixture of zeros) costs too little to matter.
pub const SDIST_RATIO_FLOOR: u64 = 16 * 1024 * 1024;
/// Most tar headers read (files, directories, long-name and pax records) while looking for
/// `PKG-INFO`. Each costs work even when empty and compresses to a few bytes; the largest real
/// sdists have tens of thousands of files.
pub const MAX_SDIST_ENTRIES: u64 = 100_000;
/// Largest GNU long-name or pax record read from a tar; a larger one is skipped.
const MAX_TAR_RECORD: u64 = 64 * 1024;
/// Bytes fetched from the host at a time: the zip and tar readers make many small reads.
const BUFFER: usize = 64 * 1024;

/// Why a metadata file could not be read, worded for the person who uploaded the archive.
pub type Error = String;

/// How far a tar.gz is unpacked while looking for `PKG-INFO`; tests use smaller ones.
#[derive(Debug, Clone, Copy)]
struct TarLimits {
    inflated: u64,
    ratio: u64,
    ratio_floor: u64,
    entries: u64,
}

impl TarLimits {
    const UPLOAD: Self = Self {
        inflated: MAX_SDIST_INFLATED,
        ratio: MAX_SDIST_RATIO,
        ratio_floor: SDIST_RATIO_FLOOR,
        entries: MAX_SDIST_ENTRIES,
    };
}

/// A limit an archive went past, worded for the uploader. It travels inside an [`io::Error`]
/// through `tar` (which hands its reader's errors back unchanged) and is told apart from a
/// corrupt archive by its type.
#[derive(Debug)]
struct Limit(String);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Limit {}

impl Limit {
    /// The limit carried by `error`, or by an error it wraps.
    fn of(error: &io::Error) -> Option<&Limit> {
        let mut cause: Option<&(dyn StdError + 'static)> = error.get_ref().map(|e| e as _);
        while let Some(error) = cause {
            if let Some(limit) = error.downcast_ref::<Limit>() {
                return Some(limit);
            }
            cause = error.source();
        }
        None
    }
}

/// `bytes` in MiB when that is exact (the limits are), in bytes otherwise.
fn in_units(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes > 0 && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Counts the bytes read through it: the compressed size of what has been fetched so far.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The inflated bytes of a tar.gz, cut off with a [`Limit`] once they pass the total or the
/// ratio of [`TarLimits`].
struct Inflater<R> {
    decoder: GzDecoder<BufReader<Counting<R>>>,
    inflated: u64,
    limits: TarLimits,
}

impl<R: Read> Inflater<R> {
    fn new(reader: R, limits: TarLimits) -> Self {
        let source = BufReader::with_capacity(
            4 * BUFFER,
            Counting {
                inner: reader,
                read: 0,
            },
        );
        Self {
            decoder: GzDecoder::new(source),
            inflated: 0,
            limits,
        }
    }

    /// Compressed bytes the decoder has consumed: fetched, less what still waits in the buffer
    /// (which would make a bomb's ratio look up to a buffer's worth smaller).
    fn consumed(&self) -> u64 {
        let source = self.decoder.get_ref();
        source.get_ref().read - source.buffer().len() as u64
    }
}

impl<R: Read> Read for Inflater<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        self.inflated += n as u64;
        let TarLimits {
            inflated,
            ratio,
            ratio_floor,
            ..
        } = self.limits;
        if self.inflated > inflated {
            return Err(io::Error::other(Limit(format!(
                "the archive unpacks to more than {} before its PKG-INFO",
                in_units(inflated)
            ))));
        }
        if self.inflated > ratio_floor && self.inflated > self.consumed().saturating_mul(ratio) {
            return Err(io::Error::other(Limit(format!(
                "the archive unpacks to more than {ratio} times its compressed size \
                 ({} MiB from {} bytes) and is refused as a compression bomb",
                self.inflated >> 20,
                self.consumed()
            ))));
        }
        Ok(n)
    }
}

/// A reader that fails once it has read `remaining` bytes. The error's kind is
/// [`io::ErrorKind::FileTooLarge`], so the message reaches the uploader as it is.
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the zip central directory is too large (finding the metadata file would read more than {} bytes)",
                    self.limit
                ),
            ));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Capped<R> {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        self.inner.seek(position)
    }
}

/// A zip archive whose reads are buffered and capped at `max_read` bytes in all.
type Zip<R> = ZipArchive<BufReader<Capped<R>>>;

fn zip_error(error: ZipError) -> Error {
    match error {
        ZipError::Io(error) if error.kind() == io::ErrorKind::FileTooLarge => error.to_string(),
        error => format!("the file is not a valid zip archive ({error})"),
    }
}

/// Reads the central directory of the zip in `reader`.
fn open_zip<R: Read + Seek>(reader: R, max_read: u64) -> Result<Zip<R>, Error> {
    let reader = BufReader::with_capacity(BUFFER, Capped::new(reader, max_read));
    // Distributions are plain zips: no prefix (self-extracting stub) to search for.
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    ZipArchive::with_config(config, reader).map_err(zip_error)
}

/// Reads the file `name` whole (at most `max` bytes uncompressed); `zip` checks its CRC-32.
fn read_zip_file<R: Read + Seek>(zip: &mut Zip<R>, name: &str, max: u64) -> Result<Vec<u8>, Error> {
    let file = zip.by_name(name).map_err(|error| match error {
        ZipError::Io(error) if error.kind() == io::ErrorKind::FileTooLarge => error.to_string(),
        error => format!("{name} in the zip cannot be read: {error}"),
    })?;
    let method = file.compression();
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(format!(
            "{name} uses zip compression method {method}; only stored and deflate are supported"
        ));
    }
    let size = file.size();
    if size > max {
        return Err(format!("{name} is larger than {max} bytes"));
    }
    // The directory's size is not trusted: inflate one byte more than allowed, so a file that
    // inflates past it fails here rather than filling memory.
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|error| match error.kind() {
            io::ErrorKind::FileTooLarge => error.to_string(),
            _ => format!("{name} in the zip is corrupt: {error}"),
        })?;
    if data.len() as u64 > max {
        return Err(format!("{name} is larger than {max} bytes"));
    }
    if data.len() as u64 != size {
        return Err(format!(
            "{name} in the zip is corrupt: size does not match the directory"
        ));
    }
    Ok(data)
}

/// Reads the `METADATA` of a wheel whose project name (from its file name) is `project`.
pub fn wheel_metadata(reader: impl Read + Seek, project: &str) -> Result<Vec<u8>, Error> {
    read_wheel_metadata(reader, project, MAX_ZIP_READ)
}

fn read_wheel_metadata(
    reader: impl Read + Seek,
    project: &str,
    max_read: u64,
) -> Result<Vec<u8>, Error> {
    let mut zip = open_zip(reader, max_read).map_err(|e| format!("invalid wheel: {e}"))?;
    let wanted = normalize(project);
    let candidates: Vec<String> = zip
        .file_names()
        .flatten()
        .filter(|name| {
            name.strip_suffix(".dist-info/METADATA").is_some_and(|dir| {
                !dir.contains('/') && normalize(dir.split('-').next().unwrap_or(dir)) == wanted
            })
        })
        .map(|name| name.into_owned())
        .collect();
    match candidates.as_slice() {
        [name] => {
            read_zip_file(&mut zip, name, MAX_METADATA).map_err(|e| format!("invalid wheel: {e}"))
        }
        [] => Err(format!(
            "invalid wheel: it has no {project}-<version>.dist-info/METADATA file"
        )),
        _ => Err("invalid wheel: it has more than one .dist-info/METADATA file".into()),
    }
}

/// Whether `name` is `<top>/PKG-INFO`, the sdist's own metadata (not an egg-info's).
fn is_pkg_info(name: &str) -> bool {
    name.trim_start_matches("./")
        .split_once('/')
        .is_some_and(|(top, rest)| !top.is_empty() && rest == "PKG-INFO")
}

/// Reads the top-level `PKG-INFO` of a source distribution (`.tar.gz` or `.zip`).
pub fn sdist_metadata(reader: impl Read + Seek, filename: &str) -> Result<Vec<u8>, Error> {
    if filename.ends_with(".zip") {
        let mut zip = open_zip(reader, MAX_ZIP_READ).map_err(|e| format!("invalid sdist: {e}"))?;
        let name = zip
            .file_names()
            .flatten()
            .find(|name| is_pkg_info(name))
            .map(|name| name.into_owned())
            .ok_or("invalid sdist: it has no top-level PKG-INFO file")?;
        return read_zip_file(&mut zip, &name, MAX_METADATA)
            .map_err(|e| format!("invalid sdist: {e}"));
    }
    tar_gz_pkg_info(reader, TarLimits::UPLOAD)
}

/// Streams the tar.gz in `reader` until its top-level `PKG-INFO`, within `limits`.
fn tar_gz_pkg_info(reader: impl Read, limits: TarLimits) -> Result<Vec<u8>, Error> {
    let corrupt = |e: io::Error| match Limit::of(&e) {
        Some(limit) => format!("invalid sdist: {limit}"),
        None => format!("invalid sdist: not a readable .tar.gz archive ({e})"),
    };
    let mut archive = tar::Archive::new(Inflater::new(reader, limits));
    // Raw entries: `tar` would read GNU long names and pax records whole, whatever their size,
    // so they are read here, capped, and applied to the entry that follows them.
    let mut long_name: Option<Vec<u8>> = None;
    for (index, entry) in archive.entries().map_err(corrupt)?.raw(true).enumerate() {
        if index as u64 >= limits.entries {
            return Err(format!(
                "invalid sdist: the archive has more than {} entries before its PKG-INFO",
                limits.entries
            ));
        }
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            long_name = None;
            if size <= MAX_TAR_RECORD {
                let mut record = Vec::new();
                entry.read_to_end(&mut record).map_err(corrupt)?;
                long_name = if kind.is_gnu_longname() {
                    let end = record.iter().position(|&b| b == 0).unwrap_or(record.len());
                    record.truncate(end);
                    Some(record)
                } else {
                    tar::PaxExtensions::new(&record)
                        .flatten()
                        .find(|extension| extension.key_bytes() == b"path")
                        .map(|extension| extension.value_bytes().to_vec())
                };
            }
            continue;
        }
        let name = match long_name.take() {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        if kind.is_file() && is_pkg_info(&String::from_utf8_lossy(&name)) {
            if size > MAX_METADATA {
                return Err(format!(
                    "invalid sdist: PKG-INFO is larger than {MAX_METADATA} bytes"
                ));
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(corrupt)?;
            return Ok(data);
        }
    }
    Err("invalid sdist: it has no top-level PKG-INFO file".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Cursor, Write};

    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    use super::*;

    /// Writes a zip with deflated entries, as a wheel builder would.
    pub(crate) fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        zip_with(files, CompressionMethod::Deflated)
    }

    fn zip_with(files: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// Writes a gzipped ustar archive of regular files.
    pub(crate) fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // `append_data` writes a GNU long-name record for names over 100 bytes.
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn wheel(bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        wheel_metadata(Cursor::new(bytes), "demo_pkg")
    }

    fn sdist(bytes: Vec<u8>, filename: &str) -> Result<Vec<u8>, Error> {
        sdist_metadata(Cursor::new(bytes), filename)
    }

    #[test]
    fn a_wheel_yields_its_dist_info_metadata() {
        let archive = zip(&[
            ("demo_pkg/__init__.py", b"x = 1\n"),
            (
                "demo_pkg-1.0.dist-info/METADATA",
                b"Name: demo-pkg\nVersion: 1.0\n",
            ),
            ("demo_pkg-1.0.dist-info/RECORD", b""),
        ]);
        assert_eq!(wheel(archive).unwrap(), b"Name: demo-pkg\nVersion: 1.0\n");
        let stored = zip_with(
            &[("Demo.Pkg-1.0.dist-info/METADATA", b"Name: Demo.Pkg\n")],
            CompressionMethod::Stored,
        );
        assert_eq!(wheel(stored).unwrap(), b"Name: Demo.Pkg\n");
    }

    #[test]
    fn a_wheel_without_metadata_or_a_corrupt_one_is_refused() {
        let error = wheel(zip(&[("demo_pkg/__init__.py", b"")])).unwrap_err();
        assert_eq!(
            error,
            "invalid wheel: it has no demo_pkg-<version>.dist-info/METADATA file"
        );
        let error = wheel(b"PK\x03\x04 this is not really a zip".to_vec()).unwrap_err();
        assert!(error.contains("not a valid zip archive"), "{error}");
        let two = zip(&[
            ("demo_pkg-1.0.dist-info/METADATA", b""),
            ("demo_pkg-2.0.dist-info/METADATA", b""),
        ]);
        assert_eq!(
            wheel(two).unwrap_err(),
            "invalid wheel: it has more than one .dist-info/METADATA file"
        );
        let metadata = b"Name: demo-pkg\nVersion: 1.0\n".repeat(8);
        let mut damaged = zip(&[("demo_pkg-1.0.dist-info/METADATA", &metadata)]);
        // Inside the compressed data, after the 30-byte local header and the name.
        let data_at = 30 + "demo_pkg-1.0.dist-info/METADATA".len();
        damaged[data_at + 4] ^= 0xff;
        let error = wheel(damaged).unwrap_err();
        assert!(error.contains("corrupt"), "{error}");
    }

    /// Overwrites, in the local and the central header, the little-endian field `at` bytes into
    /// each (a local header's fields sit 4 bytes before the central header's).
    fn patch(archive: &mut [u8], central_at: usize, value: &[u8]) {
        let central = archive
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("a central directory entry");
        archive[central_at - 4..central_at - 4 + value.len()].copy_from_slice(value);
        archive[central + central_at..central + central_at + value.len()].copy_from_slice(value);
    }

    #[test]
    fn a_zip_bomb_fails_at_the_cap_without_inflating_it_all() {
        // 64 MiB of zeros deflate to ~64 KiB.
        let bomb = vec![0u8; 64 * 1024 * 1024];
        let archive = zip(&[("demo_pkg-1.0.dist-info/METADATA", &bomb)]);
        assert!(archive.len() < 1024 * 1024);
        assert_eq!(
            wheel(archive.clone()).unwrap_err(),
            format!(
                "invalid wheel: demo_pkg-1.0.dist-info/METADATA is larger than {MAX_METADATA} bytes"
            )
        );
        // The same file whose headers claim 100 bytes: `zip` stops inflating past the claim.
        let mut lying = archive;
        patch(&mut lying, 24, &100u32.to_le_bytes());
        let error = wheel(lying).unwrap_err();
        assert!(
            error.starts_with(
                "invalid wheel: demo_pkg-1.0.dist-info/METADATA in the zip is corrupt"
            ),
            "{error}"
        );
    }

    #[test]
    fn only_stored_and_deflated_files_are_read() {
        let mut archive = zip(&[("demo_pkg-1.0.dist-info/METADATA", b"Name: x\n")]);
        patch(&mut archive, 10, &12u16.to_le_bytes()); // bzip2
        assert_eq!(
            wheel(archive).unwrap_err(),
            "invalid wheel: demo_pkg-1.0.dist-info/METADATA uses zip compression method Bzip2; \
             only stored and deflate are supported"
        );
    }

    #[test]
    fn a_central_directory_over_the_read_cap_is_refused() {
        let names: Vec<String> = (0..200).map(|i| format!("demo_pkg/{i}.py")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let archive = zip(&files);
        let error = read_wheel_metadata(Cursor::new(archive), "demo_pkg", 4096).unwrap_err();
        assert_eq!(
            error,
            "invalid wheel: the zip central directory is too large (finding the metadata file would read more than 4096 bytes)"
        );
    }

    #[test]
    fn an_sdist_yields_its_top_level_pkg_info() {
        let archive = tar_gz(&[
            ("demo-1.0/setup.py", b"print()\n"),
            ("demo-1.0/src/demo.egg-info/PKG-INFO", b"Name: wrong\n"),
            ("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n"),
        ]);
        let metadata = sdist(archive, "demo-1.0.tar.gz").unwrap();
        assert_eq!(metadata, b"Name: demo\nVersion: 1.0\n");
        let archive = zip(&[("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n")]);
        assert!(sdist(archive, "demo-1.0.zip").is_ok());
        // A top-level directory name too long for a tar header: a GNU long-name record.
        let top = format!("demo-1.0{}", "-long".repeat(30));
        let archive = tar_gz(&[(&format!("{top}/PKG-INFO"), b"Name: demo\n")]);
        assert_eq!(sdist(archive, "demo-1.0.tar.gz").unwrap(), b"Name: demo\n");
    }

    /// A tar.gz whose entries are `(pax path record, header name, data)`.
    fn pax_tar_gz(entries: &[(&[u8], &str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        for (record, name, data) in entries {
            let mut pax = tar::Header::new_ustar();
            pax.set_entry_type(tar::EntryType::XHeader);
            pax.set_size(record.len() as u64);
            builder.append_data(&mut pax, "PaxHeader", *record).unwrap();
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn pax_paths_name_the_next_entry_unless_too_large() {
        let record = b"26 path=demo-1.0/PKG-INFO\n";
        let archive = pax_tar_gz(&[(record, "demo-1.0/PKG-INF", b"Name: demo\n")]);
        assert_eq!(sdist(archive, "demo-1.0.tar.gz").unwrap(), b"Name: demo\n");
        // A record over the cap is skipped, not read: the entry keeps its header name.
        let mut huge = b"70 comment=".to_vec();
        huge.resize(MAX_TAR_RECORD as usize + 1, b'x');
        let archive = pax_tar_gz(&[
            (&huge, "demo-1.0/PKG-INFO", b"Name: demo\n"),
            (record, "demo-1.0/other", b"Name: pax\n"),
        ]);
        assert_eq!(sdist(archive, "demo-1.0.tar.gz").unwrap(), b"Name: demo\n");
    }

    /// `len` bytes that deflate cannot shrink (a xorshift sequence).
    fn incompressible(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_ratio_floor() {
        // 64 MiB of zeros before PKG-INFO: about 64 KiB on the wire.
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let archive = tar_gz(&[
            ("demo-1.0/zeros", &zeros),
            ("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n"),
        ]);
        assert!(archive.len() < 1024 * 1024);
        let error = sdist(archive, "demo-1.0.tar.gz").unwrap_err();
        // Stopped just past the 16 MiB floor, not after the 64 MiB.
        assert!(
            error.starts_with(&format!(
                "invalid sdist: the archive unpacks to more than {MAX_SDIST_RATIO} times its \
                 compressed size ({} MiB from ",
                SDIST_RATIO_FLOOR >> 20
            )),
            "{error}"
        );
        assert!(error.ends_with("bytes) and is refused as a compression bomb"));
        // Under the floor, a very compressible file is fine.
        let zeros = vec![0u8; SDIST_RATIO_FLOOR as usize - 4096];
        let archive = tar_gz(&[
            ("demo-1.0/zeros", &zeros),
            ("demo-1.0/PKG-INFO", b"Name: demo\n"),
        ]);
        assert_eq!(sdist(archive, "demo-1.0.tar.gz").unwrap(), b"Name: demo\n");
    }

    /// The upload limits with a total of 1 MiB and no ratio limit.
    const SMALL: TarLimits = TarLimits {
        inflated: 1024 * 1024,
        ratio: u64::MAX,
        ratio_floor: 0,
        entries: 100,
    };

    #[test]
    fn inflating_stops_at_the_total_cap_whatever_the_ratio() {
        let pkg_info = ("demo-1.0/PKG-INFO", &b"Name: demo\n"[..]);
        let noise = incompressible(SMALL.inflated as usize);
        let archive = tar_gz(&[("demo-1.0/noise", &noise), pkg_info]);
        assert_eq!(
            tar_gz_pkg_info(Cursor::new(archive), SMALL).unwrap_err(),
            "invalid sdist: the archive unpacks to more than 1 MiB before its PKG-INFO"
        );
        let noise = incompressible(SMALL.inflated as usize - 8 * 1024);
        let archive = tar_gz(&[("demo-1.0/noise", &noise), pkg_info]);
        assert_eq!(
            tar_gz_pkg_info(Cursor::new(archive), SMALL).unwrap(),
            b"Name: demo\n"
        );
    }

    #[test]
    fn reading_stops_at_the_entry_cap() {
        let names: Vec<String> = (0..SMALL.entries)
            .map(|i| format!("demo-1.0/{i}.py"))
            .collect();
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        // PKG-INFO as the 100th entry is found; as the 101st it is not reached.
        files[names.len() - 1] = ("demo-1.0/PKG-INFO", b"Name: demo\n");
        let archive = tar_gz(&files);
        assert_eq!(
            tar_gz_pkg_info(Cursor::new(archive), SMALL).unwrap(),
            b"Name: demo\n"
        );
        files.insert(0, ("demo-1.0/setup.py", b""));
        let archive = tar_gz(&files);
        assert_eq!(
            tar_gz_pkg_info(Cursor::new(archive), SMALL).unwrap_err(),
            "invalid sdist: the archive has more than 100 entries before its PKG-INFO"
        );
    }

    #[test]
    fn an_sdist_without_pkg_info_or_not_gzipped_is_refused() {
        let archive = tar_gz(&[("demo-1.0/setup.py", b"")]);
        let error = sdist(archive, "demo-1.0.tar.gz").unwrap_err();
        assert_eq!(error, "invalid sdist: it has no top-level PKG-INFO file");
        let error = sdist(b"plain text".to_vec(), "demo-1.0.tar.gz").unwrap_err();
        assert!(error.contains("not a readable .tar.gz"), "{error}");
        let big = vec![b'x'; MAX_METADATA as usize + 1];
        let error = sdist(tar_gz(&[("demo-1.0/PKG-INFO", &big)]), "demo-1.0.tar.gz").unwrap_err();
        assert_eq!(
            error,
            format!("invalid sdist: PKG-INFO is larger than {MAX_METADATA} bytes")
        );
    }
}

/// Property tests over any bytes an uploader could send as a wheel or an sdist: the readers
/// answer the metadata file or a message for the uploader, never panic, and stop at their limits.
#[cfg(test)]
mod fuzz {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::tests::{tar_gz, zip};
    use super::*;

    /// Cases per property: archives are built and read in each, so fewer than for plain text;
    /// the whole module runs in a few seconds.
    fn config() -> ProptestConfig {
        ProptestConfig::with_cases(300)
    }

    /// Checks what a reader answered for an archive of the kind `prefix` names.
    fn well_formed(result: &Result<Vec<u8>, Error>, prefix: &str) -> Result<(), TestCaseError> {
        match result {
            Ok(metadata) => prop_assert!(metadata.len() as u64 <= MAX_METADATA),
            Err(message) => prop_assert!(message.starts_with(prefix), "{message}"),
        }
        Ok(())
    }

    /// Applies `(position, byte)` overwrites (positions wrap around) and, if `keep` is given,
    /// a truncation to that share of the archive (in 1/256ths).
    fn mutate(mut archive: Vec<u8>, edits: &[(usize, u8)], keep: Option<u8>) -> Vec<u8> {
        for &(at, byte) in edits {
            let at = at % archive.len();
            archive[at] = byte;
        }
        if let Some(keep) = keep {
            archive.truncate(archive.len() * usize::from(keep) / 256);
        }
        archive
    }

    /// Files of an sdist before its PKG-INFO: names under the top directory, small bodies.
    fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        prop::collection::vec(
            ("[a-z]{1,8}", prop::collection::vec(any::<u8>(), 0..1500)),
            0..12,
        )
        .prop_map(|files| {
            // Numbered: a zip may not hold a name twice.
            files
                .into_iter()
                .enumerate()
                .map(|(i, (name, body))| (format!("demo-1.0/{i}{name}.py"), body))
                .collect()
        })
    }

    fn borrowed(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
        files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            well_formed(&wheel_metadata(Cursor::new(&bytes), "demo_pkg"), "invalid wheel: ")?;
            well_formed(&sdist_metadata(Cursor::new(&bytes), "demo-1.0.tar.gz"), "invalid sdist: ")?;
            well_formed(&sdist_metadata(Cursor::new(&bytes), "demo-1.0.zip"), "invalid sdist: ")?;
        }

        #[test]
        fn a_mutated_gzip_header_and_tar_are_read_or_refused(
            metadata in prop::collection::vec(any::<u8>(), 0..512),
            before in files(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            keep in prop::option::of(any::<u8>()),
        ) {
            let mut entries = borrowed(&before);
            entries.push(("demo-1.0/PKG-INFO", &metadata));
            let archive = tar_gz(&entries);
            prop_assert_eq!(&sdist_metadata(Cursor::new(&archive), "demo-1.0.tar.gz"), &Ok(metadata));
            let damaged = mutate(archive, &edits, keep);
            well_formed(&sdist_metadata(Cursor::new(&damaged), "demo-1.0.tar.gz"), "invalid sdist: ")?;
        }

        #[test]
        fn a_mutated_wheel_or_zip_sdist_is_read_or_refused(
            metadata in prop::collection::vec(any::<u8>(), 0..512),
            before in files(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            keep in prop::option::of(any::<u8>()),
        ) {
            let mut entries = borrowed(&before);
            entries.push(("demo_pkg-1.0.dist-info/METADATA", &metadata));
            entries.push(("demo-1.0/PKG-INFO", &metadata));
            let archive = zip(&entries);
            prop_assert_eq!(&wheel_metadata(Cursor::new(&archive), "demo_pkg"), &Ok(metadata.clone()));
            prop_assert_eq!(&sdist_metadata(Cursor::new(&archive), "demo-1.0.zip"), &Ok(metadata));
            let damaged = mutate(archive, &edits, keep);
            well_formed(&wheel_metadata(Cursor::new(&damaged), "demo_pkg"), "invalid wheel: ")?;
            well_formed(&sdist_metadata(Cursor::new(&damaged), "demo-1.0.zip"), "invalid sdist: ")?;
        }

        /// With any total and entry limits, PKG-INFO is found exactly when the headers and data
        /// before it, and its own, fit both; otherwise the message names a limit that was passed.
        #[test]
        fn the_tar_limits_are_exact(
            before in files(),
            inflated in 0..24_000u64,
            entries in 1..16u64,
        ) {
            let mut listed = borrowed(&before);
            listed.push(("demo-1.0/PKG-INFO", b"Name: demo\n"));
            let archive = tar_gz(&listed);
            let limits = TarLimits { inflated, ratio: u64::MAX, ratio_floor: 0, entries };
            // Each entry is a 512-byte header and its data padded to 512; PKG-INFO's data is
            // read only up to its size.
            let needed: u64 = before
                .iter()
                .map(|(_, body)| 512 + (body.len() as u64).div_ceil(512) * 512)
                .sum::<u64>()
                + 512
                + 11;
            let count = listed.len() as u64;
            let result = tar_gz_pkg_info(Cursor::new(&archive), limits);
            if needed <= inflated && count <= entries {
                prop_assert_eq!(result, Ok(b"Name: demo\n".to_vec()));
            } else {
                let message = result.unwrap_err();
                let total = format!(
                    "invalid sdist: the archive unpacks to more than {} before its PKG-INFO",
                    in_units(inflated)
                );
                let many = format!("invalid sdist: the archive has more than {entries} entries before its PKG-INFO");
                prop_assert!(
                    (message == total && needed > inflated) || (message == many && count > entries),
                    "{message} (needed {needed} of {inflated} bytes, {count} of {entries} entries)"
                );
            }
        }
    }
}
