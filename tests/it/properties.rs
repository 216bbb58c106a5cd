//! Property tests (proptest): the rules of scope parsing, redirect-URI
//! matching, PKCE and the key rotation plan, checked over many generated
//! inputs instead of a handful of examples. Pure functions only, so these
//! need no server and no database.

use std::collections::{BTreeSet, HashMap};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tessera::domain::scope::ScopeSet;
use tessera::jose::rotation::{self, KeyChanges, RotationPolicy, Trigger};
use tessera::jose::{KeyError, KeyState, SigningAlg, SigningKeyRecord};
use tessera::oauth::{pkce, redirect};

/// Modest case counts keep the suite fast; a failure prints the shrunk
/// input, so nothing is written into the tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn string_of(
    chars: Vec<char>,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(chars), len).prop_map(String::from_iter)
}

// ---------------------------------------------------------------- scopes

/// NQCHAR = %x21 / %x23-5B / %x5D-7E (RFC 6749 Appendix A.4).
fn is_nqchar(c: char) -> bool {
    c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c)
}

fn nqchars() -> Vec<char> {
    ('\x21'..='\x7e').filter(|&c| is_nqchar(c)).collect()
}

fn scope_token() -> impl Strategy<Value = String> {
    string_of(nqchars(), 1..=12)
}

/// Scope-like text with the characters that must be refused mixed in.
fn scope_text() -> impl Strategy<Value = String> {
    let mut alphabet = nqchars();
    alphabet.extend([
        ' ', ' ', ' ', '"', '\\', '\t', '\n', '\0', '\u{7f}', 'é', '\u{3000}',
    ]);
    string_of(alphabet, 0..=40)
}

proptest! {
    #![proptest_config(config())]

    /// parse(display(parse(s))) == parse(s), the canonical form is
    /// single-spaced, and a value is refused exactly when it holds a
    /// character outside NQCHAR and the space (RFC 6749 §3.3).
    #[test]
    fn scope_parse_display_round_trip(text in scope_text()) {
        let allowed = text.chars().all(|c| c == ' ' || is_nqchar(c));
        match ScopeSet::parse(&text) {
            Ok(set) => {
                prop_assert!(allowed, "{text:?} was accepted");
                let shown = set.to_string();
                prop_assert_eq!(ScopeSet::parse(&shown), Ok(set.clone()));
                prop_assert!(!shown.starts_with(' ') && !shown.ends_with(' ') && !shown.contains("  "));
                for token in set.iter() {
                    prop_assert!(!token.is_empty());
                    prop_assert!(token.chars().all(is_nqchar), "token {token:?}");
                }
                // Stored and sent as that same string.
                let json = serde_json::to_string(&set).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&json, &serde_json::to_string(&shown).unwrap());
                let back: ScopeSet = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, set);
            }
            Err(_) => prop_assert!(!allowed, "{text:?} was refused"),
        }
    }

    /// Order, repetition and extra spaces do not change the set.
    #[test]
    fn scope_order_and_duplicates_are_irrelevant(
        (tokens, shuffled) in prop::collection::vec(scope_token(), 0..8)
            .prop_flat_map(|t| (Just(t.clone()), Just(t).prop_shuffle())),
        repeat in 0usize..8,
        gaps in prop::collection::vec(1usize..4, 16),
    ) {
        let plain = ScopeSet::parse(&tokens.join(" ")).map_err(TestCaseError::fail)?;
        let mut messy = shuffled.clone();
        messy.extend(tokens.iter().take(repeat).cloned());
        let spaced: String = messy
            .iter()
            .zip(gaps.iter().cycle())
            .map(|(t, &gap)| format!("{}{t}", " ".repeat(gap)))
            .collect();
        let reordered = ScopeSet::parse(&format!("{spaced}  ")).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&reordered, &plain);
        let expected: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        prop_assert_eq!(plain.iter().collect::<BTreeSet<_>>(), expected);
    }
}

// --------------------------------------------------------- redirect URIs

fn lower_alnum() -> Vec<char> {
    ('a'..='z').chain('0'..='9').collect()
}

/// A DNS label that starts with a letter (so upper-casing changes it).
fn label() -> impl Strategy<Value = String> {
    (
        prop::sample::select(('a'..='z').collect::<Vec<_>>()),
        string_of(lower_alnum(), 0..=8),
    )
        .prop_map(|(first, rest)| format!("{first}{rest}"))
}

fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 2..=3).prop_map(|labels| labels.join("."))
}

/// `/seg/seg?k=v`: one or more path segments, an optional query.
fn path_and_query() -> impl Strategy<Value = String> {
    let mut segment_chars = lower_alnum();
    segment_chars.extend(['-', '.', '_', '~', 'A', 'Z']);
    (
        // No "." or ".." segments: loopback matching compares parsed URLs,
        // which resolve them (`http://127.0.0.1:1/./` matches
        // `http://127.0.0.1/`), so they are not a difference there.
        prop::collection::vec(
            string_of(segment_chars, 1..=8).prop_filter("a dot segment", |s| s != "." && s != ".."),
            1..=3,
        ),
        prop::option::of((label(), string_of(lower_alnum(), 0..=6))),
    )
        .prop_map(|(segments, query)| {
            let mut s = format!("/{}", segments.join("/"));
            if let Some((k, v)) = query {
                s.push_str(&format!("?{k}={v}"));
            }
            s
        })
}

fn https_uri() -> impl Strategy<Value = String> {
    (host(), prop::option::of(1u16..=65535), path_and_query()).prop_map(|(host, port, path)| {
        match port {
            Some(p) => format!("https://{host}:{p}{path}"),
            None => format!("https://{host}{path}"),
        }
    })
}

/// Ways an attacker varies a registered URI; every one must be refused.
#[derive(Debug, Clone)]
enum Change {
    AppendToPath(String),
    TrailingSlash,
    AddQuery(String),
    UpperCaseHost,
    SubdomainOfAttacker,
    UserinfoBeforeAttacker,
    OtherPort(u16),
    OtherScheme,
    PercentEncodeFirstPathChar,
    Fragment(String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        label().prop_map(Change::AppendToPath),
        Just(Change::TrailingSlash),
        label().prop_map(Change::AddQuery),
        Just(Change::UpperCaseHost),
        Just(Change::SubdomainOfAttacker),
        Just(Change::UserinfoBeforeAttacker),
        (1u16..=65535).prop_map(Change::OtherPort),
        Just(Change::OtherScheme),
        Just(Change::PercentEncodeFirstPathChar),
        string_of(lower_alnum(), 0..=6).prop_map(Change::Fragment),
    ]
}

/// `uri` is `scheme://authority/path…`; returns (scheme://, authority, /rest).
fn split_uri(uri: &str) -> (&str, &str, &str) {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let at = rest.find('/').unwrap_or(rest.len());
    (&uri[..scheme.len() + 3], &rest[..at], &rest[at..])
}

fn apply_change(uri: &str, change: &Change) -> String {
    let (scheme, authority, rest) = split_uri(uri);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let with_query = |path: &str| match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    match change {
        Change::AppendToPath(s) => {
            format!("{scheme}{authority}{}", with_query(&format!("{path}{s}")))
        }
        Change::TrailingSlash => format!("{scheme}{authority}{}", with_query(&format!("{path}/"))),
        Change::AddQuery(k) => match query {
            Some(_) => format!("{uri}&{k}=1"),
            None => format!("{uri}?{k}=1"),
        },
        Change::UpperCaseHost => format!("{scheme}{}{rest}", authority.to_ascii_uppercase()),
        Change::SubdomainOfAttacker => format!("{scheme}{authority}.attacker.example{rest}"),
        Change::UserinfoBeforeAttacker => format!("{scheme}{authority}@attacker.example{rest}"),
        Change::OtherPort(p) => {
            let bare = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            let new = format!("{bare}:{p}");
            if new == authority {
                format!("{scheme}{bare}:{}{rest}", p.wrapping_add(1).max(1))
            } else {
                format!("{scheme}{new}{rest}")
            }
        }
        Change::OtherScheme if scheme == "http://" => format!("https://{authority}{rest}"),
        Change::OtherScheme => format!("http://{authority}{rest}"),
        Change::PercentEncodeFirstPathChar => {
            let mut chars = path.chars();
            chars.next(); // the leading '/'
            match chars.next() {
                Some(c) => format!(
                    "{scheme}{authority}{}",
                    with_query(&format!("/%{:02X}{}", c as u32, chars.as_str()))
                ),
                None => format!("{scheme}{authority}/%2F"),
            }
        }
        Change::Fragment(f) => format!("{uri}#{f}"),
    }
}

fn loopback_host() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["127.0.0.1", "[::1]"])
}

