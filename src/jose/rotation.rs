//! The key rotation schedule, as a pure function of the stored keys and the
//! time, so that it is unit-tested with a fixed clock and applied by the
//! store atomically under a lock (one instance rotates, never two).
//!
//! Life of a key: `next` (published, not signing) -> `current` (signs) ->
//! `retired` (published until every token it signed has expired) -> deleted.

use super::{KeyError, KeyState, SigningAlg, SigningKeyRecord};
use crate::clock::UnixTime;

/// Extra time a retired key stays published beyond the longest token
/// lifetime, for clock skew between us and resource servers.
const RETIRED_KEY_LEEWAY_SECS: i64 = 300;

#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    pub rotation_interval: i64,
    pub jwks_max_age: i64,
    pub longest_token_lifetime: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The in-server schedule: rotate only when due, and only to a `next`
    /// key that every JWKS cache has had time to see.
    Scheduled,
    /// `tessera keys rotate`: the operator's explicit choice, at once.
    Manual,
}

/// What to write, all in one transaction.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub insert: Vec<SigningKeyRecord>,
    /// Existing keys with a new state and timestamps.
    pub update: Vec<SigningKeyRecord>,
    pub delete: Vec<String>,
    /// Said to the operator (stderr for the CLI, the log for the server).
    pub warnings: Vec<String>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Decides what the schedule (or the operator) changes now. `generate`
/// makes a new key in state `Next`.
pub fn plan(
    keys: &[SigningKeyRecord],
    now: UnixTime,
    policy: RotationPolicy,
    trigger: Trigger,
    generate: &mut dyn FnMut(SigningAlg) -> Result<SigningKeyRecord, KeyError>,
) -> Result<KeyChanges, KeyError> {
    let mut changes = KeyChanges::default();
    for alg in SigningAlg::ALL {
        let of = |state: KeyState| {
            keys.iter()
                .filter(move |k| k.alg == alg && k.state == state)
                .max_by_key(|k| (k.activated_at, k.created_at))
        };
        let current = of(KeyState::Current);
        let next = of(KeyState::Next);

        let promote = |key: SigningKeyRecord, changes: &mut KeyChanges, is_new: bool| {
            let mut key = key;
            key.state = KeyState::Current;
            key.activated_at = Some(now);
            if is_new {
                changes.insert.push(key);
            } else {
                changes.update.push(key);
            }
        };

        let rotate = match (current, trigger) {
            (None, _) => true,
            (Some(_), Trigger::Manual) => true,
            (Some(cur), Trigger::Scheduled) => {
                let due =
                    now - cur.activated_at.unwrap_or(cur.created_at) >= policy.rotation_interval;
                // Only promote a key every cache has seen: published for
                // longer than the JWKS max-age.
                let seen = next.is_some_and(|n| now - n.created_at > policy.jwks_max_age);
                due && seen
            }
        };

        if rotate {
            if let Some(cur) = current {
                let mut retired = cur.clone();
                retired.state = KeyState::Retired;
                retired.retired_at = Some(now);
                changes.update.push(retired);
            }
            match next {
                Some(n) => {
                    if trigger == Trigger::Manual && now - n.created_at <= policy.jwks_max_age {
                        changes.warnings.push(format!(
                            "the new {alg} key {} was published {}s ago, less than the JWKS max-age of {}s: \
                             resource servers with a cached JWKS may reject its tokens until they refetch",
                            n.kid,
                            now - n.created_at,
                            policy.jwks_max_age
                        ));
                    }
                    promote(n.clone(), &mut changes, false);
                }
                None => {
                    if current.is_some() {
                        changes.warnings.push(format!(
                            "no published next {alg} key: a fresh key signs at once and \
                             resource servers with a cached JWKS may reject its tokens until they refetch"
                        ));
                    }
                    promote(generate(alg)?, &mut changes, true);
                }
            }
            changes.insert.push(generate(alg)?);
        } else if next.is_none() {
            changes.insert.push(generate(alg)?);
        }
    }

    let retire_after = policy.longest_token_lifetime + RETIRED_KEY_LEEWAY_SECS;
    for key in keys {
        if key.state == KeyState::Retired && key.retired_at.is_some_and(|t| now - t >= retire_after)
        {
            changes.delete.push(key.kid.clone());
        }
    }
    Ok(changes)
}

