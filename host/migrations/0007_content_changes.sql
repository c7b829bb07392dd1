-- A counter of committed changes to the tables the content app resolves paths with, bumped by
-- triggers (SQLite only; see `db::ContentChanges`). PostgreSQL's triggers notify instead, and the
-- triggers of both engines are created at start-up because their syntax differs.
CREATE TABLE content_changes (
    id      BIGINT PRIMARY KEY,
    counter BIGINT NOT NULL
);
INSERT INTO content_changes (id, counter) VALUES (1, 0);
