-- +goose Up
-- The keys a key made, which its revocation revokes with it: found by
-- their maker at every step of a revocation, without a scan of the
-- tenant's keys under the revocation's locks.
CREATE INDEX api_keys_created_by ON api_keys (tenant, created_by);

-- +goose Down
DROP INDEX api_keys_created_by;
