-- Pending authorization requests (login, consent), so any instance can
-- continue one; forms carry only the id.
CREATE TABLE interactions (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    request      TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    csrf_hash    TEXT NOT NULL,
    sub          TEXT,
    auth_time    BIGINT,
    amr          TEXT NOT NULL DEFAULT '',
    acr          TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX interactions_expires_at ON interactions (expires_at);