proptest! {
    #![proptest_config(config())]

    /// An https URI registers, matches itself, and nothing that differs from
    /// it in path, query, host, port, scheme or fragment (RFC 9700 §4.1.3:
    /// simple string comparison).
    #[test]
    fn https_redirect_uri_matches_only_itself(uri in https_uri(), change in change()) {
        prop_assert_eq!(redirect::validate_registered_uri(&uri), Ok(()));
        let registered = vec![uri.clone()];
        prop_assert_eq!(redirect::match_registered(&registered, &uri), Some(uri.as_str()));
        let changed = apply_change(&uri, &change);
        prop_assert_ne!(&changed, &uri);
        prop_assert_eq!(redirect::match_registered(&registered, &changed), None, "{:?}", changed);
    }

    /// A loopback IP redirect URI matches on any port (RFC 8252 §7.3), but
    /// only with the same path and query, over http, on the same IP literal.
    #[test]
    fn loopback_redirect_uri_matches_any_port_only(
        ip in loopback_host(),
        registered_port in prop::option::of(1u16..=65535),
        port in 1u16..=65535,
        path in path_and_query(),
        change in change(),
    ) {
        let registered_uri = match registered_port {
            Some(p) => format!("http://{ip}:{p}{path}"),
            None => format!("http://{ip}{path}"),
        };
        prop_assert_eq!(redirect::validate_registered_uri(&registered_uri), Ok(()));
        let registered = vec![registered_uri.clone()];
        let requested = format!("http://{ip}:{port}{path}");
        prop_assert_eq!(
            redirect::match_registered(&registered, &requested),
            Some(registered_uri.as_str())
        );
        let changed = apply_change(&requested, &change);
        // An IP literal has no case to change.
        prop_assert!(changed != requested || matches!(change, Change::UpperCaseHost));
        let expected = match change {
            // The port is the one thing allowed to vary.
            Change::OtherPort(_) | Change::UpperCaseHost => Some(registered_uri.as_str()),
            _ => None,
        };
        prop_assert_eq!(redirect::match_registered(&registered, &changed), expected, "{:?}", changed);
        // Another loopback spelling is another URI.
        let other_ip = if ip == "127.0.0.1" { "[::1]" } else { "127.0.0.1" };
        for other in [
            format!("http://{other_ip}:{port}{path}"),
            format!("http://localhost:{port}{path}"),
            format!("http://127.0.0.2:{port}{path}"),
            format!("https://{ip}:{port}{path}"),
        ] {
            prop_assert_eq!(redirect::match_registered(&registered, &other), None, "{:?}", other);
        }
    }

    /// A URI with a fragment never registers (RFC 6749 §3.1.2), even an
    /// empty one.
    #[test]
    fn fragments_never_register(
        uri in prop_oneof![
            https_uri(),
            (loopback_host(), path_and_query()).prop_map(|(ip, p)| format!("http://{ip}{p}")),
        ],
        fragment in string_of(lower_alnum(), 0..=6),
    ) {
        let with_fragment = format!("{uri}#{fragment}");
        prop_assert!(redirect::validate_registered_uri(&with_fragment).is_err());
    }
}

// ------------------------------------------------------------------ PKCE

/// RFC 7636 §4.1: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
fn unreserved() -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['-', '.', '_', '~'])
        .collect()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

