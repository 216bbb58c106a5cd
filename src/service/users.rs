//! The people who sign in: create, list, delete, set a password. The rules
//! live here (username shape, a password is never empty, usernames are
//! unique, argon2id hashing), so the CLI and the admin API share them.
//!
//! Nothing here hands out a password hash: callers get a `UserSummary`.

use std::fmt;

use serde::Serialize;

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use super::page::{CursorList, Page, PageRequest, split_key};
use crate::auth::password;
use crate::clock::{Clock, UnixTime};
use crate::crypto;
use crate::domain::{Grant, User};
use crate::oidc::backchannel;
use crate::store::{
    BackchannelStore, Consent, ConsentStore, EndedSessions, EndingSessions, GrantStore, UserStore,
};

pub const MAX_USERNAME_CHARS: usize = 64;

/// 1–64 characters, none of them whitespace or control characters.
pub fn validate_username(username: &str) -> Result<(), ServiceError> {
    let chars = username.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(ServiceError::Invalid(format!(
            "a username has 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ServiceError::Invalid(
            "a username contains no spaces or control characters".into(),
        ));
    }
    Ok(())
}

/// A password is never empty: an empty one would be a typo or a script
/// that forgot to pipe it, never a choice.
pub fn validate_password(password: &str) -> Result<(), ServiceError> {
    if password.is_empty() {
        return Err(ServiceError::Invalid("the password is empty".into()));
    }
    Ok(())
}

/// What `add` needs. `Debug` never shows the password.
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .field("name", &self.name)
            .finish()
    }
}

/// What may be shown about a user: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub sub: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: UnixTime,
}

impl From<User> for UserSummary {
    fn from(u: User) -> Self {
        Self {
            sub: u.sub,
            username: u.username,
            email: u.email,
            name: u.name,
            created_at: u.created_at,
        }
    }
}

fn no_user_named(username: &str) -> ServiceError {
    ServiceError::NotFound(format!("no user named {username:?}"))
}

async fn hash(password: String) -> Result<String, ServiceError> {
    password::hash_password(password)
        .await
        .map_err(ServiceError::internal)
}

/// Creates a user with a new opaque `sub` and the password's argon2id hash.
/// A taken username is `Conflict`.
pub async fn add(
    store: &dyn UserStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    new: NewUser,
) -> Result<UserSummary, ServiceError> {
    validate_username(&new.username)?;
    validate_password(&new.password)?;
    let password_hash = hash(new.password).await?;
    let now = clock.now();
    let user = User {
        sub: crypto::random_token(),
        username: new.username,
        password_hash,
        email: new.email,
        name: new.name,
        created_at: now,
        updated_at: now,
    };
    // The unique index decides (`StoreError::Conflict`), so two racing adds
    // of one name cannot both succeed.
    store.insert_user(&user).await?;
    audit
        .record(AuditEvent::user(
            AuditKind::UserCreated,
            actor,
            &user.sub,
            now,
        ))
        .await;
    Ok(user.into())
}

pub async fn list(store: &dyn UserStore) -> Result<Vec<UserSummary>, ServiceError> {
    Ok(store
        .users()
        .await?
        .into_iter()
        .map(UserSummary::from)
        .collect())
}

/// The user named `username`, or `NotFound`.
pub async fn find_by_username(
    store: &dyn UserStore,
    username: &str,
) -> Result<UserSummary, ServiceError> {
    store
        .user_by_username(username)
        .await?
        .map(UserSummary::from)
        .ok_or_else(|| no_user_named(username))
}

/// Deletes `user` with their consents and sessions, and revokes every
/// grant they gave (and with them the tokens issued under those grants).
/// The clients that got tokens in those sessions are owed Logout Tokens
/// (OIDC Back-Channel Logout), queued in the same transaction; a server's
/// worker sends them (the admin API wakes its own at once).
pub async fn delete(
    store: &dyn UserStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
) -> Result<(), ServiceError> {
    let now = clock.now();
    if !store.delete_user(&user.sub, now).await? {
        return Err(no_user_named(&user.username));
    }
    audit
        .record(AuditEvent::user(
            AuditKind::UserDeleted,
            actor,
            &user.sub,
            now,
        ))
        .await;
    Ok(())
}

/// Replaces `user`'s password hash and, in the same transaction, ends
/// whatever the old password got anyone (issue 7.7): every grant of theirs
/// is revoked (their refresh tokens, and the access tokens issued under
/// those grants, stop working) and every session of theirs is deleted. The
/// CLI has no session to keep; the account page, changing the password
/// from a session, will keep that one (`UserStore::set_password`'s
/// `keep_session`). The clients that got tokens in the ended sessions are
/// owed Logout Tokens (OIDC Back-Channel Logout), queued in the same
/// transaction.
pub async fn set_password(
    store: &dyn UserStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
    password: String,
) -> Result<(), ServiceError> {
    validate_password(&password)?;
    let password_hash = hash(password).await?;
    let now = clock.now();
    if !store
        .set_password(&user.sub, &password_hash, now, None)
        .await?
    {
        return Err(no_user_named(&user.username));
    }
    audit
        .record(AuditEvent::user(
            AuditKind::UserPasswordChanged,
            actor,
            &user.sub,
            now,
        ))
        .await;
    Ok(())
}

