//! What the content app found for a path, kept in memory until the content tables change.
//!
//! Serving a small file is otherwise two or three database round trips (the distribution, its
//! publication, the published file) for a few microseconds of file reading. Entries are only as
//! good as the [`ContentChanges`] generation they were read at: any committed change to a content
//! table moves the generation and drops every entry at the next lookup. An entry read while the
//! generation moved is not kept, so a lookup that raced a commit cannot outlive it. Only paths
//! that resolved to something are kept, within a budget of bytes (keys and values), so no client
//! can make the cache grow by asking for paths that do not exist.

use std::sync::{Arc, Mutex, PoisonError};

use hashlink::LinkedHashMap;

use crate::db::ContentChanges;

/// What an entry costs besides its key and [`Weigh::weight`]: the table slot, its links, the
/// `Arc` and `String` headers.
const ENTRY_OVERHEAD: usize = 96;

/// The memory a cached value holds, in bytes, as far as it is worth counting (its heap text).
pub trait Weigh {
    /// Bytes this value keeps alive.
    fn weight(&self) -> usize;
}

/// Resolutions of request paths, valid for one generation of the content tables. Only what was
/// found is kept: a path that resolves to nothing is the client's choice, and would let any
/// client fill the cache with its misses. Distributions (by base path) and published files have 7/16 of
/// the byte budget each, the versions distributions serve the rest (one small entry per
/// distribution); the least recently used entries go first.
#[derive(Debug)]
pub struct ResolutionCache<D, F> {
    shelves: PerGeneration<Shelves<D, F>>,
}

#[derive(Debug)]
struct Shelves<D, F> {
    distributions: Shelf<D>,
    files: Shelf<F>,
    versions: Shelf<ServedVersion>,
}

impl<D, F> Clear for Shelves<D, F> {
    fn clear(&mut self) {
        self.distributions.clear();
        self.files.clear();
        self.versions.clear();
    }
}

/// What a cache keeps for one generation of the content tables, emptied when it moves.
pub trait Clear {
    /// Drops every entry.
    fn clear(&mut self);
}

/// `T`, valid for one generation of the content tables: emptied at the first use after the
/// generation moved, and written only with what was read at the current generation.
#[derive(Debug)]
pub struct PerGeneration<T> {
    changes: Arc<ContentChanges>,
    kept: Mutex<(u64, T)>,
}

impl<T: Clear> PerGeneration<T> {
    /// `empty`, following `changes`.
    pub fn new(changes: Arc<ContentChanges>, empty: T) -> Self {
        let generation = changes.generation();
        PerGeneration {
            changes,
            kept: Mutex::new((generation, empty)),
        }
    }

    /// The generation to read the database at: take it before the read, hand it to `keep`.
    pub fn generation(&self) -> u64 {
        self.changes.generation()
    }

    /// Runs `look` on what is kept for the current generation, emptying it first if it moved.
    pub fn current<R>(&self, look: impl FnOnce(&mut T) -> R) -> R {
        let generation = self.changes.generation();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.0 != generation {
            kept.0 = generation;
            kept.1.clear();
        }
        look(&mut kept.1)
    }

    /// Runs `put` on what is kept, unless `generation` (when what is put was read) is not the
    /// current one: it may predate a commit, so it is not kept.
    pub fn keep(&self, generation: u64, put: impl FnOnce(&mut T)) {
        self.current(|kept| {
            if generation == self.changes.generation() {
                put(kept);
            }
        });
    }
}

/// The repository version a distribution serves to its plugin's routes: the repository's id and
/// the version's number.
pub type ServedVersion = (String, i64);

impl Weigh for ServedVersion {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

/// Entries of one kind, least recently used first, and the bytes they hold.
#[derive(Debug)]
pub(super) struct Shelf<V> {
    entries: LinkedHashMap<String, V>,
    bytes: usize,
    budget: usize,
}

impl<V: Clone + Weigh> Shelf<V> {
    /// Empty, holding at most `budget` bytes of keys and values.
    pub(super) fn new(budget: usize) -> Self {
        Shelf {
            entries: LinkedHashMap::new(),
            bytes: 0,
            budget,
        }
    }

    /// The value at `key`, which becomes the most recently used.
    pub(super) fn get(&mut self, key: &str) -> Option<V> {
        let value = self.entries.to_back(key)?;
        Some(value.clone())
    }

    /// Whether `value` at `key` fits without pushing anything out.
    pub(super) fn has_room_for(&self, key: &str, value: &V) -> bool {
        self.bytes + entry_cost(key, value) <= self.budget
    }

    /// Takes the value at `key` off the shelf.
    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        let value = self.entries.remove(key)?;
        self.bytes -= entry_cost(key, &value);
        Some(value)
    }

    /// Keeps `value` at `key` as the most recently used, dropping the least recently used until
    /// it fits; a value larger than the whole budget is not kept.
    pub(super) fn insert(&mut self, key: String, value: V) {
        let cost = entry_cost(&key, &value);
        if cost > self.budget {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= entry_cost(&key, &old);
        }
        while self.bytes + cost > self.budget {
            let Some((old_key, old)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= entry_cost(&old_key, &old);
        }
        self.bytes += cost;
        self.entries.insert(key, value);
    }
}

fn entry_cost(key: &str, value: &impl Weigh) -> usize {
    key.len() + value.weight() + ENTRY_OVERHEAD
}

impl<D: Clone + Weigh, F: Clone + Weigh> ResolutionCache<D, F> {
    /// An empty cache following `changes`, holding at most `budget` bytes of keys and values.
    pub fn new(changes: Arc<ContentChanges>, budget: usize) -> Self {
        ResolutionCache {
            shelves: PerGeneration::new(
                changes,
                Shelves {
                    distributions: Shelf::new(budget / 16 * 7),
                    files: Shelf::new(budget / 16 * 7),
                    versions: Shelf::new(budget / 8),
                },
            ),
        }
    }

