-- Tessera schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql.
-- Timestamps are Unix seconds (BIGINT) on both backends.

CREATE TABLE change_counters (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO change_counters (name, version) VALUES ('clients', 0), ('keys', 0);

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    metadata    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    private_key   BLOB NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    retired_at    BIGINT
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE users (
    sub           TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email         TEXT,
    name          TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- One row per authorization (a refresh-token family): revoking it revokes
-- every refresh and access token issued under it.
CREATE TABLE grants (
    grant_id   TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    sub        TEXT NOT NULL,
    scope      TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    sid        TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_sub_client ON grants (sub, client_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    rotated_at  BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE consents (
    sub        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sub, client_id)
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    data        BLOB NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);
