//! Login throttling: sign-in attempts are counted per account (`user:` +
//! hex SHA-256 of the lowercased username, so any username makes a short
//! key) and per client address (`ip:` + address) within a window of
//! `login.failure_window_secs`. An account may have `login.max_failures`
//! password checks per window, an address (which many people may share)
//! four times that; reaching the limit with a failure, or going past it,
//! locks the key for `login.lockout_secs`.
//!
//! The attempt is counted *before* the password is checked, by one atomic
//! statement per key, so parallel requests cannot all pass a check and then
//! overwrite each other's counts: whatever the concurrency, at most the
//! limit of them reach the password hash.
//!
//! 1. [`begin_attempt`]: refused if either key is locked; otherwise counts
//!    the attempt on both and refuses (locking the key) past a limit.
//! 2. The caller verifies the password.
//! 3. [`attempt_failed`]: locks a key whose count reached its limit, then
//!    slows the answer down; or [`attempt_succeeded`]: clears the account's
//!    count and gives the address its attempt back, so many people signing
//!    in from one address never lock it.
//!
//! Setting a lock starts that key's count over: the lock is the penalty, so
//! after it ends there are `max_failures` fresh attempts. The window starts
//! at the first attempt (or the lock) and is not extended by later ones.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Clock;
use crate::clock::UnixTime;
use crate::config::LoginConfig;
use crate::crypto;
use crate::domain::LoginFailures;
use crate::error::AppError;
use crate::store::LoginThrottleStore;

/// What the throttle works with: its counters, the clock, the settings.
pub struct Throttle<'a> {
    pub store: &'a dyn LoginThrottleStore,
    pub clock: &'a dyn Clock,
    pub config: &'a LoginConfig,
}

/// Per-address limit as a multiple of the per-account one.
const IP_LIMIT_FACTOR: i64 = 4;
/// The slow-down grows with the failure count up to this many times
/// `login.failure_delay_ms`.
const MAX_DELAY_FACTOR: i64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    Allowed,
    Locked { retry_after_secs: i64 },
}

/// A refused attempt: no password may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after_secs: i64,
}

impl From<Locked> for ThrottleDecision {
    fn from(l: Locked) -> Self {
        ThrottleDecision::Locked {
            retry_after_secs: l.retry_after_secs,
        }
    }
}

/// A counted attempt that may check one password; finish it with
/// [`attempt_failed`] or [`attempt_succeeded`].
#[derive(Debug)]
pub struct Attempt {
    account_key: String,
    address_key: String,
    /// The counts including this attempt.
    account_failures: i64,
    address_failures: i64,
}

/// Whether a sign-in for `username` from `ip` would be refused now because
/// a lock is running. Reads only.
pub async fn check(
    throttle: &Throttle<'_>,
    username: &str,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let now = throttle.clock.now();
    let account = throttle
        .store
        .login_failures(&account_key(username))
        .await?;
    let address = throttle.store.login_failures(&address_key(ip)).await?;
    Ok(decide(now, &[account, address]))
}

/// Counts a sign-in attempt for `username` from `ip` against both keys.
/// `Err(Locked)` when either is locked or this attempt went past a limit
/// (which locks that key): the password must not be checked.
pub async fn begin_attempt(
    throttle: &Throttle<'_>,
    username: &str,
    ip: IpAddr,
) -> Result<Result<Attempt, Locked>, AppError> {
    if let ThrottleDecision::Locked { retry_after_secs } = check(throttle, username, ip).await? {
        return Ok(Err(Locked { retry_after_secs }));
    }
    let cfg = throttle.config;
    let now = throttle.clock.now();
    let account_key = account_key(username);
    let address_key = address_key(ip);
    let account = throttle
        .store
        .count_login_attempt(&account_key, now, cfg.failure_window_secs)
        .await?;
    let address = throttle
        .store
        .count_login_attempt(&address_key, now, cfg.failure_window_secs)
        .await?;

    let mut refused: Option<i64> = None;
    for (key, counted, limit) in [
        (&account_key, &account, account_limit(throttle)),
        (&address_key, &address, address_limit(throttle)),
    ] {
        let retry = match classify(counted, now, limit) {
            Counted::Within => continue,
            // Locked by a concurrent attempt since the check above.
            Counted::Locked { retry_after_secs } => retry_after_secs,
            Counted::OverLimit => lock(throttle, key, now).await?,
        };
        refused = refused.max(Some(retry));
    }
    if let Some(retry_after_secs) = refused {
        return Ok(Err(Locked { retry_after_secs }));
    }
    Ok(Ok(Attempt {
        account_key,
        address_key,
        account_failures: account.failures,
        address_failures: address.failures,
    }))
}

