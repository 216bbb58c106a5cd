//! Storage: small async traits, one implementation per backend
//! (`sqlite.rs`, `postgres.rs`). Both share their SQL through one macro per
//! aggregate in `sql/` (`clients_sql!`, `grants_sql!`, …); only locking and
//! connection set-up differ.

mod migrate;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::domain::{
    ApiKey, AuthorizationCode, BackchannelDelivery, Client, CodeRedemption, DeliveryOutcome,
    DeviceAuthorization, Grant, Interaction, KeyUse, LoginFailures, PushedRequest, RefreshRotation,
    RefreshToken, Resource, ScopeSet, User,
};
use crate::jose::KeyError;
use crate::jose::SigningKeyRecord;
use crate::jose::rotation::KeyChanges;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
    /// A value the schema cannot hold as given (a programming error).
    #[error("cannot store {0}")]
    Unstorable(String),
    #[error("cannot prepare the database file: {0}")]
    File(String),
    /// An already-applied migration file no longer matches what was applied.
    #[error(
        "migration {file} (version {version}) was changed after it was applied to this \
         database; restore the original file (a schema change is always a new migration)"
    )]
    MigrationChanged { version: i64, file: &'static str },
}

/// Versions of the data that servers cache; bumped in the same transaction
/// as every change, polled by each server to invalidate its caches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeVersions {
    pub clients: i64,
    pub keys: i64,
    pub resources: i64,
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes the client and, in the same transaction, revokes every
    /// grant it holds (and with them the refresh and access tokens issued
    /// under them) and every API key it owns. `false` when there was no
    /// such client.
    async fn delete_client(&self, client_id: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Stores a client registered over HTTP (RFC 7591) with the SHA-256 of
    /// its RFC 7592 registration access token.
    async fn insert_client_with_registration_token(
        &self,
        client: &Client,
        registration_token_hash: &str,
    ) -> Result<(), StoreError>;
    /// The stored hash of the client's registration access token; `None`
    /// when the client does not exist or was not registered over HTTP.
    async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>, StoreError>;
    /// Replaces the client's secret hash and metadata (RFC 7592 §2.2: a
    /// full replacement; its id, creation time and registration token
    /// stay). `false` when the client does not exist.
    async fn replace_client(&self, client: &Client) -> Result<bool, StoreError>;
    /// At most `limit` clients in `clients()` order (`created_at`, then
    /// `client_id`), those after `after` (a `(created_at, client_id)` key).
    async fn clients_page(
        &self,
        after: Option<(UnixTime, &str)>,
        limit: i64,
    ) -> Result<Vec<Client>, StoreError>;
}

/// Registered resources (APIs, RFC 8707). Writes bump the `resources`
/// change counter in the same transaction, so every instance's cache
/// notices.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// `StoreError::Conflict` when the identifier is taken.
    async fn insert_resource(&self, resource: &Resource) -> Result<(), StoreError>;
    async fn resource(&self, identifier: &str) -> Result<Option<Resource>, StoreError>;
    /// Every resource, by identifier.
    async fn resources(&self) -> Result<Vec<Resource>, StoreError>;
    /// At most `limit` resources in identifier order, those after `after`.
    async fn resources_page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Resource>, StoreError>;
    /// `false` when there was no such resource.
    async fn delete_resource(&self, identifier: &str) -> Result<bool, StoreError>;
}

