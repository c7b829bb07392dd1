-- pulp_python's repository blocklists (pulp_python 3.30): a project name (every version), a
-- name and one version, or a file name the repository refuses to add.
CREATE TABLE blocklist_entries (
    id            TEXT PRIMARY KEY,
    repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- PEP 503 normalized.
    name          TEXT,
    version       TEXT,
    filename      TEXT,
    -- The PRN of the user who added it.
    added_by      TEXT NOT NULL DEFAULT '',
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
);
CREATE INDEX blocklist_entries_repository ON blocklist_entries (repository_id, created);
