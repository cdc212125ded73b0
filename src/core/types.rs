//! Neutral identifiers shared by every layer: platforms, channels, users, roles, priorities,
//! statuses and ticket references.
//!
//! Owns parsing and display of the written forms used in config files and chat
//! (`slack:C123`, `discord:123`, `T-42`). Must not know how a platform encodes them on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors from parsing a written identifier; every message says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text did not have the expected form.
    #[error("`{input}` is not {expected}")]
    Invalid {
        /// What the user wrote.
        input: String,
        /// A description of the accepted form, with an example.
        expected: &'static str,
    },
}

fn invalid(input: &str, expected: &'static str) -> ParseError {
    ParseError::Invalid {
        input: input.to_string(),
        expected,
    }
}

/// A chat platform Switchboard talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Slack workspaces.
    Slack,
    /// Discord servers.
    Discord,
}

impl Platform {
    /// The lowercase name used in config and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "slack" => Ok(Platform::Slack),
            "discord" => Ok(Platform::Discord),
            _ => Err(invalid(s, "a platform (`slack` or `discord`)")),
        }
    }
}

fn split_platform<'a>(
    s: &'a str,
    expected: &'static str,
) -> Result<(Platform, &'a str), ParseError> {
    let (p, id) = s.split_once(':').ok_or_else(|| invalid(s, expected))?;
    let platform = p.parse().map_err(|_| invalid(s, expected))?;
    let id = id.trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(invalid(s, expected));
    }
    Ok((platform, id))
}

/// A channel on one platform, written `slack:C123` or `discord:123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelRef {
    /// Which platform the channel lives on.
    pub platform: Platform,
    /// The platform's channel id.
    pub id: String,
}

impl ChannelRef {
    /// Builds a channel reference.
    pub fn new(platform: Platform, id: impl Into<String>) -> Self {
        Self {
            platform,
            id: id.into(),
        }
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.id)
    }
}

const CHANNEL_FORM: &str = "a channel written `slack:C0123ABC` or `discord:123456789012345678`";

impl FromStr for ChannelRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (platform, id) = split_platform(s, CHANNEL_FORM)?;
        let ok = match platform {
            Platform::Slack => id.chars().all(|c| c.is_ascii_alphanumeric()),
            Platform::Discord => id.chars().all(|c| c.is_ascii_digit()),
        };
        if !ok {
            return Err(invalid(s, CHANNEL_FORM));
        }
        Ok(ChannelRef::new(platform, id))
    }
}

/// A user account on one platform, written `slack:U123` or `discord:123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserRef {
    /// Which platform the account lives on.
    pub platform: Platform,
    /// The platform's user id.
    pub id: String,
}

impl UserRef {
    /// Builds a user reference.
    pub fn new(platform: Platform, id: impl Into<String>) -> Self {
        Self {
            platform,
            id: id.into(),
        }
    }

    /// Whether this looks like a person's account that can receive a direct message: Slack
    /// person ids start with `U` or `W` (a flagged app message has a `B…` bot id, and Slackbot
    /// is `USLACKBOT`); every Discord user id is a snowflake. An automation source is not.
    pub fn is_person_account(&self) -> bool {
        match self.platform {
            Platform::Slack => self.id.starts_with(['U', 'W']) && self.id != "USLACKBOT",
            Platform::Discord => !self.id.is_empty() && self.id.chars().all(|c| c.is_ascii_digit()),
        }
    }

    /// The reporter of a ticket another system opened through the API: the token's `name`,
    /// on the platform of the department's channel. Its id (`automation:NAME`) cannot be a
    /// platform's user id, so it matches no person.
    pub fn automation(platform: Platform, source: &str) -> Self {
        Self::new(platform, format!("{AUTOMATION}{source}"))
    }

    /// The source's name when this is an automation reporter ([`UserRef::automation`]).
    pub fn automation_source(&self) -> Option<&str> {
        self.id.strip_prefix(AUTOMATION)
    }
}

/// The id prefix of automation reporters.
const AUTOMATION: &str = "automation:";

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.id)
    }
}

const USER_FORM: &str = "a user written `slack:U0123ABC` or `discord:123456789012345678`";

impl FromStr for UserRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (platform, id) = split_platform(s, USER_FORM)?;
        let ok = match (platform, id.strip_prefix(AUTOMATION)) {
            // An automation reporter's stored form (`UserRef::automation`).
            (_, Some(name)) => {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }
            (Platform::Slack, None) => id.chars().all(|c| c.is_ascii_alphanumeric()),
            (Platform::Discord, None) => id.chars().all(|c| c.is_ascii_digit()),
        };
        if !ok {
            return Err(invalid(s, USER_FORM));
        }
        Ok(UserRef::new(platform, id))
    }
}

