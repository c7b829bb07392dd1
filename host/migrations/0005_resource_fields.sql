-- Pulp's common remote fields, a distribution serving a fixed repository version, and
-- timeouts kept in milliseconds (Pulp's API gives them as float seconds). See migrations/README.md.

ALTER TABLE remotes ADD COLUMN ca_cert TEXT;
ALTER TABLE remotes ADD COLUMN client_cert TEXT;
ALTER TABLE remotes ADD COLUMN client_key TEXT;
ALTER TABLE remotes ADD COLUMN proxy_url TEXT;
ALTER TABLE remotes ADD COLUMN proxy_username TEXT;
ALTER TABLE remotes ADD COLUMN proxy_password TEXT;
ALTER TABLE remotes ADD COLUMN rate_limit BIGINT;
ALTER TABLE remotes ADD COLUMN total_timeout_ms BIGINT;
ALTER TABLE remotes ADD COLUMN connect_timeout_ms BIGINT;
ALTER TABLE remotes ADD COLUMN sock_connect_timeout_ms BIGINT;
ALTER TABLE remotes ADD COLUMN sock_read_timeout_ms BIGINT;
UPDATE remotes SET total_timeout_ms = total_timeout * 1000 WHERE total_timeout IS NOT NULL;

ALTER TABLE distributions ADD COLUMN repository_version_id TEXT REFERENCES repository_versions (id) ON DELETE SET NULL;
