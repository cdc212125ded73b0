//! Shared test set-up: `spawn_app` gives each test its own SQLite file, a manual clock and a
//! desk built by the same code as `switchboard run`.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use switchboard::app::build_desk;
use switchboard::config::Config;
use switchboard::core::clock::ManualClock;
use switchboard::core::command::UsageError;
use switchboard::core::directory::Actor;
use switchboard::core::message::Reply;
use switchboard::core::ticket::{Origin, Source};
use switchboard::core::types::{ChannelRef, Platform, RoleRef, UserRef};
use switchboard::desk::{Desk, DeskError, FlagOutcome, FlagRequest, TicketOverrides};

/// Alice: admin, linked on both platforms. Bob: billing member by person, linked. Carol:
/// billing lead on Slack. Dave: it member through a Discord role. Erin: it member through a
/// Slack user group. Customers have no standing.
pub const TEST_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice"
slack = "UALICE"
discord = "1001"

[[people]]
id = "bob"
name = "Bob"
slack = "UBOB"
discord = "1002"

[[people]]
id = "carol"
name = "Carol"
slack = "UCAROL"

[[departments]]
name = "billing"
channels = ["slack:CBILLING", "discord:2001"]
members = ["person:bob"]
leads = ["person:carol"]

[[departments]]
name = "it"
channels = ["discord:2002"]
members = ["discord-role:3001", "slack-group:SIT"]

[[departments]]
name = "support"
channels = ["slack:CSUPPORT"]
members = ["person:alice"]

[flagging]
emojis = ["ticket", "🎫", "rotating_light"]
who = "members"

[routing]
fallback = "support"

[[routing.rules]]
name = "outage"
emojis = ["rotating_light"]
department = "it"
priority = "urgent"

[[routing.rules]]
name = "refunds"
keywords = ["refund", "charged twice"]
department = "billing"
priority = "high"
tags = ["money"]

[[digests]]
name = "weekly"
cron = "0 9 * * MON"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS", "discord:2003"]
"#;

/// A running desk on its own database.
pub struct TestApp {
    pub desk: Desk,
    pub clock: ManualClock,
    pub url: String,
    pub dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TEST_CONFIG).await
}

pub async fn spawn_app_with(config: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let config = Config::from_toml(config, "test config", |k| {
        (k == "SWITCHBOARD_DATABASE_URL").then(|| url.clone())
    })
    .expect("test config is valid");
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let desk = build_desk(config, Arc::new(clock.clone()))
        .await
        .expect("desk starts");
    TestApp {
        desk,
        clock,
        url,
        dir,
    }
}

pub fn slack(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Slack, id))
}

pub fn discord(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Discord, id))
}

pub fn alice() -> Actor {
    slack("UALICE")
}

pub fn bob() -> Actor {
    slack("UBOB")
}

pub fn carol() -> Actor {
    slack("UCAROL")
}

/// An IT member by Discord role.
pub fn dave() -> Actor {
    let mut a = discord("1004");
    a.roles.push(RoleRef::new(Platform::Discord, "3001"));
    a
}

pub fn customer() -> UserRef {
    UserRef::new(Platform::Slack, "UCUSTOMER")
}

pub fn source(channel: &str, ts: &str, text: &str) -> Source {
    Source {
        channel: channel.parse::<ChannelRef>().unwrap(),
        message_id: ts.into(),
        thread_id: None,
        permalink: Some(format!("https://example.slack.com/archives/x/p{ts}")),
        original_text: text.into(),
        author: customer(),
    }
}

impl TestApp {
    /// Runs a command line such as `/ticket claim T-1`, returning the error kind on failure.
    pub async fn run(&self, actor: &Actor, line: &str) -> Result<Reply, DeskError> {
        let (cmd, text) = line.split_once(' ').unwrap_or((line, ""));
        let inv = self
            .desk
            .commands
            .parse_text(cmd, text)?
            .ok_or(DeskError::Usage(UsageError::UnknownCommand("help".into())))?;
        let channel: ChannelRef = "slack:CSUPPORT".parse().unwrap();
        self.desk.try_run(actor, Some(&channel), &inv).await
    }

    /// Runs a command that must succeed and returns its text.
    pub async fn ok(&self, actor: &Actor, line: &str) -> String {
        match self.run(actor, line).await {
            Ok(r) => r.message.plain(),
            Err(e) => panic!("`{line}` failed: {e}"),
        }
    }

    /// Runs a command that must fail with a user error and returns its message.
    pub async fn user_error(&self, actor: &Actor, line: &str) -> String {
        match self.run(actor, line).await {
            Ok(r) => panic!("`{line}` succeeded: {}", r.message.plain()),
            Err(e) => {
                assert!(e.is_user_error(), "`{line}`: not a user error: {e}");
                e.to_string()
            }
        }
    }

    pub async fn flag(
        &self,
        flagger: &Actor,
        emoji: &str,
        src: Source,
    ) -> Result<FlagOutcome, DeskError> {
        self.desk
            .flag(FlagRequest {
                flagger: flagger.clone(),
                origin: Origin::Flag,
                emoji: Some(emoji.into()),
                source: src,
                author_roles: vec![],
                overrides: TicketOverrides::default(),
                inbox_key: None,
            })
            .await
    }
}