    /// The generation to read the database at: take it before the query, hand it to `keep_*`.
    pub fn generation(&self) -> u64 {
        self.shelves.generation()
    }

    /// The distribution kept at the first of `base_paths` that has one. Kept per base path, not
    /// per request path, so the operator's distributions bound what a working set needs however
    /// many paths clients ask for below them.
    pub fn distribution(&self, base_paths: &[&str]) -> Option<D> {
        self.current(|shelves| {
            base_paths
                .iter()
                .find_map(|base_path| shelves.distributions.get(base_path))
        })
    }

    /// Keeps the distribution at `base_path`, read at `generation`.
    pub fn keep_distribution(&self, generation: u64, base_path: &str, found: D) {
        self.keep(generation, |shelves| {
            shelves.distributions.insert(base_path.to_owned(), found);
        });
    }

    /// The published file kept for `path` in `publication_id`.
    pub fn file(&self, publication_id: &str, path: &str) -> Option<F> {
        self.current(|shelves| shelves.files.get(&file_key(publication_id, path)))
    }

    /// Keeps a published file found at `generation`.
    pub fn keep_file(&self, generation: u64, publication_id: &str, path: &str, found: F) {
        self.keep(generation, |shelves| {
            shelves.files.insert(file_key(publication_id, path), found);
        });
    }

    /// The version kept for the distribution `distribution` (the key its caller chose).
    pub fn version(&self, distribution: &str) -> Option<ServedVersion> {
        self.current(|shelves| shelves.versions.get(distribution))
    }

    /// Keeps the version a distribution serves, read at `generation`.
    pub fn keep_version(&self, generation: u64, distribution: &str, served: ServedVersion) {
        self.keep(generation, |shelves| {
            shelves.versions.insert(distribution.to_owned(), served);
        });
    }

    fn current<R>(&self, look: impl FnOnce(&mut Shelves<D, F>) -> R) -> R {
        self.shelves.current(look)
    }

    fn keep(&self, generation: u64, put: impl FnOnce(&mut Shelves<D, F>)) {
        self.shelves.keep(generation, put);
    }

    /// Bytes the entries of both kinds hold, as counted against the budget.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.current(|shelves| shelves.distributions.bytes + shelves.files.bytes)
    }
}

impl<V> Shelf<V> {
    /// Drops every entry.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Bytes of keys and values held, as counted against the budget.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Unambiguous: publication ids are UUIDs.
fn file_key(publication_id: &str, path: &str) -> String {
    format!("{publication_id}{path}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ResolutionCache, Weigh};
    use crate::db::ContentChanges;

    impl Weigh for String {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    impl Weigh for u64 {
        fn weight(&self) -> usize {
            0
        }
    }

    fn cache_of(budget: usize) -> (Arc<ContentChanges>, ResolutionCache<String, u64>) {
        let changes = Arc::new(ContentChanges::default());
        let cache = ResolutionCache::new(changes.clone(), budget);
        (changes, cache)
    }

    fn cache() -> (Arc<ContentChanges>, ResolutionCache<String, u64>) {
        cache_of(1 << 20)
    }

    #[test]
    fn an_entry_is_served_until_the_content_tables_change() {
        let (changes, cache) = cache();
        let generation = cache.generation();
        cache.keep_distribution(generation, "repo", "repo".to_owned());
        cache.keep_file(generation, "pub-1", "a.txt", 4096);
        assert_eq!(
            cache.distribution(&["repo/a.txt", "repo"]).as_deref(),
            Some("repo")
        );
        assert_eq!(cache.file("pub-1", "a.txt"), Some(4096));

        changes.changed();
        assert_eq!(cache.distribution(&["repo/a.txt", "repo"]), None);
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
    fn one_distribution_entry_serves_every_path_below_its_base_path() {
        let (_, cache) = cache_of(4096);
        let generation = cache.generation();
        cache.keep_distribution(generation, "pypi/team", "team".to_owned());
        // Thousands of distinct request paths below it, in a budget that holds a few entries.
        for n in 0..10_000 {
            let project = format!("pypi/team/simple/project-{n}");
            let candidates = [project.as_str(), "pypi/team/simple", "pypi/team", "pypi"];
            assert_eq!(cache.distribution(&candidates).as_deref(), Some("team"));
        }
        assert_eq!(cache.distribution(&["pypi/other", "pypi"]), None);
        assert_eq!(
            cache.distribution(&["pypi"]),
            None,
            "only the base path itself"
        );
    }

    #[test]
    fn long_keys_count_against_the_byte_budget_and_the_least_recently_used_go_first() {
        let budget = 64 * 1024;
        let (_, cache) = cache_of(budget);
        let generation = cache.generation();
        cache.keep_file(generation, "pub-1", "hot", 1);
        for n in 0..1000 {
            // A 4 KiB path each: 4 MB of keys offered to a 28 KiB shelf.
            let path = format!("{n}/{}", "x".repeat(4096));
            cache.keep_file(generation, "pub-1", &path, n);
            assert_eq!(cache.file("pub-1", "hot"), Some(1), "used, so kept");
            assert!(cache.bytes() <= budget, "{} bytes kept", cache.bytes());
        }
        assert_eq!(
            cache.file("pub-1", &format!("0/{}", "x".repeat(4096))),
            None
        );
        let larger_than_a_shelf = "y".repeat(budget);
        cache.keep_file(generation, "pub-1", &larger_than_a_shelf, 2);
        assert_eq!(cache.file("pub-1", &larger_than_a_shelf), None);
        assert_eq!(cache.file("pub-1", "hot"), Some(1));
    }
}
