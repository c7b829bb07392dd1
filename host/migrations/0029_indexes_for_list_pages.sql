-- A list's page is read in the order it is asked for. Without an index in that order, both
-- engines read every row of the table and sorted them to answer each page: `pulp task list` took
-- 43 ms beside 100,000 tasks (one per upload), growing with the table. Lists sort on their field,
-- then on the id in the same direction, so an index on (field, id) serves either direction whole.
CREATE INDEX tasks_created ON tasks (created, id);
CREATE INDEX task_groups_created ON task_groups (created, id);
CREATE INDEX artifacts_created ON artifacts (created, id);
-- `content/<plugin>/<type>/`, the list `pulp <plugin> content list` reads; `content/` itself has
-- `content_created`.
CREATE INDEX content_type_created ON content (plugin, type_name, created, id);
-- `repository_versions/`, every repository's versions newest number first (a repository's own
-- are read by its unique (repository_id, number)).
CREATE INDEX repository_versions_number ON repository_versions (number, id);
CREATE INDEX publications_created ON publications (created, id);
