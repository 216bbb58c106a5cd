//! The sign-in service: throttle, look the person up, check the password.
//! Handlers (the login page today; passkeys and the device page later)
//! call this and only render its outcome.

use std::net::IpAddr;

use super::password;
use super::throttle::{self, Locked, Throttle, ThrottleDecision};
use crate::domain::User;
use crate::error::AppError;
use crate::store::UserStore;

/// RFC 8176 `amr` value of a password sign-in.
pub const AMR_PASSWORD: &str = "pwd";

pub struct SignIn<'a> {
    pub users: &'a dyn UserStore,
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
}

impl SignIn<'_> {
    pub async fn with_password(
        &self,
        username: &str,
        password: String,
        ip: IpAddr,
    ) -> Result<SignInOutcome, AppError> {
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
        let ok =
            password::verify_password(user.as_ref().map(|u| u.password_hash.clone()), password)
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
