-- +goose Up
-- A dispatcher's ordering (dispatcher.Ordering) as JSON: {"Key":…,"OnFailure":…};
-- NULL when its events are dispatched at once.
ALTER TABLE dispatchers ADD COLUMN ordering TEXT;

-- +goose Down
ALTER TABLE dispatchers DROP COLUMN ordering;
