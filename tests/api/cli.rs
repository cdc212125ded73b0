//! The `switchboard` binary as an admin uses it: check-config, commands export, demo,
//! migrate, tickets and backup.

use std::process::{Command, Output};

use crate::helpers::*;

fn switchboard(args: &[&str], db_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .env("SWITCHBOARD_LOG", "warn");
    match db_url {
        Some(u) => cmd.env("SWITCHBOARD_DATABASE_URL", u),
        None => cmd.env_remove("SWITCHBOARD_DATABASE_URL"),
    };
    cmd.output().expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_lists_every_problem_with_its_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        r#"
[database]
url = "mysql://x"
[[departments]]
name = "billing"
channels = ["C123"]
[routing]
fallback = "nowhere"
[[digests]]
name = "weekly"
cron = "0 9 * *"
targets = ["slack:C1"]
"#,
    )
    .unwrap();
    let out = switchboard(&["check-config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("4 problem(s)"), "{err}");
    for key in [
        "database.url:",
        "departments[0].channels[0]:",
        "routing.fallback:",
        "digests[0].cron:",
    ] {
        assert!(err.contains(key), "missing {key} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_config_refuses_a_token_over_plain_http_and_warns_when_it_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.toml");
    let config = |allow: &str| {
        format!(
            "[discord]\napi_url = \"http://10.1.2.3:8080\"\n{allow}\n\
             [[departments]]\nname = \"it\"\nchannels = [\"discord:1\"]\n"
        )
    };
    std::fs::write(&file, config("")).unwrap();
    let out = switchboard(&["check-config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("discord.api_url:") && err.contains("allow_insecure_api_url = true"),
        "{err}"
    );
    std::fs::write(&file, config("allow_insecure_api_url = true")).unwrap();
    let out = switchboard(&["check-config", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("warning: discord.api_url"), "{err}");
}

/// A server answering every request with `status`, on a thread.
fn answering(status: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    format!("http://{addr}/healthz")
}

#[test]
fn healthcheck_exits_0_only_when_healthz_answers_2xx() {
    let up = answering("200 OK");
    let out = switchboard(&["healthcheck", "--url", &up], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("healthy"));
    let sick = answering("503 Service Unavailable");
    let out = switchboard(&["healthcheck", "--url", &sick], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("503"), "{}", text(&out.stderr));
    // Nothing listening: a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = switchboard(
        &["healthcheck", "--url", &format!("http://{closed}/healthz")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    // Without --url: the configured listen address, loopback for 0.0.0.0.
    let port = up.rsplit(':').next().unwrap().trim_end_matches("/healthz");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"0.0.0.0:{port}\"\n[[departments]]\nname = \"it\"\nchannels = [\"slack:C1\"]\n"
        ),
    )
    .unwrap();
    let out = switchboard(&["--config", file.to_str().unwrap(), "healthcheck"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("127.0.0.1:{port}")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/switchboard.example.toml");
    let out = switchboard(&["check-config", example], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout)
        .contains("config is valid: 2 department(s), 3 rule(s), 1 digest(s), 2 person(s)"));
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = switchboard(&["check-config", "/nonexistent/switchboard.toml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/switchboard.toml"));
}

#[test]
fn commands_export_prints_both_formats() {
    let out = switchboard(&["commands", "export", "--format", "discord"], None);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 7);
    let out = switchboard(&["commands", "export", "--format", "slack-manifest"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["features"]["slash_commands"].as_array().unwrap().len(), 6);
    assert_eq!(v["settings"]["socket_mode_enabled"], true);
    let out = switchboard(
        &[
            "commands",
            "export",
            "--format",
            "slack-manifest",
            "--mode",
            "http",
            "--url",
            "https://desk.example.com",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["settings"]["interactivity"]["request_url"],
        "https://desk.example.com/slack/interactivity"
    );
    let out = switchboard(
        &[
            "commands",
            "export",
            "--format",
            "slack-manifest",
            "--mode",
            "http",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url https://"));
    let out = switchboard(&["commands", "export", "--format", "teams"], None);
    assert!(!out.status.success());
}

#[cfg(feature = "demo")]
#[test]
fn the_demo_runs_without_tokens_or_config_and_tells_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("demo")
        .current_dir(dir.path())
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("DISCORD_BOT_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    for want in [
        "✔ T-1 opened",
        "✔ T-1 opened from Slack (text and permalink fetched from Slack)",
        "rule `refunds` matched (text mentions \"charged twice\") → department billing",
        "Slack received 89 message(s)",
        "the 81 for the loaded history are left out",
        "#CHELP in the thread of 1772442000.000100: Thanks! This is now ticket T-1 with billing",
        "[edited 3×]",
        "Rule #1 `outages` matched (flag emoji is 🚨)",
        "already T-1",
        "✘ refused",
        "Opened T-3 for support (the fallback)",
        "a form opens, prefilled by the rules: title \"Our invoice PDF shows the wrong VAT number\", department billing, priority high, tags \"money\"",
        "the form shows under title: Give the ticket a title.",
        "T-4 opened from the form: \"Wrong VAT number on invoice PDF\" for billing (high, tags money, vat)",
        "→ Bob (only they see): T-1 is now in progress.",
        "You need to be a member of billing to claim T-4",
        "is not a status",
        "Usage: `/ticket status <ticket> <status>`",
        "You need to be a member of engineering to claim T-2",
        "T-1 is now resolved.",
        "Casey's DM from Switchboard: How did we do with T-1?",
        "→ Casey (replaces the message): Thanks! You rated T-1 5/5 (great).",
        "CSAT for T-1 stored once: 5/5, \"Refunded within the hour, thank you!\"",
        "#DCUSTOMER1: Thanks! You rated T-1 5/5 (great). [edited 2×]",
        "(channel sees, answered in",
        "thanked Bob (billing)",
        "Kudos are for thanking someone else",
        "thanked Bob (billing): sorting out the double charge in 25 minutes (T-1)",
        "That's a bot, and kudos are for people",
        "59 earlier tickets opened, claimed, resolved and rated over 14 days",
        "Digest `weekly` is on its way to 1 channel(s)",
        "#CLEADS: Digest `weekly`",
        "✔ T-2 opened from Discord (text, author roles and jump link fetched from Discord)",
        "Discord received 45 message(s) through serenity",
        "#eng-alerts: T-2 Export keeps failing with E502 since this morning @\u{200B}everyone (pings nobody)",
        "#bugs replying to ",
        "Outbox: 274 row(s), each sent once",
        "#CHELP in the thread of 1772442900.000100: <@UCUSTOMER2> T-4 \"Wrong VAT number on invoice PDF\" is waiting for your reply",
        "T-4 is resolved (no rating asked; digests count it as auto-resolved)",
        "(resolved after no reply) by followups (automation)",
        "While you wait, one of these may already answer it: 1. Resetting your password <https://help.example.com/password> [1. This solved it] [Not what I need]",
        "Glad it helped: T-64 is resolved, answered by the knowledge base.",
        "In the thread of the flagged message: Bob (billing), from the saved reply double-charge: Hi Casey, sorry about the double charge on T-1",
    ] {
        assert!(t.contains(want), "demo transcript lacks `{want}`:\n{t}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "the demo leaves no files behind"
    );
    assert!(
        !t.contains(" pending "),
        "every outbox row is delivered:\n{t}"
    );
    assert!(
        !text(&out.stderr).contains("WARN") && !t.contains("WARN"),
        "a clean run logs no warnings: {}",
        text(&out.stderr)
    );
}

/// `demo --save-digest DIR` writes the digest it posted: the chart as Slack received it, the
/// blocks and the whole text, each within the platform's limits.
#[cfg(feature = "demo")]
#[test]
fn the_demo_saves_the_digest_it_posted() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["demo", "--save-digest"])
        .arg(dir.path().join("out"))
        .current_dir(dir.path())
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saved = dir.path().join("out");
    let png = image::load_from_memory(&std::fs::read(saved.join("digest-weekly.png")).unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(png.dimensions(), (1200, 600));
    let txt = std::fs::read_to_string(saved.join("digest-weekly.txt")).unwrap();
    for want in [
        "*billing*",
        "*Earned this period*",
        "*Shout-outs*",
        "Most thanked: Bob (billing) (3)",
        "(T-1)",
    ] {
        assert!(txt.contains(want), "lacks `{want}`:\n{txt}");
    }
    let blocks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(saved.join("digest-weekly.blocks.json")).unwrap(),
    )
    .unwrap();
    let blocks = blocks.as_array().unwrap();
    assert!(blocks.len() <= 50, "{}", blocks.len());
    assert!(blocks.iter().any(|b| b["type"] == "divider"));
}

/// A lean build (`--no-default-features`) has no demo, and says so instead of failing oddly.
#[cfg(not(feature = "demo"))]
#[test]
fn a_lean_build_says_it_has_no_demo() {
    let out = switchboard(&["demo"], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("without the `demo` feature") && err.contains("cargo run --locked -- demo"),
        "{err}"
    );
    let help = text(&switchboard(&["--help"], None).stdout);
    assert!(!help.contains("demo"), "{help}");
}

#[tokio::test]
async fn migrate_tickets_and_backup_work_on_the_bots_database() {
    let app = spawn_app().await;
    app.ok(
        &slack("UC"),
        "/ticket new =HYPERLINK(\"http://evil\") refund",
    )
    .await;
    app.ok(&slack("UC"), "/ticket new printer department:it")
        .await;
    app.ok(&bob(), "/ticket claim T-1").await;
    let url = app.url.clone();

    let out = switchboard(&["migrate"], Some(&url));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = switchboard(&["tickets", "list"], Some(&url));
    let t = text(&out.stdout);
    assert!(t.contains("T-2") && t.contains("T-1"), "{t}");
    let out = switchboard(&["tickets", "list", "--status", "in_progress"], Some(&url));
    let t = text(&out.stdout);
    assert!(t.contains("T-1") && !t.contains("T-2"), "{t}");

    let out = switchboard(&["tickets", "list", "--search", "Printers"], Some(&url));
    let t = text(&out.stdout);
    assert!(t.contains("T-2") && !t.contains("T-1"), "{t}");

    let out = switchboard(&["tickets", "show", "T-1"], Some(&url));
    let t = text(&out.stdout);
    assert!(
        t.contains("status:     in progress") && t.contains("status open → in progress"),
        "{t}"
    );
    // The replies in its thread, in order; a deleted one marked, a terminal escape shown escaped.
    let store = &app.desk.store;
    let reply = |id: &str, text: &str, at: &str| switchboard::core::ticket::ThreadReply {
        ticket: switchboard::core::types::TicketRef(1),
        channel: "slack:CHELP".parse().unwrap(),
        message_id: id.into(),
        author: "slack:UC".parse().unwrap(),
        text: text.into(),
        at: chrono::DateTime::parse_from_rfc3339(at).unwrap().into(),
        edited_at: None,
        deleted_at: None,
    };
    store
        .add_thread_reply(&reply(
            "1.1",
            "still broken\u{1b}[2J",
            "2026-03-02T10:00:00Z",
        ))
        .await
        .unwrap();
    store
        .add_thread_reply(&reply("1.2", "oops, wrong ticket", "2026-03-02T10:05:00Z"))
        .await
        .unwrap();
    store
        .change_thread_reply(
            &"slack:CHELP".parse().unwrap(),
            "1.2",
            None,
            chrono::DateTime::parse_from_rfc3339("2026-03-02T10:06:00Z")
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let out = switchboard(&["tickets", "show", "T-1"], Some(&url));
    let t = text(&out.stdout);
    assert!(
        t.contains(
            "  replies:\n    2026-03-02T10:00:00+00:00 slack:UC in slack:CHELP:\n      still broken\\u{1b}[2J\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("slack:UC in slack:CHELP [deleted 2026-03-02T10:06:00+00:00]:\n      oops, wrong ticket"),
        "{t}"
    );
    let out = switchboard(&["tickets", "show", "T-9"], Some(&url));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("there is no ticket T-9"));

    let out = switchboard(&["tickets", "export", "--format", "csv"], Some(&url));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("ref,title,status"));
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("T-1,\"'=HYPERLINK"),
        "formulas are defused: {first}"
    );

    let out = switchboard(&["tickets", "export", "--format", "json"], Some(&url));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["ref"], "T-1");
    // Opened, the knowledge base's suggestions (none passed), and the change.
    assert_eq!(v[0]["events"].as_array().unwrap().len(), 4);

    let backup = app.dir.path().join("copy.db");
    let out = switchboard(&["backup", backup.to_str().unwrap()], Some(&url));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = switchboard(
        &["tickets", "list"],
        Some(&format!("sqlite://{}", backup.display())),
    );
    assert!(text(&out.stdout).contains("T-2"));
}

#[test]
fn the_readme_documents_every_command_and_environment_variable() {
    let readme = include_str!("../../README.md");
    let set = switchboard::core::command::CommandSet::builtin().unwrap();
    for spec in set.slash_commands() {
        for sub in &spec.subcommands {
            let name = format!("/{} {}", spec.name, sub.name);
            assert!(readme.contains(&name), "README lacks {name}");
        }
    }
    for (var, key) in switchboard::config::ENV_OVERRIDES {
        assert!(
            readme.contains(var) && readme.contains(key),
            "README lacks {var} / {key}"
        );
    }
    for var in switchboard::config::SECRET_VARS
        .iter()
        .chain(&["SWITCHBOARD_CONFIG", "SWITCHBOARD_LOG"])
    {
        assert!(readme.contains(var), "README lacks {var}");
    }
    for cmd in [
        "switchboard run",
        "switchboard demo",
        "switchboard migrate",
        "switchboard check-config",
        "switchboard backup",
        "tickets export",
        "switchboard outbox list",
        "switchboard outbox retry",
    ] {
        assert!(readme.contains(cmd), "README lacks {cmd}");
    }
}

#[tokio::test]
async fn run_serves_health_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, TEST_CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env(
            "SWITCHBOARD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bot.db").display()),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG", "info")
        .env("SLACK_SIGNING_SECRET", "signing-secret-never-logged")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = loop {
        let line = lines.next().expect("log line before exit").unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let body = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok\n");
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(
        log.contains("SIGTERM received") && log.contains("switchboard stopped"),
        "{log}"
    );
    assert!(
        !log.contains("never-logged"),
        "a token reached the log:\n{log}"
    );
}

#[tokio::test]
async fn outbox_list_shows_dead_letters_and_retry_requeues_them() {
    let app = spawn_app().await;
    app.ok(&slack("UC"), "/ticket new printer department:support")
        .await;
    let now = app.desk.now();
    let rows = app
        .desk
        .store
        .outbox_claim(
            "cli-test",
            &[switchboard::core::types::Platform::Slack],
            now,
            chrono::Duration::seconds(60),
            10,
        )
        .await
        .unwrap();
    app.desk
        .store
        .outbox_dead(
            rows[0].id,
            "cli-test",
            "permanent failure: not_in_channel",
            now,
        )
        .await
        .unwrap();
    let url = app.url.clone();
    let out = switchboard(&["outbox", "list", "--failed"], Some(&url));
    let t = text(&out.stdout);
    assert!(
        t.contains("failed") && t.contains("slack:CSUPPORT") && t.contains("not_in_channel"),
        "{t}"
    );
    let out = switchboard(&["outbox", "retry"], Some(&url));
    assert!(
        text(&out.stdout).contains("1 message(s) re-queued"),
        "{}",
        text(&out.stdout)
    );
    let out = switchboard(&["outbox", "list", "--failed"], Some(&url));
    assert!(text(&out.stdout).contains("no outbox rows match"));
    let out = switchboard(&["outbox", "list", "--pending"], Some(&url));
    assert!(text(&out.stdout).contains("slack:CSUPPORT"));
}

#[test]
fn run_refuses_to_start_when_slack_cannot_be_reached_and_never_prints_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, TEST_CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env(
            "SWITCHBOARD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bot.db").display()),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_SLACK_API_URL", "http://127.0.0.1:9/api")
        .env("SLACK_BOT_TOKEN", "xoxb-secret-never-logged")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("Slack: SLACK_BOT_TOKEN was not accepted by http://127.0.0.1:9/api"),
        "{err}"
    );
    assert!(
        !err.contains("xoxb-secret"),
        "the token reached the output:\n{err}"
    );
}

