-- +goose Up
-- A function's flow control (dispatcher.Flow) as JSON:
-- {"rateLimit":{"perSecond":…,"burst":…},"maxConcurrency":…,
--  "circuitBreaker":{"failures":…,"windowMs":…,"probeIntervalMs":…},"pausedUntil":<epoch ms>};
-- NULL when it has none: its calls take the fast path.
ALTER TABLE functions ADD COLUMN flow TEXT;

-- +goose Down
ALTER TABLE functions DROP COLUMN flow;
