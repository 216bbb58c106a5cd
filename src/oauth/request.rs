//! Typed requests parsed from `application/x-www-form-urlencoded` bodies.

use crate::domain::scope::ScopeSet;
use crate::error::OAuthError;

/// Form parameters with the RFC 6749 rules applied: a parameter sent twice
/// is an error (§3.1, §3.2), one sent without a value counts as omitted.
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
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
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

/// A token request (RFC 6749 §4.1.3, §4.4.2, §6), tagged by `grant_type`.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<ScopeSet>,
    },
    ClientCredentials {
        scope: Option<ScopeSet>,
    },
}

impl TokenRequest {
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => crate::domain::client::GRANT_AUTHORIZATION_CODE,
            Self::RefreshToken { .. } => crate::domain::client::GRANT_REFRESH_TOKEN,
            Self::ClientCredentials { .. } => crate::domain::client::GRANT_CLIENT_CREDENTIALS,
        }
    }

    pub fn from_params(params: &FormParams) -> Result<Self, OAuthError> {
        match params.require("grant_type")? {
            "authorization_code" => Ok(Self::AuthorizationCode {
                code: params.require("code")?.to_string(),
                redirect_uri: params.get("redirect_uri").map(str::to_string),
                code_verifier: params.get("code_verifier").map(str::to_string),
            }),
            "refresh_token" => Ok(Self::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_string(),
                scope: params.scope()?,
            }),
            "client_credentials" => Ok(Self::ClientCredentials {
                scope: params.scope()?,
            }),
            other => Err(OAuthError::new(
                crate::error::ErrorCode::UnsupportedGrantType,
                format!("grant type {other:?} is not supported"),
            )),
        }
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
        assert!(matches!(
            TokenRequest::from_params(&p).unwrap(),
            TokenRequest::ClientCredentials { scope: None }
        ));
    }

    #[test]
    fn unknown_and_missing_grant_types() {
        let p = FormParams::parse(b"grant_type=password").unwrap();
        assert_eq!(
            TokenRequest::from_params(&p).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        let p = FormParams::parse(b"scope=x").unwrap();
        assert_eq!(
            TokenRequest::from_params(&p).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
