//! Login throttling: failed sign-ins are counted per account
//! (`user:` + lowercased username) and per client address (`ip:` + address)
//! within a window of `login.failure_window_secs`. Reaching
//! `login.max_failures` for an account (four times that for an address,
//! which many people may share) locks it for `login.lockout_secs`; each
//! failure is also answered more slowly.
//!
//! The count continues through a lockout: a failure after the lock ends but
//! while the window is still open locks again at once. The window starts at
//! the first failure and is not extended by later ones.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::LoginFailures;

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

/// Whether a sign-in for `username` from `ip` may be attempted now.
pub async fn check(
    state: &AppState,
    username: &str,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let now = state.clock.now();
    let account = state.store.login_failures(&account_key(username)).await?;
    let address = state.store.login_failures(&address_key(ip)).await?;
    Ok(decide(now, &[account, address]))
}

/// Counts a failed sign-in against the account and the address, then waits
/// `failure_delay_ms` times the failure count (at most four times). Answers
/// `Locked` when this failure (or an earlier one) locked either.
pub async fn record_failure(
    state: &AppState,
    username: &str,
    ip: IpAddr,
) -> Result<ThrottleDecision, AppError> {
    let now = state.clock.now();
    let cfg = &state.config.login;

    let account_key = account_key(username);
    let account = count_failure(
        state.store.login_failures(&account_key).await?,
        now,
        cfg.max_failures,
        cfg.failure_window_secs,
        cfg.lockout_secs,
    );
    state
        .store
        .save_login_failures(&account_key, &account)
        .await?;

    let address_key = address_key(ip);
    let address = count_failure(
        state.store.login_failures(&address_key).await?,
        now,
        cfg.max_failures.saturating_mul(IP_LIMIT_FACTOR),
        cfg.failure_window_secs,
        cfg.lockout_secs,
    );
    state
        .store
        .save_login_failures(&address_key, &address)
        .await?;

    let delay = failure_delay_ms(cfg.failure_delay_ms, account.failures.max(address.failures));
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(decide(now, &[Some(account), Some(address)]))
}

/// A successful sign-in clears the account's count. The address's count
/// stays: one success must not reset a guesser spraying many accounts.
pub async fn record_success(state: &AppState, username: &str, ip: IpAddr) -> Result<(), AppError> {
    let _ = ip;
    state
        .store
        .clear_login_failures(&account_key(username))
        .await?;
    Ok(())
}

fn account_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

fn address_key(ip: IpAddr) -> String {
    // An IPv4-mapped IPv6 address counts as the IPv4 address it carries.
    format!("ip:{}", ip.to_canonical())
}

/// The counter after one more failure at `now`: a window that has passed
/// starts over at one; reaching `limit` locks until `now + lockout_secs`.
/// A lock still running is never shortened.
pub fn count_failure(
    previous: Option<LoginFailures>,
    now: UnixTime,
    limit: i64,
    window_secs: i64,
    lockout_secs: i64,
) -> LoginFailures {
    let running_lock = previous
        .and_then(|p| p.locked_until)
        .filter(|&until| until > now);
    let mut next = match previous {
        Some(p) if now < p.window_start.saturating_add(window_secs) => LoginFailures {
            failures: p.failures.saturating_add(1),
            window_start: p.window_start,
            locked_until: running_lock,
        },
        _ => LoginFailures {
            failures: 1,
            window_start: now,
            locked_until: running_lock,
        },
    };
    if next.failures >= limit {
        let until = now.saturating_add(lockout_secs);
        next.locked_until = Some(running_lock.map_or(until, |r| r.max(until)));
    }
    next
}

