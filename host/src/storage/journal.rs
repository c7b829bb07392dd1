//! The blob journal: small blobs of local storage written to the database in the transaction that
//! records their artifacts.
//!
//! Why: a blob's file is durable only after its data is flushed and then its name in its
//! directory, and the row naming it may commit only after both. A wheel upload keeps two files
//! (the wheel and its PEP 658 metadata), so it waited for five flushes where a receiver that only
//! keeps the body makes one (`docs/performance.md`, #20). As rows of the upload's own
//! transaction, the bytes are durable with its commit: one flush for the whole upload.
//!
//! Afterwards every process with local storage moves the rows it finds to their files (written,
//! renamed into place, then flushed all together with one `syncfs`) and deletes the rows
//! ([`BlobStore::settle`](super::BlobStore::settle)). A process stopped before that leaves the
//! rows to the next start, or to another process. Until then a read that finds no file finds the
//! bytes here.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::Notify;

use crate::db::{Batch, Db, SqlValue, now, placeholders};

/// Rows moved to files per flush.
const MOVE_BATCH: usize = 64;

/// The journal of a local store: its database, and the signal that wakes its mover.
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) db: Arc<Db>,
    pub(super) wake: Arc<Notify>,
    /// One move at a time: the background mover's and an exporter's would write the same files.
    pub(super) moving: tokio::sync::Mutex<()>,
}

/// Blobs whose bytes are only in memory and the journal, by digest: readable while their
/// artifact's recorder holds them.
pub(super) type InMemory = Arc<std::sync::Mutex<HashMap<String, Weak<JournaledBytes>>>>;

/// A small blob's bytes on their way to the journal ([`BlobStore::keep_bytes`]): whoever records
/// its artifact writes them in the same transaction ([`Journaled::record`]). The store reads them
/// from memory while a clone is alive; when the last one goes (the artifact recorded, or the
/// request given up) the store's mover is woken to move what was committed to its file.
///
/// [`BlobStore::keep_bytes`]: super::BlobStore::keep_bytes
#[derive(Clone, Debug)]
pub struct Journaled(Arc<JournaledBytes>);

#[derive(Debug)]
pub(super) struct JournaledBytes {
    sha256: String,
    bytes: Bytes,
    in_memory: InMemory,
    wake: Arc<Notify>,
}

impl Journaled {
    /// Bytes hashing to `sha256`, readable through `in_memory` from now on. Another request's
    /// bytes of the same digest are shared, so they stay readable while either holds them.
    pub(super) fn new(
        sha256: String,
        bytes: Bytes,
        in_memory: &InMemory,
        wake: &Arc<Notify>,
    ) -> Self {
        let mut held = lock(in_memory);
        if let Some(shared) = held.get(&sha256).and_then(Weak::upgrade) {
            return Self(shared);
        }
        let journaled = Arc::new(JournaledBytes {
            sha256,
            bytes,
            in_memory: in_memory.clone(),
            wake: wake.clone(),
        });
        held.insert(journaled.sha256.clone(), Arc::downgrade(&journaled));
        Self(journaled)
    }

    /// Adds the statement that writes the bytes to the journal to `batch`, which the caller
    /// commits with the blob's artifact row. Bytes journaled already (the same upload twice at
    /// once) are left as they are.
    pub fn record(&self, batch: &mut Batch) {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.0.bytes);
        batch.push(
            "INSERT INTO blob_journal (sha256, body, created) VALUES ($1, $2, $3)
             ON CONFLICT (sha256) DO NOTHING",
            vec![self.0.sha256.as_str().into(), body.into(), now().into()],
        );
    }
}

impl Drop for JournaledBytes {
    fn drop(&mut self) {
        let mut in_memory = lock(&self.in_memory);
        // Another request may have journaled the same bytes since: its entry stays.
        if in_memory
            .get(&self.sha256)
            .is_some_and(|entry| entry.strong_count() == 0)
        {
            in_memory.remove(&self.sha256);
        }
        drop(in_memory);
        self.wake.notify_one();
    }
}

/// The bytes of `sha256` while a [`Journaled`] of them is alive.
pub(super) fn in_memory(map: &InMemory, sha256: &str) -> Option<Bytes> {
    lock(map)
        .get(sha256)
        .and_then(Weak::upgrade)
        .map(|journaled| journaled.bytes.clone())
}

fn lock(map: &InMemory) -> std::sync::MutexGuard<'_, HashMap<String, Weak<JournaledBytes>>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Journal {
    /// The journaled bytes of `sha256`, if the journal holds them.
    pub(super) async fn body(&self, sha256: &str) -> anyhow::Result<Option<Bytes>> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM blob_journal WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(self.db.pool())
                .await?;
        body.map(|body| decode(sha256, &body)).transpose()
    }

    /// Up to [`MOVE_BATCH`] rows whose digest sorts after `after`, in digest order.
    pub(super) async fn rows_after(&self, after: &str) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query_as(&format!(
            "SELECT sha256, body FROM blob_journal WHERE sha256 > $1 ORDER BY sha256 LIMIT {MOVE_BATCH}"
        ))
        .bind(after)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows)
    }

    /// Deletes the rows of blobs that are in their files now.
    pub(super) async fn forget(&self, moved: &[String]) -> anyhow::Result<()> {
        if moved.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM blob_journal WHERE sha256 IN ({})",
            placeholders(1, moved.len())
        );
        let mut batch = Batch::new();
        batch.push(sql, moved.iter().map(SqlValue::from).collect());
        // With the commit's own trip.
        let tx = self.db.begin_write().await?;
        Ok(tx.commit_with(batch).await?)
    }
}

/// A row's bytes, checked against its digest: a row that is not its blob is never written out.
pub(super) fn decode(sha256: &str, body: &str) -> anyhow::Result<Bytes> {
    use sha2::{Digest as _, Sha256};
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|error| {
            anyhow::anyhow!("the journal's row of blob {sha256} is not base64: {error}")
        })?;
    let found = hex::encode(Sha256::digest(&bytes));
    anyhow::ensure!(
        found == sha256,
        "the journal's row of blob {sha256} holds bytes hashing to {found}"
    );
    Ok(Bytes::from(bytes))
}
