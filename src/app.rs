//! Wiring for `switchboard run`: open and migrate the store, build the desk, serve HTTP, and
//! stop cleanly on a shutdown signal.
//!
//! Owns start-up order and shutdown. Must not contain rules; it only connects the parts.

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::command::{CommandSet, SpecError};
use crate::desk::Desk;
use crate::http::{self, AppState};
use crate::store::{self, StoreError};
use crate::telemetry::Telemetry;

/// Why Switchboard could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A command spec is broken (a packaging bug).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The HTTP server could not bind or failed.
    #[error("HTTP server on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Opens and migrates the store, syncs people from the config, and builds the desk.
pub async fn build_desk(config: Config, clock: Arc<dyn Clock>) -> Result<Desk, AppError> {
    let store = store::open(&config.database_url).await?;
    store.migrate().await?;
    store
        .sync_people(&config.directory.people, clock.now())
        .await?;
    Ok(Desk {
        config: Arc::new(config),
        store,
        clock,
        commands: Arc::new(CommandSet::builtin()?),
        telemetry: Arc::new(Telemetry::default()),
    })
}

/// Runs until `shutdown` completes: binds `config.listen`, then [`serve`]s.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr = config.listen;
    let desk = build_desk(config, clock).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Http { addr, source })?;
    serve(desk, listener, shutdown).await
}

/// Serves HTTP on `listener` until `shutdown` completes; in-flight requests finish first.
pub async fn serve(
    desk: Desk,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr = listener.local_addr().map_err(|source| AppError::Http {
        addr: ([0, 0, 0, 0], 0).into(),
        source,
    })?;
    tracing::info!(
        %addr,
        departments = desk.config.directory.departments.len(),
        rules = desk.config.router.rules.len(),
        "switchboard is running; /healthz, /readyz and /metrics are served"
    );
    let app = http::router(AppState {
        store: desk.store.clone(),
        telemetry: desk.telemetry.clone(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| AppError::Http { addr, source })?;
    tracing::info!("switchboard stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
