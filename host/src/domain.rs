//! The core model (Pulp 3 semantics): artifacts, content, repositories and their immutable
//! versions, remotes, publications, distributions.
//!
//! # Layout
//! - [`additions`]: units a plugin's `handle` adds to a repository (uploads, pull-through).
//! - [`hrefs`]: REST identities (`pulp_href`) of every object.
//! - [`versions`]: which content is in which repository version, and making new versions.
//! - [`units`]: content units with their files, as plugins see them.
//! - [`artifacts`]: verified ingest of bytes into storage and the `artifacts` table.
//! - [`declarations`]: recording units declared by plugins (sync, upload).
//! - [`remotes`]: remotes and HTTP clients configured from them.
//! - [`uploads`]: turning an uploaded file into a unit through its plugin.
//! - [`chunked_uploads`]: byte ranges of `uploads/` assembled into an artifact.
//! - [`maintenance`]: orphan cleanup, reclaiming space, repairing stored artifacts.
//! - [`publications`]: building a publication through a plugin.

pub mod additions;
pub mod artifacts;
pub mod chunked_uploads;
pub mod declarations;
pub mod hrefs;
pub mod maintenance;
pub mod publications;
pub mod remotes;
pub mod units;
pub mod uploads;
pub mod versions;

/// `$start, $start+1, …` placeholders for an `IN (...)` list of `count` values.
pub fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
