-- Tessera schema 7, PostgreSQL flavour. Keep in step with ../sqlite/0007_resources.sql.

-- Registered resources (APIs, RFC 8707). `identifier` is the absolute URI
-- clients send as `resource` and tokens carry as `aud` (RFC 9068 §3),
-- compared exactly. `scopes` are space-separated. `secret_hash` is the
-- SHA-256 of the secret the resource server introspects with (RFC 7662
-- §2.1), hashed like a client secret; NULL when it has none.
CREATE TABLE resources (
    identifier            TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    scopes                TEXT NOT NULL DEFAULT '',
    access_token_ttl_secs BIGINT,
    signing_alg           TEXT,
    secret_hash           TEXT,
    created_at            BIGINT NOT NULL
);
-- Servers cache resources like clients, invalidated when this moves.
INSERT INTO change_counters (name, version) VALUES ('resources', 0);

-- The resources a person authorized with a grant (RFC 8707 §2.1),
-- space-separated; a token request after the code or with a refresh token
-- may ask for any subset of them (§2.2). Empty: no resource was named.
ALTER TABLE grants ADD COLUMN resources TEXT NOT NULL DEFAULT '';