fn no_user_with_sub(sub: &str) -> ServiceError {
    ServiceError::NotFound(format!("no user with sub {sub:?}"))
}

/// The user `sub`, or `NotFound`.
pub async fn show(store: &dyn UserStore, sub: &str) -> Result<UserSummary, ServiceError> {
    store
        .user(sub)
        .await?
        .map(UserSummary::from)
        .ok_or_else(|| no_user_with_sub(sub))
}

/// A page of users in username order.
pub async fn page(
    store: &dyn UserStore,
    request: &PageRequest,
) -> Result<Page<UserSummary>, ServiceError> {
    let after = request.after(CursorList::Users)?;
    let users = store.users_page(after.as_deref(), request.fetch()).await?;
    Ok(
        Page::from_fetched(users, request, CursorList::Users, |u| u.username.clone())
            .map(UserSummary::from),
    )
}

/// What `update` changes: a field left `None` stays as it is, `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub email: Option<Option<String>>,
    pub name: Option<Option<String>>,
}

/// Changes `user`'s email and name (never the username, which people sign
/// in with, or the `sub`, which clients know them by).
pub async fn update(
    store: &dyn UserStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
    update: ProfileUpdate,
) -> Result<UserSummary, ServiceError> {
    let mut changed: Vec<&str> = Vec::new();
    if update.email.is_some() {
        changed.push("email");
    }
    if update.name.is_some() {
        changed.push("name");
    }
    let email = update.email.unwrap_or_else(|| user.email.clone());
    let name = update.name.unwrap_or_else(|| user.name.clone());
    let now = clock.now();
    if !store
        .update_user_profile(&user.sub, email.as_deref(), name.as_deref(), now)
        .await?
    {
        return Err(no_user_with_sub(&user.sub));
    }
    audit
        .record(
            AuditEvent::user(AuditKind::UserUpdated, actor, &user.sub, now)
                .with_detail("fields", changed),
        )
        .await;
    Ok(UserSummary {
        email,
        name,
        ..user.clone()
    })
}

/// What may be shown about a grant: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantSummary {
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The resources (RFC 8707 identifiers) it was authorized for.
    pub resources: Vec<String>,
    /// Neither revoked nor expired: its refresh tokens still work.
    pub active: bool,
}

impl GrantSummary {
    fn of(grant: Grant, now: UnixTime) -> Self {
        Self {
            active: grant.is_live(now),
            grant_id: grant.grant_id,
            client_id: grant.client_id,
            scope: grant.scope.to_string(),
            auth_time: grant.auth_time,
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            revoked_at: grant.revoked_at,
            resources: grant.resources,
        }
    }
}

/// A page of the grants `user` gave (ended ones too, until they are
/// pruned), newest first.
pub async fn grants(
    store: &dyn GrantStore,
    clock: &dyn Clock,
    user: &UserSummary,
    request: &PageRequest,
) -> Result<Page<GrantSummary>, ServiceError> {
    let after = request.after(CursorList::Grants)?;
    let after = after.as_deref().map(split_key).transpose()?;
    let grants = store
        .grants_of_user(&user.sub, after, request.fetch())
        .await?;
    let now = clock.now();
    Ok(
        Page::from_fetched(grants, request, CursorList::Grants, |g| {
            format!("{}:{}", g.created_at, g.grant_id)
        })
        .map(|g| GrantSummary::of(g, now)),
    )
}

/// Revokes `user`'s grant `grant_id`, and with it every refresh and access
/// token issued under it. A grant of someone else is `NotFound`; one
/// already revoked stays so (and is not audited again).
pub async fn revoke_grant(
    store: &dyn GrantStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
    grant_id: &str,
) -> Result<(), ServiceError> {
    let grant = store
        .grant(grant_id)
        .await?
        .filter(|g| g.sub == user.sub)
        .ok_or_else(|| {
            ServiceError::NotFound(format!("user {:?} has no grant {grant_id:?}", user.sub))
        })?;
    if grant.revoked_at.is_some() {
        return Ok(());
    }
    let now = clock.now();
    store.revoke_grant(grant_id, now).await?;
    audit
        .record(
            AuditEvent::user(AuditKind::GrantRevoked, actor, &user.sub, now)
                .with_client(&grant.client_id)
                .with_detail("grant_id", grant_id),
        )
        .await;
    Ok(())
}

/// What may be shown about a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentSummary {
    pub client_id: String,
    pub scope: String,
    pub updated_at: UnixTime,
}

