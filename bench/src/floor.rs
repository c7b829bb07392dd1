//! The upload's third reference: the flushes alone that an upload must make when it keeps what a
//! repository keeps, with no server, request or plugin. A Python wheel upload keeps two files
//! (the wheel and the PEP 658 metadata file extracted from it) under their digests and records
//! them in the database: per file, a new file written and `fdatasync`ed, renamed into one of 256
//! directories (`artifacts/ab/<sha256>`, as the server's local storage) and that directory
//! flushed, so that the name survives a power cut; then one SQLite commit with the server's
//! settings (WAL, `synchronous = FULL`, through `granary::db::Db`). The minimal receiver makes
//! one of these five flushes.
//!
//! Since local storage keeps small blobs in the database's journal with their artifacts' commit
//! (`host/src/storage/journal.rs`), an upload of small files makes one flush: its commit, which
//! holds both files. [`journal_uploads_per_second`] measures that floor; what Granary spends
//! beyond it is its own.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

/// The size of each kept file: about a small wheel's.
const FILE_BYTES: usize = 1300;

/// Uploads per second when each of `rounds` uploads makes only the flushes described above, in
/// a new directory under `dir`.
pub async fn uploads_per_second(dir: &Path, rounds: usize) -> anyhow::Result<f64> {
    let db = new_database(dir, "CREATE TABLE floor_uploads (sha256 TEXT PRIMARY KEY)").await?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let mut digests = Vec::with_capacity(2);
        for kind in ["wheel", "metadata"] {
            let body = format!("{kind} {round} ").repeat(FILE_BYTES / 8);
            let dir = dir.to_path_buf();
            let digest = tokio::task::spawn_blocking(move || keep(&dir, body.as_bytes())).await??;
            digests.push(digest);
        }
        let mut tx = db.pool().begin().await?;
        for digest in &digests {
            sqlx::query("INSERT INTO floor_uploads (sha256) VALUES ($1)")
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(rate_then_remove(dir, db, rounds, started))
}

/// Uploads per second when each of `rounds` uploads makes only the commit that Granary's journal
/// makes: both files' bytes (base64, as the journal keeps them) as rows of one transaction, in a
/// new database under `dir`.
pub async fn journal_uploads_per_second(dir: &Path, rounds: usize) -> anyhow::Result<f64> {
    use base64::Engine as _;
    let table = "CREATE TABLE floor_journal (sha256 TEXT PRIMARY KEY, body TEXT NOT NULL)";
    let db = new_database(dir, table).await?;
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let mut tx = db.pool().begin().await?;
        for kind in ["wheel", "metadata"] {
            let body = format!("{kind} {round} ").repeat(FILE_BYTES / 8);
            sqlx::query("INSERT INTO floor_journal (sha256, body) VALUES ($1, $2)")
                .bind(hex::encode(Sha256::digest(body.as_bytes())))
                .bind(base64::engine::general_purpose::STANDARD.encode(body.as_bytes()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(rate_then_remove(dir, db, rounds, started))
}

/// Rounds per second since `started`, once `dir` and its database `db` are gone.
fn rate_then_remove(
    dir: &Path,
    db: granary::db::Db,
    rounds: usize,
    started: std::time::Instant,
) -> f64 {
    let rate = rounds as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// A new directory `dir` holding a new database with the server's settings and the table
/// `create_table` makes.
async fn new_database(dir: &Path, create_table: &str) -> anyhow::Result<granary::db::Db> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let db_url = format!("sqlite://{}?mode=rwc", dir.join("floor.sqlite").display());
    let db = granary::db::Db::connect(&db_url)
        .await
        .context("opening the floor's database")?;
    sqlx::query(create_table).execute(db.pool()).await?;
    Ok(db)
}

/// Writes `bytes` to a new file, flushes it, renames it to its digest in its directory and
/// flushes that directory; answers the digest.
fn keep(dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let digest = hex::encode(Sha256::digest(bytes));
    let staged = dir.join("tmp").join(&digest);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&staged)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    drop(file);
    let directory: PathBuf = dir.join("artifacts").join(&digest[..2]);
    if !directory.exists() {
        std::fs::create_dir_all(&directory)?;
        std::fs::File::open(dir.join("artifacts"))?.sync_all()?;
    }
    std::fs::rename(&staged, directory.join(&digest))?;
    std::fs::File::open(&directory)?.sync_all()?;
    Ok(digest)
}
