-- Paging through a repository version by content id (plugins' content.list-units) walks this
-- index from the cursor instead of sorting the whole repository for every page.
CREATE INDEX repository_content_scan ON repository_content (repository_id, content_id);
