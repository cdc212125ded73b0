//! The whole pipeline as a user runs it: the release `switchboard` binary as a child process
//! (`switchboard run`, production settings, SQLite) against the loopback fake Slack and fake
//! Discord, which answer every Web API / REST call after `BENCH_LATENCY_MS` (as the real
//! platforms do from a cloud host). A burst of flags from `BENCH_SOURCES` source channels,
//! routed by channel to `BENCH_DEPARTMENTS` department channels:
//!
//! - **Slack, HTTP mode**: 32 senders POST signed `reaction_added` events to `/slack/events`;
//!   the ack is the HTTP 200 (sent after the inbox commit).
//! - **Discord, gateway**: the fake sends every MESSAGE_REACTION_ADD over the gateway at once.
//!
//! With `BENCH_LIMITS=1` (the default) the fakes enforce the platforms' published rate limits
//! (`sandbox::limits`: Slack's tiers and one post a second per channel with bursts of 3;
//! Discord's 5 messages per 5 s per channel and 50 requests a second); each flagged Slack
//! message reaches the bot first as a `message` event, as it does in a workspace, so a flag
//! needs no `conversations.replies`.
//!
//! For each it prints ack p50/p99 (Slack), flag→alert p50/p99 (from sending the flag to the fake
//! receiving the department alert), alerts per second from the first flag sent to the last
//! alert received, and the bot process's CPU time per flag (utime + stime of the child from
//! `/proc/PID/stat`, so the fakes and this harness are not counted). Every alert must arrive.
//! With limits on it also prints the least time the fakes' model allows for the alerts (the
//! busiest department channel's posts) and the ratio achieved, the 429 answers per bucket, and
//! (Slack) the `conversations.replies` calls.
//!
//! Settings: `BENCH_FLAGS` (default 200), `BENCH_LATENCY_MS` (100), `BENCH_SOURCES` (8),
//! `BENCH_DEPARTMENTS` (4), `BENCH_LIMITS` (1; 0 turns the fakes' limits off, for CPU figures),
//! `BENCH_ONLY` (`slack` or `discord`: one platform), `BENCH_LOG` (the bot's log filter, default
//! `warn`; its log goes to stderr), `BENCH_BIN` (another `switchboard` binary to run, e.g. one
//! built from main before a change, to compare both in one session).
//! Run: `cargo bench --bench pipeline`.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::discord::FakeDiscord;
use sandbox::limits::{DiscordLimits, SlackLimits};
use sandbox::slack::{FakeSlack, BOT_USER};
use serde_json::json;
use switchboard::chat::slack::events::sign;
use switchboard::config::Secret;

// Shared with the latency benchmarks; this one needs only the percentiles.
#[allow(dead_code)]
#[path = "support/mod.rs"]
mod support;
use support::percentile;

const SLACK_TOKEN: &str = "xoxb-pipeline";
const SIGNING_SECRET: &str = "pipeline-signing-secret";
const DISCORD_TOKEN: &str = "pipeline-discord-token";
const SENDERS: usize = 32;
/// The person who flags, a member of every department.
const SLACK_FLAGGER: &str = "UFLAGGER";
const DISCORD_FLAGGER: &str = "1002";

/// The run's shape, from the environment.
#[derive(Debug, Clone, Copy)]
struct Shape {
    flags: usize,
    latency: Duration,
    sources: usize,
    departments: usize,
    limits: bool,
}

