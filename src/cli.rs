//! Command-line interface. Every option also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Leanmote's task ingestion API: serve it, migrate its database and administer tokens.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML file of settings; flags and environment variables take precedence over it.
    #[arg(long, env = "LEANMOTE_CONFIG", global = true)]
    pub config: Option<std::path::PathBuf>,

    /// Database: a SQLite file path (or sqlite://PATH), or a postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/leanmote.sqlite3", global = true)]
    pub database_url: String,

    /// Most open database connections in the pool.
    #[arg(long, env = "LEANMOTE_POOL_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub pool_size: u32,

    /// Log format on standard error. The level comes from RUST_LOG (default: info).
    #[arg(long, env = "LEANMOTE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve(ServeOptions),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an organization and print its id.
    CreateOrganization {
        /// Display name, at most 255 characters.
        #[arg(long)]
        name: String,
    },
    /// Create a project, or update the one with the same external id, and print its id.
    CreateProject {
        /// Organization that owns the project.
        #[arg(long)]
        organization_id: i64,
        /// The project's id in your tool (for example its Jira key), unique within the organization.
        #[arg(long)]
        app_id: String,
        /// Display name, at most 255 characters.
        #[arg(long)]
        name: String,
        /// Mark the project inactive.
        #[arg(long)]
        inactive: bool,
    },
    /// Create an API token and print it once. Only its SHA-256 hash is stored.
    CreateToken {
        /// Label of the token's user, for example "jira-sync".
        #[arg(long)]
        label: String,
        /// Organization the token may read and write; repeat for several.
        #[arg(long = "organization-id", required = true)]
        organization_ids: Vec<i64>,
        /// Days until the token expires (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_in_days: Option<u32>,
    },
    /// Revoke an API token at once.
    RevokeToken {
        /// Id of the token, as printed by create-token.
        #[arg(long)]
        id: i64,
    },
    /// Load a JSON file of tasks into a running server over HTTP.
    Import(ImportOptions),
}

/// Options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeOptions {
    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "LEANMOTE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "LEANMOTE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "LEANMOTE_MAX_BODY_BYTES", default_value_t = api_actix::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds a client may take to send a request body before it gets 408.
    #[arg(long, env = "LEANMOTE_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,

    /// Requests per minute each token may make on this instance; 0 turns the limit off.
    #[arg(long, env = "LEANMOTE_RATE_LIMIT_PER_MINUTE", default_value_t = 0)]
    pub rate_limit_per_minute: u32,

    /// Seconds a token read from the database is trusted before it is read again;
    /// a revoked token stops working on every server within this time. 0 reads it on every request.
    #[arg(long, env = "LEANMOTE_TOKEN_CACHE_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub token_cache_secs: u64,

    /// Most open client connections per worker; further ones wait in the listen queue.
    #[arg(long, env = "LEANMOTE_MAX_CONNECTIONS", default_value_t = 25_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds a response stays stored under its Idempotency-Key for replays.
    #[arg(long, env = "LEANMOTE_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub idempotency_ttl_secs: u64,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "LEANMOTE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout_secs: u64,

    /// Demo mode: on an empty database only, create a demo organization,
    /// project 1 with three tasks, and a token, and print a ready curl command.
    /// LEANMOTE_DEMO accepts 1, true, yes or on (and 0, false, no, off).
    #[arg(long, env = "LEANMOTE_DEMO", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,
}

/// Parent reference mode of the importer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParentMode {
    /// Two passes: create every task, then send `parent_task_id` (Leanmote ids).
    Id,
    /// One pass, parents first: send `parent_task_app_id` (external ids).
    AppId,
}

/// Options of `import`.
#[derive(Debug, Clone, Args)]
pub struct ImportOptions {
    /// JSON array of tasks with a `project_key` each, and optionally `parent_task_app_id`.
    #[arg(long)]
    pub file: PathBuf,
    /// Base URL of the server.
    #[arg(long, env = "LEANMOTE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token (`lm-...`).
    #[arg(long, env = "LEANMOTE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Organization that receives one project per `project_key`.
    #[arg(long)]
    pub organization_id: i64,
    /// Parent reference mode.
    #[arg(long, value_enum, default_value_t = ParentMode::AppId)]
    pub parent_mode: ParentMode,
    /// Tasks per request (1-1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Also write the full report, with every rejected item and link, to this JSON file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}
