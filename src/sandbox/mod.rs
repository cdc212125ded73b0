//! Loopback fakes of the chat platforms, for tests and `switchboard demo`.
//!
//! Each fake answers as the platform documents, on 127.0.0.1 only, with a control handle to
//! seed data, inject faults and read what was sent. Must not import the platform client
//! libraries' types: a fake built from the client's own structs would only agree with itself.

pub mod discord;
pub mod slack;
