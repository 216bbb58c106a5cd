#![no_main]
//! The JWT access-token path: `access_token::verify_signature`,
//! `access_token::validate` (signature, `jti` revocation list, grant) and
//! `introspect::introspect`, over the fixture's generated keys and store.
//!
//! Invariants: a string we did not sign never verifies; changing a signed
//! token's header or payload makes it invalid (a changed signature may at
//! most verify to the very same claims); a token we signed verifies exactly
//! when its `typ` is `at+jwt` (RFC 9068 §2.1), its `iss` ours and its `exp`
//! in the future, and is active exactly when, in addition, its `jti` is not
//! revoked, its grant (if any) is live and its client is still registered
//! (issue 7.6: deleting a client ends its tokens); introspection never says
//! `active: true` for a token `validate` refuses (RFC 7662 §2.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tessera::jose::SigningAlg;
use tessera::oauth::access_token::{self, ACCESS_TOKEN_TYP, AccessTokenClaims, Audience};
use tessera::oauth::introspect::{self, Introspector};
use tessera::service::audit::LogAuditSink;
use tessera_fuzz::{
    Fixture, ISSUER, LIVE_GRANT, MACHINE_CLIENT, NATIVE_CLIENT, NOW, REVOKED_GRANT, REVOKED_JTI,
    WEB_CLIENT,
};

#[derive(Arbitrary, Debug)]
enum Case {
    /// Any string presented as a token.
    Raw(String),
    /// A token we signed, with claims and header chosen by the input.
    Signed(Claims),
    /// A token we signed, with some of its three parts replaced.
    Tampered {
        claims: Claims,
        header: Option<String>,
        payload: Option<String>,
        signature: Option<Vec<u8>>,
    },
}

