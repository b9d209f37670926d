ALTER TABLE users DROP COLUMN vouched_at;
