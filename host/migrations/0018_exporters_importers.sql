-- Pulp's import/export: exporters write repository versions (or a publication) below a
-- directory of the server; importers read such an export back into repositories.
CREATE TABLE exporters (
    id             TEXT PRIMARY KEY,
    -- 'pulp' (a tar of repository versions with a table of contents) or 'filesystem' (the
    -- files of a publication or repository version, laid out as served).
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL UNIQUE,
    path           TEXT NOT NULL,
    -- filesystem exporters: 'write', 'hardlink' or 'symlink'.
    method         TEXT,
    -- pulp exporters: the repository ids, as a JSON list.
    repositories   TEXT NOT NULL DEFAULT '[]',
    last_export_id TEXT,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL
);

CREATE TABLE exports (
    id                  TEXT PRIMARY KEY,
    exporter_id         TEXT NOT NULL REFERENCES exporters (id) ON DELETE CASCADE,
    task_id             TEXT,
    -- The request's parameters, as JSON.
    params              TEXT NOT NULL DEFAULT '{}',
    -- What was exported: [[repository id, version number]] or [publication id], as JSON.
    exported_resources  TEXT NOT NULL DEFAULT '[]',
    -- {file path: sha256} of the files written, and the table of contents', as JSON.
    output_file_info    TEXT,
    toc_info            TEXT,
    created             TEXT NOT NULL
);
CREATE INDEX exports_exporter ON exports (exporter_id, created);

CREATE TABLE importers (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    -- {repository name in the export: local repository name}, as JSON.
    repo_mapping TEXT NOT NULL DEFAULT '{}',
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);

CREATE TABLE imports (
    id          TEXT PRIMARY KEY,
    importer_id TEXT NOT NULL REFERENCES importers (id) ON DELETE CASCADE,
    task_id     TEXT,
    params      TEXT NOT NULL DEFAULT '{}',
    created     TEXT NOT NULL
);
CREATE INDEX imports_importer ON imports (importer_id, created);
