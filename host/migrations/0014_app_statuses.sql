-- The processes of the installation and what each serves, as Pulp's AppStatus: a `serve`
-- process has an `api` and a `content` row, and a `worker` row when it runs task workers; a
-- `worker` process has a `worker` row. Each row's heartbeat moves every few seconds; a row whose
-- heartbeat is older than its type's time to live is missing (its process died without removing
-- it) and is forgotten after a while. Replaces `workers`, which nothing writes any more.
CREATE TABLE app_statuses (
    id        TEXT PRIMARY KEY,
    app_type  TEXT NOT NULL,
    name      TEXT NOT NULL,
    created   TEXT NOT NULL,
    heartbeat TEXT NOT NULL,
    -- {component: version} of what the process has loaded, as JSON.
    versions  TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX app_statuses_name ON app_statuses (app_type, name);
