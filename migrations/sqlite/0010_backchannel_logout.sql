-- Tessera schema 10, SQLite flavour. Keep in step with
-- ../postgres/0010_backchannel_logout.sql.

-- OpenID Connect Back-Channel Logout 1.0. A session row names its OIDC
-- session id (the `sid` claim), so that ending every session of a person
-- knows which `sid`s ended. NULL for rows written before this version and
-- for sessions nobody signed in to.
ALTER TABLE sessions ADD COLUMN sid TEXT;
-- The grants given in a session, found by its `sid` when it ends.
CREATE INDEX grants_sid ON grants (sid);

-- One logout notice owed to one client (§2.5): queued in the transaction
-- that ends the session, sent by the server's background worker. The
-- Logout Token is signed at each attempt from `sub` and `sid` (so its
-- `exp` is fresh); no token is stored. `next_attempt_at` is when a
-- pending delivery is due, and while a worker sends it, when the worker's
-- claim lapses (so a crashed worker's delivery is sent again). `attempts`
-- counts claims; `state` is pending, delivered or failed (attempts used up).
CREATE TABLE backchannel_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    sub             TEXT NOT NULL,
    sid             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    last_error      TEXT
);
CREATE INDEX backchannel_deliveries_due ON backchannel_deliveries (state, next_attempt_at);
