//! Generated test data: directories of files with a `PULP_MANIFEST`, as nginx serves them to both
//! the load generator and Granary's sync.

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// Fills `buffer` with bytes no other `seed` produces (splitmix64: fast, incompressible enough,
/// and every file distinct so no artifact is deduplicated).
pub fn fill(buffer: &mut [u8], seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for chunk in buffer.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// Writes `count` files of `size` bytes named `f00000.bin`... into `dir`, plus a `PULP_MANIFEST`
/// listing them. Returns the file names.
pub fn files(dir: &Path, count: usize, size: usize, seed: u64) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = std::io::BufWriter::new(std::fs::File::create(dir.join("PULP_MANIFEST"))?);
    let mut buffer = vec![0u8; size];
    let mut names = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("f{index:05}.bin");
        fill(
            &mut buffer,
            seed.wrapping_mul(1_000_003).wrapping_add(index as u64),
        );
        std::fs::write(dir.join(&name), &buffer)?;
        writeln!(manifest, "{name},{},{size}", hex(&Sha256::digest(&buffer)))?;
        names.push(name);
    }
    manifest.flush()?;
    Ok(names)
}

/// Writes a `PULP_MANIFEST` of `count` units whose files do not exist: enough for an `on_demand`
/// sync and a publish, which never fetch them.
pub fn manifest_only(dir: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = std::io::BufWriter::new(std::fs::File::create(dir.join("PULP_MANIFEST"))?);
    for index in 0..count {
        let digest = Sha256::digest(format!("unit {index}"));
        writeln!(
            manifest,
            "d{:03}/f{index:06}.bin,{},1024",
            index / 1000,
            hex(&digest)
        )?;
    }
    manifest.flush()?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
