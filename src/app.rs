//! Wiring for `switchboard run`: open and migrate the store, build the desk, serve HTTP, and
//! stop cleanly on a shutdown signal.
//!
//! Owns start-up order and shutdown. Must not contain rules; it only connects the parts.

use std::future::Future;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use crate::chat::discord::ratelimit::LimitStats;
use crate::chat::discord::{
    self,
    client::DiscordApi,
    endpoint::EndpointState,
    gateway::{Gateway, GatewaySettings},
    interact::DiscordInteractions,
    source::DiscordEventSource,
};
use crate::chat::pace::PaceStats;
use crate::chat::slack::client::SlackApi;
use crate::chat::slack::interact::Interactions;
use crate::chat::slack::socket::{SocketMode, SocketSettings};
use crate::chat::slack::source::SlackEventSource;
use crate::chat::{Delivery, EventSource};
use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::command::{CommandSet, SpecError};
use crate::core::types::Platform;
use crate::desk::Desk;
use crate::http::{self, AppState};
use crate::inbox::{InboxSettings, InboxWorker};
use crate::knowledge::KnowledgeBase;
use crate::outbox::{OutboxSettings, OutboxWorker};
use crate::schedule::{Scheduler, SchedulerSettings};
use crate::serve::ServeSettings;
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
    /// Slack refused the token or could not be reached at start.
    #[error("Slack: {0}")]
    Slack(String),
    /// Discord refused the token or could not be reached at start.
    #[error("Discord: {0}")]
    Discord(String),
    /// The knowledge base's folder could not be read.
    #[error("{0}")]
    Knowledge(String),
}

/// Opens and migrates the store the config names, syncs people, and builds the desk.
pub async fn build_desk(config: Config, clock: Arc<dyn Clock>) -> Result<Desk, AppError> {
    let store = store::open(&config.database_url).await?;
    build_desk_with_store(config, store, clock).await
}

/// Like [`build_desk`] with a store opened by the caller (tests isolate PostgreSQL schemas).
pub async fn build_desk_with_store(
    config: Config,
    store: store::DynStore,
    clock: Arc<dyn Clock>,
) -> Result<Desk, AppError> {
    store.migrate().await?;
    store
        .sync_people(&config.directory.people, clock.now())
        .await?;
    let config_dir = config.knowledge_dir.clone();
    let desk = Desk {
        config: Arc::new(config),
        store,
        clock,
        commands: Arc::new(CommandSet::builtin()?),
        telemetry: Arc::new(Telemetry::default()),
        accounts: Arc::default(),
        knowledge: Arc::new(match &config_dir {
            Some(dir) => {
                KnowledgeBase::open(dir).map_err(|e| AppError::Knowledge(e.to_string()))?
            }
            None => KnowledgeBase::none(),
        }),
        tasks: tokio_util::task::TaskTracker::new(),
    };
    // Names other instances (or an earlier run) learned from the platforms.
    for (user, name) in desk.store.account_names().await? {
        desk.config.directory.names.learn(&user, &name);
    }
    Ok(desk)
}

/// How often the knowledge base's folder is looked at for changed articles.
const KNOWLEDGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Re-indexes the knowledge base when its folder changes, until `stopped`.
async fn watch_knowledge(kb: Arc<KnowledgeBase>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    if kb.dir().is_none() {
        return;
    }
    while !*stopped.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(KNOWLEDGE_EVERY) => {}
            _ = stopped.changed() => break,
        }
        let kb = kb.clone();
        // Reading files and indexing are blocking work.
        match tokio::task::spawn_blocking(move || kb.reload_if_changed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not re-read the knowledge base"),
            Err(e) => tracing::warn!(error = %e, "knowledge base reload stopped"),
        }
    }
}

/// The platform connections the workers use; empty until adapters are configured.
#[derive(Default)]
pub struct Adapters {
    /// Outbound delivery, one per platform.
    pub deliveries: Vec<Arc<dyn Delivery>>,
    /// Inbound event completion, one per platform.
    pub sources: Vec<Arc<dyn EventSource>>,
    /// Slack's Socket Mode connection, when `SLACK_APP_TOKEN` is set.
    pub slack_socket: Option<SocketMode>,
    /// Slack's slash commands and interactivity, when `SLACK_BOT_TOKEN` is set (served over
    /// HTTP when `SLACK_SIGNING_SECRET` is set too).
    pub slack_interactions: Option<Interactions>,
    /// Discord's gateway connection, when `DISCORD_BOT_TOKEN` is set.
    pub discord_gateway: Option<Gateway>,
    /// Discord's HTTP interactions endpoint, when `DISCORD_PUBLIC_KEY` is set too.
    pub discord_endpoint: Option<EndpointState>,
    /// The Slack Web API client, probed for `/readyz`.
    pub slack_api: Option<SlackApi>,
    /// The Discord REST client, probed for `/readyz`.
    pub discord_api: Option<DiscordApi>,
}

