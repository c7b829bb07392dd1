-- WIT 0.2.0: plugin-declared distribution fields (`plugin-info.distribution-fields`), validated by
-- the API and stored as one JSON object per row, like `remotes.extra` (which 0001 already has).
ALTER TABLE distributions ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';

-- `content.list-by-prefix` (e.g. one Python project's files) looks files up by path prefix.
CREATE INDEX content_artifacts_relative_path ON content_artifacts (relative_path);
