-- When an artifact was last stored or stored again (an upload or a sync of bytes already
-- stored). Orphan cleanup spares artifacts seen within its protection time, not only those
-- created within it: a re-uploaded artifact keeps its old `created`, and would otherwise look
-- old between its upload and the content or version that is about to reference it.
-- NULL for rows written before this column; `created` stands for it then.
ALTER TABLE artifacts ADD COLUMN last_seen TEXT;
