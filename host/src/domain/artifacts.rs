//! Artifacts: bytes stored once under their sha256, recorded only after they were verified.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::future::BoxFuture;

use crate::db::{Batch, Db, WriteTx, new_id, now, value_rows};
use crate::plugins::upstream::{UpstreamClient, describe};
use crate::plugins::{ArtifactRef, CreateArtifact};
use crate::storage::{BlobStore, Journaled, ReceivedBlob, StagedBlob};

/// Computes, over bytes as they pass, the digests Pulp records for an artifact besides sha256
/// (which [`crate::storage::StagedBlob`] computes for every blob). Only the REST API's ingest
/// paths pay for them; a sync does not.
#[derive(Clone, Default)]
pub struct ExtraHasher {
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha224: sha2::Sha224,
    sha384: sha2::Sha384,
    sha512: sha2::Sha512,
}

/// The digests [`ExtraHasher`] computed, lower-case hex.
#[derive(Clone, Debug, Default)]
pub struct ExtraDigests {
    /// md5.
    pub md5: String,
    /// sha1.
    pub sha1: String,
    /// sha224.
    pub sha224: String,
    /// sha384.
    pub sha384: String,
    /// sha512.
    pub sha512: String,
}

impl ExtraHasher {
    /// Hashes the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        self.md5.update(bytes);
        self.sha1.update(bytes);
        self.sha224.update(bytes);
        self.sha384.update(bytes);
        self.sha512.update(bytes);
    }

    /// The digests of everything hashed.
    pub fn finish(self) -> ExtraDigests {
        use sha2::Digest as _;
        ExtraDigests {
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha224: hex::encode(self.sha224.finalize()),
            sha384: hex::encode(self.sha384.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

impl ExtraDigests {
    /// `(name, digest)` pairs, in the order Pulp checks them.
    pub fn named(&self) -> [(&'static str, &str); 5] {
        [
            ("sha512", &self.sha512),
            ("sha384", &self.sha384),
            ("sha224", &self.sha224),
            ("sha1", &self.sha1),
            ("md5", &self.md5),
        ]
    }
}

/// Records the extra digests of an artifact (kept if it had them already).
pub async fn record_digests(
    db: &Db,
    artifact_id: &str,
    digests: &ExtraDigests,
) -> Result<(), sqlx::Error> {
    let statement = sqlx::query(
        "UPDATE artifacts SET md5 = COALESCE(md5, $2), sha1 = COALESCE(sha1, $3),
         sha224 = COALESCE(sha224, $4), sha384 = COALESCE(sha384, $5), sha512 = COALESCE(sha512, $6)
         WHERE id = $1",
    )
    .bind(artifact_id)
    .bind(&digests.md5)
    .bind(&digests.sha1)
    .bind(&digests.sha224)
    .bind(&digests.sha384)
    .bind(&digests.sha512);
    db.write_one(statement).await?;
    Ok(())
}

/// What a file is expected to be, from a declaration or a request.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// Size in bytes.
    pub size: Option<u64>,
    /// sha256, lower-case hex.
    pub sha256: Option<String>,
    /// sha512, lower-case hex (npm names files by it alone).
    pub sha512: Option<String>,
}

/// A digest that identifies a file before its bytes are fetched ([`Expected::known_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DigestKind {
    /// sha256, what artifacts are stored under.
    Sha256,
    /// sha512, for upstreams that name files by it alone.
    Sha512,
}

impl DigestKind {
    /// Both, in the order a file's are preferred.
    pub const ALL: [DigestKind; 2] = [DigestKind::Sha256, DigestKind::Sha512];

    /// The `artifacts` column it is recorded in.
    pub fn column(self) -> &'static str {
        match self {
            DigestKind::Sha256 => "sha256",
            DigestKind::Sha512 => "sha512",
        }
    }
}

impl Expected {
    /// The digest an upstream file is known by before it is fetched, to find it stored or to
    /// fetch it once: its sha256, else its sha512.
    pub fn known_by(&self) -> Option<(DigestKind, &str)> {
        match (&self.sha256, &self.sha512) {
            (Some(sha256), _) => Some((DigestKind::Sha256, sha256)),
            (None, Some(sha512)) => Some((DigestKind::Sha512, sha512)),
            (None, None) => None,
        }
    }
}

/// Starts receiving bytes that will be checked against `expected`: hashed with sha512 as well
/// when that is expected.
pub async fn stage_for(blobs: &BlobStore, expected: &Expected) -> std::io::Result<StagedBlob> {
    let staged = blobs.stage().await?;
    if expected.sha512.is_some() {
        staged.hashing_sha512()
    } else {
        Ok(staged)
    }
}

/// A stored, recorded artifact.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// Row id.
    pub id: String,
    /// sha256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Why bytes were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The bytes are not what was declared.
    #[error("{0}")]
    Mismatch(String),
    /// Fetching or storing failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Checks received bytes against what was expected. `name` says which file, for the message.
pub fn verify(blob: &ReceivedBlob, expected: &Expected, name: &str) -> Result<(), IngestError> {
    if let Some(size) = expected.size
        && size != blob.size
    {
        return Err(IngestError::Mismatch(format!(
            "size mismatch for {name}: expected {size} bytes, got {} bytes",
            blob.size
        )));
    }
    if let Some(sha256) = &expected.sha256
        && !sha256.eq_ignore_ascii_case(&blob.sha256)
    {
        return Err(IngestError::Mismatch(format!(
            "sha256 mismatch for {name}: expected {sha256}, got {}",
            blob.sha256
        )));
    }
    if let Some(sha512) = &expected.sha512
        && blob
            .sha512
            .as_ref()
            .is_none_or(|got| !sha512.eq_ignore_ascii_case(got))
    {
        return Err(IngestError::Mismatch(format!(
            "sha512 mismatch for {name}: expected {sha512}, got {}",
            blob.sha512
                .as_deref()
                .unwrap_or("no sha512 (it was not computed)")
        )));
    }
    Ok(())
}

/// Finishes a staging whose bytes nothing was declared for (a publication's metadata file, a
/// file of a form), moves them into storage and records them.
pub async fn store_staged(
    db: &Db,
    blobs: &BlobStore,
    staged: StagedBlob,
    name: &str,
) -> anyhow::Result<Artifact> {
    let received = staged.finish().await?;
    Ok(store(db, blobs, received, &Expected::default(), name).await?)
}

/// Verifies, moves into storage and records a received blob.
pub async fn store(
    db: &Db,
    blobs: &BlobStore,
    blob: ReceivedBlob,
    expected: &Expected,
    name: &str,
) -> Result<Artifact, IngestError> {
    let kept = keep(blobs, blob, expected, name).await?;
    let mut tx = db.begin_write().await.map_err(anyhow::Error::from)?;
    if let Some(journaled) = &kept.journaled {
        let mut batch = Batch::new();
        journaled.record(&mut batch);
        batch.run(&mut tx).await.map_err(anyhow::Error::from)?;
    }
    let id = upsert(&mut tx, &kept.sha256, kept.size, kept.sha512.as_deref())
        .await
        .map_err(anyhow::Error::from)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Artifact {
        id,
        sha256: kept.sha256,
        size: kept.size,
    })
}

