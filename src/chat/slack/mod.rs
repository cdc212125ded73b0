//! The Slack adapter: events in (Socket Mode in `socket`, the HTTP Events API in `events`, both
//! committing to the inbox before they acknowledge), flags completed in `source`, slash
//! commands, shortcuts, buttons and modals in `interact` (modal layouts in `views`), Block Kit in
//! `blocks`, and Web API calls and delivery in `client`.
//!
//! Owns everything Slack-specific on the way in; must not contain help-desk rules.

pub mod blocks;
pub mod client;
pub mod events;
pub mod interact;
pub mod socket;
pub mod source;
pub mod views;
