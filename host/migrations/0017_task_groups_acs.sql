-- Pulp's task groups: tasks dispatched together (an ACS refresh: one task per path), shown as one.
CREATE TABLE task_groups (
    id                   TEXT PRIMARY KEY,
    description          TEXT NOT NULL,
    all_tasks_dispatched BIGINT NOT NULL DEFAULT 0,
    created              TEXT NOT NULL
);
ALTER TABLE tasks ADD COLUMN task_group_id TEXT;
CREATE INDEX tasks_task_group ON tasks (task_group_id);

-- Alternate content sources (Pulp's ACS): a remote and paths below its URL where the same files
-- may be fetched (a nearer mirror, a CDN). A refresh reads each path's metadata through the
-- plugin's `sync` and records which file (by sha256) is where; a sync of any repository of the
-- plugin then downloads a file from an ACS that has it, and from its own remote otherwise.
CREATE TABLE acs_sources (
    id             TEXT PRIMARY KEY,
    plugin         TEXT NOT NULL,
    type_name      TEXT NOT NULL,
    name           TEXT NOT NULL UNIQUE,
    remote_id      TEXT NOT NULL REFERENCES remotes (id),
    -- The paths as a JSON list of strings.
    paths          TEXT NOT NULL DEFAULT '[]',
    last_refreshed TEXT,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL
);
CREATE TABLE acs_files (
    acs_id TEXT NOT NULL REFERENCES acs_sources (id) ON DELETE CASCADE,
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    url    TEXT NOT NULL,
    size   BIGINT,
    PRIMARY KEY (acs_id, path, sha256)
);
CREATE INDEX acs_files_sha256 ON acs_files (sha256);
