-- The number the next version of a repository takes when it is not `latest_version + 1`: after
-- the latest version was deleted, its number is never given again (a version's href names
-- immutable content, and caches are keyed by it). NULL: `latest_version + 1`.
ALTER TABLE repositories ADD COLUMN next_version BIGINT;
-- Pulp's `autopublish` (file, python): each new version is published by the task that made it.
ALTER TABLE repositories ADD COLUMN autopublish BIGINT NOT NULL DEFAULT 0;
