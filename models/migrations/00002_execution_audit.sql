-- +goose Up
-- Who replayed or canceled which dispatch, and when, keyed by the
-- dispatch's workflow ID. Temporal keeps the runs; this keeps the people.
-- ref makes recording idempotent: a bulk replay whose activity is retried
-- records its replay of a dispatch once.
CREATE TABLE execution_audit (
    id             CHAR(24)     PRIMARY KEY,
    workflow_id    VARCHAR(256) NOT NULL,
    operation      VARCHAR(16)  NOT NULL,
    ref            VARCHAR(64)  NOT NULL,
    run_id         VARCHAR(64)  NOT NULL DEFAULT '',
    new_run_id     VARCHAR(64)  NOT NULL DEFAULT '',
    actor          VARCHAR(256) NOT NULL DEFAULT '',
    actions        TEXT,
    config         VARCHAR(16)  NOT NULL DEFAULT '',
    bulk_replay_id VARCHAR(64)  NOT NULL DEFAULT '',
    created_at     BIGINT       NOT NULL,
    UNIQUE (workflow_id, operation, ref)
);
CREATE INDEX execution_audit_workflow ON execution_audit (workflow_id, created_at);

-- +goose Down
DROP TABLE execution_audit;
