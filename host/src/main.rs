//! The `granary` command: `serve` runs the server; `migrate` prepares the database.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Granary: an artifact repository whose content types are WebAssembly components.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the REST API, the content app and task workers.
    Serve(granary::config::Config),
    /// Create or upgrade the database schema, then exit.
    Migrate(granary::config::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.bind).await?;
            let shutdown = CancellationToken::new();
            let signal = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                signal.cancel();
            });
            granary::app::serve(config, listener, shutdown).await
        }
        Command::Migrate(config) => {
            std::fs::create_dir_all(&config.data_dir)?;
            granary::db::Db::connect(&config.database_url()).await?;
            println!("database is up to date");
            Ok(())
        }
    }
}
