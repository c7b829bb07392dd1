-- Content guards (Pulp's `ContentGuard` and its kinds): what a client must show to be served a
-- distribution's content. See migrations/README.md for the portable-SQL rules.

-- One guard of any kind. `name` is unique across kinds, as in Pulp (the kinds share one master
-- table there). `settings` holds the kind's own fields as a JSON object: `header_name`,
-- `header_value` and `jq_filter` of a header guard, `ca_certificate` of an x509 guard, the ids
-- of a composite guard's `guards`, and the signing `secret` of a content_redirect guard (never
-- shown).
CREATE TABLE content_guards (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    settings    TEXT NOT NULL DEFAULT '{}',
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL,
    CONSTRAINT content_guards_name_key UNIQUE (name)
);
CREATE INDEX content_guards_kind ON content_guards (kind);

-- The guard protecting what a distribution serves (`content_guards.id`), if any.
ALTER TABLE distributions ADD COLUMN content_guard TEXT;
