-- Core model: artifacts, content, repositories and their versions, remotes, publications,
-- distributions, tasks. See migrations/README.md for the portable-SQL rules.

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_salt TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created       TEXT NOT NULL
);

CREATE TABLE artifacts (
    id      TEXT PRIMARY KEY,
    sha256  TEXT NOT NULL,
    size    BIGINT NOT NULL,
    created TEXT NOT NULL,
    CONSTRAINT artifacts_sha256_key UNIQUE (sha256)
);

CREATE TABLE remotes (
    id                   TEXT PRIMARY KEY,
    plugin               TEXT NOT NULL,
    type_name            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    url                  TEXT NOT NULL,
    policy               TEXT NOT NULL,
    download_concurrency BIGINT,
    tls_validation       BIGINT NOT NULL DEFAULT 1,
    username             TEXT,
    password             TEXT,
    headers              TEXT NOT NULL DEFAULT '[]',
    total_timeout        BIGINT,
    max_retries          BIGINT,
    extra                TEXT NOT NULL DEFAULT '{}',
    labels               TEXT NOT NULL DEFAULT '{}',
    created              TEXT NOT NULL,
    updated              TEXT NOT NULL,
    CONSTRAINT remotes_name_key UNIQUE (name)
);

CREATE TABLE repositories (
    id                   TEXT PRIMARY KEY,
    plugin               TEXT NOT NULL,
    type_name            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    retain_repo_versions BIGINT,
    remote_id            TEXT REFERENCES remotes (id) ON DELETE SET NULL,
    latest_version       BIGINT NOT NULL DEFAULT 0,
    labels               TEXT NOT NULL DEFAULT '{}',
    created              TEXT NOT NULL,
    updated              TEXT NOT NULL,
    CONSTRAINT repositories_name_key UNIQUE (name)
);

CREATE TABLE repository_versions (
    id              TEXT PRIMARY KEY,
    repository_id   TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number          BIGINT NOT NULL,
    base_version_id TEXT,
    content_summary TEXT NOT NULL DEFAULT '{"added":{},"removed":{},"present":{}}',
    created         TEXT NOT NULL,
    CONSTRAINT repository_versions_number_key UNIQUE (repository_id, number)
);

CREATE TABLE content (
    id          TEXT PRIMARY KEY,
    plugin      TEXT NOT NULL,
    type_name   TEXT NOT NULL,
    natural_key TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    created     TEXT NOT NULL,
    CONSTRAINT content_natural_key UNIQUE (plugin, type_name, natural_key)
);

-- A file of a content unit. artifact_id is NULL until the bytes are downloaded (on_demand,
-- streamed); remote_artifacts then says where to get them.
CREATE TABLE content_artifacts (
    id            TEXT PRIMARY KEY,
    content_id    TEXT NOT NULL REFERENCES content (id) ON DELETE CASCADE,
    relative_path TEXT NOT NULL,
    artifact_id   TEXT REFERENCES artifacts (id),
    CONSTRAINT content_artifacts_path_key UNIQUE (content_id, relative_path)
);
CREATE INDEX content_artifacts_artifact ON content_artifacts (artifact_id);

CREATE TABLE remote_artifacts (
    id                  TEXT PRIMARY KEY,
    content_artifact_id TEXT NOT NULL REFERENCES content_artifacts (id) ON DELETE CASCADE,
    remote_id           TEXT NOT NULL REFERENCES remotes (id) ON DELETE CASCADE,
    url                 TEXT NOT NULL,
    size                BIGINT,
    sha256              TEXT,
    CONSTRAINT remote_artifacts_key UNIQUE (content_artifact_id, remote_id)
);

-- Membership of content in repository versions, as ranges (Pulp's RepositoryContent): a unit is in
-- version n when version_added <= n and (version_removed IS NULL or version_removed > n). A new
-- version costs rows only for what changed.
CREATE TABLE repository_content (
    repository_id   TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    content_id      TEXT NOT NULL REFERENCES content (id),
    version_added   BIGINT NOT NULL,
    version_removed BIGINT
);
CREATE INDEX repository_content_current ON repository_content (repository_id, version_removed, content_id);
CREATE INDEX repository_content_content ON repository_content (content_id);

CREATE TABLE publications (
    id                    TEXT PRIMARY KEY,
    plugin                TEXT NOT NULL,
    type_name             TEXT NOT NULL,
    repository_id         TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    repository_version_id TEXT NOT NULL REFERENCES repository_versions (id) ON DELETE CASCADE,
    complete              BIGINT NOT NULL DEFAULT 0,
    created               TEXT NOT NULL
);
CREATE INDEX publications_repository ON publications (repository_id, complete, created);

-- Every path a publication serves: a stored file of a unit (content_artifact_id) or a metadata file
-- the plugin wrote (artifact_id).
CREATE TABLE published_files (
    publication_id      TEXT NOT NULL REFERENCES publications (id) ON DELETE CASCADE,
    relative_path       TEXT NOT NULL,
    content_artifact_id TEXT REFERENCES content_artifacts (id),
    artifact_id         TEXT REFERENCES artifacts (id),
    PRIMARY KEY (publication_id, relative_path)
);

CREATE TABLE distributions (
    id                    TEXT PRIMARY KEY,
    plugin                TEXT NOT NULL,
    type_name             TEXT NOT NULL,
    name                  TEXT NOT NULL,
    base_path             TEXT NOT NULL,
    publication_id        TEXT REFERENCES publications (id) ON DELETE SET NULL,
    repository_id         TEXT REFERENCES repositories (id) ON DELETE SET NULL,
    remote_id             TEXT REFERENCES remotes (id) ON DELETE SET NULL,
    hidden                BIGINT NOT NULL DEFAULT 0,
    labels                TEXT NOT NULL DEFAULT '{}',
    created               TEXT NOT NULL,
    updated               TEXT NOT NULL,
    CONSTRAINT distributions_name_key UNIQUE (name),
    CONSTRAINT distributions_base_path_key UNIQUE (base_path)
);

CREATE TABLE workers (
    name      TEXT PRIMARY KEY,
    started   TEXT NOT NULL,
    heartbeat TEXT NOT NULL
);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    state             TEXT NOT NULL,
    args              TEXT NOT NULL,
    created           TEXT NOT NULL,
    started           TEXT,
    finished          TEXT,
    worker            TEXT,
    error             TEXT,
    progress_reports  TEXT NOT NULL DEFAULT '[]',
    created_resources TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX tasks_state ON tasks (state, created);

CREATE TABLE task_resources (
    task_id   TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    resource  TEXT NOT NULL,
    exclusive BIGINT NOT NULL
);
CREATE INDEX task_resources_task ON task_resources (task_id);

-- Content ids a running sync has seen, so a mirror sync can compute what to remove in SQL rather
-- than in memory.
CREATE TABLE sync_staging (
    task_id    TEXT NOT NULL,
    content_id TEXT NOT NULL,
    PRIMARY KEY (task_id, content_id)
);
