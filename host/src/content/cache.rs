//! What the content app found for a path, kept in memory until the content tables change.
//!
//! Serving a small file is otherwise two or three database round trips (the distribution, its
//! publication, the published file) for a few microseconds of file reading. Entries are only as
//! good as the [`ContentChanges`] generation they were read at: any committed change to a content
//! table moves the generation and drops every entry at the next lookup. An entry read while the
//! generation moved is not kept, so a lookup that raced a commit cannot outlive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::db::ContentChanges;

/// Entries per kind before the cache starts over: bounds memory (a few hundred bytes an entry)
/// whatever the clients ask for.
const CAPACITY: usize = 20_000;

/// Resolutions of request paths, valid for one generation of the content tables.
#[derive(Debug)]
pub struct ResolutionCache<D, F> {
    changes: Arc<ContentChanges>,
    shelves: Mutex<Shelves<D, F>>,
}

#[derive(Debug)]
struct Shelves<D, F> {
    generation: u64,
    distributions: HashMap<String, D>,
    files: HashMap<String, F>,
}

impl<D: Clone, F: Clone> ResolutionCache<D, F> {
    /// An empty cache following `changes`.
    pub fn new(changes: Arc<ContentChanges>) -> Self {
        let generation = changes.generation();
        ResolutionCache {
            changes,
            shelves: Mutex::new(Shelves {
                generation,
                distributions: HashMap::new(),
                files: HashMap::new(),
            }),
        }
    }

    /// The generation to read the database at: take it before the query, hand it to `keep_*`.
    pub fn generation(&self) -> u64 {
        self.changes.generation()
    }

    /// The distribution match kept for `path` (requests under `plugin`'s prefix only, if given).
    pub fn distribution(&self, plugin: Option<&str>, path: &str) -> Option<D> {
        self.current(|shelves| {
            shelves
                .distributions
                .get(&distribution_key(plugin, path))
                .cloned()
        })
    }

    /// Keeps a distribution match read at `generation`.
    pub fn keep_distribution(&self, generation: u64, plugin: Option<&str>, path: &str, found: D) {
        self.keep(
            generation,
            |shelves| &mut shelves.distributions,
            distribution_key(plugin, path),
            found,
        );
    }

    /// The published file kept for `path` in `publication_id`.
    pub fn file(&self, publication_id: &str, path: &str) -> Option<F> {
        self.current(|shelves| shelves.files.get(&file_key(publication_id, path)).cloned())
    }

    /// Keeps a published-file lookup read at `generation`.
    pub fn keep_file(&self, generation: u64, publication_id: &str, path: &str, found: F) {
        self.keep(
            generation,
            |shelves| &mut shelves.files,
            file_key(publication_id, path),
            found,
        );
    }

    /// Runs `look` on the shelves of the current generation, emptying them first if it moved.
    fn current<R>(&self, look: impl FnOnce(&mut Shelves<D, F>) -> R) -> R {
        let generation = self.changes.generation();
        let mut shelves = self.shelves.lock().unwrap_or_else(PoisonError::into_inner);
        if shelves.generation != generation {
            shelves.generation = generation;
            shelves.distributions.clear();
            shelves.files.clear();
        }
        look(&mut shelves)
    }

    fn keep<V>(
        &self,
        generation: u64,
        shelf: impl FnOnce(&mut Shelves<D, F>) -> &mut HashMap<String, V>,
        key: String,
        value: V,
    ) {
        self.current(|shelves| {
            // Read at an older generation: it may predate a commit, so it is not kept.
            if shelves.generation != generation {
                return;
            }
            let shelf = shelf(shelves);
            if shelf.len() >= CAPACITY {
                shelf.clear();
            }
            shelf.insert(key, value);
        });
    }
}

/// Unambiguous: the plugin name's length comes first.
fn distribution_key(plugin: Option<&str>, path: &str) -> String {
    match plugin {
        Some(plugin) => format!("{}:{plugin}{path}", plugin.len()),
        None => format!("-:{path}"),
    }
}

/// Unambiguous: publication ids are UUIDs.
fn file_key(publication_id: &str, path: &str) -> String {
    format!("{publication_id}{path}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::ResolutionCache;
    use crate::db::ContentChanges;

    fn cache() -> (Arc<ContentChanges>, ResolutionCache<String, u64>) {
        let changes = Arc::new(ContentChanges::default());
        let cache = ResolutionCache::new(changes.clone());
        (changes, cache)
    }

    #[test]
    fn an_entry_is_served_until_the_content_tables_change() {
        let (changes, cache) = cache();
        let generation = cache.generation();
        cache.keep_distribution(generation, None, "repo/a.txt", "repo".to_owned());
        cache.keep_file(generation, "pub-1", "a.txt", 4096);
        assert_eq!(
            cache.distribution(None, "repo/a.txt").as_deref(),
            Some("repo")
        );
        assert_eq!(cache.file("pub-1", "a.txt"), Some(4096));

        changes.changed();
        assert_eq!(cache.distribution(None, "repo/a.txt"), None);
        assert_eq!(cache.file("pub-1", "a.txt"), None);
    }

    #[test]
    fn a_lookup_that_raced_a_commit_is_not_kept() {
        let (changes, cache) = cache();
        let read_at = cache.generation();
        // A commit lands between the database read and keeping its result.
        changes.changed();
        cache.keep_file(read_at, "pub-1", "a.txt", 4096);
        assert_eq!(cache.file("pub-1", "a.txt"), None);
    }

    #[test]
    fn keys_of_different_plugins_and_publications_do_not_collide() {
        let (_, cache) = cache();
        let generation = cache.generation();
        cache.keep_distribution(generation, Some("py"), "pi/x", "python".to_owned());
        cache.keep_distribution(generation, Some("pyp"), "i/x", "other".to_owned());
        cache.keep_distribution(generation, None, "pi/x", "any".to_owned());
        assert_eq!(
            cache.distribution(Some("py"), "pi/x").as_deref(),
            Some("python")
        );
        assert_eq!(
            cache.distribution(Some("pyp"), "i/x").as_deref(),
            Some("other")
        );
        assert_eq!(cache.distribution(None, "pi/x").as_deref(), Some("any"));
        assert_eq!(cache.distribution(Some("p"), "ypi/x"), None);
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let (_, cache) = cache();
        let generation = cache.generation();
        for n in 0..super::CAPACITY {
            cache.keep_file(generation, "pub-1", &n.to_string(), n as u64);
        }
        assert_eq!(cache.file("pub-1", "0"), Some(0));
        cache.keep_file(generation, "pub-1", "one more", 1);
        assert_eq!(cache.file("pub-1", "0"), None);
        assert_eq!(cache.file("pub-1", "one more"), Some(1));
    }
}
