-- +goose Up
-- A dispatcher's filter, a CEL expression over the event (dispatcher.Filter),
-- NULL when it has none; and whether it is enabled: a paused dispatcher
-- (enabled false) records its events as skipped. Existing dispatchers stay
-- enabled. BOOLEAN with TRUE/FALSE runs on PostgreSQL and SQLite (3.23+).
ALTER TABLE dispatchers ADD COLUMN filter TEXT;
ALTER TABLE dispatchers ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;

-- +goose Down
ALTER TABLE dispatchers DROP COLUMN enabled;
ALTER TABLE dispatchers DROP COLUMN filter;
