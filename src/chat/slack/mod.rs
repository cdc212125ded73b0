//! The Slack adapter, being built (issue 4): HTTP mode's Events API endpoint (signature check,
//! then the raw event committed to the inbox before the acknowledgement), Block Kit rendering,
//! and delivery through slack-morphism. Socket Mode and completing events into flags follow.
//!
//! Owns everything Slack-specific on the way in; must not contain help-desk rules.

pub mod blocks;
pub mod client;
pub mod events;
pub mod socket;
pub mod source;
