-- Origins a remote may reach besides its own whatever their addresses (the SSRF guard refuses
-- loopback, private and link-local addresses elsewhere), and that its plugin's own requests may
-- reach: a JSON list of `scheme://host[:port]`.
ALTER TABLE remotes ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