/// The function that decides key changes from the stored keys; it runs
/// while the store holds the rotation lock.
pub type KeyPlanner<'a> =
    dyn Fn(&[SigningKeyRecord]) -> Result<KeyChanges, KeyError> + Send + Sync + 'a;

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Reads the keys and applies what `plan` decides in one transaction,
    /// under a lock that makes concurrent callers (other instances on the
    /// same database) take turns, so that each sees the other's result.
    async fn update_signing_keys(&self, plan: &KeyPlanner<'_>) -> Result<KeyChanges, StoreError>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Adds an access token's `jti` to the revocation list until it expires.
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Drops revocation entries of tokens that have expired anyway.
    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// The `jti`s of accepted client assertions (RFC 7523 §3, item 7), shared by
/// every instance on the database.
#[async_trait]
pub trait ClientAssertionStore: Send + Sync {
    /// Records the use of `client_id`'s assertion whose jti hashes to
    /// `jti_hash` (hex SHA-256), kept until `expires_at`. `false` when it
    /// was used already and has not expired by `now`: a replay.
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Forgets the jtis of assertions that have expired.
    async fn prune_client_assertions(&self, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    async fn change_versions(&self) -> Result<ChangeVersions, StoreError>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// `StoreError::Conflict` when the username is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user(&self, sub: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Deletes the user with their consents and sessions, and revokes
    /// their grants and API keys. For each session it ends, the deliveries
    /// owed are queued as by `BackchannelStore::end_sessions`.
    async fn delete_user(&self, sub: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Replaces the password hash and, in the same transaction, revokes
    /// every grant of `sub` (their refresh tokens and the access tokens
    /// issued under them) and deletes their sessions, except the one whose
    /// raw id is `keep_session` (the session the change was made from).
    /// For each session it ends, the deliveries owed are queued as by
    /// `BackchannelStore::end_sessions`.
    /// `false` when there is no such user (and nothing changes).
    async fn set_password(
        &self,
        sub: &str,
        hash: &str,
        now: UnixTime,
        keep_session: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// At most `limit` users in username order, those after `after_username`.
    async fn users_page(
        &self,
        after_username: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StoreError>;
    /// Sets `email` and `name`; `false` when no such user exists.
    async fn update_user_profile(
        &self,
        sub: &str,
        email: Option<&str>,
        name: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new grant and the authorization code issued for it.
    async fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError>;
    /// Consumes a code atomically: exactly one caller ever gets `Redeemed`.
    /// A code presented by another client is `Unknown` and stays unused.
    async fn consume_code(
        &self,
        code_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<CodeRedemption, StoreError>;
    /// The grant of a code of `client_id` that is neither used nor
    /// expired at `now`, without using it up: lets the token endpoint
    /// refuse a request that asks for more than the code's grant holds
    /// (RFC 8707 §2.2) before the code is consumed.
    async fn pending_code_grant(
        &self,
        code_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<Grant>, StoreError>;
    async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError>;
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<(), StoreError>;
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StoreError>;
    /// Atomically marks `old_hash` used and stores its successor `new`.
    /// `new` must be derived from the old token alone (the same for every
    /// caller): a token already used within `grace` seconds then answers
    /// `Rotated` when its successor is stored, without storing another, so
    /// racing refreshes all get the one successor; used earlier than that,
    /// the grant is revoked.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshToken,
        now: UnixTime,
        grace: i64,
    ) -> Result<RefreshRotation, StoreError>;
    /// Drops expired codes and refresh tokens, and grants (with their
    /// tokens) that ended more than `keep_after_end` seconds ago, when no
    /// access token issued under them can still be alive. Returns the
    /// number of grants dropped.
    async fn prune_grants(&self, now: UnixTime, keep_after_end: i64) -> Result<u64, StoreError>;
    /// At most `limit` of `sub`'s grants (revoked and expired ones too,
    /// until pruned), newest first (`created_at`, then `grant_id`,
    /// descending), those after `after` (a `(created_at, grant_id)` key).
    async fn grants_of_user(
        &self,
        sub: &str,
        after: Option<(UnixTime, &str)>,
        limit: i64,
    ) -> Result<Vec<Grant>, StoreError>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes `sub` has granted `client_id`.
    async fn consent(&self, sub: &str, client_id: &str) -> Result<Option<ScopeSet>, StoreError>;
    async fn save_consent(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Every consent `sub` has given, by `client_id`.
    async fn consents_of_user(&self, sub: &str) -> Result<Vec<Consent>, StoreError>;
    /// Withdraws `sub`'s consent to `client_id` (to every client when
    /// `None`) and, in the same transaction, revokes the grants `sub` gave
    /// those clients, so the tokens issued under them stop working too.
    /// Returns the number of consents deleted.
    async fn revoke_consents(
        &self,
        sub: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<u64, StoreError>;
}

/// Sign-in attempt counters for `auth::throttle`. Every write is one
/// statement, atomic on both backends, so parallel sign-ins cannot lose
/// each other's counts.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    async fn login_failures(&self, key: &str) -> Result<Option<LoginFailures>, StoreError>;
    /// Counts one attempt and returns the counter after it. A window that
    /// has passed (`window_start + window_secs <= now`) starts over at one;
    /// while `locked_until > now` nothing is counted (the caller refuses).
    async fn count_login_attempt(
        &self,
        key: &str,
        now: UnixTime,
        window_secs: i64,
    ) -> Result<LoginFailures, StoreError>;
    /// Locks `key` until `until` (a running lock is never shortened) and
    /// starts its count over (0 failures, window from `now`): the lock is
    /// the penalty. Returns the counter after it.
    async fn lock_login(
        &self,
        key: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<LoginFailures, StoreError>;
    /// Gives one counted attempt back (never below zero).
    async fn return_login_attempt(&self, key: &str) -> Result<(), StoreError>;
    /// Remembers `key` (a known account and address pair) until `until`;
    /// it reads back through `login_failures` with `locked_until = until`
    /// and no failures, and is pruned after it. Never shortened.
    async fn remember_login_until(
        &self,
        key: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<(), StoreError>;
    /// Forgets `key`'s count, unless a lock is running at `now`.
    async fn clear_login_failures(&self, key: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Drops counters whose window and lock have both passed.
    async fn prune_login_failures(
        &self,
        now: UnixTime,
        window_secs: i64,
    ) -> Result<u64, StoreError>;
}

/// Raw server-side session rows, for the tower-sessions adapter in
/// `http::session_store`.
/// Callers pass the raw session id; implementations store and look up only
/// its SHA-256 (`crypto::hash_secret`), so a copy of the database holds no
/// usable session id. `sub` is the signed-in person (`None` before any
/// sign-in), so that their sessions can be ended together; `sid` is the
/// OIDC session id of that sign-in, so that the end of a session is
/// announced to the clients that got tokens in it (Back-Channel Logout).
#[async_trait]
pub trait SessionRecordStore: Send + Sync {
    /// `false` when the id is taken.
    async fn create_session(
        &self,
        id: &str,
        sub: Option<&str>,
        sid: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> Result<bool, StoreError>;
    async fn save_session(
        &self,
        id: &str,
        sub: Option<&str>,
        sid: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> Result<(), StoreError>;
    async fn load_session(&self, id: &str, now: UnixTime) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
    /// Ends every session of `sub`, except the one whose raw id is `keep`;
    /// the number deleted.
    async fn delete_sessions_of(&self, sub: &str, keep: Option<&str>) -> Result<u64, StoreError>;
    async fn prune_sessions(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// Which login sessions end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndingSessions<'a> {
    /// The session whose raw id is `id`, where `sub` signed in with the
    /// OIDC session id `sid` (RP-initiated logout).
    One {
        id: &'a str,
        sub: &'a str,
        sid: &'a str,
    },
    /// Every session of `sub`.
    AllOf { sub: &'a str },
}

/// Whether a grant given in an ending session ends with it: the protocol's
/// rule, which the store applies.
pub type GrantEndsWithSession<'a> = dyn Fn(&Grant) -> bool + Send + Sync + 'a;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndedSessions {
    pub sessions: u64,
    /// Logout Tokens queued for clients.
    pub deliveries: u64,
}

/// Ending login sessions and the Logout Tokens owed for them (OpenID
/// Connect Back-Channel Logout 1.0), queued in the database so that every
/// instance's worker can send them and a restart loses none.
#[async_trait]
pub trait BackchannelStore: Send + Sync {
    /// In one transaction: deletes the sessions; revokes the live grants
    /// given in them (by `sid`) for which `ends_with_session` holds; and
    /// queues a delivery, due at `now`, for every client holding a grant
    /// given in one of them whose metadata has a `backchannel_logout_uri`.
    async fn end_sessions(
        &self,
        which: EndingSessions<'_>,
        ends_with_session: &GrantEndsWithSession<'_>,
        now: UnixTime,
    ) -> Result<EndedSessions, StoreError>;
    /// Claims at most `limit` pending deliveries due at `now` for one
    /// attempt each (counted now): each becomes due again only at
    /// `claimed_until`, so that no other worker takes it meanwhile, and a
    /// worker that dies leaves it to be retried then. With many instances
    /// on one database, each row goes to exactly one caller.
    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        claimed_until: UnixTime,
        limit: i64,
    ) -> Result<Vec<BackchannelDelivery>, StoreError>;
    /// Records the outcome of the attempt `delivery` was claimed for;
    /// `false` (and nothing changed) when that claim is no longer the
    /// latest (it lapsed and another worker claimed the row).
    async fn finish_backchannel_delivery(
        &self,
        delivery: &BackchannelDelivery,
        outcome: &DeliveryOutcome,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Drops deliveries that finished (delivered or failed) before `before`.
    async fn prune_backchannel_deliveries(&self, before: UnixTime) -> Result<u64, StoreError>;
}

/// Pending authorization requests (`domain::Interaction`), shared by every
/// instance on the database.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    async fn insert_interaction(&self, interaction: &Interaction) -> Result<(), StoreError>;
    /// `None` when unknown or expired at `now`.
    async fn interaction(&self, id: &str, now: UnixTime)
    -> Result<Option<Interaction>, StoreError>;
    /// Records who signed in; `false` when unknown or expired.
    async fn record_interaction_login(
        &self,
        id: &str,
        sub: &str,
        auth_time: UnixTime,
        amr: &[String],
        acr: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Ends it: a conditional DELETE, so of N racing callers exactly one gets `true`.
    async fn finish_interaction(&self, id: &str) -> Result<bool, StoreError>;
    /// Drops expired interactions.
    async fn prune_interactions(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// Pushed authorization requests (RFC 9126), by the SHA-256 of their
/// `request_uri`.
#[async_trait]
pub trait PushedRequestStore: Send + Sync {
    async fn insert_pushed_request(&self, request: &PushedRequest) -> Result<(), StoreError>;
    /// Removes and returns the request, when it exists, belongs to
    /// `client_id` and has not expired at `now`: one conditional DELETE, so
    /// of N racing callers at most one gets it.
    async fn take_pushed_request(
        &self,
        request_uri_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<PushedRequest>, StoreError>;
    /// Drops expired requests.
    async fn prune_pushed_requests(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// Device authorizations (RFC 8628, `domain::DeviceAuthorization`). Every
/// change is one conditional statement (redemption also inserts the grant
/// in the same transaction), so instances sharing the database agree.
#[async_trait]
pub trait DeviceCodeStore: Send + Sync {
    /// `StoreError::Conflict` when the user code is taken (the caller draws
    /// another one).
    async fn insert_device_code(&self, device: &DeviceAuthorization) -> Result<(), StoreError>;
    async fn device_code(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// The authorization with this user code if nobody answered it yet and
    /// it has not expired at `now`.
    async fn pending_device_code(
        &self,
        user_code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// Records a poll at `now`. A poll sooner than the interval after the
    /// previous one grows the interval by `slow_down_secs` (RFC 8628 §3.5).
    /// The interval afterwards; `None` for an unknown code.
    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        now: UnixTime,
        slow_down_secs: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Records that `sub` (signed in at `auth_time`, session `sid`)
    /// approved it; `false` when it was answered already or has expired
    /// (nothing changes then).
    async fn approve_device_code(
        &self,
        user_code_hash: &str,
        sub: &str,
        auth_time: UnixTime,
        sid: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Records that the person denied it; `false` as for approving.
    async fn deny_device_code(
        &self,
        user_code_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Uses up an approved, unexpired, unused code of `client_id` and, in
    /// the same transaction, stores the grant it becomes (`grant_id`, ending
    /// at `grant_expires_at`). Of racing callers exactly one gets the
    /// grant; the others (and any later one) get `None`.
    async fn redeem_device_code(
        &self,
        device_code_hash: &str,
        client_id: &str,
        grant_id: &str,
        grant_expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<Grant>, StoreError>;
    /// Drops expired device authorizations.
    async fn prune_device_codes(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// A remembered consent: the scopes `sub` has granted `client_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub sub: String,
    pub client_id: String,
    pub scope: ScopeSet,
    pub updated_at: UnixTime,
}

/// One stored audit event. The store keeps the fields as given; what they
/// mean (and that none is ever a secret) is `service::audit`'s business.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Assigned by the store on insert (ignored there); increases with
    /// every insert, so it orders the log and serves as a cursor.
    pub id: i64,
    pub at: UnixTime,
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object.
    pub detail: serde_json::Value,
}

/// Which audit events to read: every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The event's kind is one of these (any kind when `None`).
    pub kinds: Option<Vec<String>>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// `at >= since`.
    pub since: Option<UnixTime>,
    /// `at < until`.
    pub until: Option<UnixTime>,
    /// Only events older than this id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// API keys. Keys are found by the hash of the whole key, never by the key.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// `StoreError::Conflict` when the id or hash exists (never in practice:
    /// both are random).
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Up to `limit` keys in id order, after the key `after_id`.
    async fn api_keys_page(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks the key revoked at `now`; false when it does not exist or was
    /// already revoked.
    async fn revoke_api_key(&self, id: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// In one transaction: stores `replacement` and makes the old key
    /// `old_id` expire at `old_expires_at` (or earlier, if it already
    /// would). False, and nothing stored, when the old key is unknown,
    /// revoked, or already has a successor (a key is rotated once).
    async fn rotate_api_key(
        &self,
        old_id: &str,
        replacement: &ApiKey,
        old_expires_at: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Counts one use of the key at `now`.
    ///
    /// With a rate limit (`window_secs`): the usage counter, `last_used_at`
    /// and the window (restarted when `window_secs` has passed) in one
    /// atomic statement; `None`, and nothing counted, when the key does not
    /// exist or is revoked or expired at `now`.
    ///
    /// Without one: the use is buffered in memory and written with others
    /// in one batch (at the latest a second later, at the next use or
    /// upkeep), so that the hot path writes nothing; the caller's lookup
    /// was the check. Always `Some` with `window_count` 0.
    async fn record_api_key_use(
        &self,
        id: &str,
        now: UnixTime,
        window_secs: Option<i64>,
    ) -> Result<Option<KeyUse>, StoreError>;
    /// Writes the buffered uses of keys without a rate limit.
    async fn flush_api_key_uses(&self) -> Result<(), StoreError>;
}

/// Uses of keys without a rate limit, waiting to be written: per key id,
/// how many and the last one's time. `since` is when the oldest was
/// buffered (clock seconds).
#[derive(Debug, Default)]
pub struct PendingKeyUses {
    uses: std::sync::Mutex<PendingUses>,
}

#[derive(Debug, Default)]
struct PendingUses {
    by_key: std::collections::HashMap<String, (i64, UnixTime)>,
    since: Option<UnixTime>,
}

impl PendingKeyUses {
    /// How long uses may wait before a use writes them all.
    pub const MAX_AGE_SECS: i64 = 1;

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingUses> {
        // A panic while holding the lock leaves plain counters behind.
        self.uses.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers one use; true when the buffer is old enough to be written.
    pub fn add(&self, id: &str, now: UnixTime) -> bool {
        let mut pending = self.lock();
        let entry = pending.by_key.entry(id.to_string()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = entry.1.max(now);
        let since = *pending.since.get_or_insert(now);
        now - since >= Self::MAX_AGE_SECS
    }

    /// Everything buffered, leaving the buffer empty.
    pub fn take(&self) -> Vec<(String, i64, UnixTime)> {
        let mut pending = self.lock();
        pending.since = None;
        pending
            .by_key
            .drain()
            .map(|(id, (count, last))| (id, count, last))
            .collect()
    }

    /// Puts back uses a failed write did not store.
    pub fn restore(&self, uses: Vec<(String, i64, UnixTime)>) {
        let mut pending = self.lock();
        for (id, count, last) in uses {
            let entry = pending.by_key.entry(id).or_insert((0, last));
            entry.0 += count;
            entry.1 = entry.1.max(last);
            pending.since.get_or_insert(last);
        }
    }
}

/// A snapshot of the connection pool, for the pool-use metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open now, idle or lent out.
    pub open: u32,
    /// Open connections nobody is using.
    pub idle: u32,
    /// The most the pool will open.
    pub max: u32,
}

impl PoolUse {
    /// Connections lent out to a query or transaction right now.
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

/// How much of its connection pool a backend is using.
pub trait PoolMonitor: Send + Sync {
    fn pool_use(&self) -> PoolUse;
}

/// The audit log. Events are listed newest first (by id).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores `records` in one transaction (their `id`s are ignored).
    async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Drops events older than `before`.
    async fn prune_audit_records(&self, before: UnixTime) -> Result<u64, StoreError>;
}

pub trait Store:
    ClientStore
    + ResourceStore
    + KeyStore
    + RevocationStore
    + ClientAssertionStore
    + ChangeStore
    + UserStore
    + GrantStore
    + ConsentStore
    + LoginThrottleStore
    + SessionRecordStore
    + InteractionStore
    + PushedRequestStore
    + DeviceCodeStore
    + AuditStore
    + ApiKeyStore
    + BackchannelStore
    + PoolMonitor
{
}
impl<T> Store for T where
    T: ClientStore
        + ResourceStore
        + KeyStore
        + RevocationStore
        + ClientAssertionStore
        + ChangeStore
        + UserStore
        + GrantStore
        + ConsentStore
        + LoginThrottleStore
        + SessionRecordStore
        + InteractionStore
        + PushedRequestStore
        + DeviceCodeStore
        + AuditStore
        + ApiKeyStore
        + BackchannelStore
        + PoolMonitor
{
}

pub type SharedStore = Arc<dyn Store>;

/// Opens (creating if needed) and migrates the database at `url`.
pub async fn connect(url: &str) -> Result<SharedStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::PendingKeyUses;

    #[test]
    fn pending_key_uses_add_up_and_come_due_after_a_second() {
        let pending = PendingKeyUses::default();
        assert!(!pending.add("a", 100));
        assert!(!pending.add("a", 100));
        assert!(!pending.add("b", 100));
        assert!(pending.add("a", 101), "the oldest use is a second old");
        let mut taken = pending.take();
        taken.sort();
        assert_eq!(
            taken,
            vec![("a".to_string(), 3, 101), ("b".to_string(), 1, 100)]
        );
        assert!(pending.take().is_empty());
        // A failed write puts them back, added to what came meanwhile.
        assert!(!pending.add("a", 105));
        pending.restore(taken);
        let mut again = pending.take();
        again.sort();
        assert_eq!(
            again,
            vec![("a".to_string(), 4, 105), ("b".to_string(), 1, 100)]
        );
    }
}
