//! Resource indicators (RFC 8707): the `resource` parameter at the
//! authorization and token endpoints, resolved against the registered
//! resources, and what it does to a token: its `aud`, scope, lifetime and
//! signing algorithm.

use std::sync::Arc;

use super::access_token::Audience;
use super::request::FormParams;
use super::resource_cache::ResourceCache;
use crate::domain::Resource;
use crate::domain::scope::ScopeSet;
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::jose::SigningAlg;

/// The parameter's name (RFC 8707 §2).
pub const PARAM: &str = "resource";

/// At most this many `resource` parameters in one request: each names a
/// registered API, and no client needs a token for more at once. More is
/// refused (not truncated), so the client learns why.
pub const MAX_RESOURCES: usize = 16;

/// The longest identifier accepted; anything longer is junk that is
/// neither looked up nor stored.
pub const MAX_IDENTIFIER_LEN: usize = 512;

/// Scopes that are about the person or the session, not about an API:
/// they survive narrowing to the requested resources.
pub const OIDC_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

pub fn invalid_target(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, d)
}

/// Checks the syntax of a resource identifier: RFC 8707 §2 says it is an
/// absolute URI (RFC 3986 §4.3) and must not include a fragment. It is
/// also printable ASCII without spaces (so it is stored and compared as
/// sent, and a list of them is space-separated), and not overlong. The
/// description names what is wrong.
pub fn check_identifier(identifier: &str) -> Result<(), String> {
    if identifier.is_empty() {
        return Err("a resource identifier must not be empty".into());
    }
    if identifier.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "a resource identifier must not be longer than {MAX_IDENTIFIER_LEN} characters"
        ));
    }
    if !identifier.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the resource identifier {identifier:?} holds spaces or characters outside \
             printable ASCII"
        ));
    }
    if identifier.contains('#') {
        return Err(format!(
            "the resource identifier {identifier:?} must not include a fragment (RFC 8707 §2)"
        ));
    }
    // An absolute URI has a scheme (RFC 3986 §4.3); `url` parses anything
    // with one, and refuses relative references.
    match url::Url::parse(identifier) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "the resource identifier {identifier:?} is not an absolute URI (RFC 8707 §2)"
        )),
    }
}

/// The `resource` values of a request: each checked (`invalid_target`,
/// RFC 8707 §2), duplicates dropped, in the order sent. Empty when there
/// is none. An empty value counts as omitted, as for every parameter.
pub fn requested(params: &FormParams) -> Result<Vec<String>, OAuthError> {
    requested_in(params, &[PARAM])
}

/// A token exchange's targets: its `resource` and its `audience` values
/// (RFC 8693 §2.1), checked and counted together. Tessera's audiences are
/// its registered resources, so both name them by identifier.
pub fn requested_with_audience(params: &FormParams) -> Result<Vec<String>, OAuthError> {
    requested_in(params, &[PARAM, "audience"])
}

fn requested_in(params: &FormParams, names: &[&str]) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for value in names.iter().flat_map(|name| params.all(name)) {
        if out.len() >= MAX_RESOURCES && !out.iter().any(|r| r == value) {
            return Err(invalid_target(format!(
                "at most {MAX_RESOURCES} resource parameters are accepted in one request"
            )));
        }
        check_identifier(value).map_err(invalid_target)?;
        if !out.iter().any(|r| r == value) {
            out.push(value.to_string());
        }
    }
    Ok(out)
}

/// The registered resources named by `identifiers`; an unknown one is
/// `invalid_target` (RFC 8707 §2: the server does not know it, so it
/// cannot issue a token for it).
pub async fn resolve(
    cache: &ResourceCache,
    identifiers: &[String],
) -> Result<Vec<Arc<Resource>>, AppError> {
    let mut out = Vec::with_capacity(identifiers.len());
    for identifier in identifiers {
        match cache.get(identifier).await? {
            Some(resource) => out.push(resource),
            None => {
                return Err(invalid_target(format!(
                    "the resource {identifier:?} is not registered here"
                ))
                .into());
            }
        }
    }
    Ok(out)
}

/// `scope` narrowed to what `resources` define plus the OIDC scopes, so a
/// token for an API carries no permission meant for another. Without
/// resources it is unchanged. When the request asked for scopes
/// (`asked`: a `scope` parameter) and none is left, it is `invalid_scope`:
/// nothing it asked for applies to these resources. Scopes that were only
/// defaulted (the client's registered ones, a grant's) may narrow to
/// none: a token for an API that defines no scopes carries none.
pub fn narrow_scope(
    scope: &ScopeSet,
    resources: &[Arc<Resource>],
    asked: bool,
) -> Result<ScopeSet, OAuthError> {
    if resources.is_empty() {
        return Ok(scope.clone());
    }
    let narrowed = scope
        .filtered(|s| OIDC_SCOPES.contains(&s) || resources.iter().any(|r| r.scopes.contains(s)));
    if asked && narrowed.is_empty() && !scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the requested scopes is defined by the requested resources",
        ));
    }
    Ok(narrowed)
}