/// Applies `changes` to a list of keys in memory: what the store does in SQL.
pub fn apply(keys: &mut Vec<SigningKeyRecord>, changes: &KeyChanges) {
    keys.retain(|k| !changes.delete.contains(&k.kid));
    for updated in &changes.update {
        if let Some(k) = keys.iter_mut().find(|k| k.kid == updated.kid) {
            *k = updated.clone();
        }
    }
    keys.extend(changes.insert.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FixedClock};

    const DAY: i64 = 86_400;
    const POLICY: RotationPolicy = RotationPolicy {
        rotation_interval: 30 * DAY,
        jwks_max_age: 3600,
        longest_token_lifetime: 3600,
    };

    /// A stand-in key: the plan never looks inside the key material.
    fn fake_generator(
        clock: &FixedClock,
    ) -> impl FnMut(SigningAlg) -> Result<SigningKeyRecord, KeyError> + '_ {
        let mut n = 0;
        move |alg| {
            n += 1;
            Ok(SigningKeyRecord {
                kid: format!("{alg}-{n}-{}", clock.now()),
                alg,
                state: KeyState::Next,
                private_key: vec![],
                public_jwk: "{}".into(),
                created_at: clock.now(),
                activated_at: None,
                retired_at: None,
            })
        }
    }

    fn step(keys: &mut Vec<SigningKeyRecord>, clock: &FixedClock, trigger: Trigger) -> KeyChanges {
        let changes = plan(
            keys,
            clock.now(),
            POLICY,
            trigger,
            &mut fake_generator(clock),
        )
        .unwrap();
        apply(keys, &changes);
        changes
    }

    fn states(keys: &[SigningKeyRecord], alg: SigningAlg) -> Vec<(KeyState, String)> {
        let mut v: Vec<_> = keys
            .iter()
            .filter(|k| k.alg == alg)
            .map(|k| (k.state, k.kid.clone()))
            .collect();
        v.sort_by_key(|(s, k)| (s.as_str(), k.clone()));
        v
    }

    fn kid(keys: &[SigningKeyRecord], alg: SigningAlg, state: KeyState) -> String {
        keys.iter()
            .find(|k| k.alg == alg && k.state == state)
            .map(|k| k.kid.clone())
            .unwrap()
    }

    #[test]
    fn first_start_creates_a_current_and_a_next_key_per_algorithm() {
        let clock = FixedClock::new(1_000_000);
        let mut keys = vec![];
        step(&mut keys, &clock, Trigger::Scheduled);
        for alg in SigningAlg::ALL {
            let s = states(&keys, alg);
            assert_eq!(s.len(), 2);
            assert!(s.iter().any(|(st, _)| *st == KeyState::Current));
            assert!(s.iter().any(|(st, _)| *st == KeyState::Next));
        }
        // A second run right after changes nothing.
        assert!(step(&mut keys, &clock, Trigger::Scheduled).is_empty());
    }

    #[test]
    fn scheduled_rotation_promotes_the_published_next_key_when_due() {
        let clock = FixedClock::new(1_000_000);
        let mut keys = vec![];
        step(&mut keys, &clock, Trigger::Scheduled);
        let first = kid(&keys, SigningAlg::RS256, KeyState::Current);
        let next = kid(&keys, SigningAlg::RS256, KeyState::Next);

        clock.advance(30 * DAY - 1);
        assert!(
            step(&mut keys, &clock, Trigger::Scheduled).is_empty(),
            "not due yet"
        );

        clock.advance(1);
        step(&mut keys, &clock, Trigger::Scheduled);
        // The key that now signs is the one that was already published.
        assert_eq!(kid(&keys, SigningAlg::RS256, KeyState::Current), next);
        assert_eq!(kid(&keys, SigningAlg::RS256, KeyState::Retired), first);
        assert_ne!(kid(&keys, SigningAlg::RS256, KeyState::Next), next);
        assert_eq!(
            keys.iter().filter(|k| k.state == KeyState::Current).count(),
            2
        );
    }

    #[test]
    fn schedule_waits_until_next_key_outlived_the_jwks_max_age() {
        let clock = FixedClock::new(1_000_000);
        let mut keys = vec![];
        step(&mut keys, &clock, Trigger::Scheduled);
        // The operator rotates by hand: the new next key is brand new.
        clock.advance(10);
        step(&mut keys, &clock, Trigger::Manual);
        let young_next = kid(&keys, SigningAlg::ES256, KeyState::Next);
        // Much later the schedule is due, yet the next key is only
        // published for (rotation interval) > max-age, so it rotates; but if
        // the next key were younger than max-age it must wait.
        let current = kid(&keys, SigningAlg::ES256, KeyState::Current);
        for k in keys.iter_mut() {
            if k.kid == current {
                k.activated_at = Some(clock.now() - 31 * DAY);
            }
        }
        assert!(step(&mut keys, &clock, Trigger::Scheduled).is_empty());
        clock.advance(3600);
        assert!(
            step(&mut keys, &clock, Trigger::Scheduled).is_empty(),
            "max-age not yet exceeded"
        );
        clock.advance(1);
        step(&mut keys, &clock, Trigger::Scheduled);
        assert_eq!(kid(&keys, SigningAlg::ES256, KeyState::Current), young_next);
    }

    #[test]
    fn manual_rotation_acts_at_once_and_warns_about_a_young_next_key() {
        let clock = FixedClock::new(1_000_000);
        let mut keys = vec![];
        step(&mut keys, &clock, Trigger::Scheduled);
        let next = kid(&keys, SigningAlg::RS256, KeyState::Next);
        clock.advance(60);
        let changes = step(&mut keys, &clock, Trigger::Manual);
        assert_eq!(kid(&keys, SigningAlg::RS256, KeyState::Current), next);
        assert_eq!(changes.warnings.len(), 2, "{:?}", changes.warnings);

        clock.advance(2 * 3600);
        let changes = step(&mut keys, &clock, Trigger::Manual);
        assert!(changes.warnings.is_empty());
    }

    #[test]
    fn retired_keys_are_deleted_after_the_longest_token_lifetime() {
        let clock = FixedClock::new(1_000_000);
        let mut keys = vec![];
        step(&mut keys, &clock, Trigger::Scheduled);
        clock.advance(2 * 3600);
        step(&mut keys, &clock, Trigger::Manual);
        let retired = kid(&keys, SigningAlg::RS256, KeyState::Retired);

        clock.advance(3600 + RETIRED_KEY_LEEWAY_SECS - 1);
        step(&mut keys, &clock, Trigger::Scheduled);
        assert!(
            keys.iter().any(|k| k.kid == retired),
            "tokens it signed may still be alive"
        );
        clock.advance(1);
        let changes = step(&mut keys, &clock, Trigger::Scheduled);
        assert!(changes.delete.contains(&retired));
        assert!(!keys.iter().any(|k| k.kid == retired));
    }
}
