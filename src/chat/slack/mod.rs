//! The Slack adapter: events in (Socket Mode in `socket`, the HTTP Events API in `events`, both
//! committing to the inbox before they acknowledge), flags completed in `source`, Block Kit in
//! `blocks`, and Web API calls and delivery in `client`. Slash commands, buttons and the full
//! manifest come with issue 5.
//!
//! Owns everything Slack-specific on the way in; must not contain help-desk rules.

pub mod blocks;
pub mod client;
pub mod events;
pub mod socket;
pub mod source;
