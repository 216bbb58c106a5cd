-- Tessera schema 3, SQLite flavour. Keep in step with
-- ../postgres/0003_hashed_session_ids.sql.

-- From this version on, sessions.id holds the SHA-256 (hex) of the session
-- id, never the id itself, like every other secret: a copy of the database
-- lets nobody sign in. Rows written before it hold raw ids, which no longer
-- match any lookup, so the people signed in with them simply sign in
-- again. Deleting those rows now also keeps their raw ids off the disk.
DELETE FROM sessions;
