-- A deleted row's children are found by their foreign key: SQLite and PostgreSQL both look for
-- them (to cascade, or to refuse the delete), and neither indexes a child column by itself.
-- Without these, every content unit an orphan clean-up deleted walked all published files (for
-- its files' rows), every artifact did too, and every repository version deleted walked all
-- publications: 5.8 s per 1,000 deletions beside 200,000 published files on SQLite, 1 ms with
-- the indexes.
CREATE INDEX published_files_content_artifact ON published_files (content_artifact_id);
-- Only a publication's own metadata files name an artifact directly: the index is that small.
CREATE INDEX published_files_artifact ON published_files (artifact_id) WHERE artifact_id IS NOT NULL;
-- Also what a distribution of a repository version serves (its newest complete publication),
-- read with every distribution lookup: 337 µs beside 10,000 publications without it, 8 µs with.
CREATE INDEX publications_version ON publications (repository_version_id, complete, created);
