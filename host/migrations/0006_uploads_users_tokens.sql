-- Chunked uploads, users with Pulp's fields, API tokens, the digests Pulp records for an artifact
-- besides sha256, and the correlation id of the request that queued a task.
-- See migrations/README.md for the portable-SQL rules.

-- An upload in progress (`uploads/`). Its chunks are objects in the blob store under
-- `uploads/<upload id>/…` (so any process can receive a chunk and any worker assemble them);
-- `upload_chunks` records which byte ranges arrived.
CREATE TABLE uploads (
    id        TEXT PRIMARY KEY,
    size      BIGINT NOT NULL,
    owner     TEXT,
    completed TEXT,
    created   TEXT NOT NULL,
    updated   TEXT NOT NULL
);

CREATE TABLE upload_chunks (
    upload_id    TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    start_offset BIGINT NOT NULL,
    end_offset   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    object_key   TEXT NOT NULL,
    created      TEXT NOT NULL,
    PRIMARY KEY (upload_id, start_offset)
);

-- Users as Pulp shows them. `id` is filled in at start-up for rows that predate it (the admin).
ALTER TABLE users ADD COLUMN id TEXT;
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN is_staff BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN is_active BIGINT NOT NULL DEFAULT 1;
UPDATE users SET is_staff = 1 WHERE username = 'admin';
CREATE UNIQUE INDEX users_id ON users (id);

-- API tokens of a user (by `users.id`, which stays when the username changes; deleting a user
-- deletes its tokens). Only the sha256 of the secret is kept (the secret is random, so a plain digest
-- cannot be reversed and lets a request find its token by index).
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires    TEXT,
    created    TEXT NOT NULL,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Digests beyond sha256, recorded when the bytes came through the REST API (artifact create,
-- upload commit); NULL for artifacts stored by a sync.
ALTER TABLE artifacts ADD COLUMN md5 TEXT;
ALTER TABLE artifacts ADD COLUMN sha1 TEXT;
ALTER TABLE artifacts ADD COLUMN sha224 TEXT;
ALTER TABLE artifacts ADD COLUMN sha384 TEXT;
ALTER TABLE artifacts ADD COLUMN sha512 TEXT;

ALTER TABLE tasks ADD COLUMN logging_cid TEXT;
CREATE INDEX tasks_logging_cid ON tasks (logging_cid);