impl Shape {
    /// How many alerts each department channel receives (flag `k` comes from source
    /// `k % sources`, routed to department `source % departments`).
    fn alerts_per_department(&self) -> Vec<usize> {
        let mut n = vec![0; self.departments];
        for k in 0..self.flags {
            n[(k % self.sources) % self.departments] += 1;
        }
        n
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One platform's figures.
struct Figures {
    acks: Vec<Duration>,
    flag_to_alert: Vec<Duration>,
    span: Duration,
    cpu: Duration,
    /// The least time the fakes' limits allow for the alerts, when they are on.
    lower_bound: Option<Duration>,
    /// 429 answers by bucket.
    refused: BTreeMap<String, u32>,
    /// `conversations.replies` calls (Slack).
    fetches: Option<u32>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print(label: &str, shape: Shape, mut f: Figures) {
    f.acks.sort();
    f.flag_to_alert.sort();
    println!(
        "{label}: {} flags, {} ms latency, {} sources → {} departments",
        shape.flags,
        shape.latency.as_millis(),
        shape.sources,
        shape.departments
    );
    if !f.acks.is_empty() {
        println!(
            "  ack            p50 {:>8.1} ms   p99 {:>8.1} ms",
            ms(percentile(&f.acks, 50)),
            ms(percentile(&f.acks, 99))
        );
    }
    println!(
        "  flag → alert   p50 {:>8.1} ms   p99 {:>8.1} ms",
        ms(percentile(&f.flag_to_alert, 50)),
        ms(percentile(&f.flag_to_alert, 99))
    );
    println!(
        "  alerts/s {:>8.1}  (first flag sent → last alert received: {:.2} s)",
        shape.flags as f64 / f.span.as_secs_f64(),
        f.span.as_secs_f64()
    );
    println!(
        "  CPU of the bot process: {:.3} ms per flag ({:.0} ms in all)",
        ms(f.cpu) / shape.flags as f64,
        ms(f.cpu)
    );
    if let Some(bound) = f.lower_bound {
        println!(
            "  limits on: the model allows the alerts in {:.2} s at best; achieved {:.2} s = {:.2}× that",
            bound.as_secs_f64(),
            f.span.as_secs_f64(),
            f.span.as_secs_f64() / bound.as_secs_f64().max(0.001)
        );
    }
    let total: u32 = f.refused.values().sum();
    let worst = f.refused.iter().max_by_key(|(_, n)| **n);
    match worst {
        None => println!("  429 answers: none"),
        Some((bucket, n)) => println!(
            "  429 answers: {total} over {} bucket(s); at most {n} in one ({bucket})",
            f.refused.len()
        ),
    }
    if let Some(n) = f.fetches {
        println!("  conversations.replies calls: {n}");
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bot as a child process; killed when dropped.
struct Bot {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bot {
    async fn start(config: &str, env: &[(&str, String)]) -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config).unwrap();
        let port = free_port();
        // `BENCH_BIN` runs another build (e.g. main before a change) through the same harness.
        let bin = std::env::var("BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchboard").to_string());
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&path)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "SWITCHBOARD_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("bot.db").display()),
            )
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "SWITCHBOARD_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the switchboard binary starts");
        let bot = Bot {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", bot.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the bot never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bot
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Departments `dept0…` and one routing rule per source channel, sending source `i` to
/// department `i % departments`; `channel(kind, i)` names a channel on the platform.
fn config(shape: Shape, channel: impl Fn(&str, usize) -> String, member: &str) -> String {
    let mut out = String::from(
        "[flagging]\nemojis = [\"ticket\", \"🎫\"]\nwho = \"members\"\n# One person flags every message; the per-person flag limit would refuse most.\nlimit = 0\n\n[routing]\nfallback = \"dept0\"\n\n",
    );
    for d in 0..shape.departments {
        out.push_str(&format!(
            "[[departments]]\nname = \"dept{d}\"\nchannels = [\"{}\"]\nmembers = [\"{member}\"]\n\n",
            channel("dept", d)
        ));
    }
    for s in 0..shape.sources {
        out.push_str(&format!(
            "[[routing.rules]]\nname = \"from-source-{s}\"\nchannels = [\"{}\"]\ndepartment = \"dept{}\"\n\n",
            channel("source", s),
            s % shape.departments
        ));
    }
    out
}

/// The flag number a department alert is about (its text names "item N").
fn flag_of(text: &str) -> Option<usize> {
    let i = text.find("item ")? + "item ".len();
    let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// When each flag's department alert reached the fake: polls `since(from)` (the messages
/// posted from index `from`, as channel and text, and the next index) every 2 ms until every
/// one of `flags` alerts was seen in `channels` (ten minutes at most).
async fn arrivals(
    flags: usize,
    channels: &[String],
    mut since: impl FnMut(usize) -> (Vec<(String, String)>, usize),
) -> HashMap<usize, Instant> {
    let mut arrived: HashMap<usize, Instant> = HashMap::new();
    let mut from = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrived.len() < flags {
        let (new, next) = since(from);
        let now = Instant::now();
        from = next;
        for (channel, text) in new {
            if channels.contains(&channel) {
                if let Some(k) = flag_of(&text) {
                    arrived.entry(k).or_insert(now);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {flags} alerts arrived",
            arrived.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    arrived
}

/// POSTs `body` to the bot's `/slack/events`, signed as Slack signs it.
async fn post_signed(client: &reqwest::Client, base: &str, body: Vec<u8>) -> reqwest::Response {
    let now = chrono::Utc::now().timestamp().to_string();
    let sig = sign(&Secret::new(SIGNING_SECRET), &now, &body);
    client
        .post(format!("{base}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", now)
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// [`post_signed`] for a JSON event.
async fn signed_event(
    client: &reqwest::Client,
    base: &str,
    event: &serde_json::Value,
) -> reqwest::Response {
    post_signed(client, base, serde_json::to_vec(event).unwrap()).await
}

async fn slack(shape: Shape) -> Figures {
    let fake = FakeSlack::start(SLACK_TOKEN).await.unwrap();
    fake.add_user(SLACK_FLAGGER, "Flagger");
    fake.add_user("UCUSTOMER", "Customer");
    let source = |i: usize| format!("CSRC{i}");
    let dept = |i: usize| format!("CDEPT{i}");
    for s in 0..shape.sources {
        fake.add_channel(&source(s), &format!("source-{s}"), true);
    }
    for d in 0..shape.departments {
        fake.add_channel(&dept(d), &format!("dept-{d}"), true);
    }
    let ts = |k: usize| format!("1772440000.{k:06}");
    for k in 0..shape.flags {
        fake.seed_message(
            &source(k % shape.sources),
            &ts(k),
            "UCUSTOMER",
            &format!("Please help with item {k}: it broke"),
            None,
        );
    }
    fake.set_latency(shape.latency);
    if shape.limits {
        fake.set_limits(Some(SlackLimits::default()));
    }
    let config = config(
        shape,
        |kind, i| match kind {
            "dept" => format!("slack:{}", dept(i)),
            _ => format!("slack:{}", source(i)),
        },
        &format!("slack:{SLACK_FLAGGER}"),
    );
    let bot = Bot::start(
        &config,
        &[
            ("SLACK_BOT_TOKEN", SLACK_TOKEN.into()),
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET.into()),
            ("SWITCHBOARD_SLACK_API_URL", fake.api_url.clone()),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    // The customers' messages reach the bot as `message` events before anyone flags them.
    for k in 0..shape.flags {
        let event = json!({
            "token": "pipeline", "team_id": "T0SANDBOX", "api_app_id": "A0PIPE",
            "type": "event_callback", "event_id": format!("EvMsg{k}"),
            "event_time": 1_772_441_000, "authed_users": [BOT_USER],
            "event": {"type": "message", "channel": source(k % shape.sources), "channel_type": "channel",
                      "user": "UCUSTOMER", "text": format!("Please help with item {k}: it broke"),
                      "ts": ts(k), "event_ts": ts(k)}
        });
        let r = signed_event(&client, &bot.base, &event).await;
        assert_eq!(r.status(), 200, "every message event is acknowledged");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetches_before = fake
        .calls_by_method()
        .get("conversations.replies")
        .copied()
        .unwrap_or(0);
    let cpu_before = support::cpu_of(bot.pid());
    let started = Instant::now();
    let sent_at: Arc<std::sync::Mutex<HashMap<usize, Instant>>> = Arc::default();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (client, base, sent_at) = (client.clone(), bot.base.clone(), sent_at.clone());
        let shape_sources = shape.sources;
        let flags = shape.flags;
        senders.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for k in (s..flags).step_by(SENDERS) {
                let body = serde_json::to_vec(&json!({
                    "token": "pipeline", "team_id": "T0SANDBOX", "api_app_id": "A0PIPE",
                    "type": "event_callback", "event_id": format!("EvPipe{k}"),
                    "event_time": 1_772_442_000, "authed_users": [BOT_USER],
                    "event": {"type": "reaction_added", "user": SLACK_FLAGGER, "reaction": "ticket",
                              "item_user": "UCUSTOMER",
                              "item": {"type": "message", "channel": format!("CSRC{}", k % shape_sources),
                                       "ts": format!("1772440000.{k:06}")},
                              "event_ts": "1772442000.000100"}
                }))
                .unwrap();
                let t0 = Instant::now();
                sent_at.lock().unwrap().insert(k, t0);
                let r = post_signed(&client, &base, body).await;
                acks.push(t0.elapsed());
                assert_eq!(r.status(), 200, "every flag is acknowledged");
            }
            acks
        }));
    }
    // Watch the department channels while the flags go out.
    let dept_channels: Vec<String> = (0..shape.departments).map(dept).collect();
    let arrived = arrivals(shape.flags, &dept_channels, |from| {
        let (new, next) = fake.bot_messages_since(from);
        let texts = new
            .into_iter()
            .map(|m| {
                (
                    m.channel,
                    format!("{} {}", m.text, m.blocks.unwrap_or_default()),
                )
            })
            .collect();
        (texts, next)
    })
    .await;
    let cpu = support::cpu_of(bot.pid()).saturating_sub(cpu_before);
    let mut acks = Vec::new();
    for s in senders {
        acks.extend(s.await.unwrap());
    }
    let sent_at = sent_at.lock().unwrap();
    let last = arrived.values().max().copied().unwrap_or(started);
    let fetches = fake
        .calls_by_method()
        .get("conversations.replies")
        .copied()
        .unwrap_or(0);
    Figures {
        lower_bound: shape
            .limits
            .then(|| SlackLimits::default().lower_bound_for_posts(&shape.alerts_per_department())),
        refused: fake.rate_limited(),
        fetches: Some(fetches - fetches_before),
        acks,
        flag_to_alert: arrived
            .iter()
            .map(|(k, at)| at.saturating_duration_since(sent_at[k]))
            .collect(),
        span: last.saturating_duration_since(started),
        cpu,
    }
}

async fn discord(shape: Shape) -> Figures {
    let fake = FakeDiscord::start(DISCORD_TOKEN).await.unwrap();
    fake.add_member(DISCORD_FLAGGER, "Flagger", &[]);
    fake.add_member("1099", "Customer", &[]);
    let source = |i: usize| format!("{}", 3000 + i);
    let dept = |i: usize| format!("{}", 2000 + i);
    for s in 0..shape.sources {
        fake.add_channel(&source(s), &format!("source-{s}"));
    }
    for d in 0..shape.departments {
        fake.add_channel(&dept(d), &format!("dept-{d}"));
    }
    let messages: Vec<(String, String)> = (0..shape.flags)
        .map(|k| {
            let channel = source(k % shape.sources);
            let id = fake.say(
                &channel,
                "1099",
                &format!("Please help with item {k}: it broke"),
            );
            (channel, id)
        })
        .collect();
    fake.set_latency(shape.latency);
    if shape.limits {
        fake.set_limits(Some(DiscordLimits::default()));
    }
    let config = config(
        shape,
        |kind, i| match kind {
            "dept" => format!("discord:{}", dept(i)),
            _ => format!("discord:{}", source(i)),
        },
        &format!("discord:{DISCORD_FLAGGER}"),
    );
    let bot = Bot::start(
        &config,
        &[
            ("DISCORD_BOT_TOKEN", DISCORD_TOKEN.into()),
            ("SWITCHBOARD_DISCORD_API_URL", fake.base_url.clone()),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.live_sessions() == 0 {
        assert!(
            Instant::now() < deadline,
            "the bot never joined the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let start-up work (command registration, channel checks) finish before measuring.
    tokio::time::sleep(Duration::from_millis(500) + shape.latency * 4).await;
    let cpu_before = support::cpu_of(bot.pid());
    let started = Instant::now();
    let mut sent_at = HashMap::new();
    for (k, (channel, id)) in messages.iter().enumerate() {
        sent_at.insert(k, Instant::now());
        fake.react(channel, id, DISCORD_FLAGGER, "🎫");
    }
    let dept_channels: Vec<String> = (0..shape.departments).map(dept).collect();
    let arrived = arrivals(shape.flags, &dept_channels, |from| {
        let (new, next) = fake.sent_since(from);
        let texts = new
            .into_iter()
            .map(|m| {
                let text = format!("{} {}", m.content, serde_json::Value::from(m.embeds));
                (m.channel_id, text)
            })
            .collect();
        (texts, next)
    })
    .await;
    let cpu = support::cpu_of(bot.pid()).saturating_sub(cpu_before);
    let last = arrived.values().max().copied().unwrap_or(started);
    Figures {
        lower_bound: shape.limits.then(|| {
            DiscordLimits::default().lower_bound_for_posts(&shape.alerts_per_department())
        }),
        refused: fake.rate_limited(),
        fetches: None,
        acks: vec![],
        flag_to_alert: arrived
            .iter()
            .map(|(k, at)| at.saturating_duration_since(sent_at[k]))
            .collect(),
        span: last.saturating_duration_since(started),
        cpu,
    }
}

#[tokio::main]
async fn main() {
    let shape = Shape {
        flags: env_usize("BENCH_FLAGS", 200),
        latency: Duration::from_millis(env_usize("BENCH_LATENCY_MS", 100) as u64),
        sources: env_usize("BENCH_SOURCES", 8).max(1),
        departments: env_usize("BENCH_DEPARTMENTS", 4).max(1),
        limits: env_usize("BENCH_LIMITS", 1) != 0,
    };
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "discord" {
        let f = slack(shape).await;
        print("Slack, HTTP mode (32 senders)", shape, f);
    }
    if only != "slack" {
        let f = discord(shape).await;
        print("Discord, gateway (one burst)", shape, f);
    }
}
