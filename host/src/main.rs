//! The `granary` command: `serve` runs the server; `migrate` prepares the database.

use std::ffi::OsString;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// jemalloc gives freed memory back to the system within seconds. glibc's malloc raises its mmap
/// threshold at the first large free (a password hash's block at the first log-in) and from then
/// on keeps blocks up to that size in its arenas: a server serving the python bench stayed at
/// 87-92 MiB with it, 53-62 MiB with jemalloc (`docs/performance.md`, #20). mimalloc, tried too,
/// started at 106 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Run task workers only (`--workers` of them, at least one); no HTTP listener.
    Worker(granary::config::Config),
    /// Create or upgrade the database schema, then exit.
    Migrate(granary::config::Config),
    /// Install, list, upgrade, disable or remove plugins of a running server (REST client).
    Plugin(granary::cli::PluginCommand),
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
    let arguments = with_config_file(std::env::args_os().collect())?;
    match Cli::parse_from(arguments).command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.bind).await?;
            let shutdown = shutdown_on_signal();
            granary::app::serve(config, listener, shutdown).await
        }
        Command::Worker(config) => {
            let shutdown = shutdown_on_signal();
            granary::app::work(config, shutdown).await
        }
        Command::Plugin(command) => granary::cli::run(command).await,
        Command::Migrate(config) => {
            std::fs::create_dir_all(&config.data_dir)?;
            granary::db::Db::connect(&config.database_url()).await?;
            println!("database is up to date");
            Ok(())
        }
    }
}

/// A token cancelled on Ctrl-C (SIGINT) or SIGTERM (what `systemctl stop`, `docker stop` and
/// Kubernetes send), for a graceful stop: running requests finish and the process removes its
/// status rows, so it is not listed as missing.
fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        signal.cancel();
    });
    shutdown
}

/// Adds the settings of a configuration file to the command line. The file is named by
/// `--config PATH` or `GRANARY_CONFIG`; it holds `GRANARY_NAME=value` lines (the environment
/// variable names, so the same file can serve as a systemd `EnvironmentFile`). Precedence: flags,
/// then environment variables, then the file.
fn with_config_file(mut arguments: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let mut path = std::env::var_os("GRANARY_CONFIG");
    if let Some(index) = arguments.iter().position(|a| a == "--config") {
        arguments.remove(index);
        anyhow::ensure!(index < arguments.len(), "--config needs a file path");
        path = Some(arguments.remove(index));
    } else if let Some(index) = arguments
        .iter()
        .position(|a| a.to_string_lossy().starts_with("--config="))
    {
        let argument = arguments.remove(index).to_string_lossy().into_owned();
        path = Some(argument["--config=".len()..].into());
    }
    let Some(path) = path else {
        return Ok(arguments);
    };
    let Some(subcommand) = arguments.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        return Ok(arguments);
    };
    let command = Cli::command();
    let Some(settings) = command
        .find_subcommand(&subcommand)
        .filter(|_| subcommand != "plugin")
    else {
        return Ok(arguments);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading config file {}", path.to_string_lossy()))?;
    let mut injected = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .with_context(|| format!("config file line {}: expected NAME=value", number + 1))?;
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        let flag = settings
            .get_arguments()
            .find(|argument| argument.get_env().is_some_and(|env| env == name))
            .and_then(|argument| argument.get_long())
            .with_context(|| format!("config file line {}: unknown setting {name}", number + 1))?;
        let on_command_line = arguments
            .iter()
            .any(|a| a.to_string_lossy().split('=').next() == Some(&format!("--{flag}")));
        if std::env::var_os(name).is_none() && !on_command_line {
            injected.push(OsString::from(format!("--{flag}={value}")));
        }
    }
    arguments.splice(2..2, injected);
    Ok(arguments)
}
