//! Shared server state: configuration, store, clock, the in-memory key set
//! and the client cache, and the background work that keeps them fresh.

use std::ops::Deref;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::auth::password::PasswordHasher;
use crate::auth::signin::SignIn;
use crate::auth::throttle::Throttle;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::Client;
use crate::endpoints::Endpoints;
use crate::error::AppError;
use crate::jose::rotation::{KeyChanges, RotationPolicy, Trigger};
use crate::jose::{KeySet, MasterKey, SigningAlg};
use crate::oauth::access_token::RevocationCheck;
use crate::oauth::authorize::AuthorizeContext;
use crate::oauth::client_auth::ClientAuthContext;
use crate::oauth::client_cache::ClientCache;
use crate::oauth::grants::GrantContext;
use crate::oauth::interaction::Interactions;
use crate::oauth::resource_cache::ResourceCache;
use crate::oauth::tokens::{RefreshSuccessors, Tokens};
use crate::oidc::backchannel::{self, Deliveries};
use crate::oidc::discovery;
use crate::outbound::OutboundClient;
use crate::service::audit::{Actor, AuditQueue};
use crate::store::{AuditStore, ChangeVersions, SharedStore, StoreError};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: SharedStore,
    pub clock: SharedClock,
    /// Every endpoint's URL, derived from the issuer once.
    pub endpoints: Endpoints,
    /// The discovery document, built once (it changes only with the config).
    pub discovery: serde_json::Value,
    pub clients: ClientCache,
    /// Registered resources (RFC 8707), cached like clients.
    pub resources: ResourceCache,
    /// The bounded queue sign-ins hash passwords through.
    pub hasher: PasswordHasher,
    /// Where audit events go: queued, written to the `audit_events` table
    /// in the background.
    pub audit: AuditQueue,
    /// Outbound HTTP (Back-Channel Logout deliveries).
    pub outbound: OutboundClient,
    /// Wakes the Back-Channel Logout worker when deliveries were queued.
    backchannel_queued: tokio::sync::Notify,
    master_key: MasterKey,
    refresh_successors: RefreshSuccessors,
    keys: RwLock<Arc<KeySet>>,
    /// Why the stored keys could not be loaded at the last attempt (while
    /// the last good key set keeps signing); `None` after a good load.
    unreadable_keys: Mutex<Option<String>>,
    versions: Mutex<ChangeVersions>,
}

