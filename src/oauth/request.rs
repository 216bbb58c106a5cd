//! Typed requests parsed from `application/x-www-form-urlencoded` bodies.

use std::collections::HashSet;

use crate::domain::scope::ScopeSet;
use crate::error::OAuthError;

/// No OAuth request needs more; a form with thousands of names is an attack
/// on the parser, refused before any other work.
pub const MAX_PARAMETERS: usize = 128;

/// Parameters that may be sent more than once: RFC 8707 §2 `resource`,
/// and RFC 8693 §2.1 `audience` (a token exchange's target).
pub const REPEATABLE: &[&str] = &["resource", "audience"];

/// Form parameters with the RFC 6749 rules applied: a parameter sent twice
/// is an error (§3.1, §3.2) unless an extension makes it repeatable
/// ([`REPEATABLE`]), one sent without a value counts as omitted.
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the request body is not valid form data"))?;
        Self::from_pairs(pairs)
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        // No protocol value contains NUL, and PostgreSQL text cannot hold it.
        if pairs
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(OAuthError::invalid_request(
                "parameters must not contain NUL characters",
            ));
        }
        if pairs.len() > MAX_PARAMETERS {
            return Err(OAuthError::invalid_request(format!(
                "the request has more than {MAX_PARAMETERS} parameters"
            )));
        }
        let mut seen = HashSet::with_capacity(pairs.len());
        for (name, _) in &pairs {
            if !seen.insert(name.as_str()) && !REPEATABLE.contains(&name.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name:?} is included more than once"
                )));
            }
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a repeatable parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is required")))
    }

    pub fn scope(&self) -> Result<Option<ScopeSet>, OAuthError> {
        self.get("scope")
            .map(|s| ScopeSet::parse(s).map_err(OAuthError::invalid_scope))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn repeated_parameters_are_rejected_and_empty_ones_omitted() {
        let err = FormParams::parse(b"grant_type=client_credentials&scope=a&scope=b").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let p = FormParams::parse(b"grant_type=client_credentials&scope=").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.scope().unwrap(), None);
    }

    #[test]
    fn resource_may_repeat() {
        let p = FormParams::parse(b"resource=urn%3Aa&resource=&resource=urn%3Ab").unwrap();
        assert_eq!(p.all("resource").collect::<Vec<_>>(), ["urn:a", "urn:b"]);
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body: Vec<String> = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=x")).collect();
        let err = FormParams::parse(body.join("&").as_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let body: Vec<String> = (0..MAX_PARAMETERS).map(|i| format!("p{i}=x")).collect();
        assert!(FormParams::parse(body.join("&").as_bytes()).is_ok());
    }
}
