//! Finding one metadata file inside a distribution archive: a wheel's `*.dist-info/METADATA` (a
//! zip) or an sdist's `PKG-INFO` (a gzipped tar, or a legacy zip).
//!
//! Uploads are read through the host in chunks, so the zip reader reads only the end-of-central-
//! directory record, the central directory and the one entry it wants; the tar reader streams
//! and skips until it meets `PKG-INFO`. Every size taken from the archive is capped before
//! anything is allocated: archives are untrusted input.

use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::{DeflateDecoder, GzDecoder};

use crate::name::normalize;

/// Largest metadata file accepted (the host stores derived artifacts up to 4 MiB).
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;
/// Largest central directory read (a wheel with ~100k files).
const MAX_CENTRAL_DIRECTORY: u64 = 16 * 1024 * 1024;

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL_ENTRY: u32 = 0x0201_4b50;
const LOCAL_ENTRY: u32 = 0x0403_4b50;

/// Why a metadata file could not be read, worded for the person who uploaded the archive.
pub type Error = String;

fn io_error(what: &str, error: io::Error) -> Error {
    format!("{what}: {error}")
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// One file of a zip's central directory.
#[derive(Debug, Clone)]
struct ZipEntry {
    name: String,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    size: u64,
    local_header: u64,
}

/// The central directory of a zip archive.
pub struct Zip<R> {
    reader: R,
    entries: Vec<ZipEntry>,
}

impl<R: Read + Seek> Zip<R> {
    /// Reads the central directory of the zip in `reader` (of `len` bytes).
    pub fn open(mut reader: R, len: u64) -> Result<Self, Error> {
        let not_zip = || {
            "the file is not a valid zip archive (no end of central directory record)".to_string()
        };
        // The end record is 22 bytes plus a comment of up to 64 KiB.
        let tail_len = len.min(22 + 65_535);
        if tail_len < 22 {
            return Err(not_zip());
        }
        let tail = read_at(&mut reader, len - tail_len, tail_len)
            .map_err(|e| io_error("reading the zip", e))?;
        let eocd = (0..=tail.len() - 22)
            .rev()
            .find(|&at| u32_at(&tail, at) == EOCD)
            .ok_or_else(not_zip)?;
        let mut count = u64::from(u16_at(&tail, eocd + 10));
        let mut cd_size = u64::from(u32_at(&tail, eocd + 12));
        let mut cd_offset = u64::from(u32_at(&tail, eocd + 16));
        if (count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff)
            && eocd >= 20
            && u32_at(&tail, eocd - 20) == ZIP64_LOCATOR
        {
            let record_at = u64_at(&tail, eocd - 20 + 8);
            let record = read_at(&mut reader, record_at, 56)
                .map_err(|e| io_error("reading the zip64 end record", e))?;
            if record.len() < 56 || u32_at(&record, 0) != ZIP64_EOCD {
                return Err("the zip64 end of central directory record is corrupt".into());
            }
            count = u64_at(&record, 32);
            cd_size = u64_at(&record, 40);
            cd_offset = u64_at(&record, 48);
        }
        if cd_size > MAX_CENTRAL_DIRECTORY || cd_offset.saturating_add(cd_size) > len {
            return Err("the zip central directory is corrupt or too large".into());
        }
        let directory = read_at(&mut reader, cd_offset, cd_size)
            .map_err(|e| io_error("reading the zip central directory", e))?;
        let mut entries = Vec::new();
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > directory.len() || u32_at(&directory, at) != CENTRAL_ENTRY {
                return Err("the zip central directory is corrupt".into());
            }
            let name_len = usize::from(u16_at(&directory, at + 28));
            let extra_len = usize::from(u16_at(&directory, at + 30));
            let comment_len = usize::from(u16_at(&directory, at + 32));
            let end = at + 46 + name_len + extra_len + comment_len;
            if end > directory.len() {
                return Err("the zip central directory is corrupt".into());
            }
            let name =
                String::from_utf8_lossy(&directory[at + 46..at + 46 + name_len]).into_owned();
            let mut entry = ZipEntry {
                name,
                method: u16_at(&directory, at + 10),
                crc32: u32_at(&directory, at + 16),
                compressed_size: u64::from(u32_at(&directory, at + 20)),
                size: u64::from(u32_at(&directory, at + 24)),
                local_header: u64::from(u32_at(&directory, at + 42)),
            };
            apply_zip64_extra(
                &mut entry,
                &directory[at + 46 + name_len..at + 46 + name_len + extra_len],
            );
            entries.push(entry);
            at = end;
        }
        Ok(Self { reader, entries })
    }

    /// The names of the archive's files, in directory order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|entry| entry.name.as_str())
    }

    /// Reads the file `name` whole (at most `max` bytes uncompressed), checking its CRC-32.
    pub fn read(&mut self, name: &str, max: u64) -> Result<Vec<u8>, Error> {
        let entry = self
            .entries
            .iter()
            .find(|entry| entry.name == name)
            .cloned()
            .ok_or_else(|| format!("the archive has no {name}"))?;
        if entry.size > max {
            return Err(format!("{name} is larger than {max} bytes"));
        }
        let header = read_at(&mut self.reader, entry.local_header, 30)
            .map_err(|e| io_error("reading the zip", e))?;
        if header.len() < 30 || u32_at(&header, 0) != LOCAL_ENTRY {
            return Err(format!("the zip entry of {name} is corrupt"));
        }
        let data_at = entry.local_header
            + 30
            + u64::from(u16_at(&header, 26))
            + u64::from(u16_at(&header, 28));
        self.reader
            .seek(SeekFrom::Start(data_at))
            .map_err(|e| io_error("reading the zip", e))?;
        let compressed = (&mut self.reader).take(entry.compressed_size);
        let mut data = Vec::new();
        let result = match entry.method {
            0 => compressed.take(max + 1).read_to_end(&mut data),
            8 => DeflateDecoder::new(compressed)
                .take(max + 1)
                .read_to_end(&mut data),
            method => {
                return Err(format!(
                    "{name} uses zip compression method {method}; only stored and deflate are supported"
                ));
            }
        };
        result.map_err(|e| format!("{name} in the zip is corrupt: {e}"))?;
        if data.len() as u64 != entry.size {
            return Err(format!(
                "{name} in the zip is corrupt: size does not match the directory"
            ));
        }
        if crc32fast::hash(&data) != entry.crc32 {
            return Err(format!("{name} in the zip is corrupt: CRC-32 mismatch"));
        }
        Ok(data)
    }
}

