-- Tessera schema 5, PostgreSQL flavour. Keep in step with
-- ../sqlite/0005_client_registration.sql.

-- RFC 7592: a client registered over HTTP (POST /register) manages its
-- registration with a registration access token. Only its SHA-256 (hex)
-- is stored, like every other secret. NULL for clients registered by the
-- CLI or the admin API: RFC 7592 does not apply to them.
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
