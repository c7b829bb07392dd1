-- Pulp's `pulp_labels` on content units (`set_label/`, `unset_label/`, `pulp_label_select`),
-- and `pulp_last_updated`, which a label change moves (NULL: never changed since created).
ALTER TABLE content ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE content ADD COLUMN updated TEXT;
