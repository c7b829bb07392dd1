-- Facts about the server that every process sharing the database must agree on. One row so far:
-- `db_encryption_key_fingerprint`, a digest of the key that seals stored secrets, so a process
-- started with another key refuses to start instead of failing to read them later.
-- See migrations/README.md for the portable-SQL rules.
CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
