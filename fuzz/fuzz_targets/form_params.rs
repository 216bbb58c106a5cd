#![no_main]
//! The form and query parser, `FormParams::parse`: the first code that
//! reads attacker bytes at every endpoint (the query of /authorize and
//! /logout, the bodies of /token, /introspect, /revoke, /login).
//!
//! Invariants: it accepts exactly what `application/x-www-form-urlencoded`
//! decodes to at most `MAX_PARAMETERS` pairs without NUL and without a
//! repeated name (RFC 6749 §3.1, §3.2) other than the repeatable ones
//! (`REPEATABLE`: RFC 8707 `resource`), keeps those pairs in order, never
//! holds two values for any other name, and treats an empty value as
//! omitted.

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tessera::domain::ScopeSet;
use tessera::oauth::request::{FormParams, MAX_PARAMETERS, REPEATABLE};

fuzz_target!(|data: &[u8]| {
    let decoded: Vec<(String, String)> = url::form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut names = HashSet::new();
    let acceptable = decoded.len() <= MAX_PARAMETERS
        && decoded
            .iter()
            .all(|(k, v)| !k.contains('\0') && !v.contains('\0'))
        && decoded
            .iter()
            .all(|(k, _)| names.insert(k.as_str()) || REPEATABLE.contains(&k.as_str()));

    let params = match FormParams::parse(data) {
        Ok(params) => params,
        Err(err) => {
            assert!(!acceptable, "refused a valid form: {err:?}");
            return;
        }
    };
    assert!(
        acceptable,
        "accepted a form that breaks the rules: {decoded:?}"
    );

    let pairs: Vec<(&str, &str)> = params.iter().collect();
    let expected: Vec<(&str, &str)> = decoded
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(pairs, expected);

    let mut seen = HashSet::new();
    for (name, value) in &pairs {
        let first = seen.insert(*name);
        if REPEATABLE.contains(name) {
            // Every non-empty value, in order; `get` is the first of them.
            let values: Vec<&str> = pairs
                .iter()
                .filter(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(params.all(name).collect::<Vec<_>>(), values);
            assert_eq!(params.get(name), values.first().copied());
            continue;
        }
        assert!(first, "two values for {name:?}");
        let got = params.get(name);
        if value.is_empty() {
            assert_eq!(got, None, "an empty {name:?} counts as omitted");
            assert!(params.require(name).is_err());
        } else {
            assert_eq!(got, Some(*value));
            assert_eq!(params.require(name).ok(), Some(*value));
        }
    }

    // The scope parameter, as every endpoint reads it.
    if let Ok(Some(scope)) = params.scope() {
        let shown = scope.to_string();
        assert_eq!(ScopeSet::parse(&shown).as_ref(), Ok(&scope));
        assert!(scope.iter().all(|t| !t.is_empty() && !t.contains(' ')));
    }
});
