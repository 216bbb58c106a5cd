-- Tessera schema 11, SQLite flavour. Keep in step with ../postgres/0011_resource_owner.sql.

-- The client that owns a resource (an API): it may exchange (RFC 8693)
-- access tokens whose `aud` names the resource for tokens to call other
-- APIs on the same person's behalf. NULL: no client owns it. Deleting the
-- client clears it (store/sql/clients.rs).
ALTER TABLE resources ADD COLUMN owner_client_id TEXT;
CREATE INDEX resources_owner_client ON resources (owner_client_id);