/// What the requested resources make of an access token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenTarget {
    /// The identifiers, as `aud`; empty for the default audience.
    pub audience: Vec<String>,
    /// The shortest lifetime any of them sets.
    pub ttl_secs: Option<i64>,
    /// The algorithm they set.
    pub alg: Option<SigningAlg>,
}

impl TokenTarget {
    /// The target for `resources`. One token has one signature, so
    /// resources that set different algorithms cannot share a token: that
    /// is `invalid_target`, and the client asks for a token per resource
    /// instead (RFC 8707 §2: the server may refuse a combination it cannot
    /// serve). Lifetimes combine to the shortest, which satisfies each.
    pub fn of(resources: &[Arc<Resource>]) -> Result<Self, OAuthError> {
        let mut alg: Option<SigningAlg> = None;
        for resource in resources {
            match (alg, resource.signing_alg) {
                (Some(a), Some(b)) if a != b => {
                    return Err(invalid_target(
                        "the requested resources require different signing algorithms; \
                         request a token for each of them separately",
                    ));
                }
                (None, Some(b)) => alg = Some(b),
                _ => {}
            }
        }
        Ok(Self {
            audience: resources.iter().map(|r| r.identifier.clone()).collect(),
            ttl_secs: resources
                .iter()
                .filter_map(|r| r.access_token_ttl_secs)
                .min(),
            alg,
        })
    }

    /// The token's `aud` (RFC 9068 §3): the resources, else `default`.
    pub fn audience_or(&self, default: &str) -> Audience {
        if self.audience.is_empty() {
            Audience::One(default.to_string())
        } else {
            Audience::of(self.audience.clone())
        }
    }

    /// The token's lifetime: the resources' shortest, never past `cap`;
    /// `default` when no resource sets one.
    pub fn ttl_or(&self, default: i64, cap: i64) -> i64 {
        self.ttl_secs.map_or(default, |t| t.min(cap))
    }
}

/// At the token endpoint after a code or with a refresh token: the
/// resources the token is for. RFC 8707 §2.2: those requested, which must
/// all have been authorized (`invalid_target` otherwise); none requested
/// means every authorized one.
pub fn select_authorized(
    requested: Vec<String>,
    authorized: &[String],
) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(authorized.to_vec());
    }
    if let Some(extra) = requested.iter().find(|r| !authorized.contains(r)) {
        return Err(invalid_target(format!(
            "the resource {extra:?} was not part of the authorization"
        )));
    }
    Ok(requested)
}

/// A resource server's credentials at the introspection endpoint
/// (RFC 7662 §2.1): HTTP Basic with its identifier as the user name and
/// its secret as the password. The `Authorization` header's pair, split at
/// the last colon (a secret we issue has none, an identifier has one);
/// `None` unless it is Basic, decodes, and names a URI. RFC 6749 §2.3.1
/// says to form-encode both halves first; `curl -u` does not, so both
/// spellings of the identifier are looked up.
fn basic_credentials(authorization: &str) -> Option<(Vec<String>, String)> {
    use super::client_auth::client_secret_basic::{decode_basic_text, form_unescape};
    let (scheme, value) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = decode_basic_text(value.trim())?;
    let (id, secret) = text.rsplit_once(':')?;
    let mut ids = vec![id.to_string()];
    if let Some(unescaped) = form_unescape(id).filter(|u| u != id) {
        ids.push(unescaped);
    }
    if !ids.iter().any(|i| i.contains(':')) {
        return None;
    }
    let secret = form_unescape(secret).unwrap_or_else(|| secret.to_string());
    Some((ids, secret))
}