/// The password was wrong (or the user unknown): locks each key whose count
/// reached its limit with this attempt, then waits `failure_delay_ms` times
/// the count (at most four times). `Locked` when this failure locked a key.
pub async fn attempt_failed(
    throttle: &Throttle<'_>,
    attempt: &Attempt,
) -> Result<ThrottleDecision, AppError> {
    let now = throttle.clock.now();
    let mut locked: Option<i64> = None;
    for (key, failures, limit) in [
        (
            &attempt.account_key,
            attempt.account_failures,
            account_limit(throttle),
        ),
        (
            &attempt.address_key,
            attempt.address_failures,
            address_limit(throttle),
        ),
    ] {
        if failures >= limit {
            locked = locked.max(Some(lock(throttle, key, now).await?));
        }
    }

    let delay = failure_delay_ms(
        throttle.config.failure_delay_ms,
        attempt.account_failures.max(attempt.address_failures),
    );
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(
        locked.map_or(ThrottleDecision::Allowed, |retry_after_secs| {
            ThrottleDecision::Locked { retry_after_secs }
        }),
    )
}

/// Locks `key` for `login.lockout_secs` from `now` (starting its count
/// over); the seconds until the lock ends.
async fn lock(throttle: &Throttle<'_>, key: &str, now: UnixTime) -> Result<i64, AppError> {
    let lockout_secs = throttle.config.lockout_secs;
    let locked = throttle
        .store
        .lock_login(key, now, now.saturating_add(lockout_secs))
        .await?;
    Ok(remaining(now, &locked).unwrap_or(lockout_secs).max(1))
}

/// The password was right: the account's count is cleared (unless a lock
/// was set meanwhile) and the address gets this attempt back. Only this
/// attempt: a guesser spraying many accounts from the address gains nothing
/// from also signing in to one of their own.
pub async fn attempt_succeeded(throttle: &Throttle<'_>, attempt: &Attempt) -> Result<(), AppError> {
    throttle
        .store
        .clear_login_failures(&attempt.account_key, throttle.clock.now())
        .await?;
    throttle
        .store
        .return_login_attempt(&attempt.address_key)
        .await?;
    Ok(())
}

fn account_limit(throttle: &Throttle<'_>) -> i64 {
    throttle.config.max_failures
}

fn address_limit(throttle: &Throttle<'_>) -> i64 {
    throttle.config.max_failures.saturating_mul(IP_LIMIT_FACTOR)
}

/// The throttle key of an account: bounded in length whatever the username
/// (a database index limits key size), and the same for any letter case.
pub fn account_key(username: &str) -> String {
    format!("user:{}", crypto::hash_secret(&username.to_lowercase()))
}

/// The throttle key of a client address.
pub fn address_key(ip: IpAddr) -> String {
    // An IPv4-mapped IPv6 address counts as the IPv4 address it carries.
    format!("ip:{}", ip.to_canonical())
}

/// What one key's counter, just counted at `now`, allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// At or under the limit: the password may be checked.
    Within,
    /// Past the limit: refuse and lock.
    OverLimit,
    /// A lock is running (nothing was counted): refuse.
    Locked { retry_after_secs: i64 },
}

/// Judges a counter returned by `count_login_attempt` against `limit`; a
/// running lock wins over the count.
pub fn classify(counted: &LoginFailures, now: UnixTime, limit: i64) -> Counted {
    if let Some(retry_after_secs) = remaining(now, counted) {
        Counted::Locked { retry_after_secs }
    } else if counted.failures > limit {
        Counted::OverLimit
    } else {
        Counted::Within
    }
}

/// Seconds left of a lock running at `now`.
fn remaining(now: UnixTime, f: &LoginFailures) -> Option<i64> {
    f.locked_until
        .map(|until| until.saturating_sub(now))
        .filter(|&r| r > 0)
}

