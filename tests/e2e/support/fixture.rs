//! Generated upstream content: files of random bytes from a seeded RNG (so a failure reproduces)
//! and the `PULP_MANIFEST` that describes them.

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct FixtureFile {
    pub relative_path: String,
    pub bytes: Bytes,
    pub sha256: String,
}

impl FixtureFile {
    pub fn new(relative_path: impl Into<String>, bytes: impl Into<Bytes>) -> FixtureFile {
        let bytes = bytes.into();
        FixtureFile {
            relative_path: relative_path.into(),
            sha256: sha256_hex(&bytes),
            bytes,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// This file's `PULP_MANIFEST` line: `relative_path,sha256,size`.
    pub fn manifest_line(&self) -> String {
        format!("{},{},{}", self.relative_path, self.sha256, self.size())
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub files: Vec<FixtureFile>,
}

impl Fixture {
    /// `count` files: the first is empty, every 60th (from the 8th) is 1 to 3 MiB, every 10th
    /// (from the 4th) is 64 to 512 KiB, and the rest are under 16 KiB. A third live two
    /// directories deep and a third one directory deep, so paths with slashes are exercised.
    pub fn generate(count: usize, seed: u64) -> Fixture {
        let mut rng = StdRng::seed_from_u64(seed);
        let files = (0..count)
            .map(|i| {
                let size = match i {
                    0 => 0,
                    i if i % 60 == 7 => rng.random_range(MIB..=3 * MIB),
                    i if i % 10 == 3 => rng.random_range(64 * 1024..512 * 1024),
                    _ => rng.random_range(1..16 * 1024),
                };
                let mut bytes = vec![0u8; size];
                rng.fill_bytes(&mut bytes);
                let relative_path = match i % 3 {
                    0 => format!("dir/sub/file-{i}.bin"),
                    1 => format!("dir/file-{i}.bin"),
                    _ => format!("file-{i}.bin"),
                };
                FixtureFile::new(relative_path, bytes)
            })
            .collect();
        Fixture { files }
    }

    /// The manifest an honest upstream serves for these files.
    pub fn manifest(&self) -> String {
        self.files
            .iter()
            .map(|file| file.manifest_line() + "\n")
            .collect()
    }

    /// `(relative_path, sha256, size)` of every file.
    pub fn entries(&self) -> BTreeSet<(String, String, u64)> {
        self.files
            .iter()
            .map(|file| (file.relative_path.clone(), file.sha256.clone(), file.size()))
            .collect()
    }

    /// The first file of at least 1 MiB, for HEAD and Range requests.
    pub fn large_file(&self) -> &FixtureFile {
        self.files
            .iter()
            .find(|file| file.bytes.len() >= MIB)
            .expect("the fixture has a file of at least 1 MiB")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses `PULP_MANIFEST` text into `(relative_path, sha256, size)` entries, panicking on any
/// line that is not three comma-separated fields.
pub fn parse_manifest(text: &str) -> BTreeSet<(String, String, u64)> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.trim().split(',').collect();
            let [path, sha256, size] = fields[..] else {
                panic!("manifest line is not path,sha256,size: {line:?}");
            };
            let size = size
                .parse()
                .unwrap_or_else(|_| panic!("bad size in {line:?}"));
            (path.to_owned(), sha256.to_owned(), size)
        })
        .collect()
}
