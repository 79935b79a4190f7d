//! The command line and its environment variables: one typed configuration, every flag also an
//! environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "labelport", version, about = "A Label Studio-compatible labeling server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (and create the first user from LABELPORT_USERNAME/PASSWORD/USER_TOKEN).
    Start(StartArgs),
    /// Create or update the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Sync a storage now (import or export, by storage id) and wait for it to finish.
    Sync(SyncArgs),
    /// Measure import and sync speed and memory.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The storage id (as in `/api/storages/s3/{id}` or `/api/storages/export/s3/{id}`).
    pub storage_id: i64,
    /// Objects fetched at the same time.
    #[arg(long, env = "LABELPORT_SYNC_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Folder for the embedded database and other local data.
    #[arg(long, env = "LABELPORT_DATA_DIR", default_value = "./labelport-data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: SQLite in the data dir.
    #[arg(long, env = "LABELPORT_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The database URL to use, defaulting to `labelport.db` in the data folder.
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("labelport.db").display()),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "LABELPORT_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, env = "LABELPORT_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Largest request body accepted, in bytes (Label Studio's DATA_UPLOAD_MAX_MEMORY_SIZE).
    #[arg(long, env = "DATA_UPLOAD_MAX_MEMORY_SIZE", default_value_t = 250 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Objects fetched at the same time during an import sync.
    #[arg(long, env = "LABELPORT_SYNC_CONCURRENCY", default_value_t = 32)]
    pub sync_concurrency: usize,
    /// Seconds a sync job stays claimed without a heartbeat before another process takes it over.
    #[arg(long, env = "LABELPORT_SYNC_LEASE_SECONDS", default_value_t = 30)]
    pub sync_lease_seconds: u64,
    /// Sync jobs this process runs at the same time.
    #[arg(long, env = "LABELPORT_SYNC_WORKERS", default_value_t = 2)]
    pub sync_workers: usize,
    /// Folder holding Label Studio's labeling front end (`editor/`, `fonts/`) for the web UI's
    /// labeling screen; `scripts/frontend.sh` fetches it.
    #[arg(long, env = "LABELPORT_FRONTEND_DIR")]
    pub frontend_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (in a new or existing organization) and print an API token for it.
    Create(UserCreateArgs),
    /// Create a new API token for a user and print it (tokens are stored hashed, so an existing
    /// one cannot be shown again).
    Token(UserTokenArgs),
}

#[derive(Clone, Args)]
pub struct UserCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub email: String,
    #[arg(long, env = "LABELPORT_NEW_USER_PASSWORD")]
    pub password: Option<String>,
    /// Organization to join, created when it does not exist. Default: the first organization.
    #[arg(long)]
    pub organization: Option<String>,
    /// Use this API token instead of a random one.
    #[arg(long)]
    pub token: Option<String>,
}

impl std::fmt::Debug for UserCreateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreateArgs")
            .field("database", &self.database)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("organization", &self.organization)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Args)]
pub struct UserTokenArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub email: String,
    /// Register this token instead of a random one.
    #[arg(long)]
    pub token: Option<String>,
}

impl std::fmt::Debug for UserTokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokenArgs")
            .field("database", &self.database)
            .field("email", &self.email)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Reads the first set variable among `LABELPORT_<name>` and Label Studio's spellings.
pub fn env_any(name: &str) -> Option<String> {
    [
        format!("LABELPORT_{name}"),
        format!("LABEL_STUDIO_{name}"),
        format!("HEARTEX_{name}"),
    ]
    .iter()
    .find_map(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
}

/// Reads a boolean setting among `name`, `LABEL_STUDIO_<name>` and `LABELPORT_<name>`
/// (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn flag_env(name: &str, default: bool) -> bool {
    let value = [
        format!("LABELPORT_{name}"),
        format!("LABEL_STUDIO_{name}"),
        name.to_string(),
    ]
    .iter()
    .find_map(|key| std::env::var(key).ok());
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
        _ => default,
    }
}
