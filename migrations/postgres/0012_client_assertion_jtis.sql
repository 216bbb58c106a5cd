-- Tessera schema 12, PostgreSQL flavour. Keep in step with
-- ../sqlite/0012_client_assertion_jtis.sql.

-- private_key_jwt client authentication (RFC 7523 §3, item 7): a client
-- assertion's jti is used once. Each accepted assertion leaves a row until
-- its exp; a second INSERT of the same (client_id, jti_hash) while the row
-- is alive is a replay, on every instance sharing the database. Only the
-- SHA-256 of the jti is stored (hex).
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
CREATE INDEX client_assertion_jtis_expires_at ON client_assertion_jtis (expires_at);
