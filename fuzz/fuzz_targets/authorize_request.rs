#![no_main]
//! Authorization-request validation, `oauth::authorize::parse`, over a real
//! store (in-memory SQLite) with three registered clients. The input is
//! the query string of `GET /authorize`; the value `@hint@` of
//! `id_token_hint` is replaced by a valid ID token, so that path is reached.
//!
//! Invariants: never an internal error; an unknown client or an
//! unregistered redirect URI is an error page, never a redirect (RFC 6749
//! §4.1.2.1); every redirect goes to a URI registered for that client and
//! carries `error` and `iss` (RFC 9207); an accepted request has
//! `response_type=code`, scopes within the client's, S256 PKCE for a public
//! client, a well-formed challenge, and no `prompt=none` with other values.

use libfuzzer_sys::fuzz_target;
use tessera::oauth::authorize::{self, AuthorizeError};
use tessera::oauth::pkce;
use tessera::oauth::redirect;
use tessera::oauth::request::FormParams;
use tessera_fuzz::{Fixture, HINT_SUB, ISSUER};

const HINT_PLACEHOLDER: &str = "@hint@";

fuzz_target!(|data: &[u8]| {
    let fixture = Fixture::get();
    let Ok(params) = FormParams::parse(data) else {
        return;
    };
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            let v = if k == "id_token_hint" && v == HINT_PLACEHOLDER {
                fixture.id_token_hint.as_str()
            } else {
                v
            };
            (k.to_string(), v.to_string())
        })
        .collect();
    let Ok(params) = FormParams::from_pairs(pairs) else {
        return;
    };

    let ctx = fixture.state.authorize_context();
    let result = fixture.block_on(authorize::parse(&ctx, &params));
    let client = params.get("client_id").and_then(|id| fixture.client(id));
    let registered = |uri: &str| {
        client.is_some_and(|c| redirect::match_registered(&c.metadata.redirect_uris, uri).is_some())
    };
    // The redirect URI a response may use: the one requested, or the only
    // one registered when none was (RFC 6749 §3.1.2.3).
    let expected_uri = match (params.get("redirect_uri"), client) {
        (Some(uri), _) => Some(uri.to_string()),
        (None, Some(c)) if c.metadata.redirect_uris.len() == 1 => {
            Some(c.metadata.redirect_uris[0].clone())
        }
        _ => None,
    };

    match result {
        Err(AuthorizeError::Internal(e)) => panic!("internal error: {e}"),
        Err(AuthorizeError::Page(_)) => {}
        Err(AuthorizeError::Redirect(response, _)) => {
            assert!(client.is_some(), "redirected for an unknown client");
            assert!(
                registered(&response.redirect_uri),
                "redirected to {:?}",
                response.redirect_uri
            );
            assert_eq!(Some(&response.redirect_uri), expected_uri.as_ref());
            let get = |name: &str| {
                response
                    .params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            assert!(get("error").is_some_and(|e| !e.is_empty()));
            assert_eq!(get("iss"), Some(ISSUER));
            assert_eq!(get("state"), params.get("state"));
            assert!(get("code").is_none());
        }
        Ok(pending) => {
            let client = client.expect("accepted an unknown client");
            let req = &pending.request;
            assert_eq!(pending.client.client_id, client.client_id);
            assert_eq!(req.client_id, client.client_id);
            assert!(
                registered(&req.target.redirect_uri),
                "accepted {:?}",
                req.target.redirect_uri
            );
            assert_eq!(Some(&req.target.redirect_uri), expected_uri.as_ref());
            assert_eq!(req.redirect_uri_sent, params.get("redirect_uri").is_some());
            assert_eq!(req.target.state.as_deref(), params.get("state"));
            assert_eq!(params.get("response_type"), Some("code"));
            assert!(params.get("request").is_none() && params.get("request_uri").is_none());
            assert!(client.allows_grant("authorization_code"));
            assert!(
                req.scope.is_subset(&client.metadata.scope),
                "scope {}",
                req.scope
            );
            match &req.code_challenge {
                Some(c) => assert_eq!(
                    pkce::validate_challenge(Some(c), Some("S256")),
                    Ok(Some(c.clone()))
                ),
                None => assert!(!client.is_public(), "public client without PKCE"),
            }
            assert!(!(req.prompt.none && (req.prompt.login || req.prompt.consent)));
            assert!(req.max_age.is_none_or(|m| m >= 0));
            assert!(req.nonce.as_ref().is_none_or(|n| n.len() <= 512));
            // Only the token we signed names a user.
            match params.get("id_token_hint") {
                None => assert_eq!(req.hint_sub, None),
                Some(_) => assert_eq!(req.hint_sub.as_deref(), Some(HINT_SUB)),
            }
        }
    }
});
