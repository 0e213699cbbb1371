-- +goose Up
-- The type of an accepted event, so that its id sent again with another
-- type is refused rather than answered as a duplicate. '' in the records
-- of older versions: not compared.
ALTER TABLE accepted_events ADD COLUMN event_type VARCHAR(256) NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accepted_events DROP COLUMN event_type;
