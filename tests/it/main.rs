//! The one integration test binary: the real server on a random port,
//! driven over HTTP, on SQLite and (with TESSERA_TEST_POSTGRES_URL) on
//! PostgreSQL.

mod harness;

mod admin;
mod api_keys;
mod attacks;
mod backchannel;
mod browser;
mod cli;
mod client_credentials;
mod device;
mod discovery;
mod hardening;
mod introspection;
mod keys;
mod layers;
mod ops;
mod outage;
mod par;
mod private_key_jwt;
mod properties;
mod registration;
mod resources;
mod revocation;
mod secrets_in_logs;
mod store;
mod token_exchange;
mod users;