/// Bytes moved into storage, or journaled ([`Journaled`]), whose artifact row is not written
/// yet. A request that ends in a repository change records them in that change's transaction
/// ([`record_statements`]), so that an upload costs one commit rather than one per file besides;
/// any other ending records them at once ([`record_all`]). Meanwhile orphan cleanup spares them,
/// as it spares every blob younger than its protection time.
#[derive(Clone, Debug)]
pub struct Unrecorded {
    /// sha256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// sha512, lower-case hex, when it was computed.
    pub sha512: Option<String>,
    /// The bytes, when they go to the journal with the row rather than being in their file.
    pub journaled: Option<Journaled>,
}

/// Verifies a received blob and moves it into storage (a journaled one stays in memory until its
/// row is recorded), leaving its row to the caller.
pub async fn keep(
    blobs: &BlobStore,
    blob: ReceivedBlob,
    expected: &Expected,
    name: &str,
) -> Result<Unrecorded, IngestError> {
    verify(&blob, expected, name)?;
    let (sha256, size, sha512) = (blob.sha256.clone(), blob.size, blob.sha512.clone());
    let journaled = blob.journaled.clone();
    blobs.commit(blob).await?;
    Ok(Unrecorded {
        sha256,
        size,
        sha512,
        journaled,
    })
}

