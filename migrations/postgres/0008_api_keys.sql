-- Tessera schema 8, PostgreSQL flavour. Keep in step with
-- ../sqlite/0008_api_keys.sql.

-- API keys for server-to-server callers. Only the key's SHA-256 (hex) is
-- stored, and every lookup is by that hash (unique index). `start` is the
-- first few characters after the prefix, for recognising a key in a list;
-- it is far too short to guess the rest from.
--
-- Rate limits are fixed windows counted here, so that they hold across
-- every instance on one database: `window_start` and `window_count` are
-- updated by one atomic UPDATE per use, which locks only that key's row.
CREATE TABLE api_keys (
    id                     TEXT PRIMARY KEY,
    key_hash               TEXT NOT NULL UNIQUE,
    prefix                 TEXT NOT NULL,
    start                  TEXT NOT NULL,
    name                   TEXT NOT NULL,
    scopes                 TEXT NOT NULL,
    owner_kind             TEXT NOT NULL,
    owner                  TEXT NOT NULL,
    meta                   TEXT NOT NULL DEFAULT '{}',
    created_at             BIGINT NOT NULL,
    expires_at             BIGINT,
    revoked_at             BIGINT,
    rate_limit_count       BIGINT,
    rate_limit_window_secs BIGINT,
    window_start           BIGINT NOT NULL,
    window_count           BIGINT NOT NULL DEFAULT 0,
    use_count              BIGINT NOT NULL DEFAULT 0,
    last_used_at           BIGINT,
    -- The key this one replaced (`apikey rotate`).
    rotated_from           TEXT
);
CREATE INDEX api_keys_owner ON api_keys (owner_kind, owner);
-- A key is replaced at most once: two racing rotations cannot both leave
-- a live successor (NULLs, keys never rotated, do not collide).
CREATE UNIQUE INDEX api_keys_rotated_from ON api_keys (rotated_from);
