//! The Slack adapter. So far: HTTP mode's Events API endpoint (signature check, then the raw
//! event committed to the inbox before the acknowledgement).
//!
//! Owns everything Slack-specific on the way in; must not contain help-desk rules.

pub mod events;