/// The statements recording artifacts whose bytes are in storage, for a batch of the caller's:
/// one statement for up to [`RECORD_CHUNK`] of them (an upload's two files are one, not two),
/// and the journal's rows of the journaled ones. They return no rows.
pub fn record_statements(batch: &mut Batch, kept: &[Unrecorded]) {
    let mut journaled = std::collections::BTreeSet::new();
    for artifact in kept {
        if let Some(bytes) = &artifact.journaled
            && journaled.insert(artifact.sha256.as_str())
        {
            bytes.record(batch);
        }
    }
    // One row per file: a statement may not update the row it inserted (PostgreSQL refuses).
    let mut unique: BTreeMap<&str, &Unrecorded> = BTreeMap::new();
    for artifact in kept {
        let entry = unique.entry(&artifact.sha256).or_insert(artifact);
        if entry.sha512.is_none() {
            *entry = artifact;
        }
    }
    let unique: Vec<&Unrecorded> = unique.into_values().collect();
    let seen = now();
    for chunk in unique.chunks(RECORD_CHUNK) {
        let mut values = vec![seen.as_str().into()];
        for artifact in chunk {
            values.extend([
                new_id().into(),
                artifact.sha256.as_str().into(),
                (artifact.size as i64).into(),
                artifact.sha512.as_deref().into(),
            ]);
        }
        batch.push(upsert_statement(chunk.len()), values);
    }
}

/// Records, in one transaction, artifacts whose bytes are in storage.
pub async fn record_all(db: &Db, kept: &[Unrecorded]) -> anyhow::Result<()> {
    if kept.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    record_statements(&mut batch, kept);
    let mut tx = db.begin_write().await?;
    batch.run(&mut tx).await?;
    Ok(tx.commit().await?)
}

/// Stores what plugins create in a call (`artifacts.create`) like any other artifact.
#[derive(Debug)]
pub struct Creator {
    /// Where the artifact is recorded.
    pub db: Arc<Db>,
    /// Where its bytes are committed.
    pub blobs: Arc<BlobStore>,
}

impl CreateArtifact for Creator {
    fn create(&self, blob: ReceivedBlob) -> BoxFuture<'_, anyhow::Result<ArtifactRef>> {
        Box::pin(async move {
            let artifact = store(
                &self.db,
                &self.blobs,
                blob,
                &Expected::default(),
                "created artifact",
            )
            .await?;
            Ok(ArtifactRef {
                sha256: artifact.sha256,
                size: artifact.size,
            })
        })
    }
}

/// Stores what a plugin creates while it answers a request and keeps the rows for the request's
/// end (see [`Unrecorded`]): the caller takes them with [`DeferredCreator::take`].
#[derive(Debug)]
pub struct DeferredCreator {
    /// Where the bytes are committed.
    pub blobs: Arc<BlobStore>,
    kept: std::sync::Mutex<Vec<Unrecorded>>,
}

impl DeferredCreator {
    /// A creator committing to `blobs`, nothing kept yet.
    pub fn new(blobs: Arc<BlobStore>) -> Self {
        Self {
            blobs,
            kept: std::sync::Mutex::default(),
        }
    }

