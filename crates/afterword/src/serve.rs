//! `afterword serve`: wires store, ids, clock, metrics and sessions into the API and runs it
//! until SIGTERM or Ctrl-C, then drains.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::AppState;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use model::SessionSigner;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend;
use crate::clock::SystemClock;
use crate::config::Config;

/// How often histogram buckets are folded in, as the exporter asks its owner to do.
const METRICS_UPKEEP_INTERVAL_MS: u64 = 5_000;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, `host:port`; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", env = "AFTERWORD_LISTEN")]
    pub listen: Option<String>,
    /// How reads are routed among PostgreSQL replicas: causal (default: a replica that has
    /// replayed what the reader has seen, else a short wait, else the primary), primary,
    /// eventual (any replica) or sticky:<duration> (a writer's reads go to the primary for
    /// that long) [config: read_strategy].
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<String>,
    /// Honour an `Afterword-Read-Strategy` request header and answer `Afterword-Served-By`
    /// (for `afterword check` and tests; never in production) [config: allow_strategy_override].
    #[arg(long)]
    pub allow_strategy_override: bool,
}

impl ServeArgs {
    /// Flags win over the configuration.
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if let Some(strategy) = &self.strategy {
            strategy.parse::<model::Strategy>().map_err(|error| anyhow::anyhow!("--strategy: {error}"))?;
            config.read_strategy = strategy.clone();
        }
        config.allow_strategy_override |= self.allow_strategy_override;
        Ok(())
    }
}

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    crate::open_files::raise_and_fit(&mut config.limits);
    let metrics = install_metrics()?;
    // The lock (SQLite only) is held until this function returns, after the drain.
    let backend::Opened { store, ids, lease, data_dir_lock: _data_dir_lock } = backend::open(&config).await?;
    let signer = SessionSigner::new(&crate::config::session_key(&config)?);
    let listener = bind(&config.listen).await?;
    let bound =
        listener.local_addr().with_context(|| format!("cannot read the address bound for {}", config.listen))?;
    tracing::info!(store = %lease.describe(), "store open");
    let state = AppState::new(store, config.api_config(Some(bound)), signer, ids, Arc::new(SystemClock), Some(metrics));
    tracing::info!("listening on http://{bound}");
    // Scripts read this line to learn the port when started with port 0.
    // A reader that has gone away (`| head -1`) is no reason to stop serving.
    let _ = writeln!(std::io::stdout().lock(), "listening on http://{bound}");
    let served = serve_until_signal(listener, state, Duration::from_millis(config.shutdown_grace_ms)).await;
    lease.release().await;
    served
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder().context("cannot install the metrics recorder")?;
    // Series that only move on rare events exist from the start, at 0, so a dashboard or an
    // alert sees them before the first event.
    for name in [
        "afterword_read_waits_total",
        "afterword_read_tokens_clamped_total",
        "afterword_primary_reads_lowered_total",
        "afterword_read_cache_hits_total",
        "afterword_read_cache_misses_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(METRICS_UPKEEP_INTERVAL_MS));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(listen).await {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::bail!("cannot listen on {listen}: address in use")
        }
        Err(error) => Err(error).with_context(|| format!("cannot listen on {listen}")),
    }
}

/// Serves until a signal; then fails `/readyz`, stops accepting and gives requests in flight
/// `grace` to finish. Connections still open after that are dropped.
async fn serve_until_signal(listener: TcpListener, state: AppState, grace: Duration) -> anyhow::Result<()> {
    let (draining_tx, mut draining_rx) = watch::channel(false);
    let draining_state = state.clone();
    let shutdown = async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal}: draining, in-flight requests get {} ms", grace.as_millis());
        draining_state.begin_draining();
        let _ = draining_tx.send(true);
    };
    let server = api::serve(listener, state, shutdown);
    let grace_over = async move {
        if draining_rx.wait_for(|draining| *draining).await.is_err() {
            // The server ended without a signal; `select!` takes its branch.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = grace_over => tracing::warn!("requests still in flight after {} ms were dropped", grace.as_millis()),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C (SIGINT) and names which came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            },
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM ({error}); only Ctrl-C stops the server");
                ctrl_c().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c().await
    }
}

async fn ctrl_c() -> &'static str {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!("cannot listen for Ctrl-C ({error}); stop the server with a kill");
        std::future::pending::<()>().await;
    }
    "Ctrl-C"
}
