//! Finding one metadata file inside a distribution archive: a wheel's `*.dist-info/METADATA` (a
//! zip, read with the `zip` crate) or an sdist's `PKG-INFO` (a gzipped tar read with `tar` and
//! `flate2`, or a legacy zip).
//!
//! Uploads are read through the host in chunks (`granary_sdk::artifacts::Reader`), so a zip is
//! read from its end records, its central directory and the one entry wanted, and a tar is
//! streamed until `PKG-INFO`. Archives are untrusted input, and the crates read what an archive
//! tells them to, so the limits are set here: what a file inflates to ([`MAX_METADATA`]), how
//! much of a zip is read to list its files ([`MAX_ZIP_READ`], as the central directory is kept in
//! memory), and the size of a tar's long-name and pax records (which `tar` would read whole).

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use flate2::read::GzDecoder;
use zip::read::{ArchiveOffset, Config};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use crate::name::normalize;

/// Largest metadata file accepted (the host stores derived artifacts up to 4 MiB).
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Most bytes read from a zip to find one file in it: a central directory of up to 16 MiB (a
/// wheel with ~100k files), the metadata file's compressed bytes, and room for the end records,
/// the local header and re-reads after seeks.
pub const MAX_ZIP_READ: u64 = 16 * 1024 * 1024 + MAX_METADATA + 1024 * 1024;
/// Largest GNU long-name or pax record read from a tar; a larger one is skipped.
const MAX_TAR_RECORD: u64 = 64 * 1024;
/// Bytes fetched from the host at a time: the zip and tar readers make many small reads.
const BUFFER: usize = 64 * 1024;

/// Why a metadata file could not be read, worded for the person who uploaded the archive.
pub type Error = String;

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
    let corrupt = |e: io::Error| format!("invalid sdist: not a readable .tar.gz archive ({e})");
    let mut archive =
        tar::Archive::new(GzDecoder::new(BufReader::with_capacity(4 * BUFFER, reader)));
    // Raw entries: `tar` would read GNU long names and pax records whole, whatever their size,
    // so they are read here, capped, and applied to the entry that follows them.
    let mut long_name: Option<Vec<u8>> = None;
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
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
