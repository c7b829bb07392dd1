-- Pulp's replication: another Granary (or Pulp) whose distributions `replicate/` mirrors into
-- local remotes, repositories and distributions. Secrets (password, client_key) are sealed as
-- remotes' are.
CREATE TABLE upstream_pulps (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    base_url                TEXT NOT NULL,
    api_root                TEXT NOT NULL DEFAULT '/pulp/',
    domain                  TEXT,
    username                TEXT,
    password                TEXT,
    ca_cert                 TEXT,
    client_cert             TEXT,
    client_key              TEXT,
    tls_validation          BIGINT NOT NULL DEFAULT 1,
    download_concurrency    BIGINT,
    max_retries             BIGINT,
    total_timeout_ms        BIGINT,
    connect_timeout_ms      BIGINT,
    sock_connect_timeout_ms BIGINT,
    sock_read_timeout_ms    BIGINT,
    q_select                TEXT,
    -- 'all', 'labeled' or 'nodelete': which local objects a replication may delete.
    policy                  TEXT NOT NULL DEFAULT 'all',
    last_replication        TEXT,
    created                 TEXT NOT NULL,
    updated                 TEXT NOT NULL
);
