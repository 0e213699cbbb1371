-- +goose Up
-- Keys every process of an installation shares, stored by the first
-- that needs one: page_tokens signs the page tokens the API hands out.
CREATE TABLE instance_keys (
    name     VARCHAR(64) PRIMARY KEY,
    material TEXT        NOT NULL
);

-- +goose Down
DROP TABLE instance_keys;
