//! Moving repositories between servers that cannot reach each other (Pulp's import/export):
//! exporters write repository versions into a tar below a directory of the server, importers
//! read such a tar back into repositories; a filesystem exporter writes the files of a
//! publication or a repository version, laid out as they are served.
//!
//! # Layout
//! - this file: the directories operators allow ([`AllowedPaths`]).
//! - [`archive`]: the tar format of an export, written in chunks with a table of contents and
//!   read back strictly (regular files with safe relative names, nothing else).
//! - [`export`]: the export task (`exporters/core/pulp/<id>/exports/`).
//! - [`import`]: the import task and the per-repository tasks it queues in its task group.
//! - [`filesystem`]: the filesystem export task (`exporters/core/filesystem/<id>/exports/`).
//!
//! # The export format
//! One tar (cut into `.tar.NNNN` chunks when a chunk size is given), and next to it
//! `<name>-toc.json`: `{"meta": {"checksum_type": "sha256", "file", "global_hash",
//! "chunk_size"?}, "files": {chunk name: sha256}}`. In the tar, in this order:
//! - `versions.json`: `[{"component": "core"|<plugin>, "version"}]`, as Pulp's;
//! - `repositories.json`: the exported repositories and which version of each;
//! - `artifacts.jsonl`: one line per exported artifact (size and every digest stored);
//! - `artifacts/<sha256[0..2]>/<sha256>`: the artifacts' bytes;
//! - `repository-<id>_<number>/content.jsonl`: one line per unit of the version (type, natural
//!   key, metadata and labels as stored, and which artifact each file of the unit is).
//!
//! Artifacts come before the units that name them, so an import stores and verifies every file
//! before the first unit is recorded, and creates no repository version until all of it is in.

pub mod archive;
pub mod export;
pub mod filesystem;
pub mod import;

use std::path::{Component, Path, PathBuf};

/// The directories exports may be written below and imports read from below (Pulp's
/// `ALLOWED_EXPORT_PATHS` and `ALLOWED_IMPORT_PATHS`). Empty by default: nothing is allowed.
#[derive(Clone, Debug, Default)]
pub struct AllowedPaths {
    export: Vec<PathBuf>,
    import: Vec<PathBuf>,
}

impl AllowedPaths {
    /// The allowed directories, resolved as far as they exist (a symbolic link in an allowed
    /// path is followed once, here, so a path given later is compared with where it leads).
    pub fn new(export: &[PathBuf], import: &[PathBuf]) -> Self {
        let resolve = |paths: &[PathBuf]| {
            paths
                .iter()
                .filter(|path| path.is_absolute())
                .filter_map(|path| resolved(path))
                .collect()
        };
        Self {
            export: resolve(export),
            import: resolve(import),
        }
    }

    /// `path` as the directory an exporter writes into, when it is below an allowed export
    /// directory and is not a file. The message is Pulp's.
    pub fn export_dir(&self, path: &str) -> Result<PathBuf, String> {
        let refused = || format!("Path '{path}' is not an allowed export path");
        let real = resolved(Path::new(path)).ok_or_else(refused)?;
        if !self.export.iter().any(|allowed| real.starts_with(allowed)) {
            return Err(refused());
        }
        if real.exists() && !real.is_dir() {
            return Err(format!("Path '{path}' must be a directory path"));
        }
        Ok(real)
    }

    /// `path` as a file an import may read (`param` names the field, for the message), when it
    /// is below an allowed import directory. Whether it exists is the task's to find out.
    pub fn import_file(&self, param: &str, path: &str) -> Result<PathBuf, String> {
        let refused = || format!("{param} '{path}' is not an allowed import path");
        let real = resolved(Path::new(path)).ok_or_else(refused)?;
        if self.import.iter().any(|allowed| real.starts_with(allowed)) {
            Ok(real)
        } else {
            Err(refused())
        }
    }
}

/// An absolute path with its symbolic links resolved as far as it exists, and the rest appended;
/// `None` for a relative path or one that climbs (`..`) where it no longer exists, which could
/// not be compared with an allowed directory safely.
fn resolved(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut full = real;
            for part in rest.iter().rev() {
                full.push(part);
            }
            return Some(full);
        }
        let name = match existing.components().next_back()? {
            Component::Normal(name) => name.to_owned(),
            Component::CurDir => std::ffi::OsString::new(),
            _ => return None,
        };
        if !name.is_empty() {
            rest.push(name);
        }
        if !existing.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_below_an_allowed_directory_are_allowed() {
        let root = std::env::temp_dir().join(format!("granary-allowed-{}", std::process::id()));
        let exports = root.join("exports");
        std::fs::create_dir_all(&exports).unwrap();
        std::fs::write(exports.join("a-file"), b"x").unwrap();
        let allowed = AllowedPaths::new(std::slice::from_ref(&exports), &[]);
        let below = |path: &Path| allowed.export_dir(path.to_str().unwrap());

        assert!(below(&exports).is_ok());
        assert!(
            below(&exports.join("new/deeper")).is_ok(),
            "need not exist yet"
        );
        assert_eq!(
            below(&exports.join("a-file")).unwrap_err(),
            format!(
                "Path '{}' must be a directory path",
                exports.join("a-file").display()
            )
        );
        for outside in [
            root.clone(),
            root.join("exports-evil"),
            exports.join("../elsewhere"),
            exports.join("new/../../elsewhere"),
        ] {
            assert!(below(&outside).is_err(), "{}", outside.display());
        }
        assert!(allowed.export_dir("relative/path").is_err());
        assert!(
            allowed
                .import_file("toc", exports.to_str().unwrap())
                .is_err(),
            "export directories are not import directories"
        );
        #[cfg(unix)]
        {
            // A link below the allowed directory that leads out of it is where it leads.
            let link = exports.join("out");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&root, &link).unwrap();
            assert!(below(&link.join("x")).is_err());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
