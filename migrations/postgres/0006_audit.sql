-- Tessera schema 6, PostgreSQL flavour. Keep in step with ../sqlite/0006_audit.sql.

-- The audit log: who did what, to whom, from where. Identifiers only,
-- never a password, secret, code or token. `detail` is a JSON object of
-- facts particular to the kind (a grant type, a reason, a username tried).
-- Rows older than `audit.retention_days` are pruned by the server's upkeep.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    subject    TEXT,
    client_id  TEXT,
    address    TEXT,
    request_id TEXT,
    detail     TEXT NOT NULL DEFAULT '{}'
);
-- Lists are newest first by id; each filter has an index ending in id.
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_client ON audit_events (client_id, id);
