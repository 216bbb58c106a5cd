#![no_main]
//! HTTP Basic client authentication (RFC 6749 §2.3.1), through the public
//! entry point `client_auth::extract`.
//!
//! Invariants: any header and body give `Ok` or a typed error, never a
//! panic; credentials read from a header are `client_secret_basic` with a
//! non-empty id and no NUL; well-formed credentials (each part
//! form-urlencoded, joined by ':', base64) decode to exactly the id and
//! secret that were encoded; a body `client_id` that differs from the
//! header's is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tessera::error::ErrorCode;
use tessera::oauth::client_auth::{self, CredentialSource, client_secret_basic};
use tessera::oauth::request::FormParams;

#[derive(Arbitrary, Debug)]
enum Case {
    /// Any `Authorization` header with any body.
    Raw { header: String, body: Vec<u8> },
    /// Correctly encoded credentials, maybe with a body `client_id`.
    Encoded {
        id: String,
        secret: String,
        scheme: Scheme,
        body_client_id: Option<String>,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Scheme {
    Basic,
    Lower,
    Upper,
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn check_presented(
    result: &Result<Option<client_auth::PresentedCredentials>, tessera::error::OAuthError>,
    params: &FormParams,
) {
    if let Ok(found) = result {
        let presented = found
            .as_ref()
            .expect("a header was sent, so credentials are found");
        assert_eq!(presented.method, client_secret_basic::NAME);
        assert!(!presented.client_id.is_empty());
        assert!(!presented.client_id.contains('\0'));
        let secret = presented
            .secret
            .as_deref()
            .expect("Basic always carries a secret");
        assert!(!secret.contains('\0'));
        if let Some(body_id) = params.get("client_id") {
            assert_eq!(
                body_id, presented.client_id,
                "a different body client_id was accepted"
            );
        }
        assert!(
            params.get("client_secret").is_none(),
            "two methods at once were accepted"
        );
    }
}

fuzz_target!(|case: Case| {
    match case {
        Case::Raw { header, body } => {
            let Ok(params) = FormParams::parse(&body) else {
                return;
            };
            let result = client_auth::extract(&CredentialSource {
                authorization: Some(&header),
                params: &params,
            });
            check_presented(&result, &params);
        }
        Case::Encoded {
            id,
            secret,
            scheme,
            body_client_id,
        } => {
            let scheme = match scheme {
                Scheme::Basic => "Basic",
                Scheme::Lower => "basic",
                Scheme::Upper => "BASIC",
            };
            let encoded = STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
            let header = format!("{scheme} {encoded}");
            let body = body_client_id
                .as_deref()
                .map(|b| format!("client_id={}", form_encode(b)))
                .unwrap_or_default();
            let Ok(params) = FormParams::parse(body.as_bytes()) else {
                return;
            };
            let result = client_auth::extract(&CredentialSource {
                authorization: Some(&header),
                params: &params,
            });
            check_presented(&result, &params);

            let well_formed = !id.is_empty() && !id.contains('\0') && !secret.contains('\0');
            let conflicting = params.get("client_id").is_some_and(|b| b != id);
            match result {
                Ok(found) => {
                    assert!(well_formed && !conflicting);
                    let presented = found.expect("credentials");
                    assert_eq!(presented.client_id, id);
                    assert_eq!(presented.secret.as_deref(), Some(secret.as_str()));
                }
                Err(err) if !well_formed => assert_eq!(err.code, ErrorCode::InvalidClient),
                Err(err) => {
                    assert!(conflicting, "well-formed credentials refused: {err:?}");
                    assert_eq!(err.code, ErrorCode::InvalidRequest);
                }
            }
        }
    }
});
