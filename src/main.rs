//! The `switchboard` binary: parse the command line, start logging, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use switchboard::config::{self, Config, ConfigError};
use switchboard::core::clock::SystemClock;
use switchboard::core::command::CommandSet;
use switchboard::core::types::{Status, TicketRef};
#[cfg(feature = "demo")]
use switchboard::demo;
use switchboard::store::{self, TicketFilter};
use switchboard::{app, cmd, export, tickets_cli};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Self-hosted chat-ops help desk for Slack and Discord"
)]
struct Cli {
    /// Config file (default: ./switchboard.toml if present, else built-in defaults).
    #[arg(long, short, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the bot: migrate, serve /healthz, /readyz and /metrics, run the workers.
    Run,
    /// Run a scripted scenario on a throwaway database and print the transcript.
    // Without the `demo` feature (a lean build) it only says so, and is left out of --help.
    #[cfg_attr(not(feature = "demo"), command(hide = true))]
    Demo {
        /// Also write the digest the demo posts (chart PNG, Slack blocks, text) into DIR.
        #[arg(long, value_name = "DIR")]
        save_digest: Option<PathBuf>,
        /// Also turn the web view on and save screenshots of its ticket list, a transcript
        /// and the dashboard into DIR (needs Chromium and chromedriver).
        #[arg(long, value_name = "DIR")]
        screenshots: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check a config file and list every problem with its key (exit 1 if any).
    CheckConfig {
        /// The file to check (default: --config, then ./switchboard.toml).
        file: Option<PathBuf>,
    },
    /// Command definitions for the platforms.
    Commands {
        #[command(subcommand)]
        action: CommandsAction,
    },
    /// Read tickets.
    Tickets {
        #[command(subcommand)]
        action: TicketsAction,
    },
    /// Customer metrics from outside chat.
    Metrics {
        #[command(subcommand)]
        action: MetricsAction,
    },
    /// Digests without a chat connection.
    Digest {
        #[command(subcommand)]
        action: DigestAction,
    },
    /// Inspect and re-queue outgoing messages.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Inspect and remove failed incoming events.
    Inbox {
        #[command(subcommand)]
        action: InboxAction,
    },
    /// Remove what `[retention]` allows now (handled inbox rows, delivered outbox rows, old
    /// digest fire and SLA claims) and print, per kind, how many went and the oldest row kept.
    Prune {
        /// Only count what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the database to FILE, safe while the bot runs: SQLite's
    /// file, or PostgreSQL's through pg_dump (custom format).
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// Replace the database with a backup from `switchboard backup` (stop the bot first):
    /// SQLite's file is put in place, PostgreSQL's is loaded with pg_restore --clean.
    Restore {
        /// The backup.
        file: PathBuf,
        /// Replace an existing SQLite database.
        #[arg(long)]
        force: bool,
    },
    /// The knowledge base.
    Kb {
        #[command(subcommand)]
        action: KbAction,
    },
    /// Ask a running bot's /healthz (exit 0 when it answers 2xx within 5 s, else 1); for
    /// container health checks, where there is no curl.
    Healthcheck {
        /// The URL to ask (default: /healthz on the configured listen address, 127.0.0.1
        /// when it listens on all addresses).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KbAction {
    /// Check every article's front matter, departments and relative links; list each problem
    /// with its file and line (exit 1 if any).
    Check {
        /// The folder (default: `[knowledge] dir` of the config).
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum MetricsAction {
    /// Import metric values from a CSV file with a header row:
    /// name,value[,department][,note][,at]. Good rows are kept; bad ones are listed with
    /// their line number (exit 1 if any).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DigestAction {
    /// Print exactly what a digest post would say for the period ending at --at.
    Preview {
        /// The configured schedule (`[[digests]] name`).
        #[arg(long)]
        schedule: String,
        /// End of the period: RFC 3339 (2026-11-23T09:00:00+01:00) or a local time in the
        /// schedule's zone (2026-11-23 09:00); default now.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: PreviewFormat,
        /// For `--format png`: the file to write (default `digest-SCHEDULE.png`).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum PreviewFormat {
    /// The post's text.
    Text,
    /// Every figure, structured.
    Json,
    /// The chart, written to a PNG file.
    Png,
}

#[derive(Subcommand, Debug)]
enum CommandsAction {
    /// Print the commands as Discord JSON or as a Slack app manifest.
    Export {
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// For the Slack manifest: how Slack reaches Switchboard.
        #[arg(long, value_enum, default_value = "socket")]
        mode: ManifestMode,
        /// For `--mode http`: the public base URL Slack posts to, e.g.
        /// https://switchboard.example.com.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ManifestMode {
    /// Socket Mode: no public URL needed.
    Socket,
    /// HTTP request URLs under --url.
    Http,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    /// Body for Discord's bulk overwrite of application commands.
    Discord,
    /// A Slack app manifest (JSON) with the slash commands and the message shortcut.
    SlackManifest,
}

#[derive(Subcommand, Debug)]
enum TicketsAction {
    /// List tickets, newest first.
    List {
        /// Only this status (open, in_progress, waiting, resolved, closed).
        #[arg(long)]
        status: Option<Status>,
        /// Only this department.
        #[arg(long)]
        department: Option<String>,
        /// Only tickets with all these words in their title or body, in any form
        /// ("refunds" finds "refunded").
        #[arg(long)]
        search: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one ticket with its history.
    Show {
        /// Ticket reference, e.g. T-42.
        ticket: TicketRef,
    },
    /// Export every ticket.
    Export {
        /// Output format.
        #[arg(long, value_enum)]
        format: DataFormat,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxAction {
    /// List outgoing messages, oldest first.
    List {
        /// Only dead-lettered messages (delivery failed for good).
        #[arg(long)]
        failed: bool,
        /// Only messages still waiting to be delivered.
        #[arg(long, conflicts_with = "failed")]
        pending: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Put dead-lettered messages back in the queue (all of them, or the ids given).
    Retry {
        /// Outbox row ids, as `outbox list` shows them.
        ids: Vec<i64>,
    },
    /// Remove dead-lettered messages that failed longer ago than --older-than (retention
    /// never removes them on its own).
    Purge(PurgeArgs),
}

#[derive(Subcommand, Debug)]
enum InboxAction {
    /// Remove incoming events whose handling failed longer ago than --older-than (retention
    /// never removes them on its own).
    Purge(PurgeArgs),
}

#[derive(clap::Args, Debug)]
struct PurgeArgs {
    /// Only failed rows (the only ones purge removes; say it to be sure).
    #[arg(long, required = true)]
    failed: bool,
    /// How long ago they failed, e.g. `90d`, `2w`, `12h`.
    #[arg(long, value_name = "AGE")]
    older_than: String,
    /// Only count what would go; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum DataFormat {
    /// One row per ticket.
    Csv,
    /// Tickets with their history.
    Json,
}

fn init_logging(default: &str) {
    switchboard::logs::init(default);
}

/// `switchboard kb check`: the folder given, else the config's; departments from the config
/// when it loads.
fn kb_check(config: Option<&std::path::Path>, dir: Option<PathBuf>) -> ExitCode {
    let cfg = Config::load(config).ok();
    // Departments are checked when the configuration says which there are.
    let departments: Option<Vec<String>> = cfg.as_ref().map(|c| {
        c.directory
            .departments
            .iter()
            .map(|d| d.name.clone())
            .collect()
    });
    let Some(dir) = dir.or_else(|| cfg.as_ref().and_then(|c| c.knowledge_dir.clone())) else {
        return report(&"no folder to check: give one (`switchboard kb check kb`) or set `[knowledge] dir` in the config");
    };
    match switchboard::knowledge::check(&dir, departments.as_deref()) {
        Ok((articles, problems)) if problems.is_empty() => {
            println!(
                "knowledge base is valid: {articles} article(s) in {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok((_, problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) in {}", problems.len(), dir.display());
            ExitCode::FAILURE
        }
        Err(e) => report(&e),
    }
}

fn report(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo { .. }
            | Command::Digest { .. }
            | Command::Metrics { .. }
            | Command::Commands { .. }
            | Command::Tickets { .. }
            | Command::CheckConfig { .. }
            | Command::Kb { .. }
            | Command::Healthcheck { .. }
    );
    init_logging(if quiet { "warn" } else { "info" });
    let path = cli.config.as_deref();
    match cli.command {
        Command::Run => {
            let cfg = match Config::load(path) {
                Ok(c) => c,
                Err(e) => return report(&e),
            };
            for w in cfg.warnings() {
                tracing::warn!("{w}");
            }
            match app::run(cfg, Arc::new(SystemClock), app::shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => report(&e),
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            save_digest,
            screenshots,
        } => {
            let mut out = std::io::stdout().lock();
            match demo::run(&mut out, save_digest.as_deref(), screenshots.as_deref()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => report(&e),
            }
        }
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => report(
            &"`switchboard demo` is not in this build: it was built without the `demo` feature \
              (`--no-default-features`, the lean production build); run the demo from a \
              checkout with `cargo run --locked -- demo`",
        ),
        Command::Migrate => {
            let url = match config::database_url(path) {
                Ok(u) => u,
                Err(e) => return report(&e),
            };
            let result = async {
                let store = store::open(&url).await?;
                store.migrate().await
            };
            match result.await {
                Ok(()) => {
                    println!("database is up to date");
                    ExitCode::SUCCESS
                }
                Err(e) => report(&e),
            }
        }
        Command::CheckConfig { file } => {
            let file = file.or(cli.config);
            match Config::load(file.as_deref()) {
                Ok(c) => {
                    for w in c.warnings() {
                        eprintln!("warning: {w}");
                    }
                    println!(
                        "config is valid: {} department(s), {} rule(s), {} digest(s), {} person(s)",
                        c.directory.departments.len(),
                        c.router.rules.len(),
                        c.digests.len(),
                        c.directory.people.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(ConfigError::Invalid {
                    source_name,
                    problems,
                }) => {
                    eprintln!("{} problem(s) in {source_name}:", problems.len());
                    for p in problems {
                        eprintln!("  {p}");
                    }
                    ExitCode::FAILURE
                }
                Err(e) => report(&e),
            }
        }
        Command::Commands {
            action: CommandsAction::Export { format, mode, url },
        } => {
            let set = match CommandSet::builtin() {
                Ok(s) => s,
                Err(e) => return report(&e),
            };
            let mode = match (mode, url.as_deref()) {
                (ManifestMode::Socket, _) => export::SlackMode::Socket,
                (ManifestMode::Http, Some(u)) => match export::SlackMode::http(u) {
                    Ok(m) => m,
                    Err(e) => return report(&e),
                },
                (ManifestMode::Http, None) => {
                    eprintln!("error: --mode http needs the public base URL Slack posts to, e.g. --url https://switchboard.example.com");
                    return ExitCode::from(2);
                }
            };
            let v = match format {
                ExportFormat::Discord => export::discord_commands(&set),
                ExportFormat::SlackManifest => export::slack_manifest(&set, &mode),
            };
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Digest {
            action:
                DigestAction::Preview {
                    schedule,
                    at,
                    format,
                    output,
                },
        } => match digest_preview(path, &schedule, at.as_deref(), format, output).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Command::Metrics {
            action: MetricsAction::Import { file },
        } => match metrics_import(path, &file).await {
            Ok(code) => code,
            Err(e) => report(&e),
        },
        Command::Tickets { action } => match tickets(path, action).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Command::Outbox { action } => match outbox(path, action).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Command::Kb {
            action: KbAction::Check { dir },
        } => kb_check(path, dir),
        Command::Healthcheck { url } => match healthcheck(path, url).await {
            Ok(url) => {
                println!("healthy: {url}");
                ExitCode::SUCCESS
            }
            Err(e) => report(&e),
        },
        Command::Inbox {
            action: InboxAction::Purge(args),
        } => match purge_inbox(path, &args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Command::Restore { file, force } => {
            let result = async {
                let url = config::database_url(path).map_err(|e| e.to_string())?;
                store::restore(&url, &file, force)
                    .await
                    .map_err(|e| e.to_string())
            };
            match result.await {
                Ok(()) => {
                    println!("restored from {}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => report(&e),
            }
        }
        Command::Prune { dry_run } => match prune(path, dry_run).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Command::Backup { file } => {
            let result = async {
                let url = config::database_url(path).map_err(|e| e.to_string())?;
                let store = store::open(&url).await.map_err(|e| e.to_string())?;
                store.backup(&file).await.map_err(|e| e.to_string())
            };
            match result.await {
                Ok(()) => {
                    println!("backup written to {}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => report(&e),
            }
        }
    }
}

/// Asks `url` (default: `/healthz` on the configured listen address) and returns it when the
/// answer is 2xx within 5 s.
async fn healthcheck(
    path: Option<&std::path::Path>,
    url: Option<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let url = match url {
        Some(u) => u,
        None => {
            let mut addr = Config::load(path)?.listen;
            // A server on all addresses answers on loopback; 0.0.0.0 itself cannot be asked.
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}/healthz")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let status = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .status();
    if status.is_success() {
        Ok(url)
    } else {
        Err(format!("{url} answered {status}").into())
    }
}

async fn outbox(
    path: Option<&std::path::Path>,
    action: OutboxAction,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = config::database_url(path)?;
    let store = store::open(&url).await?;
    store.migrate().await?;
    match action {
        OutboxAction::List {
            failed,
            pending,
            limit,
        } => {
            let status = if failed {
                Some("failed")
            } else if pending {
                Some("pending")
            } else {
                None
            };
            let rows = store.outbox(status, limit).await?;
            if rows.is_empty() {
                println!("no outbox rows match");
            }
            for r in rows {
                println!(
                    "{:<6} {:<8} {:<12} attempts={:<3} {} → {}{}",
                    r.id,
                    r.status,
                    format!("{:?}", r.outgoing.kind),
                    r.attempts,
                    r.outgoing.ticket.map_or("-".to_string(), |t| t.to_string()),
                    r.outgoing.target,
                    r.last_error
                        .map_or(String::new(), |e| format!("  last error: {e}"))
                );
            }
        }
        OutboxAction::Retry { ids } => {
            let n = store.outbox_requeue(&ids, chrono::Utc::now()).await?;
            println!("{n} message(s) re-queued for delivery");
        }
        OutboxAction::Purge(args) => purge(&*store, store::Prunable::OutboxFailed, &args).await?,
    }
    Ok(())
}

/// `switchboard prune`: what `[retention]` allows now, per kind, with the oldest row kept.
async fn prune(
    path: Option<&std::path::Path>,
    dry_run: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let r = &config::retention_settings(path)?;
    let store = store::open(&config::database_url(path)?).await?;
    store.migrate().await?;
    let plan = switchboard::retention::plan(r, chrono::Utc::now());
    let done = switchboard::retention::run(&*store, &plan, r.batch, dry_run, true).await?;
    print!("{}", switchboard::retention::render(&done, dry_run));
    Ok(())
}

/// `inbox purge`.
async fn purge_inbox(
    path: Option<&std::path::Path>,
    args: &PurgeArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = store::open(&config::database_url(path)?).await?;
    store.migrate().await?;
    purge(&*store, store::Prunable::InboxFailed, args).await
}

/// `inbox purge` and `outbox purge`: failed rows older than `--older-than`.
async fn purge(
    store: &dyn store::Store,
    what: store::Prunable,
    args: &PurgeArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let age = switchboard::core::sla::parse_duration(&args.older_than)
        .map_err(|e| format!("--older-than `{}`: {e}", args.older_than))?;
    let plan = [(what, chrono::Utc::now() - age)];
    let batch = config::RetentionSettings::default().batch;
    let done = switchboard::retention::run(store, &plan, batch, args.dry_run, true).await?;
    print!("{}", switchboard::retention::render(&done, args.dry_run));
    Ok(())
}

async fn metrics_import(
    path: Option<&std::path::Path>,
    file: &std::path::Path,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let input =
        std::fs::File::open(file).map_err(|source| switchboard::intake::IntakeError::Io {
            path: file.display().to_string(),
            source,
        })?;
    let config = Config::load(path)?;
    let desk = app::build_desk(config, Arc::new(SystemClock)).await?;
    let out = switchboard::intake::import_csv(&desk, input).await?;
    for (line, why) in &out.errors {
        eprintln!("{}:{line}: {why}", file.display());
    }
    println!(
        "imported {} value(s) from {}; {} row(s) refused",
        out.recorded,
        file.display(),
        out.errors.len()
    );
    Ok(if out.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn digest_preview(
    path: Option<&std::path::Path>,
    schedule: &str,
    at: Option<&str>,
    format: PreviewFormat,
    output: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(path)?;
    let Some(s) = config
        .digests
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(schedule))
        .cloned()
    else {
        let known: Vec<&str> = config.digests.iter().map(|d| d.name.as_str()).collect();
        return Err(format!(
            "there is no digest schedule `{schedule}`; configured: {}",
            if known.is_empty() {
                "none (add a [[digests]] entry)".to_string()
            } else {
                known.join(", ")
            }
        )
        .into());
    };
    let at = match at {
        Some(t) => cmd::digest::parse_at(t, s.timezone)?,
        None => chrono::Utc::now(),
    };
    let desk = app::build_desk(config, Arc::new(SystemClock)).await?;
    let report =
        cmd::digest::report(&desk, &s.name, s.timezone, s.period, &s.departments, at).await?;
    match format {
        PreviewFormat::Text => {
            println!(
                "{}",
                switchboard::core::digest::render(&report, s.timezone).plain()
            )
        }
        PreviewFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        PreviewFormat::Png => {
            let file = output.unwrap_or_else(|| PathBuf::from(format!("digest-{}.png", s.name)));
            let title = format!("{}: opened, resolved and open tickets per day", s.name);
            let png = switchboard::chart::png(&title, &report.days)?;
            std::fs::write(&file, png)?;
            println!("wrote {}", file.display());
        }
    }
    Ok(())
}

async fn tickets(
    path: Option<&std::path::Path>,
    action: TicketsAction,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = config::database_url(path)?;
    let store = store::open(&url).await?;
    store.migrate().await?;
    let mut out = std::io::stdout().lock();
    match action {
        TicketsAction::List {
            status,
            department,
            search,
            limit,
        } => {
            let filter = TicketFilter {
                department: department.map(|d| d.to_ascii_lowercase()),
                statuses: status.into_iter().collect(),
                text: search,
                limit,
                ..TicketFilter::default()
            };
            tickets_cli::write_list(&mut out, &store.list_tickets(&filter).await?)?;
        }
        TicketsAction::Show { ticket } => {
            let t = store
                .ticket(ticket)
                .await?
                .ok_or_else(|| tickets_cli::TicketsCliError::NotFound(ticket.to_string()))?;
            tickets_cli::write_show(
                &mut out,
                &t,
                &store.events(ticket).await?,
                &store.thread_replies(ticket).await?,
            )?;
        }
        TicketsAction::Export { format } => {
            let all = tickets_cli::all_tickets(&store).await?;
            match format {
                DataFormat::Csv => tickets_cli::write_csv(&mut out, &all)?,
                DataFormat::Json => tickets_cli::write_json(&mut out, &store, &all).await?,
            }
        }
    }
    Ok(())
}
