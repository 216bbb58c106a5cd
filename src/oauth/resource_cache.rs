//! Registered resources, read through an in-memory cache: a token request
//! naming a `resource` reads no database. Resources are few, so the cache
//! holds all of them, loaded at the first lookup after an invalidation;
//! every instance invalidates it when the `resources` change counter
//! moves (`AppState::refresh_caches`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::Resource;
use crate::store::{ResourceStore, StoreError};

type Snapshot = Arc<HashMap<String, Arc<Resource>>>;

/// `generation` moves on every invalidation, so a load that raced with one
/// does not put a stale snapshot back.
#[derive(Default)]
struct Entries {
    generation: u64,
    snapshot: Option<Snapshot>,
}

pub struct ResourceCache {
    store: Arc<dyn ResourceStore>,
    entries: RwLock<Entries>,
}

impl ResourceCache {
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self {
            store,
            entries: RwLock::new(Entries::default()),
        }
    }

    /// The resource `identifier`, from the cache when possible.
    pub async fn get(&self, identifier: &str) -> Result<Option<Arc<Resource>>, StoreError> {
        Ok(self.snapshot().await?.get(identifier).cloned())
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let generation = match self.entries.read() {
            Ok(cache) => {
                if let Some(snapshot) = &cache.snapshot {
                    return Ok(snapshot.clone());
                }
                cache.generation
            }
            Err(_) => u64::MAX,
        };
        let snapshot: Snapshot = Arc::new(
            self.store
                .resources()
                .await?
                .into_iter()
                .map(|r| (r.identifier.clone(), Arc::new(r)))
                .collect(),
        );
        if let Ok(mut cache) = self.entries.write()
            && cache.generation == generation
        {
            cache.snapshot = Some(snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Forgets every cached resource (a resource changed somewhere).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.entries.write() {
            cache.generation += 1;
            cache.snapshot = None;
        }
    }
}
