//! One piece of work at a time per key in this process: the first request for a key does it
//! (a pull-through download per artifact, a plugin call per kept-answer key), the others wait for
//! it and then find its result (the stored file, the kept answer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Locks by key, each alive only while someone holds or waits for it.
#[derive(Default)]
pub struct Inflight {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Inflight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight").finish_non_exhaustive()
    }
}

impl Inflight {
    /// The lock every request for `key` takes while it does or waits for the work.
    pub fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("in-flight lock table");
        // Entries nobody holds any more are dropped, so the table stays as small as the traffic.
        locks.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }
}
