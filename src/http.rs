//! The HTTP server: health, readiness, Prometheus metrics, the platform webhooks that are
//! configured (Slack's Events API, commands and interactivity in HTTP mode) and the API
//! (metrics push and tickets) when a token is configured, and the web view (`/ui/`) when
//! `[web] enabled`.
//!
//! Owns routes and their status codes. Must not hold business rules; it asks the store and
//! the telemetry registry, nothing else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::chat::slack::events::EventsState;
use crate::store::DynStore;
use crate::telemetry::{OutboxLabels, Telemetry};

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store, for readiness and gauges.
    pub store: DynStore,
    /// Metrics.
    pub telemetry: Arc<Telemetry>,
    /// Slack's Events API endpoint, when `SLACK_SIGNING_SECRET` is set (HTTP mode).
    pub slack_events: Option<EventsState>,
    /// The API (`/api/metrics`, `/api/tickets`), when any API token is configured.
    pub api: Option<crate::api::ApiState>,
    /// Discord's HTTP interactions endpoint, when `DISCORD_PUBLIC_KEY` is set.
    pub discord_endpoint: Option<crate::chat::discord::endpoint::EndpointState>,
    /// Time, for the adapters' health.
    pub clock: Arc<dyn crate::core::clock::Clock>,
    /// How long an adapter part may fail before it shows as down.
    pub adapter_grace: chrono::Duration,
    /// When set, `/metrics` answers only requests bearing it (`SWITCHBOARD_METRICS_TOKEN`).
    pub metrics_token: Option<crate::config::Secret>,
    /// Whether `/metrics` is on this router; false when `server.metrics_listen` serves it
    /// on its own address ([`metrics_router`]).
    pub serve_metrics: bool,
    /// The web view under `/ui/`, when `[web] enabled`.
    pub web: Option<crate::web::WebState>,
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    let slack = state.slack_events.clone();
    let api = state.api.clone();
    let discord = state.discord_endpoint.clone();
    let web = state.web.clone();
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.serve_metrics {
        app = app.route("/metrics", get(metrics));
    }
    let app = app.with_state(state);
    let app = match slack {
        Some(events) => app.merge(crate::chat::slack::events::router(events)),
        None => app,
    };
    let app = match api {
        Some(api) => app
            .merge(crate::intake::router(api.clone()))
            .merge(crate::api::router(api)),
        None => app,
    };
    let app = match web {
        Some(web) => app.merge(crate::web::router(web)),
        None => app,
    };
    match discord {
        Some(endpoint) => app.merge(crate::chat::discord::endpoint::router(endpoint)),
        None => app,
    }
}

/// `/metrics` alone, for its own address (`server.metrics_listen`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers; the body names each adapter part with its health.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    // The status is the database's alone: taking every instance out of a load balancer
    // because Slack is down would make Slack disable the event subscription.
    let (status, database) = match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "up"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "down")
        }
    };
    let adapters = s.telemetry.adapters(s.clock.now(), s.adapter_grace);
    let body = serde_json::json!({
        "ready": status == StatusCode::OK,
        "database": database,
        "adapters": adapters,
    });
    (status, axum::Json(body))
}

/// Prometheus text exposition, with the outbox gauges refreshed from the store and the
/// adapters' from their health.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &s.metrics_token {
        if !crate::api::bearer_matches(&headers, token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "/metrics needs `Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>`\n",
            )
                .into_response();
        }
    }
    let _ = s.telemetry.adapters(s.clock.now(), s.adapter_grace);
    match s.store.outbox_counts().await {
        Ok(counts) => {
            for status in ["pending", "sent", "failed"] {
                let n = counts
                    .iter()
                    .find(|(st, _)| st == status)
                    .map_or(0, |(_, n)| *n);
                s.telemetry
                    .outbox_rows
                    .get_or_create(&OutboxLabels {
                        status: status.to_string(),
                    })
                    .set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count outbox rows for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.telemetry.render(),
    )
        .into_response()
}
