-- Tessera schema 13, SQLite flavour. Keep in step with ../postgres/0013_pushed_authorization_requests.sql.

-- Pushed authorization requests (RFC 9126): the parameters a client posted
-- to /par, validated, waiting for the browser to arrive at /authorize with
-- the request_uri. Only the SHA-256 of the request_uri is stored. A row is
-- deleted when it is used (single use, RFC 9126 §4) and pruned once it
-- expires. `params` is a JSON array of [name, value] pairs.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    params           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX pushed_authorization_requests_expires ON pushed_authorization_requests (expires_at);