    /// What was stored and is not recorded yet; the caller records it.
    pub fn take(&self) -> Vec<Unrecorded> {
        std::mem::take(
            &mut *self
                .kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl CreateArtifact for DeferredCreator {
    fn create(&self, blob: ReceivedBlob) -> BoxFuture<'_, anyhow::Result<ArtifactRef>> {
        Box::pin(async move {
            let kept = keep(&self.blobs, blob, &Expected::default(), "created artifact").await?;
            let created = ArtifactRef {
                sha256: kept.sha256.clone(),
                size: kept.size,
            };
            self.kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(kept);
            Ok(created)
        })
    }
}

/// Records an artifact whose bytes are in storage; returns its id (the existing one if it was
/// recorded already). Either way its `last_seen` becomes now, which protects it from orphan
/// cleanup until what is about to reference it (content, a version, a publication) does.
pub async fn record(db: &Db, sha256: &str, size: u64) -> Result<String, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let id = upsert(&mut tx, sha256, size, None).await?;
    tx.commit().await?;
    Ok(id)
}

/// Inserts the row of the stored blob `sha256`, or marks the existing one seen now (and gives it
/// the sha512 it lacked: a pull-through later finds the file by it); answers the row's id.
async fn upsert(
    tx: &mut WriteTx,
    sha256: &str,
    size: u64,
    sha512: Option<&str>,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(&format!("{} RETURNING id", upsert_statement(1)))
        .bind(now())
        .bind(new_id())
        .bind(sha256)
        .bind(size as i64)
        .bind(sha512)
        .fetch_one(&mut **tx)
        .await
}

/// Artifact rows per statement of [`record_statements`] (four values each, under every engine's
/// limit).
const RECORD_CHUNK: usize = 100;

/// The upsert of `rows` artifact rows: `$1` is the time (created and last seen), then (id,
/// sha256, size, sha512) per row. A row already there is marked seen and given the sha512 it
/// lacked.
fn upsert_statement(rows: usize) -> String {
    format!(
        "INSERT INTO artifacts (id, sha256, size, sha512, created, last_seen) VALUES {}
         ON CONFLICT (sha256) DO UPDATE SET last_seen = excluded.last_seen,
             sha512 = COALESCE(artifacts.sha512, excluded.sha512)",
        value_rows("(?, ?, ?, ?, $1, $1)", 2, rows)
    )
}

/// Downloads `url` into storage through `client` (the remote's), verifying it on the way.
/// Transport errors, a body cut short and 5xx or 429 answers are retried up to the remote's
/// `max_retries` times (after the answer's `Retry-After`, if it has one); a digest or size
/// mismatch and a refused redirect are final.
pub async fn download(
    db: &Db,
    blobs: &BlobStore,
    client: &UpstreamClient,
    url: &str,
    expected: &Expected,
    name: &str,
) -> Result<Artifact, IngestError> {
    let max_retries = client.max_retries();
    let mut attempt = 0;
    loop {
        match fetch(blobs, client, url, expected, name).await {
            Ok(blob) => return store(db, blobs, blob, expected, name).await,
            Err(FetchError::Retryable(message, answer)) if attempt < max_retries => {
                attempt += 1;
                let Some(delay) = crate::plugins::retry::delay(attempt, answer.as_ref()) else {
                    return Err(IngestError::Other(anyhow::anyhow!(
                        "{message} (it asks to come back later than {} s)",
                        crate::plugins::retry::MAX_RETRY_AFTER.as_secs()
                    )));
                };
                tracing::warn!(%url, attempt, %message, ?delay, "download failed, retrying");
                tokio::time::sleep(delay).await;
            }
            Err(FetchError::Retryable(message, _) | FetchError::Final(message)) => {
                return Err(IngestError::Other(anyhow::anyhow!(message)));
            }
            Err(FetchError::Mismatch(error)) => return Err(error),
        }
    }
}

enum FetchError {
    /// Worth another try; with the headers of the answer, if there was one (`Retry-After`).
    Retryable(String, Option<reqwest::header::HeaderMap>),
    Final(String),
    Mismatch(IngestError),
}

async fn fetch(
    blobs: &BlobStore,
    client: &UpstreamClient,
    url: &str,
    expected: &Expected,
    name: &str,
) -> Result<ReceivedBlob, FetchError> {
    let response = client
        .send_once(reqwest::Method::GET, url, &[])
        .await
        .map_err(|error| {
            let message = format!("downloading {name} from {url} failed: {error}");
            if error.retryable() {
                FetchError::Retryable(message, None)
            } else {
                FetchError::Final(message)
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("downloading {name} from {url} failed: HTTP {status}");
        return Err(if crate::plugins::retry::retryable_status(status) {
            FetchError::Retryable(message, Some(response.headers().clone()))
        } else {
            FetchError::Final(message)
        });
    }
    let mut staged = stage_for(blobs, expected)
        .await
        .map_err(|error| FetchError::Final(format!("staging {name}: {error}")))?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| {
            FetchError::Retryable(
                format!("downloading {name} from {url} failed: {}", describe(&error)),
                None,
            )
        })?;
        staged
            .write(&chunk)
            .await
            .map_err(|error| FetchError::Final(format!("writing {name}: {error}")))?;
        if let Some(size) = expected.size
            && staged.size() > size
        {
            return Err(FetchError::Mismatch(IngestError::Mismatch(format!(
                "size mismatch for {name}: expected {size} bytes, got more"
            ))));
        }
    }
    staged
        .finish()
        .await
        .map_err(|error| FetchError::Final(format!("writing {name}: {error}")))
}

/// A `remote_artifacts` row: where a unit's file not stored yet can be fetched from (the
/// content app's on-demand fetch, `repair_metadata`).
#[derive(Debug, sqlx::FromRow)]
pub struct RemoteArtifactRow {
    pub url: String,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    pub remote_id: String,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sha2::Digest as _;

