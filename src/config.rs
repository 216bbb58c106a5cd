//! Typed configuration. Every field has a default, so `tessera serve` runs
//! with no file at all; a TOML file (`--config` / `TESSERA_CONFIG`) overrides
//! the defaults and the `TESSERA_*` environment variables override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::ScopeSet;
use crate::jose::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (OIDC Core §2 `iss`): https URL, no query or fragment.
    pub issuer: String,
    /// Socket address the HTTP server binds.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Base64 of 32 bytes: the key-encryption key for private signing keys.
    /// When unset, `keys_dir/master.key` is used (and generated if missing).
    pub master_key: Option<String>,
    pub keys_dir: PathBuf,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub cache: CacheConfig,
    pub login: LoginConfig,
    pub http: HttpConfig,
    pub registration: RegistrationConfig,
    /// Human descriptions of scopes for the consent page: `billing:write = "…"`.
    pub scopes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    pub authorization_code_ttl_secs: i64,
    pub refresh_token_idle_ttl_secs: i64,
    pub refresh_token_absolute_ttl_secs: i64,
    /// How long an already-rotated refresh token may still be presented
    /// (two racing refreshes both succeed). 0 turns the window off.
    pub refresh_grace_secs: i64,
    pub default_access_token_alg: SigningAlg,
    pub default_id_token_alg: SigningAlg,
    /// `aud` of access tokens (RFC 9068 §3). Defaults to the issuer.
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// How long a key signs before the schedule replaces it.
    pub rotation_interval_secs: i64,
    /// `Cache-Control: max-age` of the JWKS. A `next` key is promoted by the
    /// schedule only after it has been published for longer than this.
    pub jwks_max_age_secs: i64,
    /// How often the server checks whether a rotation is due.
    pub check_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How often a server polls the database change counters, so that a
    /// client or key changed by another process is seen within this time.
    pub refresh_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    pub session_ttl_secs: i64,
    /// Failed sign-ins (per account and per address) before a lockout.
    pub max_failures: i64,
    pub failure_window_secs: i64,
    pub lockout_secs: i64,
    /// Each failed sign-in is answered this much later, times the number
    /// of recent failures (capped at 4x), to slow down guessing.
    pub failure_delay_ms: u64,
    /// How long a person has to finish signing in and consenting once an
    /// authorization request needs them (the stored interaction's life).
    pub interaction_ttl_secs: i64,
    /// Password hashes (argon2id, 19 MiB each) running at once; 0 means
    /// one per CPU core.
    pub password_hash_concurrency: usize,
    /// Sign-ins that may wait for a hashing place; more get 503.
    pub password_hash_queue: usize,
    /// After a successful sign-in, that account is never locked at that
    /// address for this long (the owner is not locked out by a stranger).
    pub known_address_secs: i64,
}

/// Connection limits, so idle or slow clients cannot hold connections open.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A connection must deliver a request's whole header within this time
    /// of being opened or of its previous response (so it is also the
    /// keep-alive idle timeout).
    pub header_read_timeout_secs: u64,
    /// A request body must arrive completely within this time.
    pub body_read_timeout_secs: u64,
    /// After a shutdown signal, in-flight requests get this long to finish.
    pub shutdown_grace_secs: u64,
}

/// Dynamic client registration (RFC 7591) at `/register` and its
/// management (RFC 7592) at `/register/{client_id}`. Off unless an initial
/// access token is configured or `open` is set.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Anyone may register a client, without an initial access token
    /// (RFC 7591 §3: open registration).
    pub open: bool,
    /// Bearer tokens that allow a registration (RFC 7591 §1.2 initial
    /// access tokens); `TESSERA_REGISTRATION_TOKEN` adds one.
    pub initial_access_tokens: Vec<String>,
    /// When set (space-separated, like a `scope` value), a registered
    /// client's scopes must be among these.
    pub allowed_scopes: Option<ScopeSet>,
}

impl RegistrationConfig {
    /// Whether `/register` exists: without a token and without `open`, it
    /// answers 404 and discovery does not mention it.
    pub fn enabled(&self) -> bool {
        self.open || !self.initial_access_tokens.is_empty()
    }
}

/// The tokens are secrets: never printed.
impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("open", &self.open)
            .field(
                "initial_access_tokens",
                &format_args!("<{} redacted>", self.initial_access_tokens.len()),
            )
            .field("allowed_scopes", &self.allowed_scopes)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/tessera.db".into(),
            master_key: None,
            keys_dir: PathBuf::from("keys"),
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            cache: CacheConfig::default(),
            login: LoginConfig::default(),
            http: HttpConfig::default(),
            registration: RegistrationConfig::default(),
            scopes: BTreeMap::new(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 3600,
            id_token_ttl_secs: 3600,
            authorization_code_ttl_secs: 60,
            refresh_token_idle_ttl_secs: 30 * 86_400,
            refresh_token_absolute_ttl_secs: 90 * 86_400,
            refresh_grace_secs: 0,
            default_access_token_alg: SigningAlg::RS256,
            default_id_token_alg: SigningAlg::RS256,
            audience: None,
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            rotation_interval_secs: 30 * 86_400,
            jwks_max_age_secs: 3600,
            check_interval_secs: 60,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            refresh_interval_ms: 2000,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 86_400,
            max_failures: 5,
            failure_window_secs: 900,
            lockout_secs: 300,
            failure_delay_ms: 250,
            interaction_ttl_secs: 1800,
            password_hash_concurrency: 0,
            password_hash_queue: 32,
            known_address_secs: 30 * 86_400,
        }
    }
}

