//! Dynamic client registration over JSON (RFC 7591) and its management
//! (RFC 7592): a request's client metadata read into a `ClientRegistration`,
//! the client information response, the error codes, and the check of the
//! initial access token. What a registration may ask for is decided by
//! `oauth::client` (`register_dynamic`), on the same rules as the CLI.

use std::fmt;

use serde_json::{Map, Value};

use crate::config::RegistrationConfig;
use crate::crypto;
use crate::domain::Client;
use crate::domain::client::{AUTH_METHOD_NONE, ClientAssertionAlg};
use crate::jose::SigningAlg;
use crate::oauth::client::ClientRegistration;

/// The error codes of a registration response: RFC 7591 §3.2.2, and
/// RFC 6749's `invalid_request` for an RFC 7592 update that breaks the
/// protocol rather than a metadata rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationErrorCode {
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidRequest,
}

impl RegistrationErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

impl fmt::Display for RegistrationErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused registration or update (HTTP 400, RFC 7591 §3.2.2). The
/// description names the metadata field at fault where one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct RegistrationError {
    pub code: RegistrationErrorCode,
    pub description: String,
}

impl RegistrationError {
    /// `invalid_client_metadata` about the field `field`.
    pub fn metadata(field: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            RegistrationErrorCode::InvalidClientMetadata,
            format!("{field}: {reason}"),
        )
    }

    /// `invalid_redirect_uri`: one of `redirect_uris` is not acceptable.
    pub fn redirect_uri(reason: impl fmt::Display) -> Self {
        Self::new(
            RegistrationErrorCode::InvalidRedirectUri,
            format!("redirect_uris: {reason}"),
        )
    }

    /// `invalid_request`.
    pub fn request(reason: impl Into<String>) -> Self {
        Self::new(RegistrationErrorCode::InvalidRequest, reason.into())
    }

    pub fn new(code: RegistrationErrorCode, description: String) -> Self {
        Self { code, description }
    }

    /// The RFC 7591 §3.2.2 JSON body.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        })
    }
}

/// Reads a registration request (RFC 7591 §3.1): a JSON object whose
/// members are client metadata. Unknown members are ignored (RFC 7591 §2);
/// `null` is the same as absent (RFC 7592 §2.2); a known member of the
/// wrong type is `invalid_client_metadata` naming it.
pub fn parse_registration(body: &[u8]) -> Result<ClientRegistration, RegistrationError> {
    let object = parse_object(body)?;
    client_metadata(&Fields(&object))
}

/// An RFC 7592 §2.2 update request: the client's id and, if it sent it, its
/// current secret, with the complete new metadata.
pub struct ClientUpdate {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub registration: ClientRegistration,
}

/// Never shows the secret.
impl fmt::Debug for ClientUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientUpdate")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("registration", &self.registration)
            .finish()
    }
}

/// RFC 7592 §2.2: fields an update request must not carry (they are the
/// server's to issue).
const NOT_IN_UPDATES: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// Reads an RFC 7592 §2.2 update request: `client_id` is required, the
/// server-issued fields are refused, and the rest is read as in a
/// registration (omitted fields are dropped from the registration).
pub fn parse_update(body: &[u8]) -> Result<ClientUpdate, RegistrationError> {
    let object = parse_object(body)?;
    let fields = Fields(&object);
    if let Some(field) = NOT_IN_UPDATES.into_iter().find(|f| fields.present(f)) {
        return Err(RegistrationError::request(format!(
            "{field} must not be sent in an update (RFC 7592 §2.2)"
        )));
    }
    let client_id = match fields.string("client_id") {
        Ok(Some(id)) => id,
        _ => {
            return Err(RegistrationError::request(
                "client_id is required in an update and must be a string",
            ));
        }
    };
    let client_secret = fields
        .string("client_secret")
        .map_err(|_| RegistrationError::request("client_secret must be a string"))?;
    Ok(ClientUpdate {
        client_id,
        client_secret,
        registration: client_metadata(&fields)?,
    })
}