    use super::{Expected, keep, record_all, store};
    use crate::db::Db;
    use crate::storage::BlobStore;

    /// A local store with a journal, over a new database.
    async fn journaled_store() -> (tempfile::TempDir, Arc<Db>, BlobStore) {
        let (dir, db) = crate::db::tests::scratch_db().await;
        let db = Arc::new(db);
        let blobs = BlobStore::local(dir.path())
            .unwrap()
            .with_journal(db.clone());
        (dir, db, blobs)
    }

    async fn count(db: &Db, sql: &str, sha256: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(sha256)
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    async fn journal_rows(db: &Db, sha256: &str) -> i64 {
        count(
            db,
            "SELECT COUNT(*) FROM blob_journal WHERE sha256 = $1",
            sha256,
        )
        .await
    }

    fn digest(bytes: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(bytes))
    }

    /// A small file of a request is committed with its artifact's row, no file written: read
    /// from memory while the request holds it, from the journal once it is recorded, and from
    /// its file once the journal is settled (flushed, and its row gone).
    #[tokio::test]
    async fn a_small_blob_is_durable_with_its_row_and_moves_to_its_file_afterwards() {
        let (_dir, db, blobs) = journaled_store().await;
        let bytes = Bytes::from_static(b"Metadata-Version: 2.1\nName: tiny\n");
        let sha256 = digest(&bytes);
        let size = bytes.len() as u64;
        let file = blobs.local_path(&sha256).unwrap();

        let received = blobs.keep_bytes(bytes.clone()).await.unwrap();
        let kept = keep(&blobs, received, &Expected::default(), "METADATA")
            .await
            .unwrap();
        assert!(kept.journaled.is_some());
        assert!(!file.exists(), "no file is written for it");
        let read = blobs
            .read_small(&sha256, size, 0..8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            read,
            bytes.slice(0..8),
            "read from memory before it is recorded"
        );

        record_all(&db, std::slice::from_ref(&kept)).await.unwrap();
        drop(kept);
        assert_eq!(
            journal_rows(&db, &sha256).await,
            1,
            "its bytes are in the commit"
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM artifacts WHERE sha256 = $1",
                &sha256
            )
            .await,
            1
        );
        let read = blobs
            .read_small(&sha256, size, 0..size)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, bytes, "read from the journal once recorded");
        let streamed = blobs.read_range(&sha256, 5, 7, size).await.unwrap();
        assert_eq!(streamed, bytes[5..12], "streamed ranges too");
        assert!(blobs.exists(&sha256).await);

