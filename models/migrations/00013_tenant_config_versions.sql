-- +goose Up
-- The configuration version of each tenant: the changes of its own,
-- counted here, plus config_version's, which all tenants shared until
-- now (and which only processes from before this migration still move,
-- during a rolling upgrade). A change moves its tenant's version only: no
-- tenant sees in its dispatches' versions when others change theirs, its
-- caches do not empty on their changes, and the writes of different
-- tenants do not take turns on one row.
CREATE TABLE tenant_config_versions (
    tenant  VARCHAR(64) PRIMARY KEY,
    version BIGINT      NOT NULL
);

-- +goose Down
-- Back to one version for all, none lower than a tenant's was.
UPDATE config_version SET version = version + (SELECT MAX(version) FROM tenant_config_versions)
    WHERE id = 1 AND EXISTS (SELECT 1 FROM tenant_config_versions);
DROP TABLE tenant_config_versions;