/// `Locked` (for as long as the longest running lock) when any counter is
/// locked at `now`.
pub fn decide(now: UnixTime, counters: &[Option<LoginFailures>]) -> ThrottleDecision {
    counters
        .iter()
        .flatten()
        .filter_map(|f| f.locked_until)
        .map(|until| until.saturating_sub(now))
        .filter(|&remaining| remaining > 0)
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
    const WINDOW: i64 = 900;
    const LOCKOUT: i64 = 300;

    fn fail(previous: Option<LoginFailures>, now: UnixTime) -> LoginFailures {
        count_failure(previous, now, LIMIT, WINDOW, LOCKOUT)
    }

    #[test]
    fn first_failure_opens_a_window() {
        assert_eq!(
            fail(None, T0),
            LoginFailures {
                failures: 1,
                window_start: T0,
                locked_until: None
            }
        );
    }

    #[test]
    fn failures_count_up_and_lock_at_the_limit() {
        let one = fail(None, T0);
        let two = fail(Some(one), T0 + 10);
        assert_eq!(
            (two.failures, two.window_start, two.locked_until),
            (2, T0, None)
        );
        let three = fail(Some(two), T0 + 20);
        assert_eq!(three.failures, 3);
        assert_eq!(three.locked_until, Some(T0 + 20 + LOCKOUT));
        assert_eq!(
            decide(T0 + 20, &[Some(three)]),
            ThrottleDecision::Locked {
                retry_after_secs: LOCKOUT
            }
        );
        assert_eq!(
            decide(T0 + 20 + LOCKOUT - 1, &[Some(three)]),
            ThrottleDecision::Locked {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            decide(T0 + 20 + LOCKOUT, &[Some(three)]),
            ThrottleDecision::Allowed
        );
    }

    #[test]
    fn a_passed_window_starts_over() {
        let two = fail(Some(fail(None, T0)), T0 + 1);
        let later = fail(Some(two), T0 + WINDOW);
        assert_eq!(
            later,
            LoginFailures {
                failures: 1,
                window_start: T0 + WINDOW,
                locked_until: None
            }
        );
        // Just inside the window it still counts.
        assert_eq!(fail(Some(two), T0 + WINDOW - 1).failures, 3);
    }

    #[test]
    fn an_ended_lock_relocks_on_the_next_failure_within_the_window() {
        let mut f = None;
        for _ in 0..LIMIT {
            f = Some(fail(f, T0));
        }
        let after_lock = T0 + LOCKOUT + 1;
        assert_eq!(decide(after_lock, &[f]), ThrottleDecision::Allowed);
        let again = fail(f, after_lock);
        assert_eq!(again.failures, LIMIT + 1);
        assert_eq!(again.locked_until, Some(after_lock + LOCKOUT));
    }

    #[test]
    fn a_running_lock_is_kept_when_the_window_restarts() {
        let locked = LoginFailures {
            failures: LIMIT,
            window_start: T0,
            locked_until: Some(T0 + 2 * WINDOW),
        };
        let next = fail(Some(locked), T0 + WINDOW + 5);
        assert_eq!(next.failures, 1);
        assert_eq!(next.locked_until, Some(T0 + 2 * WINDOW));
        // An ended lock is dropped when the window restarts.
        let ended = LoginFailures {
            locked_until: Some(T0 + 100),
            ..locked
        };
        assert_eq!(fail(Some(ended), T0 + WINDOW).locked_until, None);
    }

    #[test]
    fn decide_takes_the_longest_running_lock() {
        let a = LoginFailures {
            failures: 9,
            window_start: T0,
            locked_until: Some(T0 + 50),
        };
        let b = LoginFailures {
            locked_until: Some(T0 + 200),
            ..a
        };
        let ended = LoginFailures {
            locked_until: Some(T0 - 1),
            ..a
        };
        assert_eq!(
            decide(T0, &[Some(a), None, Some(b)]),
            ThrottleDecision::Locked {
                retry_after_secs: 200
            }
        );
        assert_eq!(decide(T0, &[Some(ended), None]), ThrottleDecision::Allowed);
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
    fn keys_lowercase_the_username_and_canonicalise_the_address() {
        assert_eq!(account_key("Alice"), "user:alice");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "ip:192.0.2.7");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(address_key(v6), "ip:2001:db8::1");
    }
}
