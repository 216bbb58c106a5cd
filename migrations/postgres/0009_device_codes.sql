-- Tessera schema 9, PostgreSQL flavour. Keep in step with
-- ../sqlite/0009_device_codes.sql.

-- Device authorizations (RFC 8628): one row per /device_authorization
-- answer. Both codes are stored only as SHA-256. The row is pending until
-- the person approves (sub, auth_time, sid set) or denies (denied_at set)
-- on the /device page; the device's poll that gets the tokens sets
-- consumed_at (one conditional UPDATE: one winner). interval_secs grows
-- by 5 on every slow_down (RFC 8628 §3.5). Pruned once expired.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    sub              TEXT,
    auth_time        BIGINT,
    sid              TEXT,
    denied_at        BIGINT,
    consumed_at      BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
