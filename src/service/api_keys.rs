//! API keys (issue 12): creation, listing, revocation, rotation, and the
//! verification resource servers ask for. The CLI and the HTTP layer call
//! these; nothing here knows HTTP.
//!
//! A key is `PREFIX_` followed by 256 random bits in base64url (43
//! characters). Only its SHA-256 is stored and every lookup is by that
//! hash through a unique index: the database never compares the key
//! itself, and the hash's leading bytes, which an index walk could leak
//! through timing, tell an attacker nothing about any other key.

use serde_json::{Map, Value, json};

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use super::page::{CursorList, Page, PageRequest};
use crate::clock::{Clock, UnixTime};
use crate::crypto;
use crate::domain::{ApiKey, ApiKeyOwner, RateLimit, ScopeSet};
use crate::oauth::client::ADMIN_SCOPE;
use crate::store::{ApiKeyStore, ClientStore, StoreError, UserStore};

/// The prefix of keys created without `--prefix`.
pub const DEFAULT_PREFIX: &str = "tsr";
/// How many characters after the prefix `start` shows.
const START_LEN: usize = 6;
/// A `meta` object larger than this (as JSON) is refused: it is returned
/// on every verification.
const MAX_META_BYTES: usize = 4096;
/// Longest accepted name.
const MAX_NAME_CHARS: usize = 200;
/// A presented key longer than this cannot be one of ours (16 + 1 + 43).
pub const MAX_KEY_LEN: usize = 128;

/// Whether `text` has the shape of a key we issue: a prefix of 1 to 16
/// lowercase letters or digits, `_`, and 43 base64url characters.
pub fn looks_like_a_key(text: &str) -> bool {
    let Some((prefix, secret)) = text.split_once('_') else {
        return false;
    };
    check_prefix(prefix).is_ok()
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What `apikey create` and the admin API ask for.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    pub name: String,
    /// Space-separated scopes.
    pub scope: String,
    /// A client id or a username.
    pub owner: Option<String>,
    pub prefix: Option<String>,
    pub expires_in_secs: Option<i64>,
    /// `COUNT/SECS`, for example `100/60`.
    pub rate_limit: Option<String>,
    /// A JSON object.
    pub meta: Option<String>,
}

/// A key just made: the only moment the key itself exists.
pub struct CreatedApiKey {
    pub key: String,
    pub record: ApiKey,
}

impl CreatedApiKey {
    /// The record's view plus the key, shown once.
    pub fn to_json(&self) -> Value {
        let mut view = view(&self.record);
        view["key"] = self.key.clone().into();
        view
    }
}

/// How a key is shown: everything but its hash.
pub fn view(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "prefix": key.prefix,
        "start": key.start,
        "name": key.name,
        "scopes": key.scopes.iter().collect::<Vec<_>>(),
        "owner": owner_json(&key.owner),
        "meta": key.meta,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "rate_limit": key.rate_limit.map(|l| json!({ "count": l.count, "window_secs": l.window_secs })),
        "created_at": key.created_at,
        "use_count": key.use_count,
        "last_used_at": key.last_used_at,
        "rotated_from": key.rotated_from,
    })
}

fn owner_json(owner: &ApiKeyOwner) -> Value {
    match owner {
        ApiKeyOwner::Unowned => Value::Null,
        other => json!({ "type": other.kind(), "id": other.id() }),
    }
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(message.into())
}

fn no_key_with_id(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no API key with id {id:?}"))
}

/// 1 to 16 lowercase ASCII letters or digits.
fn check_prefix(prefix: &str) -> Result<(), ServiceError> {
    let valid = (1..=16).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "prefix {prefix:?}: use 1 to 16 lowercase letters or digits"
        )))
    }
}

/// The longest rate-limit window: a year. Longer windows are no limit a
/// caller would notice, and the window arithmetic stays far from overflow.
pub const MAX_WINDOW_SECS: i64 = 366 * 86_400;

