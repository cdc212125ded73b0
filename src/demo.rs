//! `switchboard demo`: a scripted help-desk morning run through the real core and a
//! throwaway SQLite database, printed as a transcript. Needs no tokens and no config.
//!
//! Owns the demo's config and script only. Everything it shows (routing, permissions,
//! transitions, outbox rows) comes from the same code paths the adapters use; it must not
//! fake an outcome.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sandbox::discord::FakeDiscord;
use sandbox::slack::{FakeSlack, Via};

use crate::app::{build_desk, AppError};
use crate::chat::discord::client::DiscordApi;
use crate::chat::discord::gateway::{Gateway, GatewaySettings};
use crate::chat::discord::interact::DiscordInteractions;
use crate::chat::discord::source::DiscordEventSource;
use crate::chat::slack::client::SlackApi;
use crate::chat::slack::interact::Interactions;
use crate::chat::slack::socket::{SocketMode, SocketSettings};
use crate::chat::slack::source::SlackEventSource;
use crate::chat::{Delivery, EventSource};
use crate::config::Secret;
use crate::config::{Config, ConfigError};
use crate::core::clock::{Clock, ManualClock};
use crate::core::directory::{Actor, Permission};
use crate::core::ticket::{Change, Source};
use crate::core::types::{ChannelRef, Platform, RoleRef, Status, TicketRef, UserRef};
use crate::desk::{Desk, DeskError, TicketOverrides};
use crate::inbox::{InboxSettings, InboxWorker};
use crate::outbox::{OutboxSettings, OutboxWorker};

/// The demo's configuration: two departments on Slack, one on Discord, people linked across
/// both platforms.
pub const DEMO_CONFIG: &str = r#"
admins = ["person:alice"]

[[people]]
id = "alice"
name = "Alice (support lead)"
slack = "UALICE"
discord = "100000000000000001"

[[people]]
id = "bob"
name = "Bob (billing)"
slack = "UBOB"
discord = "100000000000000002"

[[people]]
id = "dana"
name = "Dana (engineering)"
discord = "100000000000000004"

[[departments]]
name = "billing"
channels = ["slack:CBILLING"]
members = ["person:bob"]
leads = ["person:alice"]
followups = { remind_after = "2d", close_after = "5d" }

[[departments]]
name = "engineering"
channels = ["discord:200000000000000010"]
members = ["discord-role:300000000000000001"]
leads = ["person:dana"]

[[departments]]
name = "support"
channels = ["slack:CSUPPORT", "discord:200000000000000011"]
members = ["person:alice"]
leads = ["person:alice"]

[sla]
first_response = { urgent = "30m", high = "1h", normal = "2h", low = "1d" }
resolution = { urgent = "4h", high = "1d", normal = "2d", low = "1w" }

[flagging]
emojis = ["ticket", "🎫", "rotating_light", "🚨"]
who = "members"

[routing]
fallback = "support"

[[routing.rules]]
name = "outages"
emojis = ["rotating_light", "🚨"]
department = "engineering"
priority = "urgent"
tags = ["outage"]

[[routing.rules]]
name = "refunds"
keywords = ["refund", "charged twice", "invoice"]
department = "billing"
priority = "high"
tags = ["money"]

[[routing.rules]]
name = "error-codes"
regex = "\\bE\\d{3}\\b"
department = "engineering"

[[digests]]
name = "weekly"
cron = "0 9 * * MON"
timezone = "Europe/Berlin"
targets = ["slack:CLEADS"]
"#;

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The demo config is broken (a bug).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The temporary directory could not be made.
    #[error("cannot create a temporary database: {0}")]
    Io(#[from] std::io::Error),
    /// A step that must succeed failed (a bug).
    #[error("demo step failed: {0}")]
    Step(#[from] DeskError),
    /// `--screenshots` could not drive a browser.
    #[error("screenshots: {0}")]
    Browser(String),
}

struct Script<'a, W: Write> {
    desk: Desk,
    clock: ManualClock,
    out: &'a mut W,
    /// The fake Slack the real Slack adapter talks to.
    slack: FakeSlack,
    /// The fake Discord the real Discord adapter (serenity) talks to.
    discord: FakeDiscord,
    /// The Discord gateway connection to the fake.
    gateway: Option<Gateway>,
    /// The last message said in the fake Discord, for "the same message" flags.
    last_discord_message: String,
    inbox: InboxWorker,
    outbox: OutboxWorker,
    next_event: u32,
    /// Slack's Socket Mode connection to the fake, answering commands and interactions.
    socket: SocketMode,
}

/// The bot token the demo's fake Slack accepts.
const DEMO_SLACK_TOKEN: &str = "xoxb-demo-sandbox";

fn slack(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Slack, id))
}

fn discord(id: &str) -> Actor {
    Actor::user(UserRef::new(Platform::Discord, id))
}

