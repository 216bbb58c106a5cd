//! JWT access tokens (RFC 9068).

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::Client;
use crate::domain::scope::ScopeSet;
use crate::error::AppError;
use crate::jose::SigningAlg;
use crate::oauth::resource::TokenTarget;
use crate::oauth::tokens::Tokens;
use crate::store::{ApiKeyStore, ClientStore, GrantStore, RevocationStore};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// RFC 9068 §2.2 claims, plus the authentication facts of §2.2.1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// The grant (refresh family) the token was issued under, so that
    /// revoking the grant revokes the token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// The API key the token was exchanged for (issue 12.4), so that
    /// revoking the key revokes the token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// RFC 8693 §4.1: who acts on the subject's behalf (delegation by a
    /// token exchange with an `actor_token`); prior actors nest inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActorClaim>,
}

/// RFC 8693 §4.1 `act`: the current actor, with the chain of prior actors
/// nested in its own `act` (the outermost is the most recent).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActorClaim {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<ActorClaim>>,
}

impl ActorClaim {
    /// How many actors the chain names, this one included.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |prior| prior.depth())
    }
}

/// RFC 9068 §3 / RFC 7519 §4.1.3 `aud`: one string for one audience, an
/// array for several (RFC 8707: one per requested resource). Resource
/// servers' JWT libraries accept both shapes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// One string for one identifier, an array for several.
    pub fn of(mut identifiers: Vec<String>) -> Self {
        match identifiers.len() {
            1 => Self::One(identifiers.remove(0)),
            _ => Self::Many(identifiers),
        }
    }

    pub fn contains(&self, identifier: &str) -> bool {
        match self {
            Self::One(aud) => aud == identifier,
            Self::Many(auds) => auds.iter().any(|a| a == identifier),
        }
    }
}

/// Who the token is for: the client itself (client credentials) or a user
/// through a grant.
pub struct Subject<'a> {
    pub sub: &'a str,
    pub auth_time: Option<UnixTime>,
    pub grant_id: Option<&'a str>,
}

pub struct IssuedAccessToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// Signs an access token for `client`. Its audience, lifetime and
/// algorithm follow the requested resources (`target`) where they set
/// them, else the configured audience, the server's lifetime and the
/// algorithm the client registered (or the server default). Nothing is
/// written anywhere.
pub fn issue(
    tokens: &Tokens<'_>,
    client: &Client,
    subject: Subject<'_>,
    scope: &ScopeSet,
    target: &TokenTarget,
) -> Result<IssuedAccessToken, AppError> {
    let claims = claims_for(tokens, client, subject, scope, target);
    sign(tokens, client, target, claims)
}

/// The claims [`issue`] signs, for a grant that adds to them (a token
/// exchange) before [`sign`]ing.
pub fn claims_for(
    tokens: &Tokens<'_>,
    client: &Client,
    subject: Subject<'_>,
    scope: &ScopeSet,
    target: &TokenTarget,
) -> AccessTokenClaims {
    let now = tokens.now();
    let aud = target.audience_or(tokens.audience());
    // A resource may shorten the lifetime, never stretch it past the
    // longest one the server is configured for: retired signing keys and
    // revocation entries are dropped after that, and a token outliving
    // them would stop verifying, or come back to life after a revocation.
    let longest = tokens
        .settings
        .access_token_ttl_secs
        .max(tokens.settings.id_token_ttl_secs);
    let ttl = target.ttl_or(tokens.settings.access_token_ttl_secs, longest);
    AccessTokenClaims {
        iss: tokens.issuer.to_string(),
        sub: subject.sub.to_string(),
        aud,
        exp: now + ttl,
        iat: now,
        jti: crypto::random_token(),
        client_id: client.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: subject.auth_time,
        grant_id: subject.grant_id.map(str::to_string),
        api_key_id: None,
        act: None,
    }
}

/// Signs `claims` for `client` with the algorithm the resources set, else
/// the client's.
pub fn sign(
    tokens: &Tokens<'_>,
    client: &Client,
    target: &TokenTarget,
    claims: AccessTokenClaims,
) -> Result<IssuedAccessToken, AppError> {
    let alg = target
        .alg
        .unwrap_or_else(|| access_token_alg(tokens, client));
    let token = tokens.keys.sign(alg, ACCESS_TOKEN_TYP, &claims)?;
    Ok(IssuedAccessToken { token, claims })
}

pub fn access_token_alg(tokens: &Tokens<'_>, client: &Client) -> SigningAlg {
    client
        .metadata
        .access_token_signed_response_alg
        .unwrap_or(tokens.settings.default_access_token_alg)
}

/// Where revocations are looked up: single tokens by `jti`, the grants
/// user tokens belong to, the clients tokens were issued to, and the API
/// keys tokens were exchanged for.
pub struct RevocationCheck<'a> {
    pub revocations: &'a dyn RevocationStore,
    pub grants: &'a dyn GrantStore,
    /// The store itself, never the client cache: a client deleted by
    /// another process stays in a cache until its next refresh.
    pub clients: &'a dyn ClientStore,
    pub api_keys: &'a dyn ApiKeyStore,
}

/// Verifies an access token we issued and checks it was not revoked.
pub async fn validate(
    tokens: &Tokens<'_>,
    revoked: &RevocationCheck<'_>,
    token: &str,
) -> Result<Option<AccessTokenClaims>, AppError> {
    let Some(claims) = verify_signature(tokens, token) else {
        return Ok(None);
    };
    if revoked
        .revocations
        .is_access_token_revoked(&claims.jti)
        .await?
    {
        return Ok(None);
    }
    // A revoked grant (logout, reused refresh token, replayed code, a
    // password change, its client deleted) takes every access token issued
    // under it along.
    if let Some(grant_id) = &claims.grant_id {
        match revoked.grants.grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => {}
            _ => return Ok(None),
        }
    }
    // Issue 7.6: a deleted client's tokens, client credentials ones too,
    // stop working at once on every instance. One primary-key read of the
    // shared store; it also covers a user token issued by an instance
    // whose cache still held the client after the deletion.
    // Issue 12: a token exchanged for an API key dies with the key (revoked,
    // expired, or replaced by a rotation whose overlap ended). Its
    // `client_id` is the owning client, or the key's id when no client
    // owns it; only a real client is looked up below.
    if let Some(key_id) = &claims.api_key_id {
        match revoked.api_keys.api_key(key_id).await? {
            Some(key) if key.revoked_at.is_none() && !key.is_expired(tokens.now()) => {
                if claims.client_id == key.id {
                    return Ok(Some(claims));
                }
            }
            _ => return Ok(None),
        }
    }
    if revoked.clients.client(&claims.client_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// The claims of an unexpired access token signed by one of our keys,
/// without the revocation check.
pub fn verify_signature(tokens: &Tokens<'_>, token: &str) -> Option<AccessTokenClaims> {
    tokens.keys.verify::<AccessTokenClaims>(
        token,
        ACCESS_TOKEN_TYP,
        tokens.issuer,
        Some(tokens.now()),
    )
}
