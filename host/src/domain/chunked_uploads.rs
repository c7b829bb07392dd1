//! Chunked uploads (`uploads/`): byte ranges received in any order, stored as objects of the blob
//! store, and assembled into an artifact by a task.
//!
//! A chunk is recorded only after its bytes are stored; chunks never overlap (a chunk sent again
//! for the same range replaces the earlier one). Assembling checks that the chunks cover the
//! whole upload, verifies the size and the sha256 the client named, and stores the artifact; the
//! upload is then deleted (Pulp's rule: an upload makes one artifact). When the check fails,
//! nothing is stored and the upload stays, so the client can send the missing or corrected
//! chunks and commit again.

use anyhow::Context as _;
use futures::StreamExt as _;

use crate::db::Db;
use crate::domain::artifacts::{self, Artifact, Expected, ExtraHasher, IngestError};
use crate::storage::BlobStore;

/// Assembles upload `upload_id` into an artifact, checked against `sha256` when given, and
/// deletes the upload.
pub async fn assemble(
    db: &Db,
    blobs: &BlobStore,
    upload_id: &str,
    sha256: Option<&str>,
) -> anyhow::Result<Artifact> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM uploads WHERE id = $1")
        .bind(upload_id)
        .fetch_optional(db.pool())
        .await?
        .with_context(|| format!("the upload {upload_id} no longer exists"))?;
    let chunks = sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT start_offset, end_offset, object_key FROM upload_chunks WHERE upload_id = $1 ORDER BY start_offset",
    )
    .bind(upload_id)
    .fetch_all(db.pool())
    .await?;
    let mut missing = Vec::new();
    let mut next = 0i64;
    for &(start, end, _) in &chunks {
        if start > next {
            missing.push(format!("{next}-{}", start - 1));
        }
        next = next.max(end + 1);
    }
    if next < size {
        missing.push(format!("{next}-{}", size - 1));
    }
    anyhow::ensure!(
        missing.is_empty(),
        "the upload is incomplete: bytes {} of its {size} were never uploaded",
        missing.join(", ")
    );
    let mut staged = blobs.stage().await?;
    let mut extra = ExtraHasher::default();
    for (_, _, key) in &chunks {
        let mut stream = blobs
            .read_part(key)
            .await
            .with_context(|| format!("reading the chunk at {key}"))?;
        while let Some(bytes) = stream.next().await {
            let bytes = bytes?;
            extra.update(&bytes);
            staged.write(&bytes).await?;
        }
    }
    let received = staged.finish().await?;
    let expected = Expected {
        size: Some(size as u64),
        sha256: sha256.map(str::to_owned),
        sha512: None,
    };
    let artifact = artifacts::store(
        db,
        blobs,
        received,
        &expected,
        &format!("upload {upload_id}"),
    )
    .await
    .map_err(|error| match error {
        IngestError::Mismatch(message) => anyhow::anyhow!(message),
        IngestError::Other(error) => error,
    })?;
    artifacts::record_digests(db, &artifact.id, &extra.finish()).await?;
    delete(db, blobs, upload_id).await?;
    Ok(artifact)
}

/// Deletes an upload and its stored chunks.
pub async fn delete(db: &Db, blobs: &BlobStore, upload_id: &str) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT object_key FROM upload_chunks WHERE upload_id = $1")
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    for key in keys {
        blobs.delete_part(&key).await?;
    }
    Ok(())
}