#[tokio::test]
async fn prune_lists_what_it_would_remove_then_removes_exactly_that() {
    let app = spawn_app().await;
    let store = &app.desk.store;
    // Events handled on the test clock's day, months before the real now this command uses,
    // and one still waiting.
    let at = app.desk.now();
    inbox_rows(&app, "done", 2, switchboard::store::InboxOutcome::Done).await;
    store
        .inbox_insert("waiting", None, "slack", &serde_json::json!({}), at)
        .await
        .unwrap();
    let url = app.url.clone();
    let out = switchboard(&["prune", "--dry-run"], Some(&url));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dry = text(&out.stdout);
    let line = |t: &str, what: &str| {
        t.lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line in {t}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(line(&dry, "inbox_done"), "2", "{dry}");
    assert!(dry.contains("dry run: nothing was removed"), "{dry}");
    let out = switchboard(&["prune"], Some(&url));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done = text(&out.stdout);
    assert_eq!(line(&done, "inbox_done"), "2", "{done}");
    // The row still being handled stays, and is the oldest kept.
    assert_eq!(store.inbox(None, 0).await.unwrap().len(), 1);
    assert!(
        line_has(&done, "inbox_done", &switchboard::store::ts(at)),
        "{done}"
    );
    let out = switchboard(&["prune", "--dry-run"], Some(&url));
    assert_eq!(line(&text(&out.stdout), "inbox_done"), "0");
    // Failed rows only by hand, and only with --failed.
    let out = switchboard(&["outbox", "purge", "--older-than", "90d"], Some(&url));
    assert!(!out.status.success(), "--failed is required");
    let out = switchboard(
        &["inbox", "purge", "--failed", "--older-than", "soon"],
        Some(&url),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--older-than `soon`"),
        "{}",
        text(&out.stderr)
    );
}

fn line_has(t: &str, what: &str, needle: &str) -> bool {
    t.lines().any(|l| l.starts_with(what) && l.contains(needle))
}

#[test]
fn retention_settings_that_would_lose_a_dedupe_key_or_resend_a_fire_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.toml");
    std::fs::write(
        &file,
        r#"
[[digests]]
name = "weekly"
cron = "0 9 * * MON"
targets = ["slack:CLEADS"]
grace = "100d"

[retention]
inbox_done = "1h"
enabled = "yes"
"#,
    )
    .unwrap();
    let out = switchboard(&["check-config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("retention.inbox_done: must be at least 1d"),
        "{err}"
    );
    assert!(
        err.contains("retention.fires: must be longer than the grace of digest `weekly`"),
        "{err}"
    );
    assert!(
        err.contains("retention.enabled: must be true or false"),
        "{err}"
    );
}
