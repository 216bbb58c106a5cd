//! The `tessera` command line: serve, and manage users, clients, resources
//! and keys against the same database a running server uses.

// The lint policy of lib.rs (see there for why); this is its own crate root.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]
#![deny(clippy::expect_used)]
#![deny(clippy::panic)]
#![deny(clippy::await_holding_lock)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tessera::clock::{Clock, SystemClock};
use tessera::config::{Config, LogFormat};
use tessera::domain::client::ClientAssertionAlg;
use tessera::jose::SigningAlg;
use tessera::jose::rotation::Trigger;
use tessera::oauth::client::ClientRegistration;
use tessera::service::api_keys::{self, NewApiKey};
use tessera::service::audit::{self, Actor, AuditFilter, DbAuditSink};
use tessera::service::keys;
use tessera::service::page::{MAX_LIMIT, PageRequest};
use tessera::service::resources::{self, NewResource};
use tessera::service::users::{self, NewUser};
use tessera::service::{ServiceError, clients};
use tessera::state::{self, AppState};
use tessera::store::{self, SharedStore};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "An OAuth 2.1 / OpenID Connect authorization server"
)]
struct Cli {
    /// TOML configuration file (also TESSERA_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage the people who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage registered clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage registered resources (APIs, RFC 8707).
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage API keys for server-to-server callers.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key; prints it with the key itself, which is shown only here.
    Create {
        #[arg(long)]
        name: String,
        /// Space-separated scopes the key carries.
        #[arg(long)]
        scope: String,
        /// A client id or a username the key acts for.
        #[arg(long, allow_hyphen_values = true)]
        owner: Option<String>,
        /// 1 to 16 lowercase letters or digits (default tsr).
        #[arg(long)]
        prefix: Option<String>,
        /// Seconds until the key expires (default: never).
        #[arg(long)]
        expires_in: Option<i64>,
        /// COUNT/SECS: at most COUNT uses per SECS seconds, on all instances.
        #[arg(long)]
        rate_limit: Option<String>,
        /// A JSON object handed to resource servers with each verification.
        #[arg(long)]
        meta: Option<String>,
    },
    /// List keys (never the key itself).
    List,
    /// Show one key with its usage.
    Show { id: String },
    /// Revoke a key at once, on every instance.
    Revoke { id: String },
    /// Make a new key with the same settings; the old one works for the
    /// overlap, then expires.
    Rotate {
        id: String,
        #[arg(long, default_value_t = 0)]
        overlap_secs: i64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print events, newest first, one JSON object per line.
    List {
        /// Only events at or after this RFC 3339 date-time
        /// (2024-05-01T12:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only events of this kind (signin.failed) or category (signin).
        #[arg(long = "type")]
        kind: Option<String>,
        /// At most this many events (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints {"sub": …, "username": …}.
    Add {
        username: String,
        /// Read the password from standard input (required; one trailing
        /// newline is dropped).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List users (never their password hashes).
    List,
    /// Delete a user, their consents, and every grant they gave.
    Delete { username: String },
    /// Set a user's password, read from standard input.
    Passwd {
        username: String,
        /// Accepted for symmetry with `user add`: the password is always
        /// read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints the RFC 7591 client information response.
    Add(ClientMetadataArgs),
    /// Replace a client's metadata as a whole (the same flags as `add`);
    /// its id and secret stay. Prints the client information response.
    Update {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        metadata: ClientMetadataArgs,
    },
    /// List registered clients.
    List,
    /// Show one client.
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// The client metadata `client add` and `client update` take.
#[derive(Args)]
struct ClientMetadataArgs {
    #[arg(long)]
    name: String,
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A grant type from the token endpoint's registry (repeatable).
    #[arg(long = "grant-type", value_parser = parse_grant_type)]
    grant_types: Vec<String>,
    /// `code` (default with the authorization_code grant) or `id_token`
    /// (sign-in only, answered by form_post).
    #[arg(long = "response-type")]
    response_types: Vec<String>,
    /// Space-separated scopes the client may request.
    #[arg(long)]
    scope: Option<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    #[arg(long, value_parser = parse_auth_method)]
    token_endpoint_auth_method: Option<String>,
    #[arg(long)]
    id_token_signed_response_alg: Option<SigningAlg>,
    #[arg(long)]
    access_token_signed_response_alg: Option<SigningAlg>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout: where Logout Tokens are POSTed (https, or
    /// http on a loopback host).
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in Logout Tokens (always sent).
    #[arg(long)]
    backchannel_logout_session_required: bool,
    /// A first-party client: never show the consent page.
    #[arg(long)]
    skip_consent: bool,
    /// Accept only pushed authorization requests (RFC 9126) from it.
    #[arg(long)]
    require_par: bool,
    /// The client's public keys, a JWK Set file (RFC 7591 `jwks`);
    /// required by `private_key_jwt`.
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// The algorithm of a `private_key_jwt` client's assertions
    /// (RS256, ES256 or PS256; any of them when absent).
    #[arg(long)]
    token_endpoint_auth_signing_alg: Option<ClientAssertionAlg>,
}

impl ClientMetadataArgs {
    /// The registration these flags ask for; reading `--jwks-file` may fail.
    fn registration(self) -> Result<ClientRegistration, Failure> {
        let args = self;
        let jwks = args.jwks_file.as_deref().map(read_jwks_file).transpose()?;
        Ok(ClientRegistration {
            client_name: args.name,
            redirect_uris: args.redirect_uris,
            grant_types: args.grant_types,
            response_types: args.response_types,
            scope: args.scope,
            public: args.public,
            token_endpoint_auth_method: args.token_endpoint_auth_method,
            id_token_signed_response_alg: args.id_token_signed_response_alg,
            access_token_signed_response_alg: args.access_token_signed_response_alg,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            backchannel_logout_uri: args.backchannel_logout_uri,
            backchannel_logout_session_required: args.backchannel_logout_session_required,
            skip_consent: args.skip_consent,
            require_pushed_authorization_requests: args.require_par,
            jwks,
            token_endpoint_auth_signing_alg: args.token_endpoint_auth_signing_alg,
        })
    }
}

#[derive(Subcommand)]
enum ResourceCommand {
    /// Register a resource (an API); prints it as JSON, with its secret
    /// (only here) when `--with-secret` is given.
    Add {
        /// An absolute URI without a fragment: what clients send as
        /// `resource` and tokens carry as `aud`.
        #[arg(long)]
        identifier: String,
        /// Shown on the consent page beside its scopes.
        #[arg(long)]
        name: String,
        /// Space-separated scopes that make sense for it.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime of access tokens for it (default: the server's).
        #[arg(long)]
        access_token_ttl_secs: Option<i64>,
        /// Algorithm of access tokens for it (default: the client's).
        #[arg(long)]
        signing_alg: Option<SigningAlg>,
        /// Give it a secret to introspect tokens with.
        #[arg(long)]
        with_secret: bool,
        /// The client that owns it: it may exchange (RFC 8693) access
        /// tokens meant for this API for tokens to call other APIs.
        #[arg(long, value_name = "CLIENT_ID")]
        owner_client: Option<String>,
    },
    /// List registered resources.
    List,
    /// Show one resource.
    Show {
        #[arg(allow_hyphen_values = true)]
        identifier: String,
    },
    /// Delete a resource.
    Delete {
        #[arg(allow_hyphen_values = true)]
        identifier: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys (kid, alg, state, timestamps).
    List,
    /// Rotate now: the next key starts signing, a new next key is made.
    Rotate,
    /// Import an existing private key (PKCS#1, SEC1 or PKCS#8 PEM); its kid
    /// is the RFC 7638 thumbprint. Prints the key like `keys list`.
    Import {
        /// The PEM file holding the private key.
        #[arg(long)]
        pem: PathBuf,
        /// RS256 or ES256; defaults to what the key is, and must match it.
        #[arg(long)]
        alg: Option<SigningAlg>,
        /// `next`: published now, signs after the next rotation;
        /// `current`: signs now, the current key of its algorithm retires.
        #[arg(long, default_value = "next")]
        state: keys::ImportAs,
    },
    /// Print the public JWKS, the document /jwks serves.
    ExportPublic,
}

/// A grant type from the grant registry.
fn parse_grant_type(s: &str) -> Result<String, String> {
    match tessera::oauth::grants::find(s) {
        Ok(grant) => Ok(grant.grant_type().to_string()),
        Err(_) => Err(format!(
            "{s:?} is not one of {}",
            tessera::oauth::grants::grant_types()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A JWK Set file, as JSON; `client::register` checks what it holds.
fn read_jwks_file(path: &Path) -> Result<serde_json::Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{} is not JSON: {e}", path.display())))
}

/// A name from the client-authentication registry.
fn parse_auth_method(s: &str) -> Result<String, String> {
    match tessera::oauth::client_auth::find(s) {
        Some(method) => Ok(method.name().to_string()),
        None => Err(format!(
            "{s:?} is not one of {}",
            tessera::oauth::client_auth::method_names()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Exit code 2: bad usage or input. Everything else that fails is 1.
enum Failure {
    Usage(String),
    Other(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line on stderr: the reason, without clap's usage block.
            let rendered = e.render().to_string();
            let reason = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("tessera: {reason} (see `tessera --help`)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (reason, code) = match runtime.block_on(run(cli)) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(reason)) => (reason, 2),
        Err(Failure::Other(reason)) => (reason, 1),
    };
    // One line, whatever the error's own formatting.
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("tessera: {reason}");
    ExitCode::from(code)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Config::load(cli.config.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            store::connect(&config.database_url).await?;
            Ok(())
        }
        Command::User(cmd) => user_command(&config, cmd).await,
        Command::Client(cmd) => client_command(&config, cmd).await,
        Command::Resource(cmd) => resource_command(&config, cmd).await,
        Command::Keys(cmd) => keys_command(&config, cmd).await,
        Command::Audit(cmd) => audit_command(&config, cmd).await,
        Command::Apikey(cmd) => api_key_command(&config, cmd).await,
    }
}

async fn api_key_command(config: &Config, cmd: ApiKeyCommand) -> Result<(), Failure> {
    let store = store::connect(&config.database_url).await?;
    let store = store.as_ref();
    let audit = &DbAuditSink { store };
    let (clock, actor) = (&SystemClock, &Actor::Cli);
    match cmd {
        ApiKeyCommand::Create {
            name,
            scope,
            owner,
            prefix,
            expires_in,
            rate_limit,
            meta,
        } => {
            let new = NewApiKey {
                name,
                scope,
                owner,
                prefix,
                expires_in_secs: expires_in,
                rate_limit,
                meta,
            };
            let created = api_keys::create(store, store, store, clock, audit, actor, new)
                .await
                .map_err(service_failure)?;
            print_json(&created.to_json())
        }
        ApiKeyCommand::List => {
            let all = api_keys::list(store).await.map_err(service_failure)?;
            print_json(&serde_json::Value::Array(
                all.iter().map(api_keys::view).collect(),
            ))
        }
        ApiKeyCommand::Show { id } => {
            let key = api_keys::show(store, &id).await.map_err(service_failure)?;
            print_json(&api_keys::view(&key))
        }
        ApiKeyCommand::Revoke { id } => {
            let key = api_keys::revoke(store, clock, audit, actor, &id)
                .await
                .map_err(service_failure)?;
            print_json(&api_keys::view(&key))
        }
        ApiKeyCommand::Rotate { id, overlap_secs } => {
            let created = api_keys::rotate(store, clock, audit, actor, &id, overlap_secs)
                .await
                .map_err(service_failure)?;
            print_json(&created.to_json())
        }
    }
}

/// The log filter without `RUST_LOG`. tower-sessions warns on every
/// unknown session cookie ("possibly suspicious activity"), which an
/// expired cookie triggers routinely; our session store logs it at debug
/// instead.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=info,tower_sessions_core=error";

/// Runs the server. Whatever stops it from starting (the config, the
/// database, a listen address, the keys) is for the operator to fix and
/// exits 2 with one line (issue 8.7); a failure while serving exits 1.
async fn serve(config: Config) -> Result<(), Failure> {
    init_logging(config.log.format);
    let cannot_start = |e: &dyn std::fmt::Display| Failure::Usage(format!("cannot start: {e}"));
    let store = store::connect(&config.database_url)
        .await
        .map_err(|e| cannot_start(&format_args!("{e} ({})", redacted(&config.database_url))))?;
    let master_key = state::load_master_key(&config).map_err(|e| cannot_start(&e))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| cannot_start(&format_args!("cannot listen on {}: {e}", config.listen)))?;
    let metrics_listener = match &config.metrics.listen {
        Some(address) => {
            let bound = tessera::http::server::bind_metrics(address)
                .await
                .map_err(|e| cannot_start(&e))?;
            // Before the state exists, so its start-up gauges are recorded.
            tessera::http::metrics::install();
            Some(bound)
        }
        None => None,
    };
    let issuer = config.issuer.clone();
    let state = AppState::new(config, store, Arc::new(SystemClock), master_key)
        .await
        .map_err(|e| cannot_start(&e))?;
    tracing::info!(
        address = %listener.local_addr()?,
        issuer = %issuer,
        "tessera is listening"
    );
    let serving = state.clone();
    tessera::http::server::serve_with_metrics(
        listener,
        metrics_listener,
        serving,
        shutdown_signal(),
    )
    .await?;
    // Audit events still queued, and API key uses still buffered, are
    // written before the process ends.
    state.audit.flush().await;
    if let Err(e) = state.store.flush_api_key_uses().await {
        tracing::warn!(error = %e, "writing API key usage failed");
    }
    tracing::info!("shut down");
    Ok(())
}

/// A database URL fit for an error message: without its password.
fn redacted(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database_url.to_string(),
    }
}

/// Text lines by default; with `log.format = "json"` one JSON object per
/// line, carrying the fields of the spans it is in (the request's `id`).
/// `RUST_LOG` chooses the levels. Colours only on a terminal, so that
/// files and log collectors get plain text.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(format == LogFormat::Text && std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Maps a service's refusal to exit code 2 (the caller's input) and its
/// failures to exit code 1. Every service call goes through this: the
/// blanket `From` above would make any error exit 1.
fn service_failure(e: ServiceError) -> Failure {
    match e {
        ServiceError::Invalid(reason)
        | ServiceError::NotFound(reason)
        | ServiceError::Conflict(reason) => Failure::Usage(reason),
        ServiceError::Internal(source) => Failure::Other(source.to_string()),
    }
}

/// The whole of standard input minus one trailing newline; never empty.
fn read_password_stdin() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = s
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&s);
    if password.is_empty() {
        return Err(Failure::Usage(
            "the password is empty: pipe it on standard input".into(),
        ));
    }
    Ok(password.to_string())
}

async fn user_command(config: &Config, cmd: UserCommand) -> Result<(), Failure> {
    // Check what can be checked before touching the database or stdin.
    if let UserCommand::Add {
        username,
        password_stdin,
        ..
    } = &cmd
    {
        users::validate_username(username).map_err(service_failure)?;
        if !password_stdin {
            return Err(Failure::Usage(
                "--password-stdin is required: pipe the password on standard input".into(),
            ));
        }
    }
    let store = store::connect(&config.database_url).await?;
    let store = store.as_ref();
    let audit = &DbAuditSink { store };
    let (clock, actor) = (&SystemClock, &Actor::Cli);
    match cmd {
        UserCommand::Add {
            username,
            email,
            name,
            ..
        } => {
            let password = read_password_stdin()?;
            let new = NewUser {
                username,
                password,
                email,
                name,
            };
            let user = users::add(store, clock, audit, actor, new)
                .await
                .map_err(service_failure)?;
            print_json(&serde_json::json!({ "sub": user.sub, "username": user.username }))
        }
        UserCommand::List => {
            let all = users::list(store).await.map_err(service_failure)?;
            print_json(&serde_json::to_value(all)?)
        }
        UserCommand::Delete { username } => {
            let user = users::find_by_username(store, &username)
                .await
                .map_err(service_failure)?;
            users::delete(store, clock, audit, actor, &user)
                .await
                .map_err(service_failure)?;
            print_json(&serde_json::json!({ "deleted": user.sub }))
        }
        UserCommand::Passwd { username, .. } => {
            // An unknown name is refused before the password is asked for.
            let user = users::find_by_username(store, &username)
                .await
                .map_err(service_failure)?;
            let password = read_password_stdin()?;
            users::set_password(store, clock, audit, actor, &user, password)
                .await
                .map_err(service_failure)?;
            print_json(&serde_json::json!({ "sub": user.sub, "username": user.username }))
        }
    }
}

async fn client_command(config: &Config, cmd: ClientCommand) -> Result<(), Failure> {
    let store = store::connect(&config.database_url).await?;
    let store = store.as_ref();
    let audit = &DbAuditSink { store };
    let (clock, actor) = (&SystemClock, &Actor::Cli);
    match cmd {
        ClientCommand::Add(metadata) => {
            let registered =
                clients::register(store, clock, audit, actor, metadata.registration()?)
                    .await
                    .map_err(service_failure)?;
            print_json(&registered.information_response())
        }
        ClientCommand::Update {
            client_id,
            metadata,
        } => {
            let updated = clients::update(
                store,
                clock,
                audit,
                actor,
                &client_id,
                metadata.registration()?,
            )
            .await
            .map_err(service_failure)?;
            print_json(&updated.information_response())
        }
        ClientCommand::List => {
            let all = clients::list(store).await.map_err(service_failure)?;
            print_json(&serde_json::Value::Array(
                all.iter().map(|c| c.information_response(None)).collect(),
            ))
        }
        ClientCommand::Show { client_id } => {
            let client = clients::show(store, &client_id)
                .await
                .map_err(service_failure)?;
            print_json(&client.information_response(None))
        }
        ClientCommand::Delete { client_id } => {
            clients::delete(store, clock, audit, actor, &client_id)
                .await
                .map_err(service_failure)?;
            print_json(&serde_json::json!({ "deleted": client_id }))
        }
    }
}

async fn resource_command(config: &Config, cmd: ResourceCommand) -> Result<(), Failure> {
    let store = store::connect(&config.database_url).await?;
    let store = store.as_ref();
    let audit = &DbAuditSink { store };
    let (clock, actor) = (&SystemClock, &Actor::Cli);
    match cmd {
        ResourceCommand::Add {
            identifier,
            name,
            scope,
            access_token_ttl_secs,
            signing_alg,
            with_secret,
            owner_client,
        } => {
            let new = NewResource {
                identifier,
                name,
                scope,
                access_token_ttl_secs,
                signing_alg,
                with_secret,
                owner_client_id: owner_client,
            };
            let added = resources::add(store, store, clock, audit, actor, new)
                .await
                .map_err(service_failure)?;
            print_json(&added.to_json())
        }
        ResourceCommand::List => {
            let all = resources::list(store).await.map_err(service_failure)?;
            print_json(&serde_json::Value::Array(
                all.iter().map(|r| r.to_json(None)).collect(),
            ))
        }
        ResourceCommand::Show { identifier } => {
            let resource = resources::show(store, &identifier)
                .await
                .map_err(service_failure)?;
            print_json(&resource.to_json(None))
        }
        ResourceCommand::Delete { identifier } => {
            resources::delete(store, clock, audit, actor, &identifier)
                .await
                .map_err(service_failure)?;
            print_json(&serde_json::json!({ "deleted": identifier }))
        }
    }
}

async fn keys_command(config: &Config, cmd: KeysCommand) -> Result<(), Failure> {
    let now = SystemClock.now();
    let store: SharedStore = match cmd {
        KeysCommand::List => store::connect(&config.database_url).await?,
        KeysCommand::Rotate => {
            let store: SharedStore = store::connect(&config.database_url).await?;
            let master = state::load_master_key(config)?;
            let policy = state::rotation_policy(config);
            // A key-encryption key that cannot open the stored keys exits 2.
            let changes = keys::rotate(store.as_ref(), &master, policy, now, Trigger::Manual)
                .await
                .map_err(|e| service_failure(keys::key_write_error(e)))?;
            for warning in &changes.warnings {
                eprintln!("tessera: warning: {warning}");
            }
            let audit = DbAuditSink {
                store: store.as_ref(),
            };
            keys::audit_rotation(&audit, &Actor::Cli, &changes, now).await;
            store
        }
        KeysCommand::Import {
            pem,
            alg,
            state: import_as,
        } => {
            // The file is read and checked before the database is touched.
            let text = std::fs::read_to_string(&pem)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", pem.display())))?;
            let key = keys::parse_pem(&text, alg).map_err(service_failure)?;
            let store: SharedStore = store::connect(&config.database_url).await?;
            let master = state::load_master_key(config)?;
            let imported = keys::import(store.as_ref(), &master, &key, import_as, now)
                .await
                .map_err(service_failure)?;
            for warning in &imported.warnings {
                eprintln!("tessera: warning: {warning}");
            }
            let audit = DbAuditSink {
                store: store.as_ref(),
            };
            keys::audit_import(&audit, &Actor::Cli, &imported.key, now).await;
            return print_json(&serde_json::to_value(imported.key)?);
        }
        KeysCommand::ExportPublic => {
            let store: SharedStore = store::connect(&config.database_url).await?;
            let jwks = keys::export_public(store.as_ref())
                .await
                .map_err(service_failure)?;
            println!("{}", String::from_utf8_lossy(&jwks.body));
            return Ok(());
        }
    };
    let listed = keys::list(store.as_ref()).await.map_err(service_failure)?;
    print_json(&serde_json::to_value(listed)?)
}

async fn audit_command(config: &Config, cmd: AuditCommand) -> Result<(), Failure> {
    let AuditCommand::List { since, kind, limit } = cmd;
    // Everything the operator typed is checked before the database is
    // opened.
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Failure::Usage(format!(
            "--limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let since = since
        .map(|s| audit::parse_rfc3339("--since", &s))
        .transpose()
        .map_err(service_failure)?;
    if let Some(kind) = &kind {
        audit::kinds_named(kind).map_err(service_failure)?;
    }
    let store = store::connect(&config.database_url).await?;
    let filter = AuditFilter {
        kind,
        since,
        ..AuditFilter::default()
    };
    let page = audit::list(store.as_ref(), &filter, &PageRequest::first(limit))
        .await
        .map_err(service_failure)?;
    let mut out = std::io::stdout().lock();
    for entry in page.items {
        use std::io::Write;
        writeln!(out, "{}", serde_json::to_string(&entry)?)?;
    }
    Ok(())
}
