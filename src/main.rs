//! The `tessera` command line: serve, and manage users, clients and keys
//! against the same database a running server uses.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tessera::clock::{Clock, SystemClock};
use tessera::config::Config;
use tessera::jose::SigningAlg;
use tessera::jose::keys::{self, SigningKeyRecord};
use tessera::jose::rotation::{self, Trigger};
use tessera::oauth::client::{self, ClientRegistration, TokenEndpointAuthMethod};
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
    /// Manage registered clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints the RFC 7591 client information response.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long)]
        scope: Option<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        #[arg(long, value_parser = parse_auth_method)]
        token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
        #[arg(long)]
        id_token_signed_response_alg: Option<SigningAlg>,
        #[arg(long)]
        access_token_signed_response_alg: Option<SigningAlg>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A first-party client: never show the consent page.
        #[arg(long)]
        skip_consent: bool,
    },
    /// List registered clients.
    List,
    /// Show one client.
    Show { client_id: String },
    /// Delete a client.
    Delete { client_id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys (kid, alg, state, timestamps).
    List,
    /// Rotate now: the next key starts signing, a new next key is made.
    Rotate,
}

fn parse_auth_method(s: &str) -> Result<TokenEndpointAuthMethod, String> {
    TokenEndpointAuthMethod::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of client_secret_basic, client_secret_post, none"))
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
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(reason)) => {
            eprintln!("tessera: {reason}");
            ExitCode::from(2)
        }
        Err(Failure::Other(reason)) => {
            eprintln!("tessera: {reason}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Config::load(cli.config.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            store::connect(&config.database_url).await?;
            Ok(())
        }
        Command::Client(cmd) => client_command(&config, cmd).await,
        Command::Keys(cmd) => keys_command(&config, cmd).await,
    }
}

async fn serve(config: Config) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .init();
    let store = store::connect(&config.database_url).await?;
    let master_key = state::load_master_key(&config)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {}: {e}", config.listen)))?;
    let issuer = config.issuer.clone();
    let state = AppState::new(config, store, Arc::new(SystemClock), master_key).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        issuer = %issuer,
        "tessera is listening"
    );
    tessera::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
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

async fn client_command(config: &Config, cmd: ClientCommand) -> Result<(), Failure> {
    let store = store::connect(&config.database_url).await?;
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uris,
            grant_types,
            scope,
            public,
            token_endpoint_auth_method,
            id_token_signed_response_alg,
            access_token_signed_response_alg,
            post_logout_redirect_uris,
            skip_consent,
        } => {
            let registration = ClientRegistration {
                client_name: name,
                redirect_uris,
                grant_types,
                scope,
                public,
                token_endpoint_auth_method,
                id_token_signed_response_alg,
                access_token_signed_response_alg,
                post_logout_redirect_uris,
                skip_consent,
            };
            let (client, secret) = client::register(registration, SystemClock.now())
                .map_err(|e| Failure::Usage(e.to_string()))?;
            store.insert_client(&client).await?;
            print_json(&client.information_response(secret.as_deref()))
        }
        ClientCommand::List => {
            let clients = store.clients().await?;
            print_json(&serde_json::Value::Array(
                clients
                    .iter()
                    .map(|c| c.information_response(None))
                    .collect(),
            ))
        }
        ClientCommand::Show { client_id } => match store.client(&client_id).await? {
            Some(c) => print_json(&c.information_response(None)),
            None => Err(Failure::Usage(format!("no client with id {client_id:?}"))),
        },
        ClientCommand::Delete { client_id } => {
            if store.delete_client(&client_id).await? {
                print_json(&serde_json::json!({ "deleted": client_id }))
            } else {
                Err(Failure::Usage(format!("no client with id {client_id:?}")))
            }
        }
    }
}

fn key_json(k: &SigningKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": k.state.as_str(),
        "created_at": k.created_at,
        "activated_at": k.activated_at,
        "retired_at": k.retired_at,
    })
}

async fn keys_command(config: &Config, cmd: KeysCommand) -> Result<(), Failure> {
    let store: SharedStore = store::connect(&config.database_url).await?;
    if let KeysCommand::Rotate = cmd {
        let master = state::load_master_key(config)?;
        let now = SystemClock.now();
        let policy = state::rotation_policy(config);
        let planner = |keys: &[SigningKeyRecord]| {
            rotation::plan(keys, now, policy, Trigger::Manual, &mut |alg| {
                keys::generate(alg, &master, now)
            })
        };
        let changes = store.update_signing_keys(&planner).await?;
        for warning in &changes.warnings {
            eprintln!("tessera: warning: {warning}");
        }
    }
    let keys = store.signing_keys().await?;
    print_json(&serde_json::Value::Array(
        keys.iter().map(key_json).collect(),
    ))
}

#[allow(dead_code)]
fn read_stdin_line() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}
