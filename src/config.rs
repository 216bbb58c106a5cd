//! Typed configuration. Every field has a default, so `tessera serve` runs
//! with no file at all; a TOML file (`--config` / `TESSERA_CONFIG`) overrides
//! the defaults and the `TESSERA_*` environment variables override the file.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

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
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub proxy: ProxyConfig,
    pub registration: RegistrationConfig,
    pub audit: AuditConfig,
    pub par: ParConfig,
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
    /// Lifetime of an access token an API key is exchanged for (issue 12.4).
    pub api_key_exchange_ttl_secs: i64,
    /// Token exchange (RFC 8693) beyond the built-in policy: a client may
    /// exchange access tokens issued to itself, or meant for a resource it
    /// owns; each rule lets one more client exchange tokens of others.
    pub exchange_rules: Vec<ExchangeRule>,
}

/// `[[tokens.exchange_rules]]`: `client_id` may exchange access tokens that
/// were issued to any of `subject_client_ids`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRule {
    pub client_id: String,
    pub subject_client_ids: Vec<String>,
}

impl TokenConfig {
    /// Whether a configured rule lets `client_id` exchange a token issued
    /// to `subject_client_id`.
    pub fn exchange_allowed_by_rule(&self, client_id: &str, subject_client_id: &str) -> bool {
        self.exchange_rules.iter().any(|rule| {
            rule.client_id == client_id
                && rule
                    .subject_client_ids
                    .iter()
                    .any(|s| s == subject_client_id)
        })
    }
}

/// Pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParConfig {
    /// Every client must push its authorization requests (RFC 9126 §5);
    /// discovery says so.
    pub required: bool,
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

/// Prometheus metrics, served on a listener of their own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Socket address of the metrics listener (`GET /metrics`); unset, no
    /// listener is opened and nothing is recorded.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// How log lines are written: human-readable text, or one JSON object per
/// line (with the request span's fields) for log shippers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(ConfigError::Invalid(format!(
                "log format {other:?}: use text or json"
            ))),
        }
    }
}

/// Reverse proxies in front of Tessera.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Networks (CIDRs, or single addresses) of the proxies whose
    /// `X-Forwarded-For` / `Forwarded` headers and `X-Request-Id` are
    /// believed. Empty: the TCP peer is the client, whatever it sends.
    #[serde(deserialize_with = "deserialize_networks")]
    pub trusted: Vec<IpNet>,
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address (`192.0.2.7`).
pub fn parse_network(s: &str) -> Result<IpNet, ConfigError> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "proxy.trusted: {s:?} is not a CIDR (like 10.0.0.0/8) or an IP address"
            ))
        })
}