/// Runs until `shutdown` completes: binds `config.listen`, then [`serve`]s.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr = config.listen;
    let desk = build_desk(config, clock).await?;
    let adapters = adapters(&desk).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Http { addr, source })?;
    serve(desk, listener, adapters, shutdown).await
}

/// The platform adapters the environment has tokens for. Slack (`SLACK_BOT_TOKEN`): the token
/// is checked with `auth.test`, and every configured Slack channel is checked for the bot's
/// membership, each one it cannot post in named in the log.
pub async fn adapters(desk: &Desk) -> Result<Adapters, AppError> {
    let mut out = Adapters::default();
    let config = &desk.config;
    if let Some(token) = &config.secrets.slack_bot_token {
        let t = &desk.telemetry;
        let api = SlackApi::new(&config.slack.api_url, token)
            .map_err(|e| AppError::Slack(e.to_string()))?
            .with_limits(
                config.slack.limits,
                PaceStats {
                    delayed: t.paced_counter("slack", "delayed"),
                    deferred: t.paced_counter("slack", "deferred"),
                    blocked: t.rate_limited_counter("slack"),
                },
            );
        let bot = api.whoami().await.map_err(|e| {
            AppError::Slack(format!(
                "SLACK_BOT_TOKEN was not accepted by {} ({e})",
                config.slack.api_url
            ))
        })?;
        tracing::info!(bot_user = %bot, "connected to Slack");
        for problem in slack_channel_problems(&api, config).await {
            tracing::warn!("{problem}");
        }
        desk.accounts.register(Arc::new(api.clone()));
        let interactions = Interactions::new(desk.clone(), api.clone());
        out.slack_interactions = Some(interactions.clone());
        if let Some(app_token) = &config.secrets.slack_app_token {
            let socket = SocketMode::start(
                &api,
                app_token,
                desk.store.clone(),
                desk.clock.clone(),
                Some(interactions),
                SocketSettings::default(),
            )
            .await
            .map_err(|e| {
                AppError::Slack(format!(
                    "Socket Mode could not start with SLACK_APP_TOKEN ({e})"
                ))
            })?;
            tracing::info!("Slack Socket Mode is connected");
            out.slack_socket = Some(socket);
        }
        out.deliveries.push(Arc::new(api.clone()));
        out.slack_api = Some(api.clone());
        out.sources.push(Arc::new(
            SlackEventSource::new(api, config.flag_emojis.clone(), Some(bot))
                .with_groups(config.slack_groups()),
        ));
    }
    if let Some(token) = &config.secrets.discord_bot_token {
        let t = &desk.telemetry;
        let api = DiscordApi::new(&config.discord.api_url, token)
            .map_err(|e| AppError::Discord(e.to_string()))?
            .with_limits(
                config.discord.limits,
                PaceStats {
                    delayed: t.paced_counter("discord", "delayed"),
                    deferred: t.paced_counter("discord", "deferred"),
                    blocked: Counter::default(),
                },
                LimitStats {
                    invalid: t.discord_invalid_requests.clone(),
                    rate_limited: t.rate_limited_counter("discord"),
                    held_back: t.paced_counter("discord", "held_back"),
                },
            );
        let (bot, name) = api.whoami().await.map_err(|e| {
            AppError::Discord(format!(
                "DISCORD_BOT_TOKEN was not accepted by {} ({e})",
                config.discord.api_url
            ))
        })?;
        tracing::info!(bot_user = %bot, name = %name, "connected to Discord");
        for problem in discord::channel_problems(&api, config, &bot).await {
            tracing::warn!("{problem}");
        }
        desk.accounts.register(Arc::new(api.clone()));
        register_discord_commands(&api, desk).await;
        let interactions = DiscordInteractions::new(desk.clone(), api.clone());
        // An application gets interactions over the gateway or at its endpoint URL, never
        // both: with DISCORD_PUBLIC_KEY the endpoint answers them.
        let over_gateway = match &config.secrets.discord_public_key {
            Some(key) => {
                let endpoint = EndpointState::new(interactions, key, desk.clock.clone())
                    .map_err(|e| AppError::Discord(e.to_string()))?;
                out.discord_endpoint = Some(endpoint);
                tracing::info!("Discord interactions are answered at POST /discord/interactions");
                None
            }
            None => Some(interactions),
        };
        let gateway = Gateway::start(
            api.clone(),
            bot,
            desk.store.clone(),
            desk.clock.clone(),
            GatewaySettings {
                shards: config.discord.shards,
                interactions: over_gateway,
                retry_base: None,
                telemetry: Some(desk.telemetry.clone()),
            },
        )
        .await
        .map_err(|e| AppError::Discord(e.to_string()))?;
        out.discord_gateway = Some(gateway);
        out.deliveries.push(Arc::new(api.clone()));
        out.discord_api = Some(api.clone());
        out.sources.push(Arc::new(DiscordEventSource::new(
            api,
            config.flag_emojis.clone(),
        )));
    }
    Ok(out)
}

