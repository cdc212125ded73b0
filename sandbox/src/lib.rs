//! Loopback fakes of the chat platforms, for Switchboard's tests, benchmarks and
//! `switchboard demo`.
//!
//! Owns the fake Slack ([`slack`]: Web API, response and upload URLs, Socket Mode, signed
//! HTTP-mode posts) and the fake Discord ([`discord`]: REST, the gateway WebSocket, a TLS
//! server, Ed25519-signed interactions). Each fake answers as the platform documents, on
//! 127.0.0.1 only, with a control handle to seed data, inject faults and read what was sent.
//! Both can enforce the platforms' published rate limits on demand ([`limits`]; off by
//! default).
//!
//! Depends on nothing of `switchboard`, and must not import the platform client libraries'
//! types: a fake built from the client's own structs would only agree with itself. Must never
//! be part of a production build: `switchboard` takes it as a dev-dependency and through its
//! `demo` feature only, and CI checks that `--no-default-features` does not link it.

#![deny(missing_docs)]

pub mod discord;
pub mod limits;
pub mod slack;
