//! Upload sessions of plugins (WIT 0.3.0 `uploads`): the bytes of one future artifact, sent over
//! several requests that any `serve` process may receive, kept in the database (`upload_sessions`,
//! `upload_session_parts`) and the blob store's upload area.
//!
//! Each append is received whole (hashed, on disk) before it is stored as a part and recorded;
//! the session's size then grows in the same transaction that checks the append's offset, so two
//! appends racing for one offset leave one part and the loser's object is deleted. Completing a
//! session of one part (a client that sends the whole blob in one request, as skopeo and docker
//! do) moves that part into storage without reading it again; more parts are concatenated.
//!
//! Sessions expire after [`Sessions::ttl`] without an append: they are invisible from then on,
//! and each new session deletes a few expired ones, so no background job is needed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;

use crate::db::{Db, ago, now};
use crate::domain::artifacts::{self, Expected, IngestError};
use crate::plugins::{ArtifactRef, SessionError, UploadSessions};
use crate::storage::{BlobStore, ReceivedBlob};

/// Expired sessions deleted by each new one: enough to keep up with any rate of new sessions.
const SWEEP_BATCH: i64 = 16;

/// The upload sessions of one plugin in one repository.
pub struct Sessions {
    /// Where sessions are recorded.
    pub db: Arc<Db>,
    /// Where their parts are stored.
    pub blobs: Arc<BlobStore>,
    /// The plugin whose sessions these are.
    pub plugin: String,
    /// The repository they belong to.
    pub repository_id: String,
    /// How long a session lives without an append.
    pub ttl: Duration,
    /// Most bytes one session may hold.
    pub limit: u64,
}

/// A part of a session: `(start offset, size, sha256, object key)`.
type Part = (i64, i64, String, String);

