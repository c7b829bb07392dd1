-- Origins the remotes a replication creates may reach besides their own (a Granary field, as on
-- remotes): a Pulp whose content app answers on another origin than its API, on a private or
-- loopback address, is listed here by who registers the upstream.
ALTER TABLE upstream_pulps ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
