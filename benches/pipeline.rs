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
//! For each it prints ack p50/p99 (Slack), flag→alert p50/p99 (from sending the flag to the fake
//! receiving the department alert), alerts per second from the first flag sent to the last
//! alert received, and the bot process's CPU time per flag (utime + stime of the child from
//! `/proc/PID/stat`, so the fakes and this harness are not counted). Every alert must arrive.
//!
//! Settings: `BENCH_FLAGS` (default 200), `BENCH_LATENCY_MS` (100), `BENCH_SOURCES` (8),
//! `BENCH_DEPARTMENTS` (4). Run: `cargo bench --bench pipeline`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::discord::FakeDiscord;
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
}

/// utime + stime of a process, from `/proc/PID/stat` (clock ticks of 1/100 s).
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name and state.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
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
            .env("SWITCHBOARD_LOG", "warn")
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
        "[flagging]\nemojis = [\"ticket\", \"🎫\"]\nwho = \"members\"\n\n[routing]\nfallback = \"dept0\"\n\n",
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
    let cpu_before = cpu_of(bot.pid());
    let client = reqwest::Client::new();
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
                let now = chrono::Utc::now().timestamp().to_string();
                let sig = sign(&Secret::new(SIGNING_SECRET), &now, &body);
                let t0 = Instant::now();
                sent_at.lock().unwrap().insert(k, t0);
                let r = client
                    .post(format!("{base}/slack/events"))
                    .header("content-type", "application/json")
                    .header("x-slack-request-timestamp", now)
                    .header("x-slack-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
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
    let cpu = cpu_of(bot.pid()).saturating_sub(cpu_before);
    let mut acks = Vec::new();
    for s in senders {
        acks.extend(s.await.unwrap());
    }
    let sent_at = sent_at.lock().unwrap();
    let last = arrived.values().max().copied().unwrap_or(started);
    Figures {
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
    let cpu_before = cpu_of(bot.pid());
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
    let cpu = cpu_of(bot.pid()).saturating_sub(cpu_before);
    let last = arrived.values().max().copied().unwrap_or(started);
    Figures {
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
    };
    let f = slack(shape).await;
    print("Slack, HTTP mode (32 senders)", shape, f);
    let f = discord(shape).await;
    print("Discord, gateway (one burst)", shape, f);
}