/// The metadata Tessera accepts, one line per field: a later field (jwks,
/// backchannel_logout_uri, …) is one more line here and one more field in
/// `ClientRegistration`.
fn client_metadata(f: &Fields<'_>) -> Result<ClientRegistration, RegistrationError> {
    if f.present("jwks_uri") {
        // Fetching keys needs outbound HTTP, which Tessera does not do yet.
        return Err(RegistrationError::metadata(
            "jwks_uri",
            "not supported; register the public keys inline as jwks",
        ));
    }
    let auth_method = f.string("token_endpoint_auth_method")?;
    Ok(ClientRegistration {
        client_name: f.string("client_name")?.unwrap_or_default(),
        redirect_uris: f.strings("redirect_uris")?,
        grant_types: f.strings("grant_types")?,
        response_types: f.strings("response_types")?,
        scope: f.string("scope")?,
        public: auth_method.as_deref() == Some(AUTH_METHOD_NONE),
        token_endpoint_auth_method: auth_method,
        id_token_signed_response_alg: f.alg("id_token_signed_response_alg")?,
        access_token_signed_response_alg: f.alg("access_token_signed_response_alg")?,
        post_logout_redirect_uris: f.strings("post_logout_redirect_uris")?,
        backchannel_logout_uri: f.string("backchannel_logout_uri")?,
        backchannel_logout_session_required: f
            .boolean("backchannel_logout_session_required")?
            .unwrap_or(false),
        jwks: f.object("jwks")?,
        token_endpoint_auth_signing_alg: f.assertion_alg("token_endpoint_auth_signing_alg")?,
        // A client never registers itself as first-party
        // (`client::register_dynamic` enforces it as well).
        skip_consent: false,
        require_pushed_authorization_requests: f
            .boolean("require_pushed_authorization_requests")?
            .unwrap_or(false),
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RegistrationError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(RegistrationError::new(
            RegistrationErrorCode::InvalidClientMetadata,
            "the request body must be a JSON object of client metadata".into(),
        )),
        Err(e) => Err(RegistrationError::new(
            RegistrationErrorCode::InvalidClientMetadata,
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// The members of a request object, read by type; each error names the
/// member.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// Present and not `null`.
    fn present(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, RegistrationError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RegistrationError::metadata(name, "must be a string")),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, RegistrationError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(RegistrationError::metadata(name, "must be true or false")),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, RegistrationError> {
        let not_strings = || RegistrationError::metadata(name, "must be an array of strings");
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string).ok_or_else(not_strings))
                .collect(),
            Some(_) => Err(not_strings()),
        }
    }

    /// A JSON object, kept as sent (`client::register` checks its content).
    fn object(&self, name: &str) -> Result<Option<Value>, RegistrationError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
            Some(_) => Err(RegistrationError::metadata(name, "must be a JSON object")),
        }
    }

    fn assertion_alg(&self, name: &str) -> Result<Option<ClientAssertionAlg>, RegistrationError> {
        match self.string(name)? {
            None => Ok(None),
            Some(alg) => alg
                .parse()
                .map(Some)
                .map_err(|e: String| RegistrationError::metadata(name, e)),
        }
    }

    fn alg(&self, name: &str) -> Result<Option<SigningAlg>, RegistrationError> {
        match self.string(name)? {
            None => Ok(None),
            Some(alg) => SigningAlg::parse(&alg).map(Some).ok_or_else(|| {
                let supported: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
                RegistrationError::metadata(
                    name,
                    format!(
                        "unsupported algorithm {alg:?} (supported: {})",
                        supported.join(", ")
                    ),
                )
            }),
        }
    }
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the
/// registered metadata, the secret when it was just issued, and where and
/// with what token the client manages its registration.
pub fn information_response(
    client: &Client,
    secret: Option<&str>,
    registration_access_token: &str,
    registration_client_uri: &str,
) -> Value {
    let mut value = client.information_response(secret);
    value["registration_access_token"] = registration_access_token.into();
    value["registration_client_uri"] = registration_client_uri.into();
    value
}