/// A group a platform user can belong to: a Slack user group or a Discord role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleRef {
    /// Slack for user groups (`S…` ids), Discord for roles.
    pub platform: Platform,
    /// The user group id or role id.
    pub id: String,
}

impl RoleRef {
    /// Builds a role reference.
    pub fn new(platform: Platform, id: impl Into<String>) -> Self {
        Self {
            platform,
            id: id.into(),
        }
    }
}

impl fmt::Display for RoleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.platform {
            Platform::Slack => write!(f, "slack-group:{}", self.id),
            Platform::Discord => write!(f, "discord-role:{}", self.id),
        }
    }
}

/// Stable id of a configured person, linking their Slack and Discord accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub String);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    Normal,
    /// Needs attention today.
    High,
    /// Drop everything.
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    /// The lowercase name used in commands, config and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| invalid(s, "a priority: low, normal, high or urgent"))
    }
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for someone to pick it up.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Staff asked the customer something; the resolution clock pauses.
    WaitingOnCustomer,
    /// Fixed; the reporter is asked for a rating. May be reopened.
    Resolved,
    /// Finished for good (or dismissed). May be reopened.
    Closed,
}

impl Status {
    /// Every status, in life-cycle order.
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::WaitingOnCustomer,
        Status::Resolved,
        Status::Closed,
    ];

    /// The snake_case name used in storage and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::WaitingOnCustomer => "waiting_on_customer",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// A short human label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in progress",
            Status::WaitingOnCustomer => "waiting on customer",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Whether the ticket still needs work (open, in progress or waiting).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Open | Status::InProgress | Status::WaitingOnCustomer
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Status {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let found = match norm.as_str() {
            "open" => Status::Open,
            "in_progress" | "progress" | "working" => Status::InProgress,
            "waiting_on_customer" | "waiting" | "pending" => Status::WaitingOnCustomer,
            "resolved" | "resolve" | "done" => Status::Resolved,
            "closed" | "close" => Status::Closed,
            _ => {
                return Err(invalid(
                    s,
                    "a status: open, in_progress, waiting (on customer), resolved or closed",
                ))
            }
        };
        Ok(found)
    }
}

/// A ticket's short human reference, shown as `T-42`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketRef(pub i64);

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T-{}", self.0)
    }
}

impl FromStr for TicketRef {
    type Err = ParseError;
    /// Accepts `T-42`, `t42`, `#42` and `42`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t
            .strip_prefix(['T', 't'])
            .map(|r| r.strip_prefix('-').unwrap_or(r))
            .or_else(|| t.strip_prefix('#'))
            .unwrap_or(t);
        match digits.parse::<i64>() {
            Ok(n) if n > 0 && digits.chars().all(|c| c.is_ascii_digit()) => Ok(TicketRef(n)),
            _ => Err(invalid(s, "a ticket reference such as `T-42`")),
        }
    }
}

/// Someone a message means to ping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Mention {
    /// A user account.
    User(UserRef),
    /// A Slack user group or a Discord role.
    Group(RoleRef),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_refs_parse_and_print() {
        let c: ChannelRef = "slack:C0123ABC".parse().unwrap();
        assert_eq!(c, ChannelRef::new(Platform::Slack, "C0123ABC"));
        assert_eq!(c.to_string(), "slack:C0123ABC");
        let d: ChannelRef = "discord:1234".parse().unwrap();
        assert_eq!(d.platform, Platform::Discord);
        for bad in ["C123", "teams:C1", "discord:abc", "slack:", "slack:C 1"] {
            assert!(bad.parse::<ChannelRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ticket_refs_accept_common_forms() {
        for ok in ["T-42", "t42", "#42", "42", " T-42 "] {
            assert_eq!(ok.parse::<TicketRef>().unwrap(), TicketRef(42), "{ok}");
        }
        for bad in ["T-", "T-0", "x42", "T-4a", "-3", ""] {
            assert!(bad.parse::<TicketRef>().is_err(), "{bad}");
        }
        assert_eq!(TicketRef(7).to_string(), "T-7");
    }

    #[test]
    fn statuses_and_priorities_parse_loosely_but_print_exactly() {
        assert_eq!(
            "waiting".parse::<Status>().unwrap(),
            Status::WaitingOnCustomer
        );
        assert_eq!("in-progress".parse::<Status>().unwrap(), Status::InProgress);
        assert!("sleeping".parse::<Status>().is_err());
        assert_eq!("URGENT".parse::<Priority>().unwrap(), Priority::Urgent);
        let err = "meh".parse::<Priority>().unwrap_err().to_string();
        assert!(err.contains("low, normal, high or urgent"), "{err}");
    }
}