/// `COUNT/SECS` with both positive and the window at most a year.
pub fn parse_rate_limit(text: &str) -> Result<RateLimit, ServiceError> {
    let parsed = text
        .split_once('/')
        .and_then(|(count, secs)| Some((count.parse::<i64>().ok()?, secs.parse::<i64>().ok()?)));
    match parsed {
        Some((count, window_secs)) if count > 0 && (1..=MAX_WINDOW_SECS).contains(&window_secs) => {
            Ok(RateLimit { count, window_secs })
        }
        _ => Err(invalid(format!(
            "rate limit {text:?}: use COUNT/SECS with both positive and SECS at most \
             {MAX_WINDOW_SECS} (a year), such as 100/60"
        ))),
    }
}

fn parse_meta(text: Option<&str>) -> Result<Map<String, Value>, ServiceError> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    if text.len() > MAX_META_BYTES {
        return Err(invalid(format!(
            "meta is {} bytes; at most {MAX_META_BYTES} are kept",
            text.len()
        )));
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("meta must be a JSON object")),
    }
}

/// A client id, else a username; `NotFound` naming the value otherwise.
async fn resolve_owner(
    clients: &dyn ClientStore,
    users: &dyn UserStore,
    owner: Option<&str>,
    scopes: &ScopeSet,
) -> Result<ApiKeyOwner, ServiceError> {
    let Some(owner) = owner else {
        return Ok(ApiKeyOwner::Unowned);
    };
    if let Some(client) = clients.client(owner).await? {
        // A client's key carries nothing its client could not request.
        if let Some(extra) = scopes.missing_from(&client.scopes()).next() {
            return Err(invalid(format!(
                "scope {extra:?} is not registered for the owning client"
            )));
        }
        return Ok(ApiKeyOwner::Client(client.client_id));
    }
    if let Some(user) = users.user_by_username(owner).await? {
        return Ok(ApiKeyOwner::User(user.sub));
    }
    Err(ServiceError::NotFound(format!(
        "owner {owner:?} is neither a client id nor a username"
    )))
}

/// A fresh key with `prefix`: its text and the parts the record keeps.
fn mint(prefix: &str) -> (String, String, String) {
    let secret = crypto::random_token();
    let start: String = secret.chars().take(START_LEN).collect();
    let key = format!("{prefix}_{secret}");
    let hash = crypto::hash_secret(&key);
    (key, hash, start)
}

/// Checks `new` (a breach is `Invalid`, naming the field), then stores the
/// key and returns it with the key text, which is never seen again.
pub async fn create(
    keys: &dyn ApiKeyStore,
    clients: &dyn ClientStore,
    users: &dyn UserStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    new: NewApiKey,
) -> Result<CreatedApiKey, ServiceError> {
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "name: give 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let scopes = ScopeSet::parse(&new.scope).map_err(|e| invalid(format!("scope: {e}")))?;
    // The admin API is reached with a client's credentials only: a key
    // (held by scripts, shown in curl commands) never carries it.
    if scopes.contains(ADMIN_SCOPE) {
        return Err(invalid(format!(
            "scope {ADMIN_SCOPE:?} cannot be given to an API key"
        )));
    }
    let prefix = new.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
    check_prefix(&prefix)?;
    if let Some(secs) = new.expires_in_secs
        && secs <= 0
    {
        return Err(invalid("expires-in: give a positive number of seconds"));
    }
    let rate_limit = new
        .rate_limit
        .as_deref()
        .map(parse_rate_limit)
        .transpose()?;
    let meta = parse_meta(new.meta.as_deref())?;
    let owner = resolve_owner(clients, users, new.owner.as_deref(), &scopes).await?;
    let now = clock.now();
    let (key, key_hash, start) = mint(&prefix);
    let record = ApiKey {
        id: format!("key_{}", crypto::random_hex::<12>()),
        key_hash,
        prefix,
        start,
        name,
        scopes,
        owner,
        meta,
        created_at: now,
        expires_at: new.expires_in_secs.map(|secs| now.saturating_add(secs)),
        revoked_at: None,
        rate_limit,
        use_count: 0,
        last_used_at: None,
        rotated_from: None,
    };
    keys.insert_api_key(&record).await?;
    audit
        .record(key_event(AuditKind::ApiKeyCreated, actor, &record, now))
        .await;
    Ok(CreatedApiKey { key, record })
}