/// Replaces the bot's slash commands and "Create ticket" menu with those in `commands/`: in
/// each configured guild (instant), or globally when none is configured. A failure is logged;
/// the bot still runs with whatever commands Discord has.
pub async fn register_discord_commands(api: &DiscordApi, desk: &Desk) {
    let app = match api.application_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the Discord application id; commands were not registered");
            return;
        }
    };
    let commands = crate::export::discord_commands(&desk.commands);
    let guilds = &desk.config.discord.guild_ids;
    let scopes: Vec<Option<&str>> = if guilds.is_empty() {
        vec![None]
    } else {
        guilds.iter().map(|g| Some(g.as_str())).collect()
    };
    for guild in scopes {
        match api.register_commands(&app, guild, &commands).await {
            Ok(n) => tracing::info!(
                commands = n,
                guild = guild.unwrap_or("global"),
                "Discord commands registered"
            ),
            Err(e) => {
                tracing::warn!(error = %e, guild = guild.unwrap_or("global"), "could not register Discord commands")
            }
        }
    }
}

/// One line per configured Slack channel the bot cannot post in, saying how to fix it.
pub async fn slack_channel_problems(api: &SlackApi, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, used_by) in config.channels_on(Platform::Slack) {
        match api.can_post(&id).await {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "cannot post in slack:{id} ({used_by}): the bot is not a member; invite it with `/invite @Switchboard` in that channel"
            )),
            Err(e) => problems.push(format!("cannot post in slack:{id} ({used_by}): {e}")),
        }
    }
    problems
}