fn deserialize_networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_network(s).map_err(serde::de::Error::custom))
        .collect()
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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Audit events older than this are pruned by the server's upkeep.
    pub retention_days: i64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
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
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            proxy: ProxyConfig::default(),
            registration: RegistrationConfig::default(),
            audit: AuditConfig::default(),
            par: ParConfig::default(),
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
            api_key_exchange_ttl_secs: 300,
            exchange_rules: Vec::new(),
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
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
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
        if let Some(v) = var("TESSERA_METRICS_LISTEN") {
            // Set but empty turns a configured listener off.
            self.metrics.listen = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = var("TESSERA_LOG_FORMAT") {
            self.log.format = v.trim().to_ascii_lowercase().parse()?;
        }
        if let Some(v) = var("TESSERA_TRUSTED_PROXIES") {
            self.proxy.trusted = v
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_network)
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = var("TESSERA_REGISTRATION_TOKEN").filter(|v| !v.is_empty()) {
            self.registration.initial_access_tokens.push(v);
        }
        Ok(())
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
        // The issuer's path is where every route is mounted: plain segments
        // only, so it can be neither a route pattern (`{x}`, `*`) nor
        // something that normalises to another path (`..`, `%2F`).
        let plain_segment = |seg: &str| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        };
        let path = issuer_path(&self.issuer);
        if let Some(segments) = path.strip_prefix('/')
            && !segments.split('/').all(plain_segment)
        {
            return Err(ConfigError::Invalid(format!(
                "issuer path {path:?}: use plain segments of letters, digits, '-', '.', '_', '~'"
            )));
        }
        for (name, address) in [
            ("listen", Some(&self.listen)),
            ("metrics.listen", self.metrics.listen.as_ref()),
        ] {
            if let Some(address) = address
                && !is_socket_address(address)
            {
                return Err(ConfigError::Invalid(format!(
                    "{name} {address:?}: use HOST:PORT, like 127.0.0.1:8080"
                )));
            }
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl_secs", t.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs),
            (
                "tokens.api_key_exchange_ttl_secs",
                t.api_key_exchange_ttl_secs,
            ),
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
            ("audit.retention_days", self.audit.retention_days),
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
        for rule in &t.exchange_rules {
            if rule.client_id.is_empty()
                || rule.subject_client_ids.is_empty()
                || rule.subject_client_ids.iter().any(String::is_empty)
            {
                return Err(ConfigError::Invalid(
                    "tokens.exchange_rules: each rule needs a client_id and at least one \
                     non-empty subject_client_ids entry"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The issuer's path (`/auth` for `https://example.com/auth`), under
    /// which every route is mounted; empty for an issuer without a path.
    pub fn base_path(&self) -> &str {
        issuer_path(&self.issuer)
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
            .max(self.tokens.api_key_exchange_ttl_secs)
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

/// The path of `issuer` as written (not normalised, so that it is exactly
/// the prefix of the endpoint URLs built from it), without a trailing '/'.
fn issuer_path(issuer: &str) -> &str {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or("", |i| after_scheme[i..].trim_end_matches('/'))
}

/// `HOST:PORT` with a numeric port (`[::1]:80` for IPv6): what a listener
/// can bind. The host is resolved only when binding.
fn is_socket_address(s: &str) -> bool {
    s.parse::<std::net::SocketAddr>().is_ok()
        || s.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
        })
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
        c.apply_env(|n| (n == "TESSERA_LISTEN").then(|| "0.0.0.0:9000".to_string()))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.issuer, "https://a.example");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert!(c.issuer_is_https());
    }

    #[test]
    fn audit_retention_defaults_to_90_days_and_must_be_positive() {
        let mut c = Config::default();
        assert_eq!(c.audit.retention_days, 90);
        let mut short: Config = toml::from_str("[audit]\nretention_days = 7").unwrap();
        short.validate().unwrap();
        assert_eq!(short.audit.retention_days, 7);
        c.audit.retention_days = 0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("audit.retention_days"), "{err}");
    }

    #[test]
    fn exchange_rules_come_from_the_file_and_must_name_clients() {
        let mut c: Config = toml::from_str(
            "[[tokens.exchange_rules]]\nclient_id = \"gateway\"\nsubject_client_ids = [\"web\"]",
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.tokens.exchange_allowed_by_rule("gateway", "web"));
        assert!(!c.tokens.exchange_allowed_by_rule("gateway", "other"));
        assert!(!c.tokens.exchange_allowed_by_rule("web", "gateway"));
        c.tokens.exchange_rules[0].subject_client_ids.clear();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("tokens.exchange_rules"), "{err}");
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
        c.apply_env(|n| (n == "TESSERA_REGISTRATION_TOKEN").then(|| "s3cret-Token".to_string()))
            .unwrap();
        c.validate().unwrap();
        assert!(c.registration.enabled());
        assert_eq!(c.registration.initial_access_tokens, ["s3cret-Token"]);
        assert!(
            !format!("{c:?}").contains("s3cret-Token"),
            "tokens are not printed"
        );
        // An empty variable adds nothing.
        let mut c = Config::default();
        c.apply_env(|n| (n == "TESSERA_REGISTRATION_TOKEN").then(String::new))
            .unwrap();
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

#[cfg(test)]
mod ops_tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn operations_settings_come_from_file_and_env() {
        let mut c: Config = toml::from_str(
            "[metrics]\nlisten = \"127.0.0.1:9100\"\n[log]\nformat = \"json\"\n\
             [proxy]\ntrusted = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.metrics.listen.as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.proxy.trusted.len(), 3);
        assert_eq!(c.proxy.trusted[1].to_string(), "192.0.2.7/32");
        c.apply_env(env(&[
            ("TESSERA_METRICS_LISTEN", ""),
            ("TESSERA_LOG_FORMAT", "TEXT"),
            ("TESSERA_TRUSTED_PROXIES", "172.16.0.0/12, ::1"),
        ]))
        .unwrap();
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(
            c.proxy
                .trusted
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
            ["172.16.0.0/12", "::1/128"]
        );
    }

    #[test]
    fn bad_operations_settings_are_refused() {
        assert!(toml::from_str::<Config>("[proxy]\ntrusted = [\"10.0.0.0/33\"]").is_err());
        assert!(toml::from_str::<Config>("[log]\nformat = \"xml\"").is_err());
        let mut c = Config::default();
        assert!(c.apply_env(env(&[("TESSERA_LOG_FORMAT", "xml")])).is_err());
        assert!(
            c.apply_env(env(&[("TESSERA_TRUSTED_PROXIES", "proxy.local")]))
                .is_err()
        );
        for listen in ["8080", "localhost", ":80"] {
            let mut c = Config {
                listen: listen.into(),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{listen}");
        }
        let mut c = Config {
            listen: "localhost:8080".into(),
            ..Config::default()
        };
        c.metrics.listen = Some("[::1]:9100".into());
        c.validate().unwrap();
    }

    #[test]
    fn the_issuer_path_is_the_base_path() {
        let mut c = Config {
            issuer: "https://example.com/auth/".into(),
            ..Config::default()
        };
        c.validate().unwrap();
        assert_eq!(c.base_path(), "/auth");
        assert_eq!(Config::default().base_path(), "");
        for issuer in [
            "https://example.com/{id}",
            "https://example.com/a/../b",
            "https://example.com/a%2Fb",
            "https://example.com//a",
        ] {
            let mut c = Config {
                issuer: issuer.into(),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{issuer}");
        }
    }
}
