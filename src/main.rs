//! The `labelport` binary: a Label Studio-compatible labeling server.
//!
//! Subcommands: `start` (serve HTTP), `migrate`, `user create`, `user token`, `sync`, and `bench`.

use clap::Parser;

use labelport::config::{Cli, Command, UserCommand};
use labelport::{bench, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LABELPORT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .init();
    match cli.command {
        Command::Start(args) => server::start(args).await,
        Command::Migrate(args) => {
            server::open_database(&args).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => server::create_user_command(args).await,
        Command::User(UserCommand::Token(args)) => server::token_command(args).await,
        Command::Sync(args) => server::sync_command(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