proptest! {
    #![proptest_config(config())]

    /// Any verifier of 43–128 unreserved characters verifies against its own
    /// S256 challenge, which the authorization endpoint accepts; another
    /// verifier does not.
    #[test]
    fn pkce_s256_verifies_its_own_verifier_only(
        verifier in string_of(unreserved(), 43..=128),
        other in string_of(unreserved(), 43..=128),
    ) {
        let challenge = s256(&verifier);
        prop_assert_eq!(
            pkce::validate_challenge(Some(&challenge), Some("S256")),
            Ok(Some(challenge.clone()))
        );
        prop_assert!(pkce::verify(&verifier, &challenge));
        prop_assert_eq!(pkce::verify(&other, &challenge), other == verifier);
    }

    /// RFC 7636 §4.1: a verifier shorter than 43 or longer than 128
    /// characters, or with a character outside the set, is refused even
    /// when its hash matches.
    #[test]
    fn pkce_refuses_malformed_verifiers(
        short in string_of(unreserved(), 0..=42),
        long in string_of(unreserved(), 129..=200),
        (good, at) in string_of(unreserved(), 43..=128).prop_flat_map(|v| {
            let len = v.len();
            (Just(v), 0..len)
        }),
        bad in prop::sample::select(vec!['+', '/', '=', ' ', '%', '!', 'é', '\0']),
    ) {
        prop_assert!(!pkce::verify(&short, &s256(&short)));
        prop_assert!(!pkce::verify(&long, &s256(&long)));
        let mut broken: Vec<char> = good.chars().collect();
        broken[at] = bad;
        let broken: String = broken.into_iter().collect();
        prop_assert!(!pkce::verify(&broken, &s256(&broken)));
    }

    /// `validate_challenge` accepts only S256 with a 43-character base64url
    /// value.
    #[test]
    fn pkce_challenge_validation(
        challenge in prop_oneof![
            string_of(unreserved(), 0..=42),
            string_of(unreserved(), 44..=130),
            string_of(unreserved(), 43..=43),
            (string_of(unreserved(), 42..=42), prop::sample::select(vec!['+', '/', '=', ' ', '%']))
                .prop_map(|(s, c)| format!("{s}{c}")),
        ],
        method in prop_oneof![
            Just("S256".to_string()),
            Just("plain".to_string()),
            Just("s256".to_string()),
            string_of(unreserved(), 0..=6),
        ],
    ) {
        let well_formed = challenge.len() == 43
            && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let result = pkce::validate_challenge(Some(&challenge), Some(&method));
        if method == "S256" && well_formed {
            prop_assert_eq!(result, Ok(Some(challenge.clone())));
        } else {
            prop_assert!(result.is_err(), "{challenge:?} with {method:?} accepted");
        }
        prop_assert!(pkce::validate_challenge(Some(&challenge), None).is_err());
        prop_assert!(pkce::validate_challenge(None, Some(&method)).is_err());
    }
}

// --------------------------------------------------------- key rotation

const DAY: i64 = 86_400;
const NOW: i64 = 2_000_000_000;

fn policy() -> impl Strategy<Value = RotationPolicy> {
    (1..=60 * DAY, 0..=2 * DAY, 60..=30 * DAY).prop_map(
        |(rotation_interval, jwks_max_age, longest_token_lifetime)| RotationPolicy {
            rotation_interval,
            jwks_max_age,
            longest_token_lifetime,
        },
    )
}

/// An age in seconds: anywhere, or close to one of the policy's thresholds
/// (where an off-by-one would show).
fn age(policy: RotationPolicy) -> impl Strategy<Value = i64> {
    let near = |t: i64| (t - 2).max(0)..=t + 2;
    prop_oneof![
        0..=200 * DAY,
        near(policy.rotation_interval),
        near(policy.jwks_max_age),
        near(policy.longest_token_lifetime),
        near(policy.longest_token_lifetime + 300),
        near(policy.longest_token_lifetime + 3600),
    ]
}

/// The keys of one algorithm as the lifecycle leaves them: at most one
/// current, at most one next, any number of retired keys.
fn keys_of(
    alg: SigningAlg,
    policy: RotationPolicy,
) -> impl Strategy<Value = Vec<SigningKeyRecord>> {
    (
        prop::option::of((age(policy), 0..=DAY)),
        prop::option::of(age(policy)),
        prop::collection::vec((age(policy), 0..=60 * DAY, 0..=DAY), 0..=3),
    )
        .prop_map(move |(current, next, retired)| {
            let record =
                |kid: String, state, created_at, activated_at, retired_at| SigningKeyRecord {
                    kid,
                    alg,
                    state,
                    private_key: vec![],
                    public_jwk: "{}".into(),
                    created_at,
                    activated_at,
                    retired_at,
                };
            let mut keys = Vec::new();
            if let Some((active_for, waited)) = current {
                let activated = NOW - active_for;
                keys.push(record(
                    format!("{alg}-current"),
                    KeyState::Current,
                    activated - waited,
                    Some(activated),
                    None,
                ));
            }
            if let Some(published_for) = next {
                keys.push(record(
                    format!("{alg}-next"),
                    KeyState::Next,
                    NOW - published_for,
                    None,
                    None,
                ));
            }
            for (i, (retired_for, signed_for, waited)) in retired.into_iter().enumerate() {
                let retired_at = NOW - retired_for;
                let activated = retired_at - signed_for;
                keys.push(record(
                    format!("{alg}-retired-{i}"),
                    KeyState::Retired,
                    activated - waited,
                    Some(activated),
                    Some(retired_at),
                ));
            }
            keys
        })
}