        assert_eq!(blobs.settle().await.unwrap(), 1);
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "in its file");
        assert_eq!(
            journal_rows(&db, &sha256).await,
            0,
            "and out of the journal"
        );
        assert_eq!(blobs.settle().await.unwrap(), 0);

        // Stored again: journaled again, and the mover finds its file whole and leaves it.
        let again = blobs.keep_bytes(bytes.clone()).await.unwrap();
        let again = keep(&blobs, again, &Expected::default(), "METADATA")
            .await
            .unwrap();
        record_all(&db, std::slice::from_ref(&again)).await.unwrap();
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        assert_eq!(blobs.settle().await.unwrap(), 1);
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            written
        );
        assert_eq!(journal_rows(&db, &sha256).await, 0);
    }

    /// A blob whose request ends before its artifact is recorded leaves nothing: no file, no
    /// journal row, nothing to read.
    #[tokio::test]
    async fn a_journaled_blob_never_recorded_leaves_nothing() {
        let (_dir, db, blobs) = journaled_store().await;
        let bytes = Bytes::from_static(b"an upload that was refused");
        let sha256 = digest(&bytes);
        let received = blobs.keep_bytes(bytes.clone()).await.unwrap();
        drop(received);

        assert!(!blobs.exists(&sha256).await);
        let read = blobs
            .read_small(&sha256, bytes.len() as u64, 0..4)
            .await
            .unwrap();
        assert!(read.is_err());
        assert_eq!(blobs.settle().await.unwrap(), 0);
        assert!(!blobs.local_path(&sha256).unwrap().exists());
        assert_eq!(journal_rows(&db, &sha256).await, 0);
    }

    /// What a stopped process left in the journal is moved by the next one: a file a power cut
    /// emptied after its rename is written again, a row that is not its blob stays where it is
    /// (logged, never written out), and a journaled blob deleted (orphan cleanup, reclaim) loses
    /// its row, so that no later move brings it back.
    #[tokio::test]
    async fn a_later_process_moves_what_the_journal_holds() {
        let (dir, db, blobs) = journaled_store().await;
        let kept: [Bytes; 3] = ["first", "second", "third"]
            .map(|name| Bytes::from(format!("{name} file of a stopped process")));
        let mut unrecorded = Vec::new();
        for bytes in &kept {
            let received = blobs.keep_bytes(bytes.clone()).await.unwrap();
            unrecorded.push(
                keep(&blobs, received, &Expected::default(), "f")
                    .await
                    .unwrap(),
            );
        }
        record_all(&db, &unrecorded).await.unwrap();
        drop((unrecorded, blobs));
        let [emptied, deleted, intact] = kept.each_ref().map(|bytes| digest(bytes));
        let emptied_file = dir
            .path()
            .join("artifacts")
            .join(&emptied[..2])
            .join(&emptied);
        std::fs::create_dir_all(emptied_file.parent().unwrap()).unwrap();
        std::fs::write(&emptied_file, b"").unwrap();
        let forged = "0".repeat(64);
        sqlx::query(
            "INSERT INTO blob_journal (sha256, body, created) VALUES ($1, 'bm90IGl0', 'x')",
        )
        .bind(&forged)
        .execute(db.pool())
        .await
        .unwrap();

        let restarted = BlobStore::local(dir.path())
            .unwrap()
            .with_journal(db.clone());
        restarted.delete(&deleted).await.unwrap();
        assert_eq!(journal_rows(&db, &deleted).await, 0);
        assert_eq!(restarted.settle().await.unwrap(), 2);
        assert_eq!(std::fs::read(&emptied_file).unwrap(), kept[0]);
        assert_eq!(
            std::fs::read(restarted.local_path(&intact).unwrap()).unwrap(),
            kept[2]
        );
        assert!(!restarted.local_path(&deleted).unwrap().exists());
        assert!(!restarted.local_path(&forged).unwrap().exists());
        assert_eq!(
            journal_rows(&db, &forged).await,
            1,
            "the forged row stays for a repair"
        );
        assert_eq!(
            journal_rows(&db, &emptied).await + journal_rows(&db, &intact).await,
            0
        );
    }

    /// A file a plugin creates in a task (`store`) is journaled with its artifact's row too.
    #[tokio::test]
    async fn a_stored_small_file_is_committed_with_its_row() {
        let (_dir, db, blobs) = journaled_store().await;
        let bytes = Bytes::from_static(b"a publication's small file");
        let sha256 = digest(&bytes);
        let received = blobs.keep_bytes(bytes.clone()).await.unwrap();
        let artifact = store(&db, &blobs, received, &Expected::default(), "index.json")
            .await
            .unwrap();
        assert_eq!(artifact.sha256, sha256);
        assert_eq!(journal_rows(&db, &sha256).await, 1);
        let read = blobs
            .read_range(&sha256, 0, 100, bytes.len() as u64)
            .await
            .unwrap();
        assert_eq!(read, bytes);
    }

    /// Without a journal, a file whose move into storage fails (here: a directory holds its
    /// name) is refused when it is kept, before any row could name it.
    #[tokio::test]
    async fn a_file_that_could_not_be_placed_is_refused_before_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let bytes = Bytes::from_static(b"a file the disk refuses");
        let target = blobs.local_path(&digest(&bytes)).unwrap();
        std::fs::create_dir_all(target.join("in-the-way")).unwrap();
        assert!(blobs.keep_bytes(bytes).await.is_err());
    }
}