fn key_event(kind: AuditKind, actor: &Actor, key: &ApiKey, at: UnixTime) -> AuditEvent {
    let mut event = AuditEvent::new(kind, actor, at).with_detail("api_key_id", key.id.as_str());
    match &key.owner {
        ApiKeyOwner::Client(client_id) => event = event.with_client(client_id),
        ApiKeyOwner::User(sub) => event = event.with_subject(sub),
        ApiKeyOwner::Unowned => {}
    }
    event
}

pub async fn list(keys: &dyn ApiKeyStore) -> Result<Vec<ApiKey>, ServiceError> {
    Ok(keys.api_keys().await?)
}

/// A page of keys in id order.
pub async fn page(
    keys: &dyn ApiKeyStore,
    request: &PageRequest,
) -> Result<Page<ApiKey>, ServiceError> {
    let after = request.after(CursorList::ApiKeys)?;
    let fetched = keys
        .api_keys_page(after.as_deref(), request.fetch())
        .await?;
    Ok(Page::from_fetched(
        fetched,
        request,
        CursorList::ApiKeys,
        |k| k.id.clone(),
    ))
}

pub async fn show(keys: &dyn ApiKeyStore, id: &str) -> Result<ApiKey, ServiceError> {
    keys.api_key(id).await?.ok_or_else(|| no_key_with_id(id))
}

/// Revokes the key at once: every instance asks the database on each use.
pub async fn revoke(
    keys: &dyn ApiKeyStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    id: &str,
) -> Result<ApiKey, ServiceError> {
    let now = clock.now();
    let key = show(keys, id).await?;
    if key.revoked_at.is_some() {
        return Err(ServiceError::Conflict(format!(
            "API key {id:?} is already revoked"
        )));
    }
    if !keys.revoke_api_key(id, now).await? {
        // Revoked by someone else in between.
        return Err(ServiceError::Conflict(format!(
            "API key {id:?} is already revoked"
        )));
    }
    audit
        .record(key_event(AuditKind::ApiKeyRevoked, actor, &key, now))
        .await;
    show(keys, id).await
}

/// A new key with the old one's settings (and lifetime length); the old
/// key keeps working for `overlap_secs`, then expires.
pub async fn rotate(
    keys: &dyn ApiKeyStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    id: &str,
    overlap_secs: i64,
) -> Result<CreatedApiKey, ServiceError> {
    if overlap_secs < 0 {
        return Err(invalid("overlap-secs: give zero or more seconds"));
    }
    let now = clock.now();
    let old = show(keys, id).await?;
    if old.revoked_at.is_some() || old.is_expired(now) {
        return Err(invalid(format!(
            "API key {id:?} is revoked or expired; create a new one"
        )));
    }
    let (key, key_hash, start) = mint(&old.prefix);
    let record = ApiKey {
        id: format!("key_{}", crypto::random_hex::<12>()),
        key_hash,
        start,
        created_at: now,
        expires_at: old
            .expires_at
            .map(|at| now.saturating_add(at - old.created_at)),
        revoked_at: None,
        use_count: 0,
        last_used_at: None,
        rotated_from: Some(old.id.clone()),
        ..old.clone()
    };
    if !keys
        .rotate_api_key(id, &record, now.saturating_add(overlap_secs))
        .await?
    {
        return Err(ServiceError::Conflict(format!(
            "API key {id:?} was already rotated or was revoked; rotate its successor"
        )));
    }
    audit
        .record(
            key_event(AuditKind::ApiKeyRotated, actor, &old, now)
                .with_detail("replacement", record.id.as_str())
                .with_detail("overlap_secs", overlap_secs),
        )
        .await;
    Ok(CreatedApiKey { key, record })
}

