//! Integration tests: one binary, one module per area, a fresh app per test.

mod helpers;

mod alerts;
// The browser driver is part of the `demo` build (its screenshots use it too).
#[cfg(feature = "demo")]
mod browser;
mod cli;
mod commands;
mod concurrency;
mod cross_platform;
mod desk;
mod digest;
mod digest_history;
mod discord_fake_schema;
mod discord_flow;
mod discord_interact;
mod discord_setup;
mod flag_limit;
mod followups;
mod http;
mod intake;
mod knowledge;
mod layers;
mod names;
mod props;
mod rate_limits;
mod replies;
mod retention;
mod serving;
mod sla;
mod slack_delivery;
mod slack_fake_schema;
mod slack_flow;
mod slack_http;
mod slack_interact;
mod slack_socket;
mod store;
mod tickets_api;
mod timeouts;
mod web;
mod workers;
