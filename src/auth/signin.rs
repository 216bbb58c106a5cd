//! The sign-in service: throttle, look the person up, check the password.
//! Handlers (the login page today; passkeys and the device page later)
//! call this and only render its outcome.

use std::net::IpAddr;

use super::password::PasswordHasher;
use super::throttle::{self, Locked, Throttle, ThrottleDecision};
use crate::domain::User;
use crate::error::AppError;
use crate::store::UserStore;

/// RFC 8176 `amr` value of a password sign-in.
pub const AMR_PASSWORD: &str = "pwd";

pub struct SignIn<'a> {
    pub users: &'a dyn UserStore,
    pub hasher: &'a PasswordHasher,
    pub throttle: Throttle<'a>,
}

#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(User),
    /// Unknown username or wrong password: one answer for both.
    BadCredentials,
    /// Too many failures; no password was checked (or this failure locked).
    Locked {
        retry_after_secs: i64,
    },
    /// The password hashing queue is full; nothing was counted or checked.
    Busy,
}

impl SignIn<'_> {
    pub async fn with_password(
        &self,
        username: &str,
        password: String,
        ip: IpAddr,
    ) -> Result<SignInOutcome, AppError> {
        // A place to hash first: a flood is refused before it costs anything.
        let Ok(slot) = self.hasher.reserve() else {
            return Ok(SignInOutcome::Busy);
        };
        // Counted before the password is checked, so parallel guesses
        // cannot outrun the limit.
        let attempt = match throttle::begin_attempt(&self.throttle, username, ip).await? {
            Ok(attempt) => attempt,
            Err(Locked { retry_after_secs }) => {
                return Ok(SignInOutcome::Locked { retry_after_secs });
            }
        };
        let user = if username.is_empty() {
            None
        } else {
            self.users.user_by_username(username).await?
        };
        // An unknown user costs one hash too, so timing reveals nothing.
        let ok = slot
            .verify(user.as_ref().map(|u| u.password_hash.clone()), password)
            .await;
        let Some(user) = user.filter(|_| ok) else {
            return Ok(
                match throttle::attempt_failed(&self.throttle, &attempt).await? {
                    ThrottleDecision::Locked { retry_after_secs } => {
                        SignInOutcome::Locked { retry_after_secs }
                    }
                    ThrottleDecision::Allowed => SignInOutcome::BadCredentials,
                },
            );
        };
        throttle::attempt_succeeded(&self.throttle, &attempt).await?;
        Ok(SignInOutcome::SignedIn(user))
    }
}
