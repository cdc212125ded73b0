//! The platform-neutral heart of Switchboard: tickets, routing, people and permissions,
//! command specs and parsing, and the neutral messages adapters render.
//!
//! Pure rules over neutral types. Must never import serenity, slack_morphism, axum or sqlx,
//! and never read the clock except through [`clock::Clock`].

pub mod cache;
pub mod clock;
pub mod command;
pub mod cronexpr;
pub mod digest;
pub mod directory;
pub mod form;
pub mod message;
pub mod routing;
pub mod sla;
pub mod ticket;
pub mod types;
