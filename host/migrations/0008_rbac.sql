-- Pulp's role-based access control: roles (named sets of permissions), groups of users, the
-- roles users and groups hold (everywhere, or on one object), and the access policies that say
-- which permissions each action of each endpoint needs.
-- See migrations/README.md for the portable-SQL rules.

-- A role. Built-in roles (`locked` = 1) are written by the server from the resource types of
-- core and of every loaded plugin; users create the others.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    locked      BIGINT NOT NULL DEFAULT 0,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL,
    CONSTRAINT roles_name_key UNIQUE (name)
);

-- The permissions of a role, one row each (`file.view_filerepository`), so that "may this user
-- view this object" is one indexed join.
CREATE TABLE role_permissions (
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);
CREATE INDEX role_permissions_permission ON role_permissions (permission);

CREATE TABLE groups (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    CONSTRAINT groups_name_key UNIQUE (name)
);

-- Members of a group, by `users.id`.
CREATE TABLE group_users (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_users_user ON group_users (user_id);

-- A role held by a user or by a group (exactly one of `user_id`, `group_id`), on every object
-- (`object_id` NULL) or on one object: `object_id` is its uuid, unique across tables, and
-- `object_href` its href when the role was given, which the API shows as `content_object`.
CREATE TABLE role_assignments (
    id          TEXT PRIMARY KEY,
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    user_id     TEXT,
    group_id    TEXT REFERENCES groups (id) ON DELETE CASCADE,
    object_id   TEXT,
    object_href TEXT,
    created     TEXT NOT NULL
);
CREATE INDEX role_assignments_user ON role_assignments (user_id);
CREATE INDEX role_assignments_group ON role_assignments (group_id);
CREATE INDEX role_assignments_object ON role_assignments (object_id);

-- The access policy of one endpoint (`viewset_name`, Pulp's: `repositories/file/file`, `tasks`).
-- Written by the server from its defaults; a partial update sets `customized`, and `reset/`
-- restores the default. `statements`, `creation_hooks` and `queryset_scoping` are JSON.
CREATE TABLE access_policies (
    id               TEXT PRIMARY KEY,
    viewset_name     TEXT NOT NULL,
    statements       TEXT NOT NULL,
    creation_hooks   TEXT NOT NULL,
    queryset_scoping TEXT,
    customized       BIGINT NOT NULL DEFAULT 0,
    created          TEXT NOT NULL,
    updated          TEXT NOT NULL,
    CONSTRAINT access_policies_viewset_key UNIQUE (viewset_name)
);

-- Who dispatched a task (`users.id`): its owner, who may see and cancel it.
ALTER TABLE tasks ADD COLUMN user_id TEXT;