/// Serves HTTP on `listener` and runs the inbox and outbox workers and the digest scheduler
/// until `shutdown`
/// completes. Then the server stops accepting, in-flight requests finish, and each worker
/// finishes the row in hand; unfinished rows stay in the store for the next start.
pub async fn serve(
    desk: Desk,
    listener: tokio::net::TcpListener,
    adapters: Adapters,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr = listener.local_addr().map_err(|source| AppError::Http {
        addr: ([0, 0, 0, 0], 0).into(),
        source,
    })?;
    // `/metrics` on its own address, bound before anything starts so a taken port fails the
    // start instead of leaving the metrics unserved.
    let metrics_listener = match desk.config.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|source| AppError::Http { addr: at, source })?,
        ),
        None => None,
    };
    let slack_socket = adapters.slack_socket;
    let discord_gateway = adapters.discord_gateway;
    if adapters.deliveries.is_empty() {
        tracing::warn!("no chat adapter is configured: alerts wait in the outbox until one is");
    }
    let (stop_workers, stopped) = tokio::sync::watch::channel(false);
    let outbox = OutboxWorker::new(
        desk.store.clone(),
        adapters.deliveries,
        desk.clock.clone(),
        desk.telemetry.clone(),
        OutboxSettings {
            concurrency: desk.config.workers.outbox_concurrency,
            ..OutboxSettings::default()
        },
    );
    let inbox = InboxWorker::new(
        desk.clone(),
        adapters.sources,
        InboxSettings {
            concurrency: desk.config.workers.inbox_concurrency,
            ..InboxSettings::default()
        },
    );
    let scheduler = Scheduler::new(desk.clone(), SchedulerSettings::default());
    let probes = probe(
        &desk,
        adapters.slack_api,
        adapters.discord_api,
        stopped.clone(),
    );
    let workers = [
        tokio::spawn(outbox.run(stopped.clone())),
        tokio::spawn(inbox.run(stopped.clone())),
        tokio::spawn(watch_knowledge(desk.knowledge.clone(), stopped.clone())),
        tokio::spawn(scheduler.run(stopped)),
        probes,
    ];
    tracing::info!(
        %addr,
        departments = desk.config.directory.departments.len(),
        rules = desk.config.router.rules.len(),
        "switchboard is running; /healthz, /readyz and /metrics are served"
    );
    let slack_events = desk
        .config
        .secrets
        .slack_signing_secret
        .clone()
        .map(|secret| crate::chat::slack::events::EventsState {
            store: desk.store.clone(),
            clock: desk.clock.clone(),
            secret,
            interactions: adapters.slack_interactions.clone(),
        });
    let state = AppState {
        store: desk.store.clone(),
        telemetry: desk.telemetry.clone(),
        slack_events,
        discord_endpoint: adapters.discord_endpoint.clone(),
        clock: desk.clock.clone(),
        adapter_grace: desk.config.adapter_grace,
        api: (!desk.config.api_tokens.is_empty()).then(|| crate::api::ApiState {
            desk: desk.clone(),
            tokens: desk.config.api_tokens.clone().into(),
        }),
        metrics_token: desk.config.secrets.metrics_token.clone(),
        serve_metrics: metrics_listener.is_none(),
        web: crate::web::WebState::of(&desk),
    };
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = metrics_listener.map(|l| {
        if let Ok(at) = l.local_addr() {
            tracing::info!(%at, "/metrics is served on its own address");
        }
        tokio::spawn(crate::serve::serve(
            l,
            http::metrics_router(state.clone()),
            ServeSettings::default(),
            async {
                let _ = metrics_stopped.await;
            },
        ))
    });
    let app = http::router(state);
    crate::serve::serve(listener, app, ServeSettings::default(), shutdown).await;
    let _ = stop_metrics.send(());
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    // Interaction work under way (a slow command's reply, a button's effect) gets the same
    // bounded time to finish.
    desk.tasks.close();
    if tokio::time::timeout(ServeSettings::default().drain, desk.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            unfinished = desk.tasks.len(),
            "interaction work still running after the drain time; stopping without it"
        );
    }
    if let Some(socket) = &slack_socket {
        socket.shutdown().await;
    }
    if let Some(gateway) = discord_gateway {
        gateway.shutdown().await;
    }
    let _ = stop_workers.send(true);
    for w in workers {
        if let Err(e) = w.await {
            tracing::error!(error = %e, "a worker panicked");
        }
    }
    tracing::info!(%addr, "switchboard stopped");
    Ok(())
}

/// How often the platforms' Web API and REST clients are probed for `/readyz`.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Probes the platforms with their cheapest authenticated call (`auth.test`, `GET
/// /users/@me`) at start and every [`PROBE_EVERY`], recording each part's health, until
/// `stop` turns true.
fn probe(
    desk: &Desk,
    slack: Option<SlackApi>,
    discord: Option<DiscordApi>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let telemetry = desk.telemetry.clone();
    let clock = desk.clock.clone();
    tokio::spawn(async move {
        while !*stop.borrow() {
            if let Some(api) = &slack {
                match api.whoami().await {
                    Ok(_) => telemetry.adapter_ok("slack", "web_api", clock.now()),
                    Err(e) => {
                        telemetry.adapter_failed("slack", "web_api", clock.now(), &e.to_string())
                    }
                }
            }
            if let Some(api) = &discord {
                match api.whoami().await {
                    Ok(_) => telemetry.adapter_ok("discord", "rest", clock.now()),
                    Err(e) => {
                        telemetry.adapter_failed("discord", "rest", clock.now(), &e.to_string())
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PROBE_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    })
}

/// Completes on Ctrl-C or SIGTERM; a second one exits the process at once (for an operator
/// who will not wait for the drain).
pub async fn shutdown_signal() {
    one_signal().await;
    tokio::spawn(async {
        one_signal().await;
        tracing::warn!("second signal: exiting without waiting for work in progress");
        std::process::exit(130);
    });
}

/// Completes on the next Ctrl-C or SIGTERM.
async fn one_signal() {
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
