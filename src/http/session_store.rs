//! tower-sessions `SessionStore` over our own tables, so sessions live in
//! the same SQLite or PostgreSQL database as everything else and every
//! instance behind a load balancer sees them.
//!
//! A row's data is the record without its id: the id is the row's key,
//! stored only hashed, and a copy of the id inside the data would undo
//! that. The row also names the signed-in person (`sub`), so that a
//! password change can end their sessions (issue 7.7).

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use crate::clock::SharedClock;
use crate::store::{SharedStore, StoreError};

#[derive(Clone)]
pub struct TesseraSessionStore {
    store: SharedStore,
    clock: SharedClock,
}

impl std::fmt::Debug for TesseraSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TesseraSessionStore")
    }
}

impl TesseraSessionStore {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self { store, clock }
    }
}

/// What a row's `data` holds: a `Record` without its id.
#[derive(Serialize)]
struct StoredRecord<'a> {
    data: &'a HashMap<String, serde_json::Value>,
    expiry_date: OffsetDateTime,
}

/// Reads rows with and without an `id` field (the field is ignored).
#[derive(Deserialize)]
struct LoadedRecord {
    data: HashMap<String, serde_json::Value>,
    expiry_date: OffsetDateTime,
}

fn encode(record: &Record) -> Result<Vec<u8>> {
    serde_json::to_vec(&StoredRecord {
        data: &record.data,
        expiry_date: record.expiry_date,
    })
    .map_err(|e| Error::Encode(e.to_string()))
}

fn decode(id: Id, bytes: &[u8]) -> Result<Record> {
    let loaded: LoadedRecord =
        serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    Ok(Record {
        id,
        data: loaded.data,
        expiry_date: loaded.expiry_date,
    })
}

/// Who is signed in to the session: the `sub` of its login
/// (`http::session`), `None` before a sign-in.
fn signed_in_sub(record: &Record) -> Option<&str> {
    record.data.get(super::session::KEY)?.get("sub")?.as_str()
}

/// The OIDC session id (`sid`) of that sign-in.
fn signed_in_sid(record: &Record) -> Option<&str> {
    record.data.get(super::session::KEY)?.get("sid")?.as_str()
}

fn backend(e: StoreError) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl tower_sessions::SessionStore for TesseraSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A colliding id (2^-128) gets a fresh one rather than overwriting.
        loop {
            let data = encode(record)?;
            let expires = record.expiry_date.unix_timestamp();
            if self
                .store
                .create_session(
                    &record.id.to_string(),
                    signed_in_sub(record),
                    signed_in_sid(record),
                    &data,
                    expires,
                )
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = encode(record)?;
        self.store
            .save_session(
                &record.id.to_string(),
                signed_in_sub(record),
                signed_in_sid(record),
                &data,
                record.expiry_date.unix_timestamp(),
            )
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let data = self
            .store
            .load_session(&id.to_string(), self.clock.now())
            .await
            .map_err(backend)?;
        if data.is_none() {
            // An expired or foreign cookie is routine (a browser that was
            // away): not worth more than debug. tower-sessions' own warning
            // for it is filtered out in the default log filter (main.rs).
            tracing::debug!("session cookie names no live session");
        }
        data.map(|d| decode(*id, &d)).transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.store
            .delete_session(&id.to_string())
            .await
            .map_err(backend)
    }
}
