DROP TABLE idempotency_keys;
ALTER TABLE tasks DROP COLUMN source_updated_at;
