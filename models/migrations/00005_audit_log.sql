-- +goose Up
-- The audit trail: every change of the configuration, every replay and
-- cancel, every API key, recorded in the transaction of the change (or,
-- for Temporal operations, before they are asked for). Rows are only ever
-- inserted. Each tenant's rows form a hash chain: hash is
-- sha256(prev_hash || the row's canonical encoding), prev_hash the hash
-- of the row before it (seq - 1), so `dispatcher audit verify` finds an
-- edited, deleted or reordered row. before_json and after_json are the
-- API's JSON of what changed, secrets redacted; '' when there is none.
CREATE TABLE audit_log (
    tenant      VARCHAR(64)  NOT NULL,
    seq         BIGINT       NOT NULL,
    id          CHAR(24)     NOT NULL UNIQUE,
    at          BIGINT       NOT NULL,
    actor       VARCHAR(256) NOT NULL,
    action      VARCHAR(64)  NOT NULL,
    target      VARCHAR(256) NOT NULL DEFAULT '',
    before_json TEXT         NOT NULL DEFAULT '',
    after_json  TEXT         NOT NULL DEFAULT '',
    client_addr VARCHAR(64)  NOT NULL DEFAULT '',
    request_id  VARCHAR(64)  NOT NULL DEFAULT '',
    prev_hash   CHAR(64)     NOT NULL,
    hash        CHAR(64)     NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_log_at ON audit_log (tenant, at);
CREATE INDEX audit_log_target ON audit_log (tenant, target);

-- The head of each tenant's chain: the seq and hash of its last row.
-- Every append updates it first, which serialises appends (a row lock on
-- PostgreSQL, the write lock on SQLite), so a chain never forks; and
-- `audit verify` compares it with the last row, so a deleted tail shows.
CREATE TABLE audit_chain (
    tenant VARCHAR(64) PRIMARY KEY,
    seq    BIGINT      NOT NULL,
    hash   CHAR(64)    NOT NULL
);

-- +goose Down
DROP TABLE audit_chain;
DROP TABLE audit_log;