/// `Locked` (for as long as the longest running lock) when any counter is
/// locked at `now`.
pub fn decide(now: UnixTime, counters: &[Option<LoginFailures>]) -> ThrottleDecision {
    counters
        .iter()
        .flatten()
        .filter_map(|f| remaining(now, f))
        .max()
        .map_or(ThrottleDecision::Allowed, |retry_after_secs| {
            ThrottleDecision::Locked { retry_after_secs }
        })
}

/// The slow-down after a failure: `base_ms` times the failure count, capped
/// at four times; 0 turns it off.
pub fn failure_delay_ms(base_ms: u64, failures: i64) -> u64 {
    let factor = failures.clamp(0, MAX_DELAY_FACTOR) as u64;
    base_ms.saturating_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = 1_700_000_000;
    const LIMIT: i64 = 3;

    fn counter(failures: i64, locked_until: Option<UnixTime>) -> LoginFailures {
        LoginFailures {
            failures,
            window_start: T0,
            locked_until,
        }
    }

    #[test]
    fn classify_allows_up_to_the_limit_and_refuses_past_it() {
        assert_eq!(classify(&counter(1, None), T0, LIMIT), Counted::Within);
        assert_eq!(classify(&counter(LIMIT, None), T0, LIMIT), Counted::Within);
        assert_eq!(
            classify(&counter(LIMIT + 1, None), T0, LIMIT),
            Counted::OverLimit
        );
        assert_eq!(
            classify(&counter(LIMIT + 40, None), T0, LIMIT),
            Counted::OverLimit
        );
    }

    #[test]
    fn classify_refuses_while_a_lock_runs_whatever_the_count() {
        // A lock starts the count over, so a running lock shows a low count.
        let locked = counter(0, Some(T0 + 300));
        assert_eq!(
            classify(&locked, T0, LIMIT),
            Counted::Locked {
                retry_after_secs: 300
            }
        );
        assert_eq!(
            classify(&locked, T0 + 299, LIMIT),
            Counted::Locked {
                retry_after_secs: 1
            }
        );
        // An ended lock no longer matters: fresh attempts.
        assert_eq!(classify(&counter(1, Some(T0)), T0, LIMIT), Counted::Within);
        assert_eq!(
            classify(&counter(LIMIT + 1, Some(T0 - 5)), T0, LIMIT),
            Counted::OverLimit
        );
    }

    #[test]
    fn decide_takes_the_longest_running_lock() {
        let a = counter(9, Some(T0 + 50));
        let b = counter(9, Some(T0 + 200));
        let ended = counter(9, Some(T0 - 1));
        let just_ended = counter(9, Some(T0));
        assert_eq!(
            decide(T0, &[Some(a), None, Some(b)]),
            ThrottleDecision::Locked {
                retry_after_secs: 200
            }
        );
        assert_eq!(
            decide(T0, &[Some(ended), Some(just_ended), None]),
            ThrottleDecision::Allowed
        );
        assert_eq!(
            decide(T0, &[Some(counter(99, None))]),
            ThrottleDecision::Allowed
        );
        assert_eq!(decide(T0, &[]), ThrottleDecision::Allowed);
    }

    #[test]
    fn delay_grows_to_four_times_and_zero_disables() {
        assert_eq!(failure_delay_ms(250, 0), 0);
        assert_eq!(failure_delay_ms(250, 1), 250);
        assert_eq!(failure_delay_ms(250, 3), 750);
        assert_eq!(failure_delay_ms(250, 4), 1000);
        assert_eq!(failure_delay_ms(250, 40), 1000);
        assert_eq!(failure_delay_ms(0, 40), 0);
        assert_eq!(failure_delay_ms(u64::MAX, 4), u64::MAX);
    }

    #[test]
    fn account_keys_are_short_hashes_of_the_lowercased_name() {
        let alice = account_key("alice");
        assert_eq!(alice, account_key("Alice"));
        assert_eq!(alice, account_key("ALICE"));
        assert_ne!(alice, account_key("bob"));
        assert_eq!(alice, format!("user:{}", crypto::hash_secret("alice")));
        for name in [
            String::new(),
            "x".repeat(10_000),
            "\u{0}\u{202e}İ\u{301}🦀\u{fffd}".to_string(),
        ] {
            let key = account_key(&name);
            assert_eq!(key.len(), "user:".len() + 64, "{name:?}");
            assert!(key["user:".len()..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn address_keys_canonicalise_the_address() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "ip:192.0.2.7");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(address_key(v6), "ip:2001:db8::1");
    }
}