impl From<Consent> for ConsentSummary {
    fn from(c: Consent) -> Self {
        Self {
            client_id: c.client_id,
            scope: c.scope.to_string(),
            updated_at: c.updated_at,
        }
    }
}

/// Every consent `user` has given, by client id.
pub async fn consents(
    store: &dyn ConsentStore,
    user: &UserSummary,
) -> Result<Vec<ConsentSummary>, ServiceError> {
    Ok(store
        .consents_of_user(&user.sub)
        .await?
        .into_iter()
        .map(ConsentSummary::from)
        .collect())
}

fn no_consent(user: &UserSummary, client_id: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "user {:?} has not consented to client {client_id:?}",
        user.sub
    ))
}

/// `user`'s consent to `client_id`, or `NotFound`.
pub async fn consent(
    store: &dyn ConsentStore,
    user: &UserSummary,
    client_id: &str,
) -> Result<ConsentSummary, ServiceError> {
    store
        .consents_of_user(&user.sub)
        .await?
        .into_iter()
        .find(|c| c.client_id == client_id)
        .map(ConsentSummary::from)
        .ok_or_else(|| no_consent(user, client_id))
}

/// Withdraws `user`'s consent to `client_id` (to every client when
/// `None`): the consent page shows again on their next authorization, and
/// the grants they gave those clients are revoked with their tokens. A
/// named client without consent is `NotFound`. Returns the client ids
/// whose consent was withdrawn; each is audited.
pub async fn revoke_consents(
    store: &dyn ConsentStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
    client_id: Option<&str>,
) -> Result<Vec<String>, ServiceError> {
    let withdrawn: Vec<String> = match client_id {
        Some(id) => {
            if store.consent(&user.sub, id).await?.is_none() {
                return Err(no_consent(user, id));
            }
            vec![id.to_string()]
        }
        None => store
            .consents_of_user(&user.sub)
            .await?
            .into_iter()
            .map(|c| c.client_id)
            .collect(),
    };
    let now = clock.now();
    store.revoke_consents(&user.sub, client_id, now).await?;
    for id in &withdrawn {
        audit
            .record(
                AuditEvent::user(AuditKind::ConsentRevoked, actor, &user.sub, now).with_client(id),
            )
            .await;
    }
    Ok(withdrawn)
}

/// Ends every browser session of `user`: wherever they were signed in,
/// they must sign in again. The grants given in those sessions end with
/// them, except those with `offline_access`
/// (`oidc::backchannel::grant_ends_with_session`), and the clients that
/// got tokens in them are sent Logout Tokens (OIDC Back-Channel Logout;
/// queued: the caller wakes the worker when `deliveries` > 0). Audited
/// even when no session ended, since the operator asked.
pub async fn end_sessions(
    store: &dyn BackchannelStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    user: &UserSummary,
) -> Result<EndedSessions, ServiceError> {
    let now = clock.now();
    let ended =
        backchannel::end_sessions(store, EndingSessions::AllOf { sub: &user.sub }, now).await?;
    audit
        .record(
            AuditEvent::user(AuditKind::SessionsEnded, actor, &user.sub, now)
                .with_detail("sessions", ended.sessions)
                .with_detail("backchannel_logouts", ended.deliveries),
        )
        .await;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(r: Result<(), ServiceError>) -> String {
        match r {
            Err(ServiceError::Invalid(reason)) => reason,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn usernames_have_1_to_64_characters() {
        assert!(validate_username("a").is_ok());
        assert!(validate_username(&"x".repeat(64)).is_ok());
        // Characters, not bytes: 64 two-byte characters are fine.
        assert!(validate_username(&"é".repeat(64)).is_ok());
        for bad in [String::new(), "x".repeat(65), "é".repeat(65)] {
            let reason = invalid(validate_username(&bad));
            assert!(reason.contains("1 to 64"), "{reason}");
        }
    }

    #[test]
    fn usernames_have_no_whitespace_or_control_characters() {
        for bad in [
            "carol smith",
            "carol\tx",
            "carol\n",
            " carol",
            "carol\u{7}",
            "carol\u{0}",
            "no\u{a0}break",
            "ideographic\u{3000}space",
        ] {
            let reason = invalid(validate_username(bad));
            assert!(reason.contains("no spaces"), "{bad:?}: {reason}");
        }
        for good in [
            "alice",
            "alice@example.com",
            "Ünïcødé",
            "o'brien",
            "a-b_c.d",
        ] {
            assert!(validate_username(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn passwords_are_never_empty() {
        assert!(invalid(validate_password("")).contains("empty"));
        assert!(validate_password(" ").is_ok());
    }

    #[test]
    fn new_user_debug_hides_the_password() {
        let new = NewUser {
            username: "alice".into(),
            password: "correct horse".into(),
            email: None,
            name: None,
        };
        let shown = format!("{new:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("correct horse"), "{shown}");
    }
}