/// How long `/readyz` waits for the database before calling it down.
const READINESS_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an instance should not get traffic (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("database unavailable")]
    Database,
    #[error("signing keys unreadable: {0}")]
    UnreadableKeys(String),
    #[error("no current {0} signing key")]
    NoSigningKey(SigningAlg),
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Makes sure signing keys exist (generating them on first start) and
    /// loads them.
    pub async fn new(
        config: Config,
        store: SharedStore,
        clock: SharedClock,
        master_key: MasterKey,
    ) -> Result<Self, AppError> {
        let versions = store.change_versions().await?;
        run_rotation(
            &store,
            &master_key,
            &config,
            clock.now(),
            Trigger::Scheduled,
        )
        .await?;
        let records = store.signing_keys().await?;
        let key_set = KeySet::load(&records, &master_key)?;
        let endpoints = Endpoints::for_issuer(&config.issuer);
        let discovery = discovery::metadata(
            &endpoints,
            config.scopes.keys().map(String::as_str),
            config.registration.enabled(),
            config.par.required,
        );
        let refresh_successors = RefreshSuccessors::from_master_key(&master_key)?;
        let audit_store: Arc<dyn AuditStore> = store.clone();
        let outbound = OutboundClient::new(backchannel::REQUEST_TIMEOUT)
            .map_err(|e| AppError::internal(e.to_string()))?;
        Ok(Self(Arc::new(Inner {
            audit: AuditQueue::start(audit_store),
            outbound,
            backchannel_queued: tokio::sync::Notify::new(),
            endpoints,
            discovery,
            clients: ClientCache::new(store.clone()),
            resources: ResourceCache::new(store.clone()),
            hasher: PasswordHasher::new(
                config.password_hash_concurrency(),
                config.login.password_hash_queue,
            ),
            config,
            store,
            clock,
            master_key,
            refresh_successors,
            keys: RwLock::new(Arc::new(key_set)),
            unreadable_keys: Mutex::new(None),
            versions: Mutex::new(versions),
        })))
        .inspect(Self::publish_key_metrics)
    }

    /// Whether this instance can serve: the database answers (within a
    /// short time) and the keys it signs with are loaded and current.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(READINESS_DB_TIMEOUT, self.store.change_versions()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database check failed");
                return Err(NotReady::Database);
            }
            Err(_) => {
                tracing::warn!("readiness: the database did not answer in time");
                return Err(NotReady::Database);
            }
        }
        if let Some(problem) = self.unreadable_keys() {
            return Err(NotReady::UnreadableKeys(problem));
        }
        let keys = self.keys();
        match SigningAlg::ALL
            .into_iter()
            .find(|alg| keys.current_kid(*alg).is_none())
        {
            Some(alg) => Err(NotReady::NoSigningKey(alg)),
            None => Ok(()),
        }
    }

    /// Why the last key load failed, if it did (the last good key set is
    /// still in use).
    pub fn unreadable_keys(&self) -> Option<String> {
        match self.unreadable_keys.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the key gauges from the key set in use: one per algorithm that
    /// has a current (signing) key, and whether stored keys are unreadable.
    /// Also called when the metrics recorder is installed after start-up.
    pub fn publish_key_metrics(&self) {
        let keys = self.keys();
        for alg in SigningAlg::ALL {
            let active = u8::from(keys.current_kid(alg).is_some());
            metrics::gauge!("tessera_signing_keys_active", "alg" => alg.as_str())
                .set(f64::from(active));
        }
        let unreadable = u8::from(self.unreadable_keys().is_some());
        metrics::gauge!("tessera_signing_keys_unreadable").set(f64::from(unreadable));
    }

    /// Sets the connection-pool gauges from the pool as it is now; the
    /// metrics listener calls it before every scrape.
    pub fn publish_pool_metrics(&self) {
        let pool = self.store.pool_use();
        metrics::gauge!("tessera_db_pool_connections", "state" => "in_use")
            .set(f64::from(pool.in_use()));
        metrics::gauge!("tessera_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
        metrics::gauge!("tessera_db_pool_max_connections").set(f64::from(pool.max));
    }

    /// Token signing and checking, for protocol code.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens {
            keys: self.keys(),
            clock: &*self.clock,
            issuer: &self.config.issuer,
            settings: &self.config.tokens,
            refresh_successors: &self.refresh_successors,
        }
    }

    /// What the token endpoint's grants work with.
    pub fn grant_context(&self) -> GrantContext<'_> {
        GrantContext {
            tokens: self.tokens(),
            grants: &*self.store,
            device_codes: &*self.store,
            users: &*self.store,
            api_keys: &*self.store,
            audit: &self.audit,
            resources: &self.resources,
            revoked: self.revocation_check(),
        }
    }

    pub fn authorize_context(&self) -> AuthorizeContext<'_> {
        AuthorizeContext {
            tokens: self.tokens(),
            clients: &self.clients,
            consents: &*self.store,
            grants: &*self.store,
            device_codes: &*self.store,
            users: &*self.store,
            resources: &self.resources,
            pushed: &*self.store,
            require_pushed_requests: self.config.par.required,
        }
    }

    /// What client authentication works with, for credentials sent to
    /// `endpoint` (the absolute URL of the endpoint being called, from
    /// `self.endpoints`).
    pub fn client_auth<'a>(&'a self, endpoint: &'a str) -> ClientAuthContext<'a> {
        ClientAuthContext {
            clients: &self.clients,
            clock: &*self.clock,
            issuer: &self.config.issuer,
            token_endpoint: &self.endpoints.token,
            endpoint,
            assertions: &*self.store,
        }
    }

    pub fn revocation_check(&self) -> RevocationCheck<'_> {
        RevocationCheck {
            revocations: &*self.store,
            grants: &*self.store,
            clients: &*self.store,
            api_keys: &*self.store,
        }
    }

    pub fn interactions(&self) -> Interactions<'_> {
        Interactions {
            store: &*self.store,
            clients: &self.clients,
            ttl_secs: self.config.login.interaction_ttl_secs,
        }
    }

    pub fn throttle(&self) -> Throttle<'_> {
        Throttle {
            store: &*self.store,
            clock: &*self.clock,
            config: &self.config.login,
        }
    }

    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            users: &*self.store,
            hasher: &self.hasher,
            throttle: self.throttle(),
        }
    }

    /// What the Back-Channel Logout worker works with.
    pub fn backchannel_deliveries(&self) -> Deliveries<'_> {
        Deliveries {
            tokens: self.tokens(),
            store: &*self.store,
            clients: &self.clients,
            outbound: &self.outbound,
            audit: &self.audit,
        }
    }

    /// Sends the Back-Channel Logout deliveries due now (one batch; the
    /// background worker calls it, and tests after moving the clock).
    /// Returns how many were claimed.
    pub async fn deliver_backchannel_logouts(&self) -> Result<usize, AppError> {
        self.backchannel_deliveries().run_once().await
    }

    /// Tells this instance's worker that deliveries were queued, so they go
    /// out now rather than at its next poll.
    pub fn wake_backchannel_worker(&self) {
        self.backchannel_queued.notify_one();
    }

    /// The Back-Channel Logout worker: sends due deliveries when woken and
    /// every `cache.refresh_interval_ms` (deliveries queued by another
    /// process, retries coming due), batch after batch while batches come
    /// back full.
    async fn run_backchannel_worker(&self) {
        let poll = Duration::from_millis(self.config.cache.refresh_interval_ms.max(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.backchannel_queued.notified() => {}
            }
            loop {
                match self.deliver_backchannel_logouts().await {
                    Ok(claimed) if claimed > 0 => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "back-channel logout deliveries failed");
                        break;
                    }
                }
            }
        }
    }

    /// The key set to sign and verify with right now.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A client by id, from the cache when possible.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.clients.get(client_id).await
    }

    /// Runs the rotation schedule (or a manual rotation) against the store
    /// and, if anything changed, starts using the new keys at once.
    pub async fn rotate_keys(&self, trigger: Trigger) -> Result<KeyChanges, AppError> {
        let now = self.clock.now();
        let changes =
            run_rotation(&self.store, &self.master_key, &self.config, now, trigger).await?;
        if !changes.is_empty() {
            let trigger = match trigger {
                Trigger::Scheduled => "scheduled",
                Trigger::Manual => "manual",
            };
            metrics::counter!("tessera_key_rotations_total", "trigger" => trigger).increment(1);
            self.reload_keys().await?;
        }
        Ok(changes)
    }

    /// Loads the stored keys and starts using them. Keys this instance
    /// cannot open (sealed under another key-encryption key, or damaged)
    /// are not an error of the caller: the last good key set keeps
    /// signing, the problem is logged once (not on every poll), and
    /// `/readyz` and the `tessera_signing_keys_unreadable` gauge report it
    /// until a load succeeds. A database failure is returned, so the
    /// caller retries.
    async fn reload_keys(&self) -> Result<(), AppError> {
        let records = self.store.signing_keys().await?;
        let loaded = KeySet::load(&records, &self.master_key);
        let problem = match loaded {
            Ok(key_set) => {
                if let Ok(mut keys) = self.keys.write() {
                    *keys = Arc::new(key_set);
                }
                None
            }
            Err(e) => Some(e.to_string()),
        };
        let previous = match self.unreadable_keys.lock() {
            Ok(mut guard) => std::mem::replace(&mut *guard, problem.clone()),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), problem.clone()),
        };
        match (&previous, &problem) {
            (_, Some(now)) if previous.as_ref() != Some(now) => tracing::error!(
                problem = %now,
                "stored signing keys cannot be loaded; still signing with the last good keys"
            ),
            (Some(_), None) => tracing::info!("signing keys load again"),
            _ => {}
        }
        self.publish_key_metrics();
        Ok(())
    }

    /// Polls the change counters: a client or key changed by another
    /// process (the CLI, another instance) is picked up here.
    pub async fn refresh_caches(&self) -> Result<(), AppError> {
        let latest = self.store.change_versions().await?;
        let previous = self.versions.lock().map(|v| *v).unwrap_or_default();
        if latest.clients != previous.clients {
            self.clients.invalidate();
        }
        if latest.resources != previous.resources {
            self.resources.invalidate();
        }
        if latest.keys != previous.keys {
            // On failure the versions stay old, so the next poll retries.
            self.reload_keys().await?;
        }
        if let Ok(mut versions) = self.versions.lock() {
            *versions = latest;
        }
        Ok(())
    }

    /// Background upkeep for a serving instance: cache refresh, the key
    /// rotation schedule, and pruning of expired revocations, sessions, grants,
    /// client assertion jtis, codes, device codes, refresh tokens and login
    /// counters, finished back-channel deliveries, and audit events older
    /// than `audit.retention_days`; and the Back-Channel Logout worker beside it.
    pub fn spawn_background_tasks(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            // Beside the upkeep, so that a slow delivery never delays a
            // cache refresh; aborted with it (the guard) on shutdown. A
            // delivery cut off then is sent again once its claim lapses.
            let _worker = {
                let state = state.clone();
                AbortOnDrop(tokio::spawn(
                    async move { state.run_backchannel_worker().await },
                ))
            };
            let refresh = Duration::from_millis(state.config.cache.refresh_interval_ms.max(100));
            let check = Duration::from_secs(state.config.keys.check_interval_secs.max(1));
            // `new` already ran the start-up rotation check and loaded
            // everything, so the first pass comes one period later.
            let start = tokio::time::Instant::now();
            let mut refresh_tick = tokio::time::interval_at(start + refresh, refresh);
            let mut check_tick = tokio::time::interval_at(start + check, check);
            refresh_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            check_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = refresh_tick.tick() => {
                        if let Err(e) = state.refresh_caches().await {
                            tracing::warn!(error = %e, "cache refresh failed");
                        }
                        if let Err(e) = state.store.flush_api_key_uses().await {
                            tracing::warn!(error = %e, "writing API key usage failed");
                        }
                    }
                    _ = check_tick.tick() => {
                        match state.rotate_keys(Trigger::Scheduled).await {
                            Ok(changes) => {
                                for warning in &changes.warnings {
                                    tracing::warn!("{warning}");
                                }
                                crate::service::keys::audit_rotation(
                                    &state.audit,
                                    &Actor::System,
                                    &changes,
                                    state.clock.now(),
                                )
                                .await;
                                if !changes.is_empty() {
                                    tracing::info!(
                                        created = changes.insert.len(),
                                        changed = changes.update.len(),
                                        deleted = changes.delete.len(),
                                        "signing keys rotated on schedule"
                                    );
                                }
                            }
                            // The unreadable keys that stop a rotation were
                            // reported once already (reload_keys).
                            Err(e) if state.unreadable_keys().is_some() => {
                                tracing::debug!(error = %e, "key rotation check failed");
                            }
                            Err(e) => tracing::warn!(error = %e, "key rotation check failed"),
                        }
                        let now = state.clock.now();
                        if let Err(e) = state.store.prune_revocations(now).await {
                            tracing::warn!(error = %e, "pruning revocations failed");
                        }
                        if let Err(e) = state.store.prune_sessions(now).await {
                            tracing::warn!(error = %e, "pruning sessions failed");
                        }
                        if let Err(e) = state
                            .store
                            .prune_backchannel_deliveries(now - backchannel::KEEP_FINISHED_SECS)
                            .await
                        {
                            tracing::warn!(error = %e, "pruning back-channel deliveries failed");
                        }
                        if let Err(e) = state.store.prune_interactions(now).await {
                            tracing::warn!(error = %e, "pruning interactions failed");
                        }
                        if let Err(e) = state.store.prune_pushed_requests(now).await {
                            tracing::warn!(error = %e, "pruning pushed requests failed");
                        }
                        if let Err(e) = state.store.prune_device_codes(now).await {
                            tracing::warn!(error = %e, "pruning device codes failed");
                        }
                        if let Err(e) = state.store.prune_client_assertions(now).await {
                            tracing::warn!(error = %e, "pruning client assertion jtis failed");
                        }
                        let keep = state.config.longest_token_lifetime();
                        if let Err(e) = state.store.prune_grants(now, keep).await {
                            tracing::warn!(error = %e, "pruning grants failed");
                        }
                        let window = state.config.login.failure_window_secs;
                        if let Err(e) = state.store.prune_login_failures(now, window).await {
                            tracing::warn!(error = %e, "pruning login counters failed");
                        }
                        let retention = state.config.audit.retention_days;
                        if let Err(e) =
                            crate::service::audit::prune(&*state.store, now, retention).await
                        {
                            tracing::warn!(error = %e, "pruning audit events failed");
                        }
                    }
                }
            }
        })
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `service::keys::rotate` with the configured policy: the server's
/// schedule and its start-up go through here, `tessera keys rotate` through
/// the service directly.
pub async fn run_rotation(
    store: &SharedStore,
    master_key: &MasterKey,
    config: &Config,
    now: crate::clock::UnixTime,
    trigger: Trigger,
) -> Result<KeyChanges, AppError> {
    let policy = rotation_policy(config);
    crate::service::keys::rotate(store.as_ref(), master_key, policy, now, trigger)
        .await
        .map_err(|e| match e {
            // A key-encryption key that cannot open the stored keys is a
            // key problem, not a storage one.
            StoreError::Key(e) => AppError::Key(e),
            e => AppError::Store(e),
        })
}

pub fn rotation_policy(config: &Config) -> RotationPolicy {
    RotationPolicy {
        rotation_interval: config.keys.rotation_interval_secs,
        jwks_max_age: config.keys.jwks_max_age_secs,
        longest_token_lifetime: config.longest_token_lifetime(),
    }
}

/// The key-encryption key from the config, or from `keys_dir` (generated
/// on first use).
pub fn load_master_key(config: &Config) -> Result<MasterKey, AppError> {
    Ok(match &config.master_key {
        Some(text) => MasterKey::from_base64(text)?,
        None => MasterKey::load_or_create(&config.keys_dir)?,
    })
}
