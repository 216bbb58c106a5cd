//! The people who sign in: create, list, delete, set a password. The rules
//! live here (username shape, a password is never empty, usernames are
//! unique, argon2id hashing), so the CLI and the admin API share them.
//!
//! Nothing here hands out a password hash: callers get a `UserSummary`.

use std::fmt;

use serde::Serialize;

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use crate::auth::password;
use crate::clock::{Clock, UnixTime};
use crate::crypto;
use crate::domain::User;
use crate::store::UserStore;

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

/// Deletes `user` with their consents, and revokes every grant they gave
/// (and with them the tokens issued under those grants).
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
/// `keep_session`).
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
