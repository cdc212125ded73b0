//! Switchboard: a self-hosted chat-ops help desk for Slack and Discord.
//!
//! Staff flag a message (an emoji reaction or the "Create ticket" message action) or run
//! `/ticket new`; Switchboard opens a ticket, routes it to a department channel on either
//! platform, and tracks it through claim, status changes and resolution. Digests summarise
//! customer outcomes for leaders.
//!
//! # Layout
//!
//! - [`core`]: the platform-neutral rules: tickets and their audit log, routing, people and
//!   permissions, command specs and parsing, digests, neutral messages. No I/O.
//! - [`config`]: the TOML file, environment overrides and secrets, with every problem reported
//!   by key.
//! - [`store`]: the `Store` trait, `SqliteStore` (group commit) and `PgStore`; transactions and
//!   SQL live only here.
//! - [`desk`]: the use cases (flag, command, button) joining core and store.
//! - [`cmd`]: one handler module per slash command in `commands/`.
//! - [`export`]: command specs as Discord JSON and a complete Slack app manifest.
//! - [`chart`]: the digest's chart as a PNG, drawn with a bundled font.
//! - [`http`]: health, readiness and metrics endpoints, and the platform webhooks.
//! - [`chat`]: the `Delivery` and `EventSource` traits platform adapters implement, and the
//!   Slack adapter (`chat::slack`: Socket Mode and the HTTP endpoints, slash commands,
//!   shortcut, buttons and modals, Block Kit, Web API delivery).
//! - [`inbox`]: the worker that completes stored platform events into tickets.
//! - [`intake`]: customer metrics from outside chat (`POST /api/metrics`, CSV import).
//! - [`outbox`]: the delivery worker (leases, order per ticket, retries, dead letters).
//! - [`schedule`]: the digest scheduler (fires claimed in the store, once per fire).
//! - [`worker`]: the round loop the workers run.
//! - [`telemetry`]: Prometheus metrics.
//! - [`app`]: wiring for `switchboard run`.
//! - `demo`: the scripted `switchboard demo`, on the loopback fakes of the `sandbox` crate;
//!   only with the `demo` feature (on by default, off in a lean production build).
//! - [`tickets_cli`]: `switchboard tickets list|show|export`.

#![deny(missing_docs)]

pub mod app;
pub mod chart;
pub mod chat;
pub mod cmd;
pub mod config;
pub mod core;
#[cfg(feature = "demo")]
pub mod demo;
pub mod desk;
pub mod export;
pub mod http;
pub mod inbox;
pub mod intake;
pub mod outbox;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod tickets_cli;
pub mod worker;