/// The answer to a verification (`POST /apikeys/verify`), by its `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyCode {
    Valid,
    NotFound,
    Expired,
    Revoked,
    RateLimited,
    InsufficientScope,
}

impl VerifyCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NotFound => "NOT_FOUND",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
            Self::RateLimited => "RATE_LIMITED",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
        }
    }
}

/// What a verification found.
#[derive(Debug)]
pub struct Verification {
    pub code: VerifyCode,
    /// The key, when it exists (whatever the code).
    pub key: Option<ApiKey>,
    /// Uses left in the current rate-limit window; `None` without a limit
    /// or when the use was not counted.
    pub remaining: Option<i64>,
}

impl Verification {
    /// The body of `POST /apikeys/verify`: the fields after `code` only
    /// when the key exists.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "valid": self.code == VerifyCode::Valid,
            "code": self.code.as_str(),
        });
        if let Some(key) = &self.key {
            body["id"] = key.id.clone().into();
            body["name"] = key.name.clone().into();
            body["owner"] = owner_json(&key.owner);
            body["scopes"] = key.scopes.iter().collect::<Vec<_>>().into();
            body["meta"] = Value::Object(key.meta.clone());
            body["expires_at"] = key.expires_at.into();
            body["remaining"] = self.remaining.into();
        }
        body
    }
}

/// The stored key a presented one names, if it is still usable (known,
/// neither revoked nor expired); otherwise why not. Reads only: nothing
/// is counted, so a caller can check the rest of its request first.
pub async fn lookup(
    keys: &dyn ApiKeyStore,
    now: UnixTime,
    presented: &str,
) -> Result<Result<ApiKey, (VerifyCode, Option<ApiKey>)>, StoreError> {
    if presented.len() > MAX_KEY_LEN {
        return Ok(Err((VerifyCode::NotFound, None)));
    }
    let Some(key) = keys
        .api_key_by_hash(&crypto::hash_secret(presented))
        .await?
    else {
        return Ok(Err((VerifyCode::NotFound, None)));
    };
    Ok(match unusable(&key, now) {
        Some(code) => Err((code, Some(key))),
        None => Ok(key),
    })
}

fn unusable(key: &ApiKey, now: UnixTime) -> Option<VerifyCode> {
    if key.revoked_at.is_some() {
        Some(VerifyCode::Revoked)
    } else if key.is_expired(now) {
        Some(VerifyCode::Expired)
    } else {
        None
    }
}

/// Counts one use of a key [`lookup`] found usable and decides the answer:
/// the rate limit, then the `required` scopes. A rate-limited use is
/// counted in the database, in one statement with the check that the key
/// is still neither revoked nor expired, so the limit holds across
/// instances and a revocation between `lookup` and here is never missed.
/// A key without a limit writes nothing here: `lookup`'s read was the
/// check (the use happened then), and the store batches its usage
/// counter.
pub async fn use_key(
    keys: &dyn ApiKeyStore,
    now: UnixTime,
    key: ApiKey,
    required: &[String],
) -> Result<Verification, StoreError> {
    let window = key.rate_limit.map(|l| l.window_secs);
    let Some(used) = keys.record_api_key_use(&key.id, now, window).await? else {
        // Revoked, expired or deleted in between: read why.
        let current = keys.api_key(&key.id).await?;
        let code = current
            .as_ref()
            .and_then(|k| unusable(k, now))
            .unwrap_or(VerifyCode::NotFound);
        return Ok(Verification {
            code,
            key: current,
            remaining: None,
        });
    };
    let mut remaining = None;
    let code = match key.rate_limit {
        Some(limit) => {
            remaining = Some((limit.count - used.window_count).max(0));
            if used.window_count > limit.count {
                VerifyCode::RateLimited
            } else if holds_all(&key.scopes, required) {
                VerifyCode::Valid
            } else {
                VerifyCode::InsufficientScope
            }
        }
        None if holds_all(&key.scopes, required) => VerifyCode::Valid,
        None => VerifyCode::InsufficientScope,
    };
    Ok(Verification {
        code,
        key: Some(key),
        remaining,
    })
}

