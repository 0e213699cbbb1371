-- +goose Up
-- API keys for producers and automation. The key itself is never stored:
-- key_hash is its hex SHA-256, what a presented key is looked up by on
-- every request (hence UNIQUE, which is also its index). A revoked key
-- keeps its row, revoked_at set, so that it is refused as revoked rather
-- than unknown and its history stays readable. Times are epoch
-- milliseconds; expires_at, last_used_at and revoked_at are NULL for
-- never. permissions and event_types are JSON arrays of strings;
-- event_types NULL means any event type.
CREATE TABLE api_keys (
    id                 CHAR(24)     PRIMARY KEY,
    tenant             VARCHAR(64)  NOT NULL DEFAULT '',
    name               VARCHAR(256) NOT NULL,
    key_hash           CHAR(64)     NOT NULL UNIQUE,
    permissions        TEXT         NOT NULL,
    event_types        TEXT,
    expires_at         BIGINT,
    created_by         VARCHAR(256) NOT NULL DEFAULT '',
    creation_timestamp BIGINT       NOT NULL,
    last_used_at       BIGINT,
    revoked_at         BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, creation_timestamp);

-- +goose Down
DROP TABLE api_keys;
