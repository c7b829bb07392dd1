-- Plugins installed at runtime through `POST /pulp/api/v3/plugins/` (built-in plugins ship inside
-- the binary and have no row). The component's bytes are an artifact; `info` is what its
-- `describe` returned, as JSON, so a listing needs no Wasm call. See migrations/README.md.

CREATE TABLE plugins (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    wit_version TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    artifact_id TEXT NOT NULL REFERENCES artifacts (id),
    info        TEXT NOT NULL,
    enabled     BIGINT NOT NULL DEFAULT 1,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL
);