#[derive(Arbitrary, Debug)]
struct Claims {
    es256: bool,
    typ: Typ,
    foreign_issuer: Option<String>,
    exp_offset: i32,
    jti: Jti,
    grant: GrantRef,
    sub: String,
    client: ClientRef,
    scope: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum ClientRef {
    Web,
    Native,
    Machine,
    /// An id that may or may not be registered (mostly not).
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Typ {
    AtJwt,
    UpperCase,
    Jwt,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Jti {
    Fresh(String),
    Revoked,
}

#[derive(Arbitrary, Debug)]
enum GrantRef {
    None,
    Live,
    Revoked,
    Other(String),
}

struct Signed {
    token: String,
    claims: AccessTokenClaims,
    typ: String,
}

fn sign(fixture: &Fixture, c: &Claims) -> Signed {
    let typ = match &c.typ {
        Typ::AtJwt => ACCESS_TOKEN_TYP.to_string(),
        Typ::UpperCase => ACCESS_TOKEN_TYP.to_ascii_uppercase(),
        Typ::Jwt => "JWT".to_string(),
        Typ::Other(t) => t.clone(),
    };
    let claims = AccessTokenClaims {
        iss: c
            .foreign_issuer
            .clone()
            .unwrap_or_else(|| ISSUER.to_string()),
        sub: c.sub.clone(),
        aud: Audience::One(ISSUER.to_string()),
        exp: NOW + i64::from(c.exp_offset),
        iat: NOW,
        jti: match &c.jti {
            Jti::Fresh(j) => j.clone(),
            Jti::Revoked => REVOKED_JTI.to_string(),
        },
        client_id: match &c.client {
            ClientRef::Web => WEB_CLIENT.to_string(),
            ClientRef::Native => NATIVE_CLIENT.to_string(),
            ClientRef::Machine => MACHINE_CLIENT.to_string(),
            ClientRef::Other(id) => id.clone(),
        },
        scope: c.scope.clone(),
        auth_time: None,
        grant_id: match &c.grant {
            GrantRef::None => None,
            GrantRef::Live => Some(LIVE_GRANT.to_string()),
            GrantRef::Revoked => Some(REVOKED_GRANT.to_string()),
            GrantRef::Other(g) => Some(g.clone()),
        },
        api_key_id: None,
        act: None,
    };
    let alg = if c.es256 {
        SigningAlg::ES256
    } else {
        SigningAlg::RS256
    };
    let token = match fixture.state.keys().sign(alg, &typ, &claims) {
        Ok(t) => t,
        Err(e) => panic!("the fixture cannot sign: {e}"),
    };
    Signed { token, claims, typ }
}

/// What `validate` must answer for a token we signed with `signed.claims`.
fn expectation(fixture: &Fixture, signed: &Signed) -> (bool, bool) {
    let c = &signed.claims;
    let verifies =
        signed.typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) && c.iss == ISSUER && c.exp > NOW;
    let active = verifies
        && c.jti != REVOKED_JTI
        && c.grant_id.as_deref().is_none_or(|g| g == LIVE_GRANT)
        && fixture.client(&c.client_id).is_some();
    (verifies, active)
}

/// Runs the whole path and returns whether the token verified and was
/// active; introspection must agree with `validate`.
fn check(fixture: &Fixture, token: &str) -> (Option<AccessTokenClaims>, Option<AccessTokenClaims>) {
    let tokens = fixture.state.tokens();
    let revoked = fixture.state.revocation_check();
    let verified = access_token::verify_signature(&tokens, token);
    let (validated, introspected) = fixture.block_on(async {
        let validated = match access_token::validate(&tokens, &revoked, token).await {
            Ok(v) => v,
            Err(e) => panic!("validate failed: {e}"),
        };
        let introspected = match introspect::introspect(
            &tokens,
            &revoked,
            &LogAuditSink,
            Introspector::Client(&fixture.machine),
            token,
        )
        .await
        {
            Ok(v) => v,
            Err(e) => panic!("introspect failed: {e}"),
        };
        (validated, introspected)
    });
    if validated.is_some() {
        assert_eq!(
            validated, verified,
            "validate and verify_signature disagree"
        );
    }
    if introspected["active"] == true {
        let claims = validated
            .as_ref()
            .expect("introspection vouches for a token validate refuses");
        assert_eq!(introspected["jti"], claims.jti.as_str());
        assert_eq!(introspected["sub"], claims.sub.as_str());
    } else {
        assert_eq!(introspected, serde_json::json!({ "active": false }));
    }
    (verified, validated)
}

fuzz_target!(|case: Case| {
    let fixture = Fixture::get();
    match case {
        Case::Raw(token) => {
            let (verified, _) = check(fixture, &token);
            assert!(
                verified.is_none(),
                "a token we never signed verified: {token:?}"
            );
            let keys = fixture.state.keys();
            let id_token = keys.verify::<serde_json::Value>(&token, "JWT", ISSUER, None);
            assert!(
                id_token.is_none(),
                "an ID token we never signed verified: {token:?}"
            );
        }
        Case::Signed(claims) => {
            let signed = sign(fixture, &claims);
            let (verifies, active) = expectation(fixture, &signed);
            let (verified, validated) = check(fixture, &signed.token);
            assert_eq!(
                verified.is_some(),
                verifies,
                "typ {:?} claims {:?}",
                signed.typ,
                signed.claims
            );
            assert_eq!(validated.is_some(), active, "claims {:?}", signed.claims);
            if let Some(v) = verified {
                assert_eq!(v, signed.claims);
            }
        }
        Case::Tampered {
            claims,
            header,
            payload,
            signature,
        } => {
            let signed = sign(fixture, &claims);
            let mut parts: Vec<String> = signed.token.split('.').map(str::to_string).collect();
            assert_eq!(parts.len(), 3, "a compact JWS has three parts");
            if let Some(h) = header {
                parts[0] = URL_SAFE_NO_PAD.encode(h);
            }
            if let Some(p) = payload {
                parts[1] = URL_SAFE_NO_PAD.encode(p);
            }
            if let Some(s) = signature {
                parts[2] = URL_SAFE_NO_PAD.encode(s);
            }
            let original: Vec<&str> = signed.token.split('.').collect();
            let forged = parts.join(".");
            let (verified, _) = check(fixture, &forged);
            if parts[0] != original[0] || parts[1] != original[1] {
                assert!(
                    verified.is_none(),
                    "a changed header or payload verified: {forged:?}"
                );
            } else if let Some(v) = verified {
                // Only the signature changed: it can at most be another
                // valid signature of the very same claims.
                assert_eq!(v, signed.claims);
                assert!(expectation(fixture, &signed).0);
            }
        }
    }
});
