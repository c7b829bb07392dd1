//! Generated test data: directories of files with a `PULP_MANIFEST`, as nginx serves them to both
//! the load generator and Granary's sync.

use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Writes the wheel and the sdist of a pure-Python project of `modules` files of about 6 KiB (words
/// of a random vocabulary, which compress about as source does) into `dir` with Python's `zipfile`
/// and `tarfile`, which wheel and sdist builders use, and returns their paths: `(wheel, sdist)`.
/// The sdist has `PKG-INFO` last, as hatchling writes it, so the whole archive is inflated to
/// reach it. Python writes them so that this crate adds no archive crate to the host's build
/// (their features would change how the host's dependencies compile).
pub fn python_archives(dir: &Path, modules: usize) -> anyhow::Result<(PathBuf, PathBuf)> {
    const SCRIPT: &str = r#"
import io, os, random, sys, tarfile, zipfile
out, modules = sys.argv[1], int(sys.argv[2])
name, version = "bench_demo", "1.0"
rng = random.Random(16)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
def text(n):
    return " ".join(rng.choice(words) for _ in range(n))
sources = {}
for m in range(modules):
    body = f'"""{text(12)}."""\n\n'
    for f in range(40):
        a, b = rng.choice(words), rng.choice(words)
        body += f'def {a}_{f}({b}, value=None):\n    """{text(10)}."""\n    return {b} * {rng.randint(0, 999)} + len("{text(3)}")\n\n'
    sources[f"mod_{m:02}.py"] = body.encode()
metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: A project to time parse-upload with\n"
            "Requires-Python: >=3.8\nRequires-Dist: requests>=2\nClassifier: Programming Language :: Python :: 3\n\n"
            + "".join(f"Line {i} of the project's long description.\n" for i in range(30))).encode()
with zipfile.ZipFile(os.path.join(out, f"{name}-{version}-py3-none-any.whl"), "w", zipfile.ZIP_DEFLATED) as wheel:
    for file, data in sources.items():
        wheel.writestr(f"{name}/{file}", data)
    info = f"{name}-{version}.dist-info"
    wheel.writestr(f"{info}/METADATA", metadata)
    wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr(f"{info}/RECORD", "".join(f"{name}/{file},,\n" for file in sources))
top = f"{name}-{version}"
with tarfile.open(os.path.join(out, f"{top}.tar.gz"), "w:gz", format=tarfile.PAX_FORMAT) as sdist:
    for path, data in [*((f"{top}/src/{name}/{f}", d) for f, d in sources.items()), (f"{top}/PKG-INFO", metadata)]:
        member = tarfile.TarInfo(path)
        member.size, member.mode, member.mtime = len(data), 0o644, 0
        sdist.addfile(member, io.BytesIO(data))
"#;
    std::fs::create_dir_all(dir)?;
    let status = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(dir)
        .arg(modules.to_string())
        .status()
        .map_err(|error| {
            anyhow::anyhow!("running python3 to write a wheel and an sdist: {error}")
        })?;
    anyhow::ensure!(
        status.success(),
        "python3 could not write the wheel and the sdist ({status})"
    );
    Ok((
        dir.join("bench_demo-1.0-py3-none-any.whl"),
        dir.join("bench_demo-1.0.tar.gz"),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
