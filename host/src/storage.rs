//! Artifact storage: content-addressed blobs behind `object_store` (local files by default).
//!
//! Bytes arrive into a [`StagedBlob`] (a temporary file under `<data-dir>/tmp/`) while they are
//! hashed. Only after the caller has checked the size and digest does [`BlobStore::commit`] move
//! them to their final key `artifacts/ab/cd/<sha256>`, so a reader never sees a partial or
//! unverified artifact, and an artifact is never written twice.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

/// Chunk size for reading stored files.
const READ_CHUNK: usize = 256 * 1024;

/// Where artifacts live.
#[derive(Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for the local backend: commits become a rename and reads a plain file read.
    local_root: Option<PathBuf>,
    tmp_dir: PathBuf,
}

/// Bytes being received, hashed as they arrive. Dropping it deletes the temporary file.
#[derive(Debug)]
pub struct StagedBlob {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
}

/// A fully received temporary file with its digest, ready to be verified and committed.
#[derive(Debug)]
pub struct ReceivedBlob {
    path: PathBuf,
    /// sha256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Number of bytes.
    pub size: u64,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ReceivedBlob {
    fn drop(&mut self) {
        // After a commit the file has been moved away and this does nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl StagedBlob {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        match &mut self.file {
            Some(file) => file.write_all(chunk).await,
            None => Err(std::io::Error::other("staged blob already finished")),
        }
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the file and returns its digest.
    pub async fn finish(mut self) -> std::io::Result<ReceivedBlob> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_data().await?;
        }
        let hasher = std::mem::take(&mut self.hasher);
        let path = std::mem::take(&mut self.path);
        Ok(ReceivedBlob {
            path,
            sha256: hex::encode(hasher.finalize()),
            size: self.size,
        })
    }
}

impl BlobStore {
    /// Local storage under `data_dir/artifacts`, temporary files under `data_dir/tmp`.
    /// Leftover temporary files (from a process that was killed) are removed.
    pub fn local(data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("artifacts");
        let tmp_dir = data_dir.join("tmp");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let _ = std::fs::remove_dir_all(&tmp_dir);
        std::fs::create_dir_all(&tmp_dir)
            .with_context(|| format!("creating {}", tmp_dir.display()))?;
        let store =
            LocalFileSystem::new_with_prefix(&root).context("opening local artifact storage")?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
            tmp_dir,
        })
    }

    /// Starts receiving a new blob.
    pub async fn stage(&self) -> std::io::Result<StagedBlob> {
        let path = self.tmp_dir.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&path).await?;
        Ok(StagedBlob {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stages a whole in-memory body (publication metadata files).
    pub async fn stage_bytes(&self, bytes: &[u8]) -> std::io::Result<ReceivedBlob> {
        let mut staged = self.stage().await?;
        staged.write(bytes).await?;
        staged.finish().await
    }

    /// Moves a verified blob to its final place. Idempotent: a blob already stored is kept.
    pub async fn commit(&self, blob: ReceivedBlob) -> anyhow::Result<()> {
        let key = Self::key(&blob.sha256);
        if let Some(root) = &self.local_root {
            let target = root.join(key.as_ref());
            if tokio::fs::try_exists(&target).await.unwrap_or(false) {
                return Ok(());
            }
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&blob.path, &target)
                .await
                .with_context(|| format!("moving artifact into {}", target.display()))?;
            return Ok(());
        }
        let mut upload = object_store::WriteMultipart::new(self.store.put_multipart(&key).await?);
        let mut file = tokio::fs::File::open(&blob.path).await?;
        let mut buffer = vec![0u8; 8 * 1024 * 1024];
        loop {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            upload.write(&buffer[..read]);
        }
        upload.finish().await?;
        Ok(())
    }

    /// Whether the blob with this digest is stored.
    pub async fn exists(&self, sha256: &str) -> bool {
        self.store.head(&Self::key(sha256)).await.is_ok()
    }

    /// Reads a stored blob, or a byte range of it.
    pub async fn read(
        &self,
        sha256: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let key = Self::key(sha256);
        if let Some(root) = &self.local_root {
            let mut file = tokio::fs::File::open(root.join(key.as_ref()))
                .await
                .with_context(|| format!("opening artifact {sha256}"))?;
            let stream = match range {
                Some(range) => {
                    file.seek(std::io::SeekFrom::Start(range.start)).await?;
                    let limited = file.take(range.end - range.start);
                    tokio_util::io::ReaderStream::with_capacity(limited, READ_CHUNK).boxed()
                }
                None => tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed(),
            };
            return Ok(stream);
        }
        let options = object_store::GetOptions {
            range: range.map(|range| object_store::GetRange::Bounded(range.start..range.end)),
            ..Default::default()
        };
        let result = self.store.get_opts(&key, options).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Reads a byte range of a stored blob into memory (for plugins; callers cap `len`).
    pub async fn read_range(
        &self,
        sha256: &str,
        offset: u64,
        len: u64,
        size: u64,
    ) -> anyhow::Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut stream = self.read(sha256, Some(offset..end)).await?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn key(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{}/{}", &sha256[0..2], &sha256[2..4], sha256))
    }
}
