-- Indexed fields of content units (WIT 0.3.0 `content-type-info.indexed-fields`): the value of a
-- declared top-level metadata field, so a plugin can list a field's distinct values in a version
-- and find units by value without listing the version.
--
-- The fields ever declared, per plugin and content type. Units are indexed under every recorded
-- field, also after a later plugin version stops declaring it, so the keys never miss a unit
-- stored in between. `complete` is 1 once the units stored before the field was recorded are
-- indexed too (a start resumes an interrupted backfill). `repository_key` is 1 for the field the
-- loaded plugin names as its type's `repository-key` (Pulp's `repo_key_fields`): a new version's
-- unit replaces the one with the same value.
CREATE TABLE content_key_fields (
    plugin         TEXT NOT NULL,
    type_name      TEXT NOT NULL,
    field          TEXT NOT NULL,
    complete       BIGINT NOT NULL DEFAULT 0,
    repository_key BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin, type_name, field)
);

CREATE TABLE content_keys (
    plugin     TEXT NOT NULL,
    type_name  TEXT NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    content_id TEXT NOT NULL REFERENCES content (id) ON DELETE CASCADE,
    PRIMARY KEY (plugin, type_name, field, value, content_id)
);
CREATE INDEX content_keys_content ON content_keys (content_id);
