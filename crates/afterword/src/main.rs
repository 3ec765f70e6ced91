//! The `afterword` binary: reads the configuration and runs one role (`serve`, `import`,
//! `migrate`, `up`, `check`).

mod backend;
mod check;
mod clock;
mod config;
mod import;
mod open_files;
mod serve;
mod up;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use store::SqliteStore;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, Overrides};

/// mimalloc instead of the system allocator: serving a request is mostly small allocations
/// freed within microseconds (header maps, futures, labels), where it is markedly cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Afterword: a self-hosted comment service.
#[derive(Debug, Parser)]
#[command(name = "afterword", version, propagate_version = true)]
struct Cli {
    /// TOML configuration file; `AFTERWORD_*` variables and flags override what it says.
    #[arg(long, global = true, value_name = "FILE", env = "AFTERWORD_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database and the session key live [default: ./afterword-data].
    #[arg(long, global = true, value_name = "DIR", env = "AFTERWORD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs an app server: the JSON API, /healthz, /readyz and /metrics.
    ///
    /// Prints `listening on http://ADDR` on stdout once bound (the real port when given port 0).
    /// SIGTERM or Ctrl-C drains: /readyz fails at once, no new connections are accepted, and
    /// requests in flight get `shutdown_grace_ms` to finish.
    Serve(serve::ServeArgs),
    /// Imports comments from another system's export file.
    Import(import::ImportArgs),
    /// Applies database schema migrations, prints the schema version and exits.
    Migrate,
    /// Runs a whole local cluster: a PostgreSQL primary, streaming replicas and app servers.
    ///
    /// Prints one line per process, role then address, once all are ready; writes
    /// DATA_DIR/cluster.json; Ctrl-C or SIGTERM stops everything it started.
    Up(up::UpArgs),
    /// Verifies a running cluster: drives simulated users at it under each read strategy,
    /// checks every guarantee on what they saw and reports what users would have experienced.
    ///
    /// Prints a table per strategy (violations by kind, staleness, read latency, where reads
    /// were served). Exits 2 when `primary` or `causal` showed a violation or an acknowledged
    /// comment was lost. Needs app servers started with --allow-strategy-override.
    Check(Box<check::CheckArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("afterword: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let listen = match &cli.command {
        Command::Serve(args) => args.listen.clone(),
        Command::Import(_) | Command::Migrate | Command::Up(_) | Command::Check(_) => None,
    };
    let overrides = Overrides { config_file: cli.config, data_dir: cli.data_dir, listen };
    let config = Config::load(&overrides)?;
    init_tracing(config.log_format)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => {
            let mut config = config;
            args.apply(&mut config)?;
            runtime.block_on(serve::run(config)).map(|()| ExitCode::SUCCESS)
        }
        Command::Import(args) => import::run(&runtime, &config, &args),
        Command::Migrate => runtime.block_on(migrate(&config)).map(|()| ExitCode::SUCCESS),
        Command::Up(args) => runtime.block_on(up::run(&config, overrides.config_file.clone(), args)),
        Command::Check(args) => check::run(&runtime, &config, &args),
    }
}

/// Logs go to stderr, so stdout stays for what scripts read (the bound address, summaries).
fn init_tracing(format: LogFormat) -> anyhow::Result<()> {
    let directives =
        std::env::var("AFTERWORD_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid log filter {directives:?} in AFTERWORD_LOG/RUST_LOG"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

/// Opens the SQLite store in the data directory (creating both if needed), applying migrations.
async fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let path = config.database_path();
    SqliteStore::open(config.sqlite_config())
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    if let Some(url) = &config.postgres.url {
        let shown = store::postgres::redact(url);
        let store = store::PostgresStore::open(config.postgres.store_config(url))
            .await
            .with_context(|| format!("cannot open the PostgreSQL store at {shown}"))?;
        drop(store);
        let version = store::postgres::schema_version_latest();
        writeln!(std::io::stdout().lock(), "{shown}: schema version {version}").context("cannot write to stdout")?;
        return Ok(());
    }
    let store = open_store(config).await?;
    drop(store);
    let version = store::sqlite::schema_version_latest();
    writeln!(std::io::stdout().lock(), "{}: schema version {version}", config.database_path().display())
        .context("cannot write to stdout")?;
    Ok(())
}
