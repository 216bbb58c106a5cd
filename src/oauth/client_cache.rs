//! Registered clients, read through an in-memory cache: the token
//! endpoint's hot path reads no database. Every instance invalidates it
//! when the `clients` change counter moves (`AppState::refresh_caches`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::Client;
use crate::store::{ClientStore, StoreError};

/// Client ids we issue are 32 hex characters; anything much longer is junk
/// that is neither looked up nor cached.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Unknown client ids are cached too (so junk ids cost no query); past
/// this many entries the cache starts over.
const CLIENT_CACHE_LIMIT: usize = 10_000;

/// `generation` moves on every invalidation, so a lookup that raced with
/// one does not put a stale client back.
#[derive(Default)]
struct Entries {
    generation: u64,
    clients: HashMap<String, Option<Arc<Client>>>,
}

pub struct ClientCache {
    store: Arc<dyn ClientStore>,
    entries: RwLock<Entries>,
}

impl ClientCache {
    pub fn new(store: Arc<dyn ClientStore>) -> Self {
        Self {
            store,
            entries: RwLock::new(Entries::default()),
        }
    }

    /// A client by id, from the cache when possible.
    pub async fn get(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
            return Ok(None);
        }
        let generation = match self.entries.read() {
            Ok(cache) => {
                if let Some(entry) = cache.clients.get(client_id) {
                    return Ok(entry.clone());
                }
                cache.generation
            }
            Err(_) => u64::MAX,
        };
        let client = self.store.client(client_id).await?.map(Arc::new);
        if let Ok(mut cache) = self.entries.write()
            && cache.generation == generation
        {
            if cache.clients.len() >= CLIENT_CACHE_LIMIT {
                cache.clients.clear();
            }
            cache.clients.insert(client_id.to_string(), client.clone());
        }
        Ok(client)
    }

    /// Forgets every cached client (a client changed somewhere).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.entries.write() {
            cache.generation += 1;
            cache.clients.clear();
        }
    }
}
