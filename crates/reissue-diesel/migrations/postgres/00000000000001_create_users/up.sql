-- Emails are stored normalised (trimmed, lower-cased) by the application, so a
-- plain unique constraint makes them unique case-insensitively.
-- Times are Unix seconds in BIGINT so both backends share one code path.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    roles         TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
