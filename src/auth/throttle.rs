//! Login throttling, built so that nobody who did nothing wrong is locked out:
//!
//! - **The (account, address) pair** is what gets locked: `login.max_failures` wrong passwords for
//!   one account from one address within `login.failure_window_secs` lock that pair for
//!   `login.lockout_secs`. Its attempts are counted *before* the password is checked, by one atomic
//!   statement, so parallel guesses cannot outrun the limit. Knowing a username therefore does not
//!   let a stranger lock its owner out: the owner's own address is another pair.
//! - **The account** only slows down: its failures from anywhere make each failed answer wait
//!   `login.failure_delay_ms` times their count (at most four times). It is never locked.
//! - **The address** is locked after four times `max_failures` *failures* across accounts (one
//!   address spraying many accounts). Only failures count, after the password check, so 32 people
//!   signing in at once behind one NAT address all get through. (Because they are counted after the
//!   check, a burst can pass the limit by at most the password-hashing queue's size.)
//! - **A known pair** — an address where that account signed in successfully within
//!   `login.known_address_secs` — is never locked, neither as a pair nor by its address's lock.
//!
//! 1. [`begin_attempt`]: refused while a lock applies; otherwise counts the attempt on the pair and
//!    refuses (locking the pair) past its limit.
//! 2. The caller verifies the password.
//! 3. [`attempt_failed`]: counts the failure on the account and the address, locks the pair or the
//!    address at their limits, then slows the answer down; or [`attempt_succeeded`]: clears the
//!    pair's and the account's counts and remembers the pair as known.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::{Clock, UnixTime};
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

/// Per-address failure limit as a multiple of the per-pair one.
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
    pair_key: String,
    account_key: String,
    address_key: String,
    known_key: String,
    /// The pair's count including this attempt.
    pair_failures: i64,
    /// The account signed in from this address recently: never locked here.
    known: bool,
}

struct Keys {
    pair: String,
    account: String,
    address: String,
    known: String,
}

fn keys(username: &str, ip: IpAddr) -> Keys {
    Keys {
        pair: pair_key(username, ip),
        known: known_key(username, ip),
        account: account_key(username),
        address: address_key(ip),
    }
}

/// The throttle key of an (account, address) pair: what gets locked.
pub fn pair_key(username: &str, ip: IpAddr) -> String {
    format!("pair:{}:{}", account_key(username), address_key(ip))
}

/// The key remembering that the account signed in from the address.
pub fn known_key(username: &str, ip: IpAddr) -> String {
    format!("known:{}:{}", account_key(username), address_key(ip))
}

async fn is_known(
    throttle: &Throttle<'_>,
    known_key: &str,
    now: UnixTime,
) -> Result<bool, AppError> {
    Ok(throttle
        .store
        .login_failures(known_key)
        .await?
        .and_then(|k| k.locked_until)
        .is_some_and(|until| until > now))
}

/// Whether a sign-in for `username` from `ip` would be refused now because
/// a lock is running. Reads only.
pub async fn check(
    throttle: &Throttle<'_>,
    username: &str,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let now = throttle.clock.now();
    let keys = keys(username, ip);
    if is_known(throttle, &keys.known, now).await? {
        return Ok(ThrottleDecision::Allowed);
    }
    let pair = throttle.store.login_failures(&keys.pair).await?;
    let address = throttle.store.login_failures(&keys.address).await?;
    Ok(decide(now, &[pair, address]))
}

/// Counts a sign-in attempt for `username` from `ip` on its pair.
/// `Err(Locked)` when a lock applies or this attempt went past the pair's
/// limit (which locks the pair): the password must not be checked.
pub async fn begin_attempt(
    throttle: &Throttle<'_>,
    username: &str,
    ip: IpAddr,
) -> Result<Result<Attempt, Locked>, AppError> {
    let now = throttle.clock.now();
    let keys = keys(username, ip);
    let known = is_known(throttle, &keys.known, now).await?;
    if !known {
        let address = throttle.store.login_failures(&keys.address).await?;
        let pair = throttle.store.login_failures(&keys.pair).await?;
        if let ThrottleDecision::Locked { retry_after_secs } = decide(now, &[pair, address]) {
            return Ok(Err(Locked { retry_after_secs }));
        }
    }
    let window = throttle.config.failure_window_secs;
    let pair = throttle
        .store
        .count_login_attempt(&keys.pair, now, window)
        .await?;
    if !known {
        let retry = match classify(&pair, now, pair_limit(throttle)) {
            Counted::Within => None,
            // Locked by a concurrent attempt since the check above.
            Counted::Locked { retry_after_secs } => Some(retry_after_secs),
            Counted::OverLimit => Some(lock(throttle, &keys.pair, now).await?),
        };
        if let Some(retry_after_secs) = retry {
            return Ok(Err(Locked { retry_after_secs }));
        }
    }
    Ok(Ok(Attempt {
        pair_key: keys.pair,
        account_key: keys.account,
        address_key: keys.address,
        known_key: keys.known,
        pair_failures: pair.failures,
        known,
    }))
}