/// Whether a registration request may go ahead (RFC 7591 §3): always with
/// open registration, otherwise when it presents one of the configured
/// initial access tokens. Every configured token is compared, each as a
/// SHA-256 in constant time, so the time taken tells nothing about how
/// close a guess came or which token it was near.
pub fn initial_access_allowed(config: &RegistrationConfig, presented: Option<&str>) -> bool {
    if config.open {
        return true;
    }
    let Some(presented) = presented else {
        return false;
    };
    let mut allowed = false;
    for token in &config.initial_access_tokens {
        allowed |= crypto::secret_matches(presented, &crypto::hash_secret(token));
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_known_fields_and_ignores_the_rest() {
        let reg = parse_registration(
            br#"{"client_name": "App", "redirect_uris": ["https://a.example/cb"],
                "grant_types": ["authorization_code"], "scope": "openid read",
                "token_endpoint_auth_method": "none", "id_token_signed_response_alg": "ES256",
                "logo_uri": "https://a.example/logo.png", "client_name#fr": "Appli",
                "skip_consent": true, "jwks_uri": null}"#,
        )
        .unwrap();
        assert_eq!(reg.client_name, "App");
        assert_eq!(reg.redirect_uris, ["https://a.example/cb"]);
        assert_eq!(reg.scope.as_deref(), Some("openid read"));
        assert!(reg.public);
        assert_eq!(reg.id_token_signed_response_alg, Some(SigningAlg::ES256));
        assert!(!reg.skip_consent, "a client cannot make itself first-party");
    }

    #[test]
    fn wrong_types_name_their_field() {
        for (body, field) in [
            (
                r#"{"redirect_uris": "https://a.example/cb"}"#,
                "redirect_uris",
            ),
            (r#"{"grant_types": [1]}"#, "grant_types"),
            (r#"{"scope": ["read"]}"#, "scope"),
            (r#"{"client_name": 5}"#, "client_name"),
            (
                r#"{"backchannel_logout_session_required": "yes"}"#,
                "backchannel_logout_session_required",
            ),
            (
                r#"{"access_token_signed_response_alg": "HS256"}"#,
                "access_token_signed_response_alg",
            ),
        ] {
            let e = parse_registration(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, RegistrationErrorCode::InvalidClientMetadata);
            assert!(e.description.starts_with(field), "{body}: {e}");
        }
        for body in ["[]", "{", "\"x\""] {
            let e = parse_registration(body.as_bytes()).unwrap_err();
            assert_eq!(
                e.code,
                RegistrationErrorCode::InvalidClientMetadata,
                "{body}"
            );
        }
    }

    #[test]
    fn updates_need_the_client_id_and_no_server_fields() {
        let u = parse_update(br#"{"client_id": "c1", "client_secret": "s", "client_name": "A"}"#)
            .unwrap();
        assert_eq!(u.client_id, "c1");
        assert!(!format!("{u:?}").contains("\"s\""));
        let e = parse_update(br#"{"client_name": "A"}"#).unwrap_err();
        assert_eq!(e.code, RegistrationErrorCode::InvalidRequest);
        let e =
            parse_update(br#"{"client_id": "c1", "registration_access_token": "t"}"#).unwrap_err();
        assert!(e.description.contains("registration_access_token"), "{e}");
    }

    #[test]
    fn initial_access_tokens() {
        let mut config = RegistrationConfig {
            initial_access_tokens: vec!["one".into(), "two".into()],
            ..Default::default()
        };
        assert!(initial_access_allowed(&config, Some("two")));
        assert!(!initial_access_allowed(&config, Some("tw")));
        assert!(!initial_access_allowed(&config, None));
        config.initial_access_tokens.clear();
        assert!(!initial_access_allowed(&config, Some("")));
        config.open = true;
        assert!(initial_access_allowed(&config, None));
    }
}