impl Config {
    /// File (if any) then environment, then validation.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os("TESSERA_CONFIG").map(PathBuf::from);
        let mut config = match file.map(Path::to_path_buf).or(env_file) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path,
                    source: Box::new(source),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("TESSERA_ISSUER") {
            self.issuer = v;
        }
        if let Some(v) = var("TESSERA_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("TESSERA_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = var("TESSERA_MASTER_KEY") {
            self.master_key = Some(v);
        }
        if let Some(v) = var("TESSERA_REGISTRATION_TOKEN").filter(|v| !v.is_empty()) {
            self.registration.initial_access_tokens.push(v);
        }
    }

    pub fn validate(&mut self) -> Result<(), ConfigError> {
        // OIDC Discovery §3: the issuer has no query or fragment, and the
        // metadata URLs are formed by appending to it, so drop a trailing '/'.
        while self.issuer.ends_with('/') {
            self.issuer.pop();
        }
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError::Invalid(format!("issuer {:?}: {e}", self.issuer)))?;
        if !matches!(issuer.scheme(), "http" | "https")
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(ConfigError::Invalid(
                "issuer must be an http(s) URL without query or fragment".into(),
            ));
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl_secs", t.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs),
            (
                "tokens.authorization_code_ttl_secs",
                t.authorization_code_ttl_secs,
            ),
            (
                "tokens.refresh_token_idle_ttl_secs",
                t.refresh_token_idle_ttl_secs,
            ),
            (
                "tokens.refresh_token_absolute_ttl_secs",
                t.refresh_token_absolute_ttl_secs,
            ),
            (
                "keys.rotation_interval_secs",
                self.keys.rotation_interval_secs,
            ),
            ("keys.jwks_max_age_secs", self.keys.jwks_max_age_secs),
            ("login.session_ttl_secs", self.login.session_ttl_secs),
            ("login.max_failures", self.login.max_failures),
            ("login.failure_window_secs", self.login.failure_window_secs),
            ("login.lockout_secs", self.login.lockout_secs),
            (
                "login.interaction_ttl_secs",
                self.login.interaction_ttl_secs,
            ),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        if self.http.header_read_timeout_secs == 0 || self.http.body_read_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "http.header_read_timeout_secs and http.body_read_timeout_secs must be positive"
                    .into(),
            ));
        }
        for token in &self.registration.initial_access_tokens {
            // RFC 6750 §2.1: a bearer token is a b64token, or no client
            // could present it in an Authorization header.
            if !is_b64token(token) {
                return Err(ConfigError::Invalid(
                    "registration.initial_access_tokens (or TESSERA_REGISTRATION_TOKEN): a token \
                     must be non-empty letters, digits and -._~+/ (optionally ending in =)"
                        .into(),
                ));
            }
        }
        if t.refresh_grace_secs < 0 {
            return Err(ConfigError::Invalid(
                "tokens.refresh_grace_secs must not be negative".into(),
            ));
        }
        Ok(())
    }

    /// Whether cookies get the `Secure` attribute.
    pub fn issuer_is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn access_token_audience(&self) -> &str {
        self.tokens.audience.as_deref().unwrap_or(&self.issuer)
    }

    /// The longest any token we sign stays valid: a retired key must stay
    /// published at least this long after it stopped signing.
    pub fn longest_token_lifetime(&self) -> i64 {
        self.tokens
            .access_token_ttl_secs
            .max(self.tokens.id_token_ttl_secs)
    }

    /// Hashes at once: the configured number, or one per core.
    pub fn password_hash_concurrency(&self) -> usize {
        match self.login.password_hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn scope_description(&self, scope: &str) -> Option<&str> {
        self.scopes.get(scope).map(String::as_str)
    }
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut c: Config = toml::from_str("issuer = \"https://a.example/\"").unwrap();
        c.apply_env(|n| (n == "TESSERA_LISTEN").then(|| "0.0.0.0:9000".to_string()));
        c.validate().unwrap();
        assert_eq!(c.issuer, "https://a.example");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert!(c.issuer_is_https());
    }

    #[test]
    fn unknown_keys_and_bad_issuer_are_rejected() {
        assert!(toml::from_str::<Config>("isuer = \"x\"").is_err());
        let mut c = Config {
            issuer: "https://a.example/?x=1".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn registration_is_off_by_default_and_the_env_token_turns_it_on() {
        let mut c = Config::default();
        assert!(!c.registration.enabled());
        c.apply_env(|n| (n == "TESSERA_REGISTRATION_TOKEN").then(|| "s3cret-Token".to_string()));
        c.validate().unwrap();
        assert!(c.registration.enabled());
        assert_eq!(c.registration.initial_access_tokens, ["s3cret-Token"]);
        assert!(
            !format!("{c:?}").contains("s3cret-Token"),
            "tokens are not printed"
        );
        // An empty variable adds nothing.
        let mut c = Config::default();
        c.apply_env(|n| (n == "TESSERA_REGISTRATION_TOKEN").then(String::new));
        assert!(!c.registration.enabled());
    }

    #[test]
    fn registration_section_parses_and_checks_its_tokens() {
        let mut c: Config = toml::from_str(
            "[registration]\nopen = true\nallowed_scopes = \"openid profile read\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.registration.enabled());
        let allowed = c.registration.allowed_scopes.unwrap();
        assert!(allowed.contains("read") && !allowed.contains("write"));
        for bad in ["", "has space", "quote\"", "=="] {
            let mut c = Config::default();
            c.registration.initial_access_tokens = vec![bad.into()];
            assert!(c.validate().is_err(), "{bad:?}");
        }
        assert!(toml::from_str::<Config>("[registration]\nallowed_scopes = \"a\\\\b\"").is_err());
    }
}
