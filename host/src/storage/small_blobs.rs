//! Small stored files kept in memory by the content app, least recently served out first.
//!
//! Serving a 4 KiB file from the page cache is three system calls (open, read, close) beside
//! the socket write, and on the VM of `docs/performance.md` they were a quarter of the CPU time
//! of a request; from S3 it is a request to S3. Artifacts never change under their digest, so a
//! copy in memory never goes stale:
//! the only thing to keep right is that the copy is the artifact, so a file is hashed once when
//! it is read into the cache, and a file whose bytes do not match its name is served as it is
//! (like before) but not kept.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use hashlink::LruCache;
use sha2::{Digest as _, Sha256};

/// Whole files up to `budget` bytes in all, by digest.
#[derive(Debug)]
pub struct SmallBlobCache {
    budget: usize,
    shelf: Mutex<Shelf>,
}

#[derive(Debug)]
struct Shelf {
    files: LruCache<String, Bytes>,
    bytes: usize,
}

impl SmallBlobCache {
    /// Keeps up to `budget` bytes of file contents (0 keeps nothing).
    pub fn new(budget: usize) -> Self {
        SmallBlobCache {
            budget,
            shelf: Mutex::new(Shelf {
                files: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The kept contents of the artifact `sha256`.
    pub fn get(&self, sha256: &str) -> Option<Bytes> {
        // Turned off: no lock on the way of every small read.
        if self.budget == 0 {
            return None;
        }
        self.lock().files.get(sha256).cloned()
    }

    /// Keeps `contents` as the artifact `sha256`, evicting the least recently served files beyond
    /// the budget; contents larger than the budget are not kept. Contents that do not hash to
    /// `sha256` are refused: the file on disk is not the artifact.
    pub fn keep(&self, sha256: &str, contents: &Bytes) -> Result<(), DigestMismatch> {
        if contents.len() > self.budget {
            return Ok(());
        }
        let actual = hex::encode(Sha256::digest(contents));
        if actual != sha256 {
            return Err(DigestMismatch { actual });
        }
        let mut shelf = self.lock();
        if let Some(old) = shelf.files.insert(sha256.to_owned(), contents.clone()) {
            shelf.bytes -= old.len();
        }
        shelf.bytes += contents.len();
        while shelf.bytes > self.budget {
            let Some((_, evicted)) = shelf.files.remove_lru() else {
                break;
            };
            shelf.bytes -= evicted.len();
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Bytes that were to be kept under a digest they do not have.
#[derive(Debug, thiserror::Error)]
#[error("its contents hash to {actual}")]
pub struct DigestMismatch {
    actual: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(text: &str) -> (String, Bytes) {
        let bytes = Bytes::from(text.to_owned());
        (hex::encode(Sha256::digest(&bytes)), bytes)
    }

    #[test]
    fn the_least_recently_served_file_goes_first_when_the_budget_is_spent() {
        let cache = SmallBlobCache::new(12);
        let (a, b, c) = (artifact("aaaa"), artifact("bbbb"), artifact("cccc"));
        cache.keep(&a.0, &a.1).unwrap();
        cache.keep(&b.0, &b.1).unwrap();
        cache.keep(&c.0, &c.1).unwrap();
        assert_eq!(cache.get(&a.0), Some(a.1.clone()), "a is served again");

        let d = artifact("dddd");
        cache.keep(&d.0, &d.1).unwrap();

        assert_eq!(cache.get(&b.0), None, "b was served longest ago");
        for kept in [&a, &c, &d] {
            assert_eq!(cache.get(&kept.0), Some(kept.1.clone()));
        }
    }

    #[test]
    fn bytes_that_are_not_their_artifact_are_refused() {
        let cache = SmallBlobCache::new(1024);
        let (sha256, _) = artifact("the artifact");
        let (_, corrupt) = artifact("the artifact, changed on disk");

        let error = cache.keep(&sha256, &corrupt).unwrap_err();

        assert!(error.to_string().contains("hash to"), "{error}");
        assert_eq!(cache.get(&sha256), None);
    }

    #[test]
    fn files_larger_than_the_budget_and_a_zero_budget_keep_nothing() {
        let (sha256, bytes) = artifact("twelve bytes");
        for budget in [0, 11] {
            let cache = SmallBlobCache::new(budget);
            cache.keep(&sha256, &bytes).unwrap();
            assert_eq!(cache.get(&sha256), None, "budget {budget}");
        }
    }
}