/// Records a verification's answer: the metric by code, and, for a
/// refused one, an `apikey.refused` event (with the key when it exists;
/// `NOT_FOUND` only for an authenticated caller, so an anonymous flood
/// of made-up keys cannot fill the audit log).
pub async fn record_answer(
    audit: &dyn AuditSink,
    actor: &Actor,
    now: UnixTime,
    verification: &Verification,
) {
    let code = verification.code;
    metrics::counter!("tessera_api_key_verifications_total", "code" => code.as_str()).increment(1);
    if code == VerifyCode::Valid {
        return;
    }
    let event = match &verification.key {
        Some(key) => key_event(AuditKind::ApiKeyRefused, actor, key, now),
        None if *actor != Actor::Anonymous => AuditEvent::new(AuditKind::ApiKeyRefused, actor, now),
        None => return,
    };
    audit.record(event.with_detail("code", code.as_str())).await;
}

/// Checks a presented key as resource servers ask (`/apikeys/verify`,
/// `/introspect`): [`lookup`], then [`use_key`], and records the answer.
/// Each use of an existing, live key counts, a refused scope check
/// included.
pub async fn verify(
    keys: &dyn ApiKeyStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    presented: &str,
    required: &[String],
) -> Result<Verification, StoreError> {
    let now = clock.now();
    let verification = match lookup(keys, now, presented).await? {
        Ok(key) => use_key(keys, now, key, required).await?,
        Err((code, key)) => Verification {
            code,
            key,
            remaining: None,
        },
    };
    record_answer(audit, actor, now, &verification).await;
    Ok(verification)
}

fn holds_all(scopes: &ScopeSet, required: &[String]) -> bool {
    required.iter().all(|s| scopes.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_only_as_two_positive_numbers() {
        assert_eq!(
            parse_rate_limit("100/60").ok(),
            Some(RateLimit {
                count: 100,
                window_secs: 60
            })
        );
        let too_long = format!("1/{}", MAX_WINDOW_SECS + 1);
        for bad in [
            "", "100", "0/60", "10/0", "-1/5", "a/b", "1/2/3", "10/ 5", &too_long,
        ] {
            assert!(parse_rate_limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_short_lowercase_alphanumerics() {
        for good in ["tsr", "a", "live2", "abcdefghijklmnop"] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", "TSR", "ts_r", "abcdefghijklmnopq", "tsr-", "ü"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_minted_key_is_the_prefix_and_256_random_bits() {
        let (key, hash, start) = mint("tsr");
        let secret = key.strip_prefix("tsr_").unwrap();
        assert_eq!(secret.len(), 43);
        assert!(secret.starts_with(&start));
        assert_eq!(start.len(), START_LEN);
        assert_eq!(hash, crypto::hash_secret(&key));
        assert!(key.len() <= MAX_KEY_LEN);
        assert_ne!(mint("tsr").0, key);
    }

    #[test]
    fn only_our_key_shape_looks_like_a_key() {
        assert!(looks_like_a_key(&mint("tsr").0));
        assert!(looks_like_a_key(&mint("abcdefghijklmnop").0));
        let refresh_token = crypto::random_token();
        assert!(!looks_like_a_key(&refresh_token));
        assert!(!looks_like_a_key("eyJhbGciOi.eyJzdWIi.c2ln"));
        assert!(!looks_like_a_key(&format!("TSR_{}", &mint("a").0[2..])));
        assert!(!looks_like_a_key(&format!("{}x", mint("tsr").0)));
    }

    #[test]
    fn meta_must_be_a_small_json_object() {
        assert!(parse_meta(Some(r#"{"team":"billing"}"#)).is_ok());
        assert!(parse_meta(None).unwrap().is_empty());
        for bad in ["[]", "1", "\"x\"", "{", "null"] {
            assert!(parse_meta(Some(bad)).is_err(), "{bad}");
        }
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_META_BYTES));
        assert!(parse_meta(Some(&big)).is_err());
    }
}
