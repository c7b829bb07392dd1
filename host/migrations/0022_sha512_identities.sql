-- Files an upstream names by sha512 alone (npm's `dist.integrity`): where an on-demand file is
-- fetched from keeps the sha512 to verify it against, and a stored artifact is found by its
-- sha512 so that a pull-through fetches such a file once.
ALTER TABLE remote_artifacts ADD COLUMN sha512 TEXT;
CREATE INDEX artifacts_sha512 ON artifacts (sha512);
