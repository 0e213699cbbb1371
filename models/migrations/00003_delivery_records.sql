-- +goose Up
-- Records that make effects Temporal alone could repeat happen once.

-- Mails the SMTP server accepted, by Message-ID: a retried mail activity
-- (after a worker died between the server's 250 and Temporal recording the
-- activity's result) finds its mail here and does not send it again.
-- Rows older than the deduplication window are pruned.
CREATE TABLE sent_mails (
    message_id VARCHAR(512) PRIMARY KEY,
    sent_at    BIGINT       NOT NULL
);
CREATE INDEX sent_mails_sent_at ON sent_mails (sent_at);

-- Events whose dispatch Temporal accepted, by deduplication key: the same
-- event sent again after Temporal's retention dropped the first run is
-- still a duplicate for as long as its row lives (DISPATCHER_DEDUP_WINDOW).
CREATE TABLE accepted_events (
    dedup_key   VARCHAR(512) PRIMARY KEY,
    workflow_id VARCHAR(256) NOT NULL,
    run_id      VARCHAR(64)  NOT NULL,
    accepted_at BIGINT       NOT NULL
);
CREATE INDEX accepted_events_accepted_at ON accepted_events (accepted_at);

-- A replay is recorded in the audit trail before it starts, as the claim
-- that makes it the one replay of its run (ref is derived from the run);
-- idempotency_key is the hash of the requester's Idempotency-Key, so a
-- request that comes again gets the same answer.
ALTER TABLE execution_audit ADD COLUMN idempotency_key VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX execution_audit_key ON execution_audit (workflow_id, idempotency_key);

-- +goose Down
DROP INDEX execution_audit_key;
ALTER TABLE execution_audit DROP COLUMN idempotency_key;
DROP TABLE accepted_events;
DROP TABLE sent_mails;