fn key_set() -> impl Strategy<Value = (RotationPolicy, Vec<SigningKeyRecord>)> {
    policy().prop_flat_map(|policy| {
        (
            Just(policy),
            (
                keys_of(SigningAlg::RS256, policy),
                keys_of(SigningAlg::ES256, policy),
            )
                .prop_map(|(mut rs, es)| {
                    rs.extend(es);
                    rs
                }),
        )
    })
}

fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![3 => Just(Trigger::Scheduled), 1 => Just(Trigger::Manual)]
}

/// Runs `plan` with a stand-in generator (the plan never looks inside the
/// key material) whose kids are fresh.
fn plan(
    keys: &[SigningKeyRecord],
    now: i64,
    policy: RotationPolicy,
    trigger: Trigger,
    counter: &mut u64,
) -> Result<KeyChanges, TestCaseError> {
    let mut generate = |alg: SigningAlg| -> Result<SigningKeyRecord, KeyError> {
        *counter += 1;
        Ok(SigningKeyRecord {
            kid: format!("generated-{alg}-{counter}"),
            alg,
            state: KeyState::Next,
            private_key: vec![],
            public_jwk: "{}".into(),
            created_at: now,
            activated_at: None,
            retired_at: None,
        })
    };
    rotation::plan(keys, now, policy, trigger, &mut generate)
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

fn one(keys: &[SigningKeyRecord], alg: SigningAlg, state: KeyState) -> Option<&SigningKeyRecord> {
    keys.iter().find(|k| k.alg == alg && k.state == state)
}

/// What must hold of one planning step from `before` (well formed: at most
/// one current and one next per algorithm) to `after`.
fn check_step(
    before: &[SigningKeyRecord],
    changes: &KeyChanges,
    after: &[SigningKeyRecord],
    now: i64,
    policy: RotationPolicy,
    trigger: Trigger,
) -> Result<(), TestCaseError> {
    let old: HashMap<&str, &SigningKeyRecord> =
        before.iter().map(|k| (k.kid.as_str(), k)).collect();

    // Updates move existing keys forward only: next -> current -> retired.
    for updated in &changes.update {
        let Some(was) = old.get(updated.kid.as_str()) else {
            return Err(TestCaseError::fail(format!(
                "update of unknown key {}",
                updated.kid
            )));
        };
        match (was.state, updated.state) {
            (KeyState::Next, KeyState::Current) => prop_assert_eq!(updated.activated_at, Some(now)),
            (KeyState::Current, KeyState::Retired) => {
                prop_assert_eq!(updated.retired_at, Some(now))
            }
            (from, to) => prop_assert!(false, "{}: {from:?} -> {to:?}", updated.kid),
        }
        prop_assert_eq!(updated.created_at, was.created_at);
    }
    for inserted in &changes.insert {
        prop_assert!(
            !old.contains_key(inserted.kid.as_str()),
            "inserted twice: {}",
            inserted.kid
        );
        prop_assert_eq!(inserted.created_at, now);
    }

    // A key is deleted only once retired for longer than any token it
    // signed lives, and not kept for ever after that.
    for kid in &changes.delete {
        let Some(was) = old.get(kid.as_str()) else {
            return Err(TestCaseError::fail(format!("delete of unknown key {kid}")));
        };
        prop_assert_eq!(
            was.state,
            KeyState::Retired,
            "{} deleted while {:?}",
            kid,
            was.state
        );
        let retired_for = was.retired_at.map_or(0, |t| now - t);
        prop_assert!(
            retired_for >= policy.longest_token_lifetime,
            "{kid} deleted {retired_for}s after retirement, tokens live {}s",
            policy.longest_token_lifetime
        );
    }
    for key in before {
        if key.state == KeyState::Retired
            && key
                .retired_at
                .is_some_and(|t| now - t >= policy.longest_token_lifetime + 3600)
        {
            prop_assert!(
                changes.delete.contains(&key.kid),
                "{} outlived its tokens by an hour",
                key.kid
            );
        }
    }

    let mut expected_warnings = 0;
    for alg in SigningAlg::ALL {
        // Afterwards exactly one key signs and exactly one waits.
        let count = |state| {
            after
                .iter()
                .filter(|k| k.alg == alg && k.state == state)
                .count()
        };
        prop_assert_eq!(
            count(KeyState::Current),
            1,
            "{} current {} keys",
            alg,
            count(KeyState::Current)
        );
        prop_assert_eq!(
            count(KeyState::Next),
            1,
            "{} next {} keys",
            alg,
            count(KeyState::Next)
        );

        let old_current = one(before, alg, KeyState::Current);
        let old_next = one(before, alg, KeyState::Next);
        let new_current = one(after, alg, KeyState::Current).map(|k| k.kid.as_str());
        let rotated = new_current != old_current.map(|k| k.kid.as_str());

        // Whatever signed before is still published, so its tokens verify.
        if let Some(cur) = old_current {
            prop_assert!(
                after.iter().any(|k| k.kid == cur.kid),
                "{} vanished",
                cur.kid
            );
        }

        match (old_current, trigger) {
            (Some(cur), Trigger::Scheduled) => {
                let due =
                    now - cur.activated_at.unwrap_or(cur.created_at) >= policy.rotation_interval;
                let seen = old_next.is_some_and(|n| now - n.created_at > policy.jwks_max_age);
                prop_assert_eq!(rotated, due && seen, "{} due {} seen {}", alg, due, seen);
                if rotated {
                    // Only a key every JWKS cache has had time to fetch.
                    prop_assert_eq!(new_current, old_next.map(|k| k.kid.as_str()));
                }
            }
            (Some(cur), Trigger::Manual) => {
                prop_assert!(rotated, "manual rotation kept {}", cur.kid);
                match old_next {
                    Some(n) => {
                        prop_assert_eq!(new_current, Some(n.kid.as_str()));
                        if now - n.created_at <= policy.jwks_max_age {
                            expected_warnings += 1;
                        }
                    }
                    None => expected_warnings += 1,
                }
            }
            (None, _) => {
                // Nothing signed: something must, at once; a published next key first.
                if let Some(n) = old_next {
                    prop_assert_eq!(new_current, Some(n.kid.as_str()));
                    if trigger == Trigger::Manual && now - n.created_at <= policy.jwks_max_age {
                        expected_warnings += 1;
                    }
                }
            }
        }
    }
    // The schedule never needs to warn; a manual rotation warns once per
    // algorithm whose new signing key caches may not know yet.
    prop_assert_eq!(
        changes.warnings.len(),
        expected_warnings,
        "{:?}",
        changes.warnings
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// For any well-formed key set, time and trigger, one plan keeps every
    /// lifecycle rule, and a second scheduled plan at the same instant has
    /// nothing left to do.
    #[test]
    fn rotation_plan_keeps_the_lifecycle_rules(
        (policy, keys) in key_set(),
        trigger in trigger(),
    ) {
        let mut counter = 0;
        let changes = plan(&keys, NOW, policy, trigger, &mut counter)?;
        let mut after = keys.clone();
        rotation::apply(&mut after, &changes);
        check_step(&keys, &changes, &after, NOW, policy, trigger)?;

        let again = plan(&after, NOW, policy, Trigger::Scheduled, &mut counter)?;
        prop_assert!(again.is_empty(), "second plan at the same time: {again:?}");
    }

    /// A whole life from an empty database: random waits and triggers. Each
    /// step keeps the rules, and a key that signed a token stays published
    /// for as long as that token lives.
    #[test]
    fn rotation_over_time_never_unpublishes_a_live_token_key(
        policy in policy(),
        steps in prop::collection::vec((0..=45 * DAY, trigger()), 1..30),
    ) {
        let mut keys: Vec<SigningKeyRecord> = Vec::new();
        let mut counter = 0;
        let mut now = NOW;
        // kid -> the last time it signed.
        let mut last_signed: HashMap<String, i64> = HashMap::new();
        for (wait, trigger) in steps {
            now += wait;
            for k in keys.iter().filter(|k| k.state == KeyState::Current) {
                last_signed.insert(k.kid.clone(), now);
            }
            let changes = plan(&keys, now, policy, trigger, &mut counter)?;
            let before = keys.clone();
            rotation::apply(&mut keys, &changes);
            check_step(&before, &changes, &keys, now, policy, trigger)?;
            for (kid, signed_at) in &last_signed {
                if now - signed_at < policy.longest_token_lifetime {
                    prop_assert!(keys.iter().any(|k| &k.kid == kid), "{kid} signed at {signed_at}, gone at {now}");
                }
            }
        }
    }
}
