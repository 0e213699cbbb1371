-- +goose Up
-- A value sealed with each encryption key by the first process that had
-- it: a process whose key of the same id is other material cannot open
-- it, and refuses to start, rather than write payloads and secrets no
-- other process reads.
CREATE TABLE encryption_key_checks (
    id     VARCHAR(32) PRIMARY KEY,
    sealed TEXT        NOT NULL
);

-- +goose Down
DROP TABLE encryption_key_checks;
