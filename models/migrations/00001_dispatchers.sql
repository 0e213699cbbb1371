-- +goose Up
-- Portable SQL: the same migrations run on PostgreSQL and SQLite.
-- JSON values (data, recipients, tags of actions, retry policy) are kept as
-- text so a task action's data comes back byte for byte, key order included.
CREATE TABLE dispatchers (
    id                 CHAR(24)     PRIMARY KEY,
    name               VARCHAR(256) UNIQUE,
    description        TEXT         NOT NULL DEFAULT '',
    event_type         VARCHAR(256) NOT NULL,
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);
CREATE INDEX dispatchers_event_type ON dispatchers (event_type);

-- Tags live in their own table so eq(tags,X) is an indexed lookup on
-- either database.
CREATE TABLE dispatcher_tags (
    dispatcher_id CHAR(24)     NOT NULL REFERENCES dispatchers (id) ON DELETE CASCADE,
    position      INTEGER      NOT NULL,
    tag           VARCHAR(256) NOT NULL,
    PRIMARY KEY (dispatcher_id, position)
);
CREATE INDEX dispatcher_tags_tag ON dispatcher_tags (tag);

CREATE TABLE actions (
    id                 CHAR(24)     PRIMARY KEY,
    dispatcher_id      CHAR(24)     NOT NULL REFERENCES dispatchers (id) ON DELETE CASCADE,
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
CREATE INDEX actions_dispatcher ON actions (dispatcher_id, position);
CREATE INDEX actions_template ON actions (template_id);
CREATE INDEX actions_function ON actions (function_name);

CREATE TABLE templates (
    id                 CHAR(24)     PRIMARY KEY,
    name               VARCHAR(256) NOT NULL UNIQUE,
    subject            TEXT         NOT NULL,
    text_body          TEXT         NOT NULL DEFAULT '',
    html_body          TEXT         NOT NULL DEFAULT '',
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);

CREATE TABLE functions (
    id                 CHAR(24)     PRIMARY KEY,
    name               VARCHAR(256) NOT NULL UNIQUE,
    kind               VARCHAR(16)  NOT NULL,
    url                TEXT         NOT NULL DEFAULT '',
    timeout_ms         BIGINT       NOT NULL DEFAULT 0,
    secret             TEXT         NOT NULL DEFAULT '',
    headers            TEXT,
    task_queue         VARCHAR(256) NOT NULL DEFAULT '',
    creation_timestamp BIGINT       NOT NULL,
    update_timestamp   BIGINT       NOT NULL
);

-- One row, bumped in the same transaction as every configuration change,
-- so workers can cache configuration and notice changes with one lookup.
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY,
    version BIGINT  NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE config_version;
DROP TABLE functions;
DROP TABLE templates;
DROP TABLE actions;
DROP TABLE dispatcher_tags;
DROP TABLE dispatchers;
