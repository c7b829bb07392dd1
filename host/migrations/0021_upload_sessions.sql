-- Upload sessions of plugins (WIT 0.3.0 `uploads`): bytes a client sends over several requests
-- (OCI's chunked blob uploads), each of which any `serve` process may receive. A session belongs
-- to one plugin and one repository. No foreign key to the repository: a session of a deleted
-- repository is unreachable and expires like any other, and the sweep that deletes expired
-- sessions also deletes their parts' objects, which a cascade would leak.
CREATE TABLE upload_sessions (
    id            TEXT PRIMARY KEY,
    plugin        TEXT NOT NULL,
    repository_id TEXT NOT NULL,
    size          BIGINT NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
);
CREATE INDEX upload_sessions_updated ON upload_sessions (updated);

-- One append: an object of the blob store's upload area at `object_key`, recorded once stored.
-- Appends go at the session's size, so parts never overlap or leave a gap.
CREATE TABLE upload_session_parts (
    session_id   TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    start_offset BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    object_key   TEXT NOT NULL,
    PRIMARY KEY (session_id, start_offset)
);