impl Sessions {
    /// The size of session `id`, if it is one of these and alive.
    async fn alive_size(&self, id: &str) -> anyhow::Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM upload_sessions
             WHERE id = $1 AND plugin = $2 AND repository_id = $3 AND updated >= $4",
        )
        .bind(id)
        .bind(&self.plugin)
        .bind(&self.repository_id)
        .bind(ago(self.ttl))
        .fetch_optional(self.db.pool())
        .await?;
        Ok(size.map(|size| size as u64))
    }

    /// Starts a session, after deleting a few expired ones (of any plugin and repository).
    async fn start_session(&self) -> anyhow::Result<String> {
        let expired: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM upload_sessions WHERE updated < $1 ORDER BY updated LIMIT $2",
        )
        .bind(ago(self.ttl))
        .bind(SWEEP_BATCH)
        .fetch_all(self.db.pool())
        .await?;
        for id in expired {
            delete(&self.db, &self.blobs, &id).await?;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut tx = self.db.begin_write().await?;
        let stamp = now();
        sqlx::query(
            "INSERT INTO upload_sessions (id, plugin, repository_id, size, created, updated)
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(&id)
        .bind(&self.plugin)
        .bind(&self.repository_id)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Stores `blob` as the part of session `id` at `offset` and grows the session by it.
    async fn append_part(
        &self,
        id: &str,
        offset: u64,
        blob: ReceivedBlob,
    ) -> Result<u64, SessionError> {
        let size = blob.size;
        if offset + size > self.limit {
            return Err(SessionError::Refused {
                field: "size",
                message: format!(
                    "the upload session would exceed the limit of {} bytes",
                    self.limit
                ),
            });
        }
        if size == 0 {
            // Nothing to keep: an empty PATCH is a no-op, but it still counts as activity.
            return self.touch(id, offset).await;
        }
        // A key of its own: two racing appends at one offset (a client's retry with the same
        // bytes included) never share an object, so the loser deletes only its own.
        let key = format!(
            "{}{offset}-{}",
            part_prefix(id),
            uuid::Uuid::new_v4().simple()
        );
        let sha256 = blob.sha256.clone();
        self.blobs.put_part(&key, blob).await?;
        let recorded = self.record_part(id, offset, size, &sha256, &key).await;
        if recorded.is_err() {
            self.blobs.delete_part(&key).await?;
        }
        recorded
    }

    /// Records the stored part `key` of session `id`, if the session is still alive and still
    /// `offset` bytes long.
    async fn record_part(
        &self,
        id: &str,
        offset: u64,
        size: u64,
        sha256: &str,
        key: &str,
    ) -> Result<u64, SessionError> {
        let mut tx = self.db.begin_write().await.map_err(anyhow::Error::from)?;
        if !self.grow(&mut tx, id, offset, size).await? {
            drop(tx);
            return Err(self.not_at(id, offset).await);
        }
        sqlx::query(
            "INSERT INTO upload_session_parts (session_id, start_offset, size, sha256, object_key)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(offset as i64)
        .bind(size as i64)
        .bind(sha256)
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(offset + size)
    }

    /// Marks session `id`, `offset` bytes long, as active.
    async fn touch(&self, id: &str, offset: u64) -> Result<u64, SessionError> {
        let mut tx = self.db.begin_write().await.map_err(anyhow::Error::from)?;
        let touched = self.grow(&mut tx, id, offset, 0).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        if !touched {
            return Err(self.not_at(id, offset).await);
        }
        Ok(offset)
    }

    /// Grows session `id` by `by` bytes and marks it active, if it is alive and `offset` bytes
    /// long; whether it was.
    async fn grow(
        &self,
        tx: &mut crate::db::WriteTx,
        id: &str,
        offset: u64,
        by: u64,
    ) -> anyhow::Result<bool> {
        let grown = sqlx::query(
            "UPDATE upload_sessions SET size = size + $1, updated = $2
             WHERE id = $3 AND plugin = $4 AND repository_id = $5 AND size = $6 AND updated >= $7",
        )
        .bind(by as i64)
        .bind(now())
        .bind(id)
        .bind(&self.plugin)
        .bind(&self.repository_id)
        .bind(offset as i64)
        .bind(ago(self.ttl))
        .execute(&mut **tx)
        .await?;
        Ok(grown.rows_affected() == 1)
    }

    /// Why session `id` could not grow at `offset`: it is gone, or it has another size now.
    async fn not_at(&self, id: &str, offset: u64) -> SessionError {
        match self.alive_size(id).await {
            Ok(Some(size)) => SessionError::Refused {
                field: "offset",
                message: format!(
                    "the upload session holds {size} bytes: the next append is at offset {size}, not {offset}"
                ),
            },
            Ok(None) => SessionError::Refused {
                field: "id",
                message: format!(
                    "there is no upload session {id:?} (it may have ended or expired)"
                ),
            },
            Err(error) => SessionError::Internal(error),
        }
    }

    /// Ends session `id`, its parts becoming one artifact checked against `expected_sha256`.
    async fn complete_session(
        &self,
        id: &str,
        expected_sha256: Option<&str>,
    ) -> Result<ArtifactRef, SessionError> {
        let Some(size) = self.alive_size(id).await? else {
            return Err(SessionError::Refused {
                field: "id",
                message: format!(
                    "there is no upload session {id:?} (it may have ended or expired)"
                ),
            });
        };
        let parts: Vec<Part> = sqlx::query_as(
            "SELECT start_offset, size, sha256, object_key FROM upload_session_parts
             WHERE session_id = $1 ORDER BY start_offset",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await
        .map_err(anyhow::Error::from)?;
        let artifact = match parts.as_slice() {
            [(0, part_size, sha256, key)] if *part_size as u64 == size => {
                check_digest(sha256, expected_sha256)?;
                self.blobs.adopt_part(key, sha256).await?;
                let id = artifacts::record(&self.db, sha256, size)
                    .await
                    .map_err(anyhow::Error::from)?;
                artifacts::Artifact {
                    id,
                    sha256: sha256.clone(),
                    size,
                }
            }
            parts => self.concatenate(id, parts, size, expected_sha256).await?,
        };
        delete(&self.db, &self.blobs, id).await?;
        Ok(ArtifactRef {
            sha256: artifact.sha256,
            size: artifact.size,
        })
    }

    /// Stores the concatenation of `parts` (`size` bytes in all) as an artifact.
    async fn concatenate(
        &self,
        id: &str,
        parts: &[Part],
        size: u64,
        expected_sha256: Option<&str>,
    ) -> Result<artifacts::Artifact, SessionError> {
        let mut staged = self.blobs.stage().await.map_err(anyhow::Error::from)?;
        for (_, _, _, key) in parts {
            let mut stream = self.blobs.read_part(key).await?;
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(anyhow::Error::from)?;
                staged.write(&bytes).await.map_err(anyhow::Error::from)?;
            }
        }
        let received = staged.finish().await.map_err(anyhow::Error::from)?;
        check_digest(&received.sha256, expected_sha256)?;
        let expected = Expected {
            size: Some(size),
            sha256: None,
            sha512: None,
        };
        artifacts::store(
            &self.db,
            &self.blobs,
            received,
            &expected,
            &format!("upload session {id}"),
        )
        .await
        .map_err(|error| match error {
            IngestError::Mismatch(message) => SessionError::Internal(anyhow::anyhow!(message)),
            IngestError::Other(error) => SessionError::Internal(error),
        })
    }

    /// Ends session `id` without an artifact; false when it was not one of these.
    async fn cancel_session(&self, id: &str) -> anyhow::Result<bool> {
        if self.alive_size(id).await?.is_none() {
            return Ok(false);
        }
        delete(&self.db, &self.blobs, id).await?;
        Ok(true)
    }
}

/// Refuses bytes whose sha256 is `actual` when the plugin expected another.
fn check_digest(actual: &str, expected: Option<&str>) -> Result<(), SessionError> {
    match expected {
        Some(expected) if !expected.eq_ignore_ascii_case(actual) => Err(SessionError::Refused {
            field: "digest",
            message: format!("the bytes' sha256 is {actual}, not the expected {expected}"),
        }),
        _ => Ok(()),
    }
}

/// Deletes session `id`, its parts' records and every object under its key prefix (also one a
/// stopped process stored but never recorded).
async fn delete(db: &Db, blobs: &BlobStore, id: &str) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM upload_session_parts WHERE session_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM upload_sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    blobs.delete_parts_under(&part_prefix(id)).await
}

/// Where the objects of session `id`'s parts are stored.
fn part_prefix(id: &str) -> String {
    format!("sessions/{id}/")
}

impl UploadSessions for Sessions {
    fn limit(&self) -> u64 {
        self.limit
    }

    fn start(&self) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(self.start_session())
    }

    fn size<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<u64>>> {
        Box::pin(self.alive_size(id))
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        blob: ReceivedBlob,
    ) -> BoxFuture<'a, Result<u64, SessionError>> {
        Box::pin(self.append_part(id, offset, blob))
    }

    fn complete<'a>(
        &'a self,
        id: &'a str,
        expected_sha256: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ArtifactRef, SessionError>> {
        Box::pin(self.complete_session(id, expected_sha256))
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(self.cancel_session(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ending_a_session_deletes_its_objects_recorded_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Arc::new(Db::connect(&url).await.unwrap());
        let blobs = Arc::new(BlobStore::local(dir.path()).unwrap());
        let sessions = Sessions {
            db,
            blobs: blobs.clone(),
            plugin: "blobs".into(),
            repository_id: "shelf".into(),
            ttl: Duration::from_secs(60),
            limit: 1 << 20,
        };
        let id = sessions.start_session().await.unwrap();
        let part = blobs
            .stage_bytes(bytes::Bytes::from_static(b"recorded"))
            .await
            .unwrap();
        assert_eq!(sessions.append_part(&id, 0, part).await.unwrap(), 8);
        // A chunk a process stored and stopped before recording.
        let stray = blobs
            .stage_bytes(bytes::Bytes::from_static(b"stray"))
            .await
            .unwrap();
        blobs
            .put_part(&format!("sessions/{id}/8-stray"), stray)
            .await
            .unwrap();

        assert!(sessions.cancel_session(&id).await.unwrap());
        let directory = dir.path().join("uploads").join("sessions").join(&id);
        assert!(!directory.exists(), "{} is left", directory.display());
        assert!(!sessions.cancel_session(&id).await.unwrap());
    }
}
