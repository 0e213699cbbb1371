-- +goose Up
-- A mail's delivery is claimed before it is sent: a row with sent_at 0 is
-- an attempt sending it until claimed_until, so that another attempt
-- running at once (a worker stalled past its workflow task's timeout, its
-- attempt run again elsewhere) waits instead of sending it too.
ALTER TABLE sent_mails ADD COLUMN claim_owner VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE sent_mails ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
DELETE FROM sent_mails WHERE sent_at = 0;
ALTER TABLE sent_mails DROP COLUMN claimed_until;
ALTER TABLE sent_mails DROP COLUMN claim_owner;