/// Replaces the 32-bit sizes and offset that are saturated with those of the zip64 extra field.
fn apply_zip64_extra(entry: &mut ZipEntry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0);
        let len = usize::from(u16_at(extra, 2)).min(extra.len() - 4);
        if id == 0x0001 {
            let mut field = &extra[4..4 + len];
            for value in [
                &mut entry.size,
                &mut entry.compressed_size,
                &mut entry.local_header,
            ] {
                if *value == 0xffff_ffff && field.len() >= 8 {
                    *value = u64_at(field, 0);
                    field = &field[8..];
                }
            }
        }
        extra = &extra[4 + len..];
    }
}

fn read_at(reader: &mut (impl Read + Seek), offset: u64, len: u64) -> io::Result<Vec<u8>> {
    reader.seek(SeekFrom::Start(offset))?;
    let mut buffer = Vec::new();
    reader.take(len).read_to_end(&mut buffer)?;
    Ok(buffer)
}

/// Reads the `METADATA` of a wheel whose project name (from its file name) is `project`.
pub fn wheel_metadata(reader: impl Read + Seek, len: u64, project: &str) -> Result<Vec<u8>, Error> {
    let mut zip = Zip::open(reader, len).map_err(|e| format!("invalid wheel: {e}"))?;
    let wanted = normalize(project);
    let candidates: Vec<String> = zip
        .names()
        .filter(|name| {
            name.strip_suffix(".dist-info/METADATA").is_some_and(|dir| {
                !dir.contains('/') && normalize(dir.split('-').next().unwrap_or(dir)) == wanted
            })
        })
        .map(str::to_owned)
        .collect();
    match candidates.as_slice() {
        [name] => zip
            .read(name, MAX_METADATA)
            .map_err(|e| format!("invalid wheel: {e}")),
        [] => Err(format!(
            "invalid wheel: it has no {project}-<version>.dist-info/METADATA file"
        )),
        _ => Err("invalid wheel: it has more than one .dist-info/METADATA file".into()),
    }
}

