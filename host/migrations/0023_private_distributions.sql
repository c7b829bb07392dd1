-- pulp_container's `private` distributions, for every type: reads need a user who may view the
-- distribution's repository (an implicit RBAC guard), and the distribution is left out of
-- catalogues.
ALTER TABLE distributions ADD COLUMN private BIGINT NOT NULL DEFAULT 0;
