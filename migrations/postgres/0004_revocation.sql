-- Tessera schema 4, PostgreSQL flavour. Keep in step with
-- ../sqlite/0004_revocation.sql.

-- Changing a password ends the person's sessions (issue 7.7), so a session
-- row names whose it is: sessions.sub is the signed-in person's sub, NULL
-- for a session without a sign-in. Rows written before this version have
-- no owner, so a password change could not end them; they also hold the
-- raw session id inside their data. They are deleted: the people signed in
-- with them simply sign in again.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN sub TEXT;
CREATE INDEX sessions_sub ON sessions (sub);

-- Deleting a client revokes its grants (issue 7.6) without a full scan.
CREATE INDEX grants_client ON grants (client_id);