/// Reads the top-level `PKG-INFO` of a source distribution (`.tar.gz` or `.zip`).
pub fn sdist_metadata(
    reader: impl Read + Seek,
    len: u64,
    filename: &str,
) -> Result<Vec<u8>, Error> {
    let is_pkg_info = |name: &str| {
        name.trim_start_matches("./")
            .split_once('/')
            .is_some_and(|(top, rest)| !top.is_empty() && rest == "PKG-INFO")
    };
    if filename.ends_with(".zip") {
        let mut zip = Zip::open(reader, len).map_err(|e| format!("invalid sdist: {e}"))?;
        let name = zip
            .names()
            .find(|name| is_pkg_info(name))
            .map(str::to_owned)
            .ok_or("invalid sdist: it has no top-level PKG-INFO file")?;
        return zip
            .read(&name, MAX_METADATA)
            .map_err(|e| format!("invalid sdist: {e}"));
    }
    let mut tar = GzDecoder::new(io::BufReader::with_capacity(256 * 1024, reader));
    let corrupt = |e: io::Error| format!("invalid sdist: not a readable .tar.gz archive ({e})");
    let mut long_name: Option<String> = None;
    loop {
        let mut header = [0u8; 512];
        tar.read_exact(&mut header).map_err(corrupt)?;
        if header.iter().all(|&b| b == 0) {
            return Err("invalid sdist: it has no top-level PKG-INFO file".into());
        }
        let checksum = octal(&header[148..156])
            .ok_or_else(|| "invalid sdist: corrupt tar header".to_string())?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if sum != checksum {
            return Err("invalid sdist: corrupt tar header (checksum mismatch)".into());
        }
        let size = octal(&header[124..136])
            .ok_or_else(|| "invalid sdist: corrupt tar header".to_string())?;
        let padded = size.div_ceil(512) * 512;
        let kind = header[156];
        let mut name = match long_name.take() {
            Some(name) => name,
            None => {
                let field = |range: std::ops::Range<usize>| {
                    let bytes = &header[range];
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    String::from_utf8_lossy(&bytes[..end]).into_owned()
                };
                let (name, prefix) = (field(0..100), field(345..500));
                if &header[257..262] == b"ustar" && !prefix.is_empty() {
                    format!("{prefix}/{name}")
                } else {
                    name
                }
            }
        };
        match kind {
            // GNU long name and pax extended header: they name the next entry.
            b'L' | b'x' if size <= 64 * 1024 => {
                let mut data = vec![0; padded as usize];
                tar.read_exact(&mut data).map_err(corrupt)?;
                data.truncate(size as usize);
                long_name = if kind == b'L' {
                    Some(
                        String::from_utf8_lossy(&data)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                } else {
                    pax_path(&data)
                };
                continue;
            }
            b'0' | 0 if is_pkg_info(&name) => {
                if size > MAX_METADATA {
                    return Err(format!(
                        "invalid sdist: PKG-INFO is larger than {MAX_METADATA} bytes"
                    ));
                }
                let mut data = vec![0; size as usize];
                tar.read_exact(&mut data).map_err(corrupt)?;
                return Ok(data);
            }
            _ => {
                name.clear();
                io::copy(&mut (&mut tar).take(padded), &mut io::sink()).map_err(corrupt)?;
            }
        }
    }
}

/// A tar header number: octal digits, NUL/space padded.
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The `path` record of a pax extended header (`<len> path=<value>\n` records).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .filter_map(|record| record.split_once(' ').map(|(_, rest)| rest))
        .find_map(|record| record.strip_prefix("path=").map(str::to_owned))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Cursor, Write};

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder};

    use super::*;

    /// Writes a zip with deflated entries, as a wheel builder would.
    pub(crate) fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut directory = Vec::new();
        for (name, data) in files {
            let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(data).unwrap();
            let compressed = encoder.finish().unwrap();
            let crc = crc32fast::hash(data);
            let offset = out.len() as u32;
            let common = |buffer: &mut Vec<u8>| {
                buffer.extend_from_slice(&20u16.to_le_bytes()); // version needed
                buffer.extend_from_slice(&0u16.to_le_bytes()); // flags
                buffer.extend_from_slice(&8u16.to_le_bytes()); // deflate
                buffer.extend_from_slice(&0u32.to_le_bytes()); // time, date
                buffer.extend_from_slice(&crc.to_le_bytes());
                buffer.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
                buffer.extend_from_slice(&(data.len() as u32).to_le_bytes());
                buffer.extend_from_slice(&(name.len() as u16).to_le_bytes());
                buffer.extend_from_slice(&0u16.to_le_bytes()); // extra
            };
            out.extend_from_slice(&LOCAL_ENTRY.to_le_bytes());
            common(&mut out);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&compressed);
            directory.extend_from_slice(&CENTRAL_ENTRY.to_le_bytes());
            directory.extend_from_slice(&20u16.to_le_bytes()); // version made by
            common(&mut directory);
            directory.extend_from_slice(&[0; 6]); // comment len, disk, internal attrs
            directory.extend_from_slice(&0u32.to_le_bytes()); // external attrs
            directory.extend_from_slice(&offset.to_le_bytes());
            directory.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&directory);
        out.extend_from_slice(&EOCD.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    /// Writes a gzipped ustar archive of regular files.
    pub(crate) fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = Vec::new();
        for (name, data) in files {
            let mut header = [0u8; 512];
            header[..name.len()].copy_from_slice(name.as_bytes());
            header[100..107].copy_from_slice(b"0000644");
            header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
            header[156] = b'0';
            header[257..263].copy_from_slice(b"ustar\0");
            header[148..156].fill(b' ');
            let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
            header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            tar.extend_from_slice(&header);
            tar.extend_from_slice(data);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.extend_from_slice(&[0; 1024]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    fn wheel(bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        let len = bytes.len() as u64;
        wheel_metadata(Cursor::new(bytes), len, "demo_pkg")
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
        let mut damaged = zip(&[(
            "demo_pkg-1.0.dist-info/METADATA",
            b"Name: demo-pkg\nVersion: 1.0\n",
        )]);
        damaged[64] ^= 0xff; // inside the compressed data (after the 30-byte header and the name)
        let error = wheel(damaged).unwrap_err();
        assert!(error.contains("corrupt"), "{error}");
    }

    #[test]
    fn an_sdist_yields_its_top_level_pkg_info() {
        let archive = tar_gz(&[
            ("demo-1.0/setup.py", b"print()\n"),
            ("demo-1.0/src/demo.egg-info/PKG-INFO", b"Name: wrong\n"),
            ("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n"),
        ]);
        let len = archive.len() as u64;
        let metadata = sdist_metadata(Cursor::new(archive), len, "demo-1.0.tar.gz").unwrap();
        assert_eq!(metadata, b"Name: demo\nVersion: 1.0\n");
        let archive = zip(&[("demo-1.0/PKG-INFO", b"Name: demo\nVersion: 1.0\n")]);
        let len = archive.len() as u64;
        assert!(sdist_metadata(Cursor::new(archive), len, "demo-1.0.zip").is_ok());
    }

    #[test]
    fn an_sdist_without_pkg_info_or_not_gzipped_is_refused() {
        let archive = tar_gz(&[("demo-1.0/setup.py", b"")]);
        let len = archive.len() as u64;
        let error = sdist_metadata(Cursor::new(archive), len, "demo-1.0.tar.gz").unwrap_err();
        assert_eq!(error, "invalid sdist: it has no top-level PKG-INFO file");
        let error =
            sdist_metadata(Cursor::new(b"plain text".to_vec()), 10, "demo-1.0.tar.gz").unwrap_err();
        assert!(error.contains("not a readable .tar.gz"), "{error}");
    }
}