/// The resource server authenticating with `authorization`, if that is
/// what the header holds. `Ok(None)`: it is not a registered resource's
/// identifier, so the caller tries client authentication. A registered
/// resource with a wrong secret, or none registered, is `invalid_client`
/// (the same description whichever), never a fallback to clients.
pub async fn authenticate(
    cache: &ResourceCache,
    authorization: Option<&str>,
) -> Result<Option<Arc<Resource>>, AppError> {
    let Some((ids, secret)) = authorization.and_then(basic_credentials) else {
        return Ok(None);
    };
    for id in ids.iter().filter(|i| i.len() <= MAX_IDENTIFIER_LEN) {
        if let Some(resource) = cache.get(id).await? {
            let ok = resource
                .secret_hash
                .as_deref()
                .is_some_and(|hash| crate::crypto::secret_matches(&secret, hash));
            if !ok {
                return Err(OAuthError::invalid_client(
                    "client authentication failed: check the resource identifier and secret",
                )
                .into());
            }
            return Ok(Some(resource));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(
        id: &str,
        scopes: &str,
        ttl: Option<i64>,
        alg: Option<SigningAlg>,
    ) -> Arc<Resource> {
        Arc::new(Resource {
            identifier: id.into(),
            name: id.into(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            access_token_ttl_secs: ttl,
            signing_alg: alg,
            secret_hash: None,
            owner_client_id: None,
            created_at: 0,
        })
    }

    #[test]
    fn identifiers_are_absolute_uris_without_fragments() {
        assert!(check_identifier("https://api.example.com").is_ok());
        assert!(check_identifier("https://api.example.com/v1?x=1").is_ok());
        assert!(check_identifier("urn:example:api").is_ok());
        for bad in [
            "",
            "/relative",
            "api.example.com",
            "https://api.example.com/#frag",
            "https://api.example.com/ x",
            "https://api.example.com/\u{e9}",
        ] {
            assert!(check_identifier(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_IDENTIFIER_LEN));
        assert!(check_identifier(&long).is_err());
    }

    #[test]
    fn repeated_resources_are_read_and_capped() {
        let params = FormParams::parse(
            b"resource=https%3A%2F%2Fa.example&resource=urn%3Ab&resource=urn%3Ab",
        )
        .unwrap();
        assert_eq!(requested(&params).unwrap(), ["https://a.example", "urn:b"]);
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("resource=urn%3Ar{i}"))
            .collect();
        let err = requested(&FormParams::parse(many.join("&").as_bytes()).unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
        let err = requested(&FormParams::parse(b"resource=%2Frel").unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn scopes_narrow_to_the_resources_and_oidc() {
        let a = resource("urn:a", "a:read a:write", None, None);
        let scope = ScopeSet::parse("openid a:read b:read").unwrap();
        assert_eq!(
            narrow_scope(&scope, std::slice::from_ref(&a), true)
                .unwrap()
                .to_string(),
            "a:read openid"
        );
        let b_read = ScopeSet::parse("b:read").unwrap();
        let err = narrow_scope(&b_read, std::slice::from_ref(&a), true).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        // Defaulted scopes may narrow to none.
        assert!(narrow_scope(&b_read, &[a], false).unwrap().is_empty());
        assert_eq!(narrow_scope(&scope, &[], true).unwrap(), scope);
    }

    #[test]
    fn target_takes_the_shortest_ttl_and_refuses_mixed_algorithms() {
        let a = resource("urn:a", "", Some(600), Some(SigningAlg::ES256));
        let b = resource("urn:b", "", Some(60), None);
        let c = resource("urn:c", "", None, Some(SigningAlg::RS256));
        let t = TokenTarget::of(&[a.clone(), b]).unwrap();
        assert_eq!(t.audience, ["urn:a", "urn:b"]);
        assert_eq!(t.ttl_secs, Some(60));
        assert_eq!(t.alg, Some(SigningAlg::ES256));
        let err = TokenTarget::of(&[a, c]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn basic_credentials_take_raw_or_encoded_identifiers() {
        use base64::Engine;
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let (ids, secret) = basic_credentials(&basic("https://api.example.com:s3cret")).unwrap();
        assert_eq!(ids, ["https://api.example.com"]);
        assert_eq!(secret, "s3cret");
        let (ids, _) = basic_credentials(&basic("https%3A%2F%2Fapi.example.com:s3cret")).unwrap();
        assert!(ids.contains(&"https://api.example.com".to_string()));
        // A client's id (no colon) is left to client authentication.
        assert!(basic_credentials(&basic("0123abcd:secret")).is_none());
        assert!(basic_credentials("Bearer x").is_none());
    }

    #[test]
    fn token_requests_select_a_subset_of_the_authorized() {
        let authorized = vec!["urn:a".to_string(), "urn:b".to_string()];
        assert_eq!(select_authorized(vec![], &authorized).unwrap(), authorized);
        assert_eq!(
            select_authorized(vec!["urn:b".into()], &authorized).unwrap(),
            ["urn:b"]
        );
        let err = select_authorized(vec!["urn:c".into()], &authorized).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
        assert!(select_authorized(vec!["urn:a".into()], &[]).is_err());
    }
}
