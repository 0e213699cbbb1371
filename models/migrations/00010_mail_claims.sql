-- +goose Up
-- A mail's delivery is claimed before it is sent: an attempt sending it
-- holds its Message-ID until claimed_until, so that another attempt
-- running at once (a worker stalled past its workflow task's timeout, its
-- attempt run again elsewhere) waits instead of sending it too. A table of
-- its own: workers of older versions read every sent_mails row as sent.
-- Claims are pruned with the delivery records.
CREATE TABLE mail_claims (
    message_id    VARCHAR(512) PRIMARY KEY,
    claim_owner   VARCHAR(64)  NOT NULL,
    claimed_until BIGINT       NOT NULL
);
CREATE INDEX mail_claims_claimed_until ON mail_claims (claimed_until);

-- +goose Down
DROP TABLE mail_claims;
