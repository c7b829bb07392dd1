-- A new version's content summary counts the units it added through this index (and those it
-- removed through `repository_content_current`), so building a version costs what changed, not
-- what the repository holds.
CREATE INDEX repository_content_added ON repository_content (repository_id, version_added);
