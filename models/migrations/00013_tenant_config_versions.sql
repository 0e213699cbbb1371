-- +goose Up
-- The configuration version of each tenant. A change moves its tenant's
-- version only: no tenant sees in its dispatches' versions when others
-- change theirs, its caches do not empty on their changes, and the writes
-- of different tenants do not take turns on one row. A tenant without a
-- row is at config_version's version, the one all shared until now, so
-- that no tenant's version goes back.
CREATE TABLE tenant_config_versions (
    tenant  VARCHAR(64) PRIMARY KEY,
    version BIGINT      NOT NULL
);

-- +goose Down
-- Back to one version for all, none lower than a tenant's was.
UPDATE config_version SET version = (SELECT MAX(version) FROM tenant_config_versions)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM tenant_config_versions);
DROP TABLE tenant_config_versions;
