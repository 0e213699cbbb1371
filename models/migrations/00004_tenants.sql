-- +goose Up
-- Tenants: every dispatcher, template and function belongs to one (''
-- is the implicit tenant of a deployment whose tokens carry no tenant
-- claim), and names are unique per tenant. SQLite cannot drop the
-- column-level UNIQUE of the names, so the tables are rebuilt, portably:
-- new tables, copy, drop the old ones (children first), rename.
CREATE TABLE dispatchers_t (
    id                 CHAR(24)     PRIMARY KEY,
    tenant             VARCHAR(64)  NOT NULL DEFAULT '',
    name               VARCHAR(256),
    description        TEXT         NOT NULL DEFAULT '',
    event_type         VARCHAR(256) NOT NULL,
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);
INSERT INTO dispatchers_t (id, name, description, event_type, creation_timestamp, update_timestamp)
    SELECT id, name, description, event_type, creation_timestamp, update_timestamp FROM dispatchers;

CREATE TABLE dispatcher_tags_t (
    dispatcher_id CHAR(24)     NOT NULL REFERENCES dispatchers_t (id) ON DELETE CASCADE,
    position      INTEGER      NOT NULL,
    tag           VARCHAR(256) NOT NULL,
    PRIMARY KEY (dispatcher_id, position)
);
INSERT INTO dispatcher_tags_t (dispatcher_id, position, tag) SELECT dispatcher_id, position, tag FROM dispatcher_tags;

CREATE TABLE actions_t (
    id                 CHAR(24)     PRIMARY KEY,
    dispatcher_id      CHAR(24)     NOT NULL REFERENCES dispatchers_t (id) ON DELETE CASCADE,
    position           INTEGER      NOT NULL,
    type               VARCHAR(8)   NOT NULL,
    name               VARCHAR(256),
    description        TEXT         NOT NULL DEFAULT '',
    recipients         TEXT,
    template_id        VARCHAR(256),
    function_name      VARCHAR(256),
    data               TEXT,
    tags               TEXT,
    start_timestamp    BIGINT,
    retry_policy       TEXT,
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL,
    UNIQUE (dispatcher_id, name)
);
INSERT INTO actions_t SELECT id, dispatcher_id, position, type, name, description, recipients, template_id, function_name,
    data, tags, start_timestamp, retry_policy, creation_timestamp, update_timestamp FROM actions;

CREATE TABLE templates_t (
    id                 CHAR(24)     PRIMARY KEY,
    tenant             VARCHAR(64)  NOT NULL DEFAULT '',
    name               VARCHAR(256) NOT NULL,
    subject            TEXT         NOT NULL,
    text_body          TEXT         NOT NULL DEFAULT '',
    html_body          TEXT         NOT NULL DEFAULT '',
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);
INSERT INTO templates_t (id, name, subject, text_body, html_body, creation_timestamp, update_timestamp)
    SELECT id, name, subject, text_body, html_body, creation_timestamp, update_timestamp FROM templates;

CREATE TABLE functions_t (
    id                 CHAR(24)     PRIMARY KEY,
    tenant             VARCHAR(64)  NOT NULL DEFAULT '',
    name               VARCHAR(256) NOT NULL,
    kind               VARCHAR(16)  NOT NULL,
    url                TEXT         NOT NULL DEFAULT '',
    timeout_ms         BIGINT       NOT NULL DEFAULT 0,
    secret             TEXT         NOT NULL DEFAULT '',
    headers            TEXT,
    task_queue         VARCHAR(256) NOT NULL DEFAULT '',
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);
INSERT INTO functions_t (id, name, kind, url, timeout_ms, secret, headers, task_queue, creation_timestamp, update_timestamp)
    SELECT id, name, kind, url, timeout_ms, secret, headers, task_queue, creation_timestamp, update_timestamp FROM functions;

DROP TABLE actions;
DROP TABLE dispatcher_tags;
DROP TABLE dispatchers;
DROP TABLE templates;
DROP TABLE functions;
ALTER TABLE dispatchers_t RENAME TO dispatchers;
ALTER TABLE dispatcher_tags_t RENAME TO dispatcher_tags;
ALTER TABLE actions_t RENAME TO actions;
ALTER TABLE templates_t RENAME TO templates;
ALTER TABLE functions_t RENAME TO functions;

CREATE UNIQUE INDEX dispatchers_tenant_name ON dispatchers (tenant, name);
CREATE INDEX dispatchers_event_type ON dispatchers (tenant, event_type);
CREATE INDEX dispatcher_tags_tag ON dispatcher_tags (tag);
CREATE INDEX actions_dispatcher ON actions (dispatcher_id, position);
CREATE INDEX actions_template ON actions (template_id);
CREATE INDEX actions_function ON actions (function_name);
CREATE UNIQUE INDEX templates_tenant_name ON templates (tenant, name);
CREATE UNIQUE INDEX functions_tenant_name ON functions (tenant, name);

-- +goose Down
-- Names go back to being unique across tenants: it fails while two
-- tenants share one.
CREATE UNIQUE INDEX dispatchers_name ON dispatchers (name);
CREATE UNIQUE INDEX templates_name ON templates (name);
CREATE UNIQUE INDEX functions_name ON functions (name);
DROP INDEX dispatchers_tenant_name;
DROP INDEX templates_tenant_name;
DROP INDEX functions_tenant_name;
