//! Switchboard: a self-hosted chat-ops help desk for Slack and Discord.
//!
//! Staff flag a message (an emoji reaction or the "Create ticket" message action) or run
//! `/ticket new`; Switchboard opens a ticket, routes it to a department channel on either
//! platform, and tracks it through claim, status changes and resolution. Digests summarise
//! customer outcomes for leaders.
//!
//! # Layout
//!
//! Layers, each importing only the ones below it (checked by `tests/api/layers.rs`; the map is
//! in `ARCHITECTURE.md`):
//!
//! - Adapters: [`chat`] (the [`chat::Delivery`] and [`chat::EventSource`] ports the workers
//!   use, the pacing both clients share in `chat::pace`, with the Slack adapter `chat::slack` on slack-morphism and the Discord adapter
//!   `chat::discord` on serenity, which never import each other), [`http`] (health,
//!   readiness, metrics and the platform webhooks) and [`web`] (the pages under `/ui/`) behind
//!   [`serve`] (the accept loop: timeouts,
//!   size and connection limits, a bounded drain). [`app`] wires them for `switchboard run`;
//!   `demo` scripts `switchboard demo` against the loopback fakes of the `sandbox` crate, only
//!   with the `demo` feature (on by default, off in a lean production build).
//! - Workers: [`inbox`] (completes stored platform events into tickets), [`outbox`] (delivery:
//!   leases, order per ticket, retries, dead letters), [`schedule`] (digests and SLA checks,
//!   each fire claimed in the store) and [`worker`] (the round loop they run).
//! - Use cases: [`desk`] (flag, change, press, rate; the accounts port adapters implement) and
//!   [`cmd`] (one handler module per slash command in `commands/`, run through [`cmd::run`]).
//! - Core: [`core`], the platform-neutral rules: tickets and their audit log, routing, people
//!   and permissions, SLA clocks, command specs and parsing, digests, neutral messages. No I/O.
//! - Store: [`store`], the `Store` port with each operation written once for SQLite (the
//!   embedded default, with group commit) and PostgreSQL (what several instances share).
//! - Around them: [`config`] (the TOML file, environment overrides and secrets, with every
//!   problem reported by key), [`telemetry`] (Prometheus metrics), [`logs`] (the log line format,
//!   outside input escaped), [`intake`] (metrics from
//!   outside chat), [`api`] (API tokens and the tickets API for other systems), [`export`] (command specs as Discord JSON and a Slack app manifest),
//!   [`chart`] (the digest's chart) and [`tickets_cli`] (`switchboard tickets …`).

#![deny(missing_docs)]

pub mod api;
pub mod app;
#[cfg(feature = "demo")]
pub mod browser;
pub mod chart;
pub mod chat;
pub mod cmd;
pub mod config;
pub mod core;
#[cfg(feature = "demo")]
pub mod demo;
pub mod desk;
pub mod export;
pub mod followups;
pub mod http;
pub mod inbox;
pub mod intake;
pub mod knowledge;
pub mod logs;
pub mod outbox;
pub mod retention;
pub mod schedule;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod tickets_cli;
pub mod web;
pub mod worker;