/// The password was wrong (or the user unknown): counts the failure on the
/// account (slow-down only) and the address, locks the pair or the address
/// at their limits (never a known pair), then waits `failure_delay_ms`
/// times the failure count (at most four times). `Locked` when this
/// failure locked something.
pub async fn attempt_failed(
    throttle: &Throttle<'_>,
    attempt: &Attempt,
) -> Result<ThrottleDecision, AppError> {
    let now = throttle.clock.now();
    let window = throttle.config.failure_window_secs;
    let account = throttle
        .store
        .count_login_attempt(&attempt.account_key, now, window)
        .await?;
    let address = throttle
        .store
        .count_login_attempt(&attempt.address_key, now, window)
        .await?;
    let mut locked: Option<i64> = None;
    if !attempt.known {
        if attempt.pair_failures >= pair_limit(throttle) {
            locked = locked.max(Some(lock(throttle, &attempt.pair_key, now).await?));
        }
        if address.failures >= address_limit(throttle) {
            locked = locked.max(Some(lock(throttle, &attempt.address_key, now).await?));
        }
    }
    let delay = failure_delay_ms(
        throttle.config.failure_delay_ms,
        account.failures.max(attempt.pair_failures),
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

/// The password was right: the pair's and the account's counts are cleared
/// (unless a lock was set meanwhile) and the pair is remembered as known, so
/// this address is never locked for this account while it stays recent.
pub async fn attempt_succeeded(throttle: &Throttle<'_>, attempt: &Attempt) -> Result<(), AppError> {
    let now = throttle.clock.now();
    throttle
        .store
        .clear_login_failures(&attempt.pair_key, now)
        .await?;
    throttle
        .store
        .clear_login_failures(&attempt.account_key, now)
        .await?;
    throttle
        .store
        .remember_login_until(
            &attempt.known_key,
            now,
            now.saturating_add(throttle.config.known_address_secs),
        )
        .await?;
    Ok(())
}

/// The throttle key of the user codes (RFC 8628 device flow) entered from
/// a client address.
pub fn user_code_key(ip: IpAddr) -> String {
    format!("device:{}", address_key(ip))
}

/// Whether user codes entered from `ip` are refused now: too many wrong
/// ones locked the address. Reads only.
pub async fn check_user_code(
    throttle: &Throttle<'_>,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let counter = throttle.store.login_failures(&user_code_key(ip)).await?;
    Ok(decide(throttle.clock.now(), &[counter]))
}

/// A wrong (unknown, answered or expired) user code was entered from `ip`.
/// RFC 8628 §5.1: a user code is short, so guessing is rate-limited like
/// passwords: `login.max_failures` wrong codes within
/// `login.failure_window_secs` lock the address out of the device page for
/// `login.lockout_secs`. `Locked` when this failure locked it (or a lock
/// set meanwhile runs).
pub async fn user_code_failed(
    throttle: &Throttle<'_>,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let now = throttle.clock.now();
    let key = user_code_key(ip);
    let counted = throttle
        .store
        .count_login_attempt(&key, now, throttle.config.failure_window_secs)
        .await?;
    if let Some(retry_after_secs) = remaining(now, &counted) {
        return Ok(ThrottleDecision::Locked { retry_after_secs });
    }
    if counted.failures >= pair_limit(throttle) {
        let retry_after_secs = lock(throttle, &key, now).await?;
        return Ok(ThrottleDecision::Locked { retry_after_secs });
    }
    Ok(ThrottleDecision::Allowed)
}

fn pair_limit(throttle: &Throttle<'_>) -> i64 {
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