impl<W: Write> Script<'_, W> {
    fn say(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.out, "{text}")
    }

    fn step(&mut self, minutes: i64, title: &str) -> std::io::Result<()> {
        self.clock.advance(Duration::minutes(minutes));
        let now = self.clock.now().format("%H:%M");
        writeln!(self.out, "\n[{now}] {title}")
    }

    /// A slash command used in Discord: the fake Discord sends the interaction over the gateway
    /// to serenity, and the answer Switchboard posts to the callback route is what the person
    /// sees. Options are `(name, Discord option type, value)`.
    async fn discord_command(
        &mut self,
        who: &str,
        user: &str,
        channel: &str,
        (command, sub): (&str, &str),
        options: &[(&str, u64, &str)],
    ) -> Result<(), DemoError> {
        let typed: Vec<String> = options.iter().map(|(n, _, v)| format!("{n}:{v}")).collect();
        self.say(&format!(
            "  {who} uses `/{command} {sub} {}` in Discord #{}",
            typed.join(" "),
            self.discord.channel_name(channel)
        ))?;
        let opts: Vec<serde_json::Value> = options
            .iter()
            .map(|(n, t, v)| serde_json::json!({ "name": n, "type": t, "value": v }))
            .collect();
        let data = serde_json::json!({
            "id": self.discord.command_id(command), "name": command, "type": 1,
            "options": [{ "name": sub, "type": 1, "options": opts }]
        });
        let started = std::time::Instant::now();
        let token = self.discord.interact(2, user, channel, data, None);
        let Some(answer) = self.discord.answer(&token).await else {
            return Err(AppError::Discord(format!("no answer to /{command} {sub}")).into());
        };
        let vis = if answer["data"]["flags"]
            .as_u64()
            .is_some_and(|f| f & 64 != 0)
        {
            "only they see"
        } else {
            "channel sees"
        };
        self.say(&format!(
            "  → {who} ({vis}, answered in {} ms): {}",
            started.elapsed().as_millis(),
            answer["data"]["content"].as_str().unwrap_or_default()
        ))?;
        Ok(())
    }

    /// A slash command typed in Slack: the fake Slack sends it over Socket Mode and the
    /// adapter's acknowledgement is what the person sees.
    async fn slack_command(
        &mut self,
        who: &str,
        user: &str,
        channel: &str,
        line: &str,
    ) -> Result<(), DemoError> {
        let (cmd, text) = line.split_once(' ').unwrap_or((line, ""));
        self.say(&format!("  {who} types `{line}` in Slack #{channel}"))?;
        let fields = self.slack.slash_command(user, channel, cmd, text);
        let ack = self.slack.send_command(&Via::Socket, &fields).await;
        let body = ack.body.unwrap_or_default();
        let vis = if body["response_type"] == "in_channel" {
            "channel sees"
        } else {
            "only they see"
        };
        // Slack shows mrkdwn with &lt; &gt; &amp; as the characters; so does the transcript.
        let text = unescape(body["text"].as_str().unwrap_or("(no answer)"));
        self.say(&format!(
            "  → {who} ({vis}, answered in {} ms): {}",
            ack.took.as_millis(),
            text.replace('\n', "\n      ")
        ))?;
        Ok(())
    }

    /// Delivers everything waiting in the outbox through the real Slack adapter.
    async fn deliver(&mut self) -> Result<(), DemoError> {
        while self.outbox.round().await.map_err(DeskError::from)? > 0 {}
        Ok(())
    }

    /// Completes everything waiting in the inbox.
    async fn complete(&mut self) -> Result<(), DemoError> {
        while self.inbox.round().await.map_err(DeskError::from)? > 0 {}
        Ok(())
    }

    /// Sends an interaction over Socket Mode and prints the answer that came back through
    /// its response URL, if one did.
    async fn interact(&mut self, who: &str, payload: serde_json::Value) -> Result<(), DemoError> {
        let before = self.slack.responses().len();
        let ack = self.slack.send_interaction(&Via::Socket, &payload).await;
        if let Some(errors) = ack.body.as_ref().and_then(|b| b["errors"].as_object()) {
            for (field, why) in errors {
                self.say(&format!(
                    "  → the form shows under {field}: {}",
                    why.as_str().unwrap_or_default()
                ))?;
            }
            return Ok(());
        }
        for _ in 0..200 {
            if self.slack.responses().len() > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if let Some(r) = self.slack.responses().get(before) {
            let how = if r.body["replace_original"] == true {
                "replaces the message"
            } else {
                "only they see"
            };
            let text = unescape(r.body["text"].as_str().unwrap_or_default());
            self.say(&format!(
                "  → {who} ({how}): {}",
                text.replace('\n', "\n      ")
            ))?;
        }
        Ok(())
    }

    /// The Slack message holding ticket `n`'s alert in `channel`.
    fn alert_ts(&self, channel: &str, n: i64) -> Option<String> {
        self.slack
            .bot_messages()
            .into_iter()
            .find(|m| {
                m.channel == channel
                    && m.thread_ts.is_none()
                    && m.text.starts_with(&format!("T-{n} "))
            })
            .map(|m| m.ts)
    }

    /// `who` presses the button `action` on ticket `n`'s alert in Slack `channel`.
    async fn press(
        &mut self,
        who: &str,
        user: &str,
        channel: &str,
        n: i64,
        action: &str,
    ) -> Result<(), DemoError> {
        self.deliver().await?;
        let Some(ts) = self.alert_ts(channel, n) else {
            return self
                .say(&format!("  ✘ no alert for T-{n} in #{channel}"))
                .map_err(Into::into);
        };
        self.say(&format!(
            "  {who} presses {action} on the T-{n} alert in Slack #{channel}"
        ))?;
        let id = format!("{}:{n}", action.to_lowercase());
        match self.slack.click(user, channel, &ts, &id) {
            Some(p) => self.interact(who, p).await,
            None => self
                .say("  ✘ the alert has no such button")
                .map_err(Into::into),
        }
    }

    async fn flag(
        &mut self,
        who: &str,
        flagger: &Actor,
        emoji: &str,
        source: Source,
    ) -> Result<(), DemoError> {
        self.say(&format!(
            "  {who} reacts :{emoji}: to {}'s message in {}: \"{}\"",
            self.desk.config.directory.display_name(&source.author),
            source.channel,
            source.original_text
        ))?;
        match source.channel.platform {
            Platform::Slack => self.flag_on_slack(flagger, emoji, source).await,
            Platform::Discord => self.flag_on_discord(flagger, emoji, source).await,
        }
    }

    /// A Discord flag as Discord delivers it: the message is said in the fake Discord, the
    /// reaction arrives over the gateway to the real serenity client, whose handler commits it
    /// to the inbox; the inbox worker completes it through the Discord adapter (fetching the
    /// message and the author's roles from the fake).
    async fn flag_on_discord(
        &mut self,
        flagger: &Actor,
        emoji: &str,
        source: Source,
    ) -> Result<(), DemoError> {
        let id = if source.original_text == "(same message)" {
            self.last_discord_message.clone()
        } else {
            self.discord
                .say(&source.channel.id, &source.author.id, &source.original_text)
        };
        self.last_discord_message = id.clone();
        let store = self.desk.store.clone();
        let before = store.inbox(None, 0).await.map_err(DeskError::from)?.len();
        self.discord
            .react(&source.channel.id, &id, &flagger.user.id, emoji);
        for _ in 0..500 {
            if store.inbox(None, 0).await.map_err(DeskError::from)?.len() > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        while self.inbox.round().await.map_err(DeskError::from)? > 0 {}
        self.report_flag(
            &source.channel,
            &id,
            "Discord (text, author roles and jump link fetched from Discord)",
        )
        .await
    }

    /// A Slack flag as Slack delivers it: the message lives in the fake Slack, the
    /// `reaction_added` event is committed to the inbox (what `POST /slack/events` does after
    /// checking the signature), and the inbox worker completes it through the real Slack
    /// adapter, fetching the message and its permalink from the fake.
    async fn flag_on_slack(
        &mut self,
        flagger: &Actor,
        emoji: &str,
        source: Source,
    ) -> Result<(), DemoError> {
        if source.original_text != "(same message)" {
            self.slack.seed_message(
                &source.channel.id,
                &source.message_id,
                &source.author.id,
                &source.original_text,
                None,
            );
        }
        self.next_event += 1;
        let event_id = format!("EvDemo{}", self.next_event);
        let payload = serde_json::json!({
            "token": "demo", "team_id": "T0SANDBOX", "api_app_id": "A0DEMO", "type": "event_callback",
            "event_id": event_id, "event_time": self.clock.now().timestamp(), "authed_users": [sandbox::slack::BOT_USER],
            "event": {
                "type": "reaction_added", "user": flagger.user.id, "reaction": emoji, "item_user": source.author.id,
                "item": {"type": "message", "channel": source.channel.id, "ts": source.message_id},
                "event_ts": format!("{}.000100", self.clock.now().timestamp())
            }
        });
        let store = self.desk.store.clone();
        store
            .inbox_insert(
                &format!("slack:event:{event_id}"),
                crate::chat::slack::source::order_key(&payload).as_deref(),
                "slack",
                &payload,
                self.clock.now(),
            )
            .await
            .map_err(DeskError::from)?;
        while self.inbox.round().await.map_err(DeskError::from)? > 0 {}
        self.report_flag(
            &source.channel,
            &source.message_id,
            "Slack (text and permalink fetched from Slack)",
        )
        .await
    }

    /// Says what became of the last flag on message `id` in `channel`: a new ticket with its
    /// routing, the existing ticket, or the refusal the inbox worker recorded.
    async fn report_flag(
        &mut self,
        channel: &ChannelRef,
        id: &str,
        fetched: &str,
    ) -> Result<(), DemoError> {
        let store = self.desk.store.clone();
        let row = store.inbox(None, 0).await.map_err(DeskError::from)?.pop();
        let note = row.and_then(|r| r.last_error).unwrap_or_default();
        match store
            .ticket_by_source(channel, id)
            .await
            .map_err(DeskError::from)?
        {
            Some(t) if note.is_empty() => {
                let events = store.events(t.id).await.map_err(DeskError::from)?;
                let again = events
                    .iter()
                    .any(|e| matches!(e.kind, crate::core::ticket::EventKind::Reflagged));
                if again {
                    self.say(&format!(
                        "  ✔ already {}: Switchboard points to it instead of opening a duplicate",
                        t.id
                    ))?;
                } else {
                    self.say(&format!(
                        "  ✔ {} opened from {fetched}: \"{}\"",
                        t.id,
                        crate::core::message::neutralize_mentions(&t.title)
                    ))?;
                    if let Some(crate::core::ticket::EventKind::Created {
                        department,
                        rule,
                        reasons,
                        ..
                    }) = events.first().map(|e| &e.kind)
                    {
                        let why = match rule {
                            Some(r) => format!(
                                "rule `{r}` matched ({}) → department {department}",
                                reasons.join("; ")
                            ),
                            None => format!("no rule matched → fallback department {department}"),
                        };
                        self.say(&format!("    routing: {why}, priority {}", t.priority))?;
                    }
                }
            }
            _ => self.say(&format!("  ✘ refused: {note}"))?,
        }
        Ok(())
    }
}

/// Slack's mrkdwn escapes as the characters they stand for.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The token the demo's fake Discord accepts.
const DEMO_DISCORD_TOKEN: &str = "demo-discord-bot-token";

/// The demo's fake Discord server (channels, the Engineering role, members) and a client for it.
async fn fake_discord() -> Result<(FakeDiscord, DiscordApi), DemoError> {
    let fake = FakeDiscord::start(DEMO_DISCORD_TOKEN).await?;
    for (id, name) in [
        ("200000000000000010", "eng-alerts"),
        ("200000000000000011", "support"),
        ("200000000000000020", "bugs"),
    ] {
        fake.add_channel(id, name);
    }
    fake.add_role("300000000000000001", "Engineering", 0);
    for (id, name, roles) in [
        ("100000000000000001", "Alice", &[][..]),
        ("100000000000000002", "Bob", &[]),
        ("100000000000000004", "Dana", &["300000000000000001"]),
        ("100000000000000099", "Riley", &[]),
    ] {
        fake.add_member(id, name, roles);
    }
    let api = DiscordApi::new(&fake.base_url, &Secret::new(DEMO_DISCORD_TOKEN))
        .map_err(|e| AppError::Discord(e.to_string()))?;
    Ok((fake, api))
}

fn message(channel: &str, ts: &str, author: UserRef, text: &str) -> Source {
    let channel: ChannelRef = channel.parse().expect("demo channels are valid");
    let permalink = match channel.platform {
        Platform::Slack => format!(
            "https://demo.slack.com/archives/{}/p{}",
            channel.id,
            ts.replace('.', "")
        ),
        Platform::Discord => format!(
            "https://discord.com/channels/400000000000000001/{}/{ts}",
            channel.id
        ),
    };
    Source {
        channel,
        message_id: ts.to_string(),
        thread_id: None,
        permalink: Some(permalink),
        original_text: text.to_string(),
        author,
        author_name: None,
    }
}

/// The demo's start: Monday 2 March 2026, 09:00 UTC.
pub fn demo_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Runs the scripted scenario, writing the transcript to `out`.
pub async fn run(
    out: &mut impl Write,
    save_digest: Option<&std::path::Path>,
    screenshots: Option<&std::path::Path>,
) -> Result<(), DemoError> {
    let dir = tempfile::tempdir()?;
    // With screenshots the web view is on, at an address bound now so the config can name it.
    let web = match screenshots {
        Some(_) => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
        None => None,
    };
    let web_config = match &web {
        Some(l) => format!(
            "\n[web]\nenabled = true\npublic_url = \"http://{}\"\n",
            l.local_addr()?
        ),
        None => String::new(),
    };
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    // The demo's knowledge base: three support articles, written next to its database.
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb)?;
    for (name, text) in DEMO_ARTICLES {
        std::fs::write(kb.join(name), text)?;
    }
    let text = format!(
        "{DEMO_CONFIG}\n[knowledge]\ndir = {}\n{web_config}",
        toml::Value::String(kb.display().to_string())
    );
    let config = Config::from_toml(&text, "demo config", |k| {
        (k == "SWITCHBOARD_DATABASE_URL").then(|| url.clone())
    })?;
    let clock = ManualClock::new(demo_start());
    let desk = build_desk(config, Arc::new(clock.clone())).await?;
    let fake_slack = FakeSlack::start(DEMO_SLACK_TOKEN).await?;
    for (id, name) in [
        ("CHELP", "help"),
        ("CBILLING", "billing"),
        ("CSUPPORT", "support"),
        ("CLEADS", "leads"),
        ("CGENERAL", "general"),
    ] {
        fake_slack.add_channel(id, name, true);
    }
    // The demo's fake Slack enforces no limits; pacing to Slack's would only make the loaded
    // history's posts take minutes.
    let api = SlackApi::new(&fake_slack.api_url, &Secret::new(DEMO_SLACK_TOKEN))
        .map_err(|e| AppError::Slack(e.to_string()))?
        .with_limits(
            crate::config::SlackLimits {
                tiers: [10_000; 4],
                posts_per_second: 1_000,
                post_burst: 1_000,
                instances: 1,
            },
            Default::default(),
        );
    let source = SlackEventSource::new(
        api.clone(),
        desk.config.flag_emojis.clone(),
        Some(sandbox::slack::BOT_USER.into()),
    );
    let (fake_discord, discord_api) = fake_discord().await?;
    let discord_source =
        DiscordEventSource::new(discord_api.clone(), desk.config.flag_emojis.clone());
    let inbox = InboxWorker::new(
        desk.clone(),
        vec![
            Arc::new(source) as Arc<dyn EventSource>,
            Arc::new(discord_source),
        ],
        InboxSettings::default(),
    );
    let outbox = OutboxWorker::new(
        desk.store.clone(),
        vec![
            Arc::new(api.clone()) as Arc<dyn Delivery>,
            Arc::new(discord_api.clone()),
        ],
        Arc::new(clock.clone()),
        desk.telemetry.clone(),
        OutboxSettings::default(),
    );
    for (id, name) in [
        ("UALICE", "Alice"),
        ("UBOB", "Bob"),
        ("UCUSTOMER1", "Casey"),
        ("UCUSTOMER2", "Kim"),
    ] {
        fake_slack.add_user(id, name);
    }
    fake_slack.add_bot("UREMINDER", "Reminders");
    desk.accounts.register(Arc::new(api.clone()));
    desk.accounts.register(Arc::new(discord_api.clone()));
    crate::app::register_discord_commands(&discord_api, &desk).await;
    let gateway = Gateway::start(
        discord_api.clone(),
        sandbox::discord::BOT_USER_ID.to_string(),
        desk.store.clone(),
        Arc::new(clock.clone()),
        GatewaySettings {
            interactions: Some(DiscordInteractions::new(desk.clone(), discord_api)),
            ..GatewaySettings::default()
        },
    )
    .await
    .map_err(|e| AppError::Discord(e.to_string()))?;
    if gateway
        .wait_sessions(0, std::time::Duration::from_secs(10))
        .await
        == 0
    {
        return Err(AppError::Discord(
            "the gateway to the fake Discord did not become ready".into(),
        )
        .into());
    }
    let socket = SocketMode::start(
        &api,
        &Secret::new(sandbox::slack::app_token_for(DEMO_SLACK_TOKEN)),
        desk.store.clone(),
        Arc::new(clock.clone()),
        Some(Interactions::new(desk.clone(), api.clone())),
        SocketSettings {
            connections: 1,
            reconnect_seconds: 1,
            stagger_seconds: 0,
        },
    )
    .await
    .map_err(|e| AppError::Slack(e.to_string()))?;
    for _ in 0..400 {
        if fake_slack.connections() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut s = Script {
        desk,
        clock,
        out,
        slack: fake_slack,
        discord: fake_discord,
        gateway: Some(gateway),
        last_discord_message: String::new(),
        inbox,
        outbox,
        next_event: 0,
        socket,
    };

    s.say("Switchboard demo: a Monday morning at a small SaaS company.")?;
    s.say(&format!(
        "Throwaway database: {url} (deleted at the end). No tokens, no network: Slack is a fake on {}, Discord a fake on {} (gateway and REST, reached by serenity).",
        s.slack.api_url, s.discord.base_url
    ))?;
    s.say("Departments: billing (Slack #billing), engineering (Discord #eng-alerts), support (Slack and Discord; the fallback).")?;
    s.say("Rules in order: outages (🚨 → engineering, urgent), refunds (keywords → billing, high), error-codes (regex → engineering).")?;

    let alice_slack = slack("UALICE");
    let customer_slack = UserRef::new(Platform::Slack, "UCUSTOMER1");
    let customer_discord = UserRef::new(Platform::Discord, "100000000000000099");

    s.step(0, "A customer writes in Slack #help; Alice flags it")?;
    s.flag(
        "Alice",
        &alice_slack,
        "ticket",
        message(
            "slack:CHELP",
            "1772442000.000100",
            customer_slack.clone(),
            "Hi <!channel>, I was charged twice for my March invoice, can I get a refund?",
        ),
    )
    .await?;

    s.step(
        4,
        "On Discord, Dana (engineering role) flags a crash report with 🚨",
    )?;
    let mut dana = discord("100000000000000004");
    dana.roles
        .push(RoleRef::new(Platform::Discord, "300000000000000001"));
    s.flag(
        "Dana",
        &dana,
        "🚨",
        message(
            "discord:200000000000000020",
            "500000000000000001",
            customer_discord.clone(),
            "Export keeps failing with E502 since this morning @everyone",
        ),
    )
    .await?;

    s.step(
        1,
        "Bob flags the Slack message again from his Slack account",
    )?;
    s.flag(
        "Bob",
        &slack("UBOB"),
        "ticket",
        message(
            "slack:CHELP",
            "1772442000.000100",
            customer_slack.clone(),
            "(same message)",
        ),
    )
    .await?;

    s.step(
        1,
        "A customer tries to flag their own message (flagging is for staff)",
    )?;
    s.flag(
        "A customer",
        &Actor::user(customer_slack.clone()),
        "ticket",
        message(
            "slack:CHELP",
            "1772442300.000200",
            customer_slack.clone(),
            "Where is my order?",
        ),
    )
    .await?;

    s.step(2, "Alice opens a ticket by command")?;
    s.slack_command(
        "Alice",
        "UALICE",
        "CSUPPORT",
        "/ticket new Customer asks for SSO on the Team plan tags:sales",
    )
    .await?;

    s.step(
        2,
        "Kim writes in #help; Bob uses the \"Create ticket\" message shortcut",
    )?;
    s.slack.seed_message(
        "CHELP",
        "1772442900.000100",
        "UCUSTOMER2",
        "Our invoice PDF shows the wrong VAT number",
        None,
    );
    s.say("  Kim writes: \"Our invoice PDF shows the wrong VAT number\"")?;
    s.say("  Bob opens the message's ⋮ menu and picks \"Create ticket\"")?;
    let shortcut = s
        .slack
        .message_shortcut("UBOB", "CHELP", "1772442900.000100", "create_ticket");
    if let Some(p) = shortcut {
        s.interact("Bob", p).await?;
    }
    if let Some(view) = s.slack.views().pop() {
        let field = |id: &str| -> String {
            view.view["blocks"]
                .as_array()
                .and_then(|b| b.iter().find(|b| b["block_id"] == id))
                .map(|b| {
                    let el = &b["element"];
                    el["initial_value"]
                        .as_str()
                        .or(el["initial_option"]["value"].as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default()
        };
        s.say(&format!(
            "  ✔ a form opens, prefilled by the rules: title \"{}\", department {}, priority {}, tags \"{}\"",
            field("title"),
            field("department"),
            field("priority"),
            field("tags")
        ))?;
        s.say("  Bob clears the title and submits")?;
        if let Some(p) = s.slack.submit_view(&view.id, &[("title", "")]) {
            s.interact("Bob", p).await?;
        }
        s.say("  Bob types a title, adds the tag vat and submits")?;
        if let Some(p) = s.slack.submit_view(
            &view.id,
            &[
                ("title", "Wrong VAT number on invoice PDF"),
                ("tags", "money, vat"),
            ],
        ) {
            s.interact("Bob", p).await?;
        }
        s.complete().await?;
        if let Some(t) = s
            .desk
            .store
            .ticket_by_source(
                &"slack:CHELP"
                    .parse()
                    .map_err(|e| DeskError::User(format!("{e}")))?,
                "1772442900.000100",
            )
            .await
            .map_err(DeskError::from)?
        {
            s.say(&format!(
                "  ✔ {} opened from the form: \"{}\" for {} ({}, tags {})",
                t.id,
                t.title,
                t.department,
                t.priority,
                t.tags.join(", ")
            ))?;
        }
    }

    s.step(5, "Bob presses Claim on the billing alert in Slack")?;
    s.press("Bob", "UBOB", "CBILLING", 1, "Claim").await?;

    s.step(1, "A customer presses Claim too (only staff may)")?;
    s.press("Kim", "UCUSTOMER2", "CBILLING", 4, "Claim").await?;

    s.step(1, "Mistakes get clear answers")?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/ticket status T-1 sleeping")
        .await?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/ticket claim T-2")
        .await?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/ticket assign T-1")
        .await?;

    s.step(
        2,
        "Billing keeps one good answer for double charges; Bob sends it",
    )?;
    s.slack_command(
        "Alice",
        "UALICE",
        "CBILLING",
        "/reply add double-charge department:billing Hi {reporter}, sorry about the double charge on {ticket}: the second payment is refunded within 5 working days. {assignee} will confirm here.",
    )
    .await?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/reply T-1 double-charge")
        .await?;
    s.deliver().await?;
    let posted = s
        .slack
        .bot_messages()
        .into_iter()
        .rev()
        .find(|m| m.text.contains("from the saved reply"));
    if let Some(m) = posted {
        s.say(&format!(
            "  In the thread of the flagged message: {}",
            unescape(&m.text).replace('\n', " ")
        ))?;
    }

    s.step(3, "Bob works the ticket")?;
    s.slack_command(
        "Bob",
        "UBOB",
        "CBILLING",
        "/ticket note T-1 Duplicate charge confirmed in Stripe",
    )
    .await?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/ticket status T-1 waiting")
        .await?;
    s.step(
        20,
        "The customer confirms; Bob resolves with the alert's button",
    )?;
    s.press("Bob", "UBOB", "CBILLING", 1, "Resolve").await?;

    s.step(1, "The reporter is asked how it went, in a direct message")?;
    s.deliver().await?;
    let dm = s
        .slack
        .bot_messages()
        .into_iter()
        .find(|m| m.channel == "DCUSTOMER1");
    if let Some(dm) = dm {
        s.say(&format!(
            "  Casey's DM from Switchboard: {}",
            dm.text.replace('\n', " ")
        ))?;
        if let Some(p) = s.slack.click("UCUSTOMER1", &dm.channel, &dm.ts, "csat:1:5") {
            s.say("  Casey presses 5")?;
            s.interact("Casey", p).await?;
        }
        if let Some(p) = s
            .slack
            .click("UCUSTOMER1", &dm.channel, &dm.ts, "csat-comment:1")
        {
            s.say("  Casey presses \"Add a comment\"; a form opens")?;
            s.interact("Casey", p).await?;
            if let Some(view) = s.slack.views().pop() {
                if let Some(p) = s.slack.submit_view(
                    &view.id,
                    &[("comment", "Refunded within the hour, thank you!")],
                ) {
                    s.interact("Casey", p).await?;
                }
            }
        }
        if let Some(c) = s
            .desk
            .store
            .csat(TicketRef(1))
            .await
            .map_err(DeskError::from)?
        {
            s.say(&format!(
                "  ✔ CSAT for T-1 stored once: {}/5, \"{}\"",
                c.score,
                c.comment.unwrap_or_default()
            ))?;
        }
    }

    s.step(
        1,
        "Alice thanks Bob for T-1; Bob tries to thank himself; Alice tries a bot",
    )?;
    s.slack_command(
        "Alice",
        "UALICE",
        "CGENERAL",
        "/kudos <@UBOB|bob> for sorting out the double charge in 25 minutes T-1",
    )
    .await?;
    s.discord_command(
        "Bob",
        "100000000000000002",
        "200000000000000011",
        ("kudos", "give"),
        &[
            ("user", 6, "100000000000000002"),
            ("why", 3, "for being great"),
        ],
    )
    .await?;
    s.slack_command(
        "Alice",
        "UALICE",
        "CGENERAL",
        "/kudos <@UREMINDER|reminders> for never forgetting standup",
    )
    .await?;

    s.step(1, "How was T-2 routed?")?;
    s.slack_command("Alice", "UALICE", "CSUPPORT", "/ticket explain T-2")
        .await?;

    s.step(1, "T-1's full story")?;
    s.slack_command("Alice", "UALICE", "CSUPPORT", "/ticket show T-1")
        .await?;

    s.step(
        1,
        "The two weeks before today are loaded, so the digest has history to compare",
    )?;
    let now = s.clock.now();
    // Deliver what the story queued so far, so the history's messages can be told apart.
    while s.outbox.round().await.map_err(DeskError::from)? > 0 {}
    let last_row = |rows: &[crate::store::OutboxRow]| rows.iter().map(|r| r.id).max().unwrap_or(0);
    let rows_before = last_row(
        &s.desk
            .store
            .outbox(None, 0)
            .await
            .map_err(DeskError::from)?,
    );
    let slack_before = s.slack.bot_messages().len();
    let discord_before = s.discord.sent().iter().filter(|m| !m.ephemeral).count();
    let opened = s.history(now).await?;
    while s.outbox.round().await.map_err(DeskError::from)? > 0 {}
    let rows_history = last_row(
        &s.desk
            .store
            .outbox(None, 0)
            .await
            .map_err(DeskError::from)?,
    );
    let slack_history = s.slack.bot_messages().len();
    let discord_history = s.discord.sent().iter().filter(|m| !m.ephemeral).count();
    s.say(&format!(
        "  {opened} earlier tickets opened, claimed, resolved and rated over 14 days, NPS answers and kudos: the same history every run"
    ))?;

    s.step(1, "A leader previews the weekly digest")?;
    s.slack_command("Alice", "UALICE", "CLEADS", "/digest preview weekly")
        .await?;

    s.step(
        1,
        "Alice posts it to #leads now instead of waiting for Monday 09:00",
    )?;
    s.slack_command("Alice", "UALICE", "CLEADS", "/digest now weekly")
        .await?;

    s.step(
        1,
        "The outbox worker delivers to Slack through the real Slack adapter",
    )?;
    while s.outbox.round().await.map_err(DeskError::from)? > 0 {}
    let posted = s.slack.bot_messages();
    s.say(&format!(
        "Slack received {} message(s) (the fake Slack's side; the {} for the loaded history are left out):",
        posted.len(),
        slack_history - slack_before
    ))?;
    let story = posted[..slack_before]
        .iter()
        .chain(&posted[slack_history..]);
    for m in story {
        let place = match &m.thread_ts {
            Some(t) => format!("#{} in the thread of {t}", m.channel),
            None => format!("#{}", m.channel),
        };
        let edited = if m.edits > 0 {
            format!(" [edited {}×]", m.edits)
        } else {
            String::new()
        };
        let first = m.text.lines().next().unwrap_or_default();
        s.say(&format!(
            "  {place}: {}{edited}",
            crate::core::message::truncate(first, 90)
        ))?;
    }
    // Private interaction answers are not channel posts.
    let dposted: Vec<_> = s
        .discord
        .sent()
        .into_iter()
        .filter(|m| !m.ephemeral)
        .collect();
    s.say(&format!(
        "Discord received {} message(s) through serenity (the fake Discord's side; the {} for the loaded history are left out):",
        dposted.len(),
        discord_history - discord_before
    ))?;
    let story = dposted[..discord_before]
        .iter()
        .chain(&dposted[discord_history..]);
    for m in story {
        let first = m
            .embeds
            .first()
            .and_then(|e| e["title"].as_str())
            .unwrap_or(&m.content)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let channel = s.discord.channel_name(&m.channel_id);
        let place = match &m.reply_to {
            Some(r) => format!("#{channel} replying to {r}"),
            None => format!("#{channel}"),
        };
        let edited = if m.edits > 0 {
            format!(" [edited {}×]", m.edits)
        } else {
            String::new()
        };
        let pings = FakeDiscord::pinged(m);
        let pings = if pings.is_empty() {
            "pings nobody".to_string()
        } else {
            format!("pings {}", pings.join(", "))
        };
        s.say(&format!(
            "  {place}: {}{edited} ({pings})",
            crate::core::message::truncate(&first, 80)
        ))?;
    }
    let rows = s
        .desk
        .store
        .outbox(None, 0)
        .await
        .map_err(DeskError::from)?;
    s.say(&format!(
        "\nOutbox: {} row(s), each sent once (the history's rows #{}-#{} are left out):",
        rows.len(),
        rows_before + 1,
        rows_history
    ))?;
    for r in rows
        .iter()
        .filter(|r| r.id <= rows_before || r.id > rows_history)
    {
        let what = r
            .outgoing
            .message
            .title
            .clone()
            .unwrap_or_else(|| r.outgoing.message.text.clone());
        s.say(&format!(
            "  #{:<3} {:<8} {:<12} {:<12} → {}: {}",
            r.id,
            r.status,
            format!("{:?}", r.outgoing.kind),
            r.outgoing
                .ticket
                .map_or("-".into(), |t: TicketRef| t.to_string()),
            r.outgoing.target,
            crate::core::message::truncate(&what.replace('\n', " "), 70)
        ))?;
    }
    if let Some(dir) = save_digest {
        s.save_digest(dir, &rows)?;
    }
    followups(&mut s).await?;
    knowledge(&mut s).await?;
    if let (Some(dir), Some(listener)) = (screenshots, web) {
        s.screenshots(dir, listener).await?;
    }
    s.socket.shutdown().await;
    if let Some(g) = s.gateway.take() {
        g.shutdown().await;
    }
    s.say("\nDemo finished. `switchboard check-config switchboard.example.toml` and the README show how to run it for real.")?;
    Ok(())
}

impl<W: Write> Script<'_, W> {
    /// Saves screenshots of the web view's three main pages into `dir`, signed in as Alice
    /// (an admin) through a link from chat, as a person would: the ticket list, T-1's
    /// transcript and the organisation's dashboard.
    async fn screenshots(
        &mut self,
        dir: &std::path::Path,
        listener: tokio::net::TcpListener,
    ) -> Result<(), DemoError> {
        use fantoccini::Locator;
        let base = format!("http://{}", listener.local_addr()?);
        let web = crate::web::WebState::of(&self.desk)
            .ok_or_else(|| DemoError::Browser("the web view is off".into()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::serve::serve(
            listener,
            crate::web::router(web),
            Default::default(),
            async {
                let _ = stopped.await;
            },
        ));
        std::fs::create_dir_all(dir)?;
        // Tall enough for a transcript's first entries below the ticket's facts and forms.
        let browser = crate::browser::Browser::start(1280, 1500)
            .await
            .map_err(|e| DemoError::Browser(e.to_string()))?;
        let fail = |e: fantoccini::error::CmdError| DemoError::Browser(e.to_string());
        let link = self.desk.web_link(&slack("UALICE"), None).await?;
        let path = link.trim_start_matches(&base);
        let c = browser.client();
        c.goto(&format!("{base}{path}")).await.map_err(fail)?;
        c.find(Locator::Id("continue"))
            .await
            .map_err(fail)?
            .click()
            .await
            .map_err(fail)?;
        c.wait()
            .for_element(Locator::Id("tickets"))
            .await
            .map_err(fail)?;
        let mut saved = Vec::new();
        for (name, page, ready) in [
            ("tickets.png", "/ui/tickets?status=any", "tickets"),
            ("ticket.png", "/ui/tickets/1", "timeline"),
            ("dashboard.png", "/ui/dashboard", "figures"),
        ] {
            c.goto(&format!("{base}{page}")).await.map_err(fail)?;
            c.wait()
                .for_element(Locator::Id(ready))
                .await
                .map_err(fail)?;
            let png = c.screenshot().await.map_err(fail)?;
            let file = dir.join(name);
            std::fs::write(&file, png)?;
            saved.push(file.display().to_string());
        }
        browser.stop().await;
        let _ = stop.send(());
        self.say(&format!(
            "\nWeb view: signed in as Alice through a link from `/ticket web`, saved {}.",
            saved.join(", ")
        ))?;
        Ok(())
    }
}

/// Billing asks T-4's customer a question; two days of silence bring one reminder in the
/// flagged message's thread, three more resolve it after no reply (`[followups]` in billing).
async fn followups<W: Write>(s: &mut Script<'_, W>) -> Result<(), DemoError> {
    s.step(
        1,
        "Bob asks T-4's customer for the invoice number and waits",
    )?;
    s.slack_command("Bob", "UBOB", "CBILLING", "/ticket status T-4 waiting")
        .await?;
    s.deliver().await?;
    let scheduler = crate::schedule::Scheduler::new(
        s.desk.clone(),
        crate::schedule::SchedulerSettings::default(),
    );
    let seen = s.slack.bot_messages().len();
    s.clock.advance(Duration::days(2));
    s.step(0, "Two days later, no answer: one reminder in the thread")?;
    let done = scheduler.followup_tick().await.map_err(DeskError::from)?;
    s.deliver().await?;
    let reminder = s.slack.bot_messages()[seen..]
        .iter()
        .find(|m| m.text.contains("T-4") && m.text.contains("waiting for your reply"))
        .cloned();
    if let Some(m) = reminder {
        s.say(&format!(
            "  #{} in the thread of {}: {}",
            m.channel,
            m.thread_ts.as_deref().unwrap_or("-"),
            unescape(&m.text).replace('\n', " ")
        ))?;
    }
    let others = done.iter().filter(|f| f.ticket != TicketRef(4)).count();
    if others > 0 {
        s.say(&format!(
            "  ({others} more follow-up(s) for the loaded history's billing tickets)"
        ))?;
    }
    s.clock.advance(Duration::days(3));
    s.step(
        0,
        "Three days after that, still silent: T-4 is resolved after no reply",
    )?;
    scheduler.followup_tick().await.map_err(DeskError::from)?;
    s.deliver().await?;
    let t = s.desk.ticket(TicketRef(4)).await?;
    s.say(&format!(
        "  T-4 is {} (no rating asked; digests count it as auto-resolved)",
        t.status.label()
    ))?;
    let events = s
        .desk
        .store
        .events(TicketRef(4))
        .await
        .map_err(DeskError::from)?;
    if let Some(e) = events.last() {
        s.say(&format!(
            "  its history ends: {} by {}",
            e.kind.describe(),
            e.actor.as_ref().map_or("Switchboard".to_string(), |a| s
                .desk
                .config
                .directory
                .display_name(a))
        ))?;
    }
    Ok(())
}

/// The demo's knowledge base (support's articles), written to a temporary folder.
const DEMO_ARTICLES: &[(&str, &str)] = &[
    (
        "password-reset.md",
        "---\ntitle: Resetting your password\ntags: [password, login]\ndepartments: [support]\nurl: https://help.example.com/password\n---\nIf you forgot your password or cannot sign in, choose **Forgot password** on the sign-in page; the link we email works for one hour.\n",
    ),
    (
        "two-factor.md",
        "---\ntitle: Two-factor codes not arriving\ntags: [2fa, login]\ndepartments: [support]\n---\nCodes come by SMS or from your authenticator app. If the SMS never arrives, check the phone number in your profile.\n",
    ),
    (
        "teammates.md",
        "---\ntitle: Adding a teammate\ntags: [team, invite]\ndepartments: [support]\n---\nAdmins invite teammates under Settings → Team; the invitation is valid for seven days.\n",
    ),
];

/// A customer's question in #help that the knowledge base answers: the thread confirmation
/// suggests the article, and the customer presses "This solved it".
async fn knowledge<W: Write>(s: &mut Script<'_, W>) -> Result<(), DemoError> {
    s.step(
        1,
        "Casey asks in #help how to get back in; Alice flags it, and the knowledge base answers",
    )?;
    let casey = UserRef::new(Platform::Slack, "UCUSTOMER1");
    s.flag(
        "Alice",
        &slack("UALICE"),
        "ticket",
        message(
            "slack:CHELP",
            "1772443500.000100",
            casey,
            "I forgot my password and cannot sign in",
        ),
    )
    .await?;
    s.deliver().await?;
    let confirmation = s
        .slack
        .bot_messages()
        .into_iter()
        .rev()
        .find(|m| m.thread_ts.as_deref() == Some("1772443500.000100"));
    let Some(c) = confirmation else {
        return Ok(());
    };
    s.say(&format!(
        "  #{} in the thread: {}",
        c.channel,
        unescape(&c.text).replace('\n', " ")
    ))?;
    let id = s
        .desk
        .store
        .ticket_by_source(
            &"slack:CHELP"
                .parse()
                .map_err(|_| DeskError::User("channel".into()))?,
            "1772443500.000100",
        )
        .await
        .map_err(DeskError::from)?
        .map(|t| t.id);
    let Some(id) = id else { return Ok(()) };
    if let Some(p) = s.slack.click(
        "UCUSTOMER1",
        &c.channel,
        &c.ts,
        &format!("kb-solved:{}:0", id.0),
    ) {
        s.say("  Casey presses \"1. This solved it\"")?;
        s.interact("Casey", p).await?;
    }
    let t = s.desk.ticket(id).await?;
    s.say(&format!(
        "  {} is {}: answered by the knowledge base, no one had to work it",
        t.id,
        t.status.label()
    ))?;
    Ok(())
}

/// Titles of earlier tickets, by department, for the history behind the digest.
const HISTORY: &[(&str, &[&str])] = &[
    (
        "billing",
        &[
            "Charged twice for the annual plan",
            "Invoice shows the wrong VAT number",
            "Refund not received after cancellation",
            "Card declined on renewal",
        ],
    ),
    (
        "support",
        &[
            "Cannot reset my password",
            "How do I add a teammate?",
            "Two-factor codes not arriving",
            "Where is the CSV export?",
        ],
    ),
    (
        "engineering",
        &[
            "Dashboard slow to load since Tuesday",
            "Webhook retries flood our endpoint",
            "Export fails with E502",
            "Search returns stale results",
        ],
    ),
];

impl<W: Write> Script<'_, W> {
    /// Writes the digest Alice posted as Slack received it: the chart (`digest-weekly.png`),
    /// the blocks (`digest-weekly.blocks.json`) and the whole text (`digest-weekly.txt`).
    fn save_digest(
        &mut self,
        dir: &std::path::Path,
        rows: &[crate::store::OutboxRow],
    ) -> Result<(), DemoError> {
        std::fs::create_dir_all(dir)?;
        let chart = self
            .slack
            .files()
            .into_iter()
            .rev()
            .find(|f| f.filename.starts_with("digest-"));
        let text = rows.iter().rev().find(|r| {
            r.outgoing.ticket.is_none()
                && r.outgoing
                    .message
                    .title
                    .as_deref()
                    .is_some_and(|t| t.starts_with("Digest"))
        });
        let posted = self
            .slack
            .bot_messages()
            .into_iter()
            .rev()
            .find(|m| m.channel == "CLEADS" && m.text.starts_with("Digest"));
        let (Some(chart), Some(text), Some(posted)) = (chart, text, posted) else {
            return Err(DemoError::Io(std::io::Error::other(
                "the demo posted no digest to save",
            )));
        };
        std::fs::write(dir.join("digest-weekly.png"), &chart.bytes)?;
        std::fs::write(
            dir.join("digest-weekly.txt"),
            text.outgoing.message.plain() + "\n",
        )?;
        let blocks = serde_json::to_string_pretty(&posted.blocks).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("digest-weekly.blocks.json"), blocks + "\n")?;
        self.say(&format!(
            "\nSaved the posted digest (chart, blocks, text) in {}",
            dir.display()
        ))?;
        Ok(())
    }

    /// Runs a command line that must succeed (a failure is a bug in the demo).
    async fn must(&self, actor: &Actor, command: &str, text: &str) -> Result<(), DemoError> {
        let inv = self
            .desk
            .commands
            .parse_text(command, text)
            .map_err(DeskError::from)?
            .ok_or_else(|| DeskError::User(format!("`/{command} {text}` asked for help")))?;
        crate::cmd::try_run(&self.desk, actor, None, &inv).await?;
        Ok(())
    }

    /// Loads two weeks of earlier tickets (opened, claimed, resolved, rated), NPS answers
    /// and kudos through the desk, as they would have happened, so the digest has a current
    /// and a previous week to compare. Deterministic: the same history every run. Returns
    /// how many tickets it opened.
    async fn history(&mut self, before: DateTime<Utc>) -> Result<usize, DemoError> {
        enum Act {
            Open {
                n: usize,
                dept: usize,
                title: &'static str,
                customer: usize,
            },
            Claim(usize),
            Resolve(usize),
            Rate(usize, u8),
            Nps(u8),
        }
        let mut rng = fastrand::Rng::with_seed(2026);
        let staff = |dept: usize| match dept {
            0 => slack("UBOB"),
            1 => slack("UALICE"),
            _ => discord("100000000000000004"),
        };
        let customers = ["UCUSTOMER1", "UCUSTOMER2"];
        let mut acts: Vec<(DateTime<Utc>, Act)> = Vec::new();
        let mut n = 0;
        for day in (1..=14).rev() {
            let morning = before - Duration::days(day) - Duration::hours(1);
            // Busier in the most recent week, so the digest shows a change.
            let count = if day <= 7 {
                rng.usize(4..=7)
            } else {
                rng.usize(2..=5)
            };
            for _ in 0..count {
                let dept = rng.usize(0..HISTORY.len());
                let titles = HISTORY[dept].1;
                let opened = morning + Duration::minutes(rng.i64(0..600));
                let customer = rng.usize(0..customers.len());
                acts.push((
                    opened,
                    Act::Open {
                        n,
                        dept,
                        title: titles[rng.usize(0..titles.len())],
                        customer,
                    },
                ));
                let claimed =
                    opened + Duration::minutes(rng.i64(3..if dept == 2 { 240 } else { 90 }));
                acts.push((claimed, Act::Claim(n)));
                // About one in six is still open at the end.
                if rng.u8(0..6) > 0 {
                    let resolved = claimed + Duration::minutes(rng.i64(15..2 * 24 * 60));
                    acts.push((resolved, Act::Resolve(n)));
                    if rng.u8(0..10) < 7 {
                        let score = [5, 5, 5, 4, 4, 4, 3, 2][rng.usize(0..8)];
                        acts.push((
                            resolved + Duration::minutes(rng.i64(5..300)),
                            Act::Rate(n, score),
                        ));
                    }
                }
                n += 1;
            }
            if day % 2 == 0 {
                let answer = [10, 9, 9, 8, 7, 10, 6, 3][rng.usize(0..8)];
                acts.push((morning + Duration::hours(3), Act::Nps(answer)));
            }
        }
        acts.retain(|(at, _)| *at < before);
        acts.sort_by_key(|(at, _)| *at);
        let mut ids: Vec<Option<TicketRef>> = vec![None; n];
        let mut customer_of = vec![0; n];
        let mut dept_of = vec![0; n];
        for (at, act) in acts {
            self.clock.set(at);
            match act {
                Act::Open {
                    n,
                    dept,
                    title,
                    customer,
                } => {
                    let who = slack(customers[customer]);
                    let overrides = TicketOverrides {
                        department: Some(HISTORY[dept].0.to_string()),
                        ..TicketOverrides::default()
                    };
                    let t = self
                        .desk
                        .open_from_command(&who, None, title, overrides)
                        .await?
                        .ticket;
                    ids[n] = Some(t.id);
                    customer_of[n] = customer;
                    dept_of[n] = dept;
                }
                Act::Claim(n) => {
                    if let Some(id) = ids[n] {
                        self.desk
                            .change(
                                &staff(dept_of[n]),
                                id,
                                Permission::Member,
                                "claim",
                                Change::Claim,
                            )
                            .await?;
                    }
                }
                Act::Resolve(n) => {
                    if let Some(id) = ids[n] {
                        let to = Change::SetStatus {
                            to: Status::Resolved,
                            reason: None,
                        };
                        self.desk
                            .change(&staff(dept_of[n]), id, Permission::Member, "resolve", to)
                            .await?;
                    }
                }
                Act::Rate(n, score) => {
                    if let Some(id) = ids[n] {
                        self.desk
                            .rate(&slack(customers[customer_of[n]]), id, score)
                            .await?;
                    }
                }
                Act::Nps(answer) => {
                    let line = format!("record nps {answer} note:\"in-app survey\"");
                    self.must(&slack("UALICE"), "metric", &line).await?;
                }
            }
        }
        self.clock.set(before - Duration::days(3));
        let billing = ids
            .iter()
            .zip(&dept_of)
            .find_map(|(id, d)| id.filter(|_| *d == 0))
            .map_or(String::new(), |t| format!(" {t}"));
        for (giver, line) in [
            (
                slack("UALICE"),
                format!(
                    "<@UBOB|bob> for calming down the customer with the double renewal{billing}"
                ),
            ),
            (
                discord("100000000000000004"),
                "<@UALICE|alice> for the clear write-up of the webhook flood".into(),
            ),
            (
                slack("UALICE"),
                "<@UBOB|bob> for clearing the refund backlog before the weekend".into(),
            ),
        ] {
            self.must(&giver, "kudos", &line).await?;
        }
        self.clock.set(before);
        Ok(n)
    }
}
