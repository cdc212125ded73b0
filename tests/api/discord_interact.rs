//! Discord interactions end to end: commands registered from `commands/` at start, then slash
//! commands, autocomplete, the "Create ticket" context menu and its modal, Claim and Resolve,
//! CSAT and its comment form, each sent by the fake Discord as INTERACTION_CREATE over the
//! gateway to the real serenity client and answered through Discord's callback routes; the
//! HTTP interactions endpoint with good, bad and stale signatures.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sandbox::discord::{FakeDiscord, BOT_USER_ID, GUILD_ID};
use serde_json::{json, Value};
use switchboard::app::{register_discord_commands, serve, Adapters};
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::endpoint::EndpointState;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::interact::DiscordInteractions;
use switchboard::chat::discord::source::DiscordEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::core::command::{CommandSet, OptionKind};
use switchboard::core::types::{Status, TicketRef};
use switchboard::inbox::InboxWorker;
use switchboard::outbox::OutboxWorker;

use crate::helpers::*;

const TOKEN: &str = "interact-token";
const HELP: &str = "2100";
const ALICE: &str = "1001";
const BOB: &str = "1002";
/// Holds the IT role (3001): a member of the it department.
const DANA: &str = "1005";
const CUSTOMER: &str = "1099";

struct Rig {
    fake: FakeDiscord,
    gateway: Option<Gateway>,
    inbox: InboxWorker,
    outbox: OutboxWorker,
    set: CommandSet,
}

async fn rig_with(app: &TestApp, budget: Duration) -> Rig {
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    fake.set_heartbeat_ms(250);
    for (id, name) in [
        (HELP, "help"),
        ("2001", "billing"),
        ("2002", "it-alerts"),
        ("2003", "leads"),
    ] {
        fake.add_channel(id, name);
    }
    fake.add_role("3001", "IT", 0);
    for (id, name, roles) in [
        (ALICE, "Alice", &[][..]),
        (BOB, "Bob", &[]),
        (DANA, "Dana", &["3001"]),
        (CUSTOMER, "Casey", &[]),
    ] {
        fake.add_member(id, name, roles);
    }
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    register_discord_commands(&api, &app.desk).await;
    app.desk.accounts.register(Arc::new(api.clone()));
    let interactions = DiscordInteractions::new(app.desk.clone(), api.clone()).with_budget(budget);
    let gateway = Gateway::start(
        api.clone(),
        BOT_USER_ID.into(),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        GatewaySettings {
            interactions: Some(interactions),
            ..GatewaySettings::default()
        },
    )
    .await
    .unwrap();
    assert!(gateway.wait_sessions(0, Duration::from_secs(10)).await > 0);
    let (inbox, outbox) = workers(
        app,
        vec![Arc::new(DiscordEventSource::new(
            api.clone(),
            app.desk.config.flag_emojis.clone(),
        )) as Arc<dyn EventSource>],
        vec![Arc::new(api) as Arc<dyn Delivery>],
    );
    Rig {
        fake,
        gateway: Some(gateway),
        inbox,
        outbox,
        set: CommandSet::builtin().unwrap(),
    }
}

async fn rig(app: &TestApp) -> Rig {
    rig_with(app, switchboard::chat::discord::interact::DEFAULT_BUDGET).await
}

/// Discord's option type for an option of `kind`.
fn option_type(kind: OptionKind) -> u64 {
    match kind {
        OptionKind::User => 6,
        OptionKind::Integer => 4,
        OptionKind::Number => 10,
        _ => 3,
    }
}

impl Rig {
    /// The `data` of `/command sub name:value …` as Discord sends it.
    fn command_data(
        &self,
        command: &str,
        sub: &str,
        opts: &[(&str, &str)],
        focused: Option<&str>,
    ) -> Value {
        let spec = self.set.slash(command).expect("a command");
        let sub_spec = spec.subcommand(sub);
        let options: Vec<Value> = opts
            .iter()
            .map(|(name, value)| {
                let kind = sub_spec
                    .and_then(|s| s.option(name))
                    .map_or(OptionKind::Text, |o| o.kind);
                let ty = option_type(kind);
                let v = match ty {
                    4 => value.parse::<i64>().map_or(json!(value), |n| json!(n)),
                    10 => value.parse::<f64>().map_or(json!(value), |n| json!(n)),
                    _ => json!(value),
                };
                let mut o = json!({ "name": name, "type": ty, "value": v });
                if focused == Some(name) {
                    o["focused"] = json!(true);
                }
                o
            })
            .collect();
        json!({
            "id": self.fake.command_id(command), "name": command, "type": 1, "guild_id": GUILD_ID,
            "options": [{ "name": sub, "type": 1, "options": options }]
        })
    }

    /// Waits for the app's first answer to the interaction with `token`.
    async fn answer(&self, token: &str) -> Value {
        if let Some(r) = self.fake.answer(token).await {
            return r;
        }
        let recent: Vec<String> = self
            .fake
            .requests()
            .iter()
            .rev()
            .take(3)
            .map(|q| format!("{} {} → {}: {}", q.method, q.path, q.status, q.body))
            .collect();
        panic!("no answer to the interaction; the last requests: {recent:#?}");
    }

    /// Runs `/command sub` with options as `user` in #help; returns the first answer.
    async fn cmd(&self, user: &str, command: &str, sub: &str, opts: &[(&str, &str)]) -> Value {
        let data = self.command_data(command, sub, opts, None);
        let token = self.fake.interact(2, user, HELP, data, None);
        self.answer(&token).await
    }

    async fn click(
        &self,
        user: &str,
        channel: &str,
        message: &str,
        custom_id: &str,
    ) -> (Value, String) {
        let token = self.fake.interact(
            3,
            user,
            channel,
            json!({ "custom_id": custom_id, "component_type": 2 }),
            Some(message),
        );
        (self.answer(&token).await, token)
    }

    async fn submit(
        &self,
        user: &str,
        channel: &str,
        message: Option<&str>,
        custom_id: &str,
        values: &[(&str, &str)],
    ) -> Value {
        let rows: Vec<Value> = values
            .iter()
            .map(|(id, v)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": v }] }))
            .collect();
        let token = self.fake.interact(
            5,
            user,
            channel,
            json!({ "custom_id": custom_id, "components": rows }),
            message,
        );
        self.answer(&token).await
    }

    async fn work(&self) {
        while self.inbox.round().await.unwrap() > 0 {}
        while self.outbox.round().await.unwrap() > 0 {}
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// The text of an answer (content and embed titles, descriptions and fields).
fn text(answer: &Value) -> String {
    let d = &answer["data"];
    let mut out = d["content"].as_str().unwrap_or_default().to_string();
    for e in d["embeds"].as_array().into_iter().flatten() {
        for k in ["title", "description"] {
            if let Some(t) = e[k].as_str() {
                out.push('\n');
                out.push_str(t);
            }
        }
        for f in e["fields"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n{}: {}",
                f["name"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

fn ephemeral(answer: &Value) -> bool {
    answer["data"]["flags"]
        .as_u64()
        .is_some_and(|f| f & 64 != 0)
}

/// One invocation: who, command, subcommand, options, a piece of the answer.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// One good invocation of every subcommand, as a Discord user would make it, with a piece of
/// the answer. Run in this order on a fresh desk (T-1 is made by the first line).
const GOOD: &[Case] = &[
    (
        ALICE,
        "ticket",
        "new",
        &[("title", "Printer on fire"), ("priority", "high")],
        "T-1",
    ),
    (
        BOB,
        "ticket",
        "new",
        &[("title", "Refund for order 42")],
        "billing",
    ),
    (
        ALICE,
        "ticket",
        "show",
        &[("ticket", "T-1")],
        "Printer on fire",
    ),
    (ALICE, "ticket", "list", &[], "T-2"),
    (
        ALICE,
        "ticket",
        "assign",
        &[("ticket", "T-2"), ("user", BOB)],
        "Bob",
    ),
    (BOB, "ticket", "claim", &[("ticket", "T-2")], "T-2"),
    (
        BOB,
        "ticket",
        "status",
        &[("ticket", "T-2"), ("status", "waiting")],
        "waiting",
    ),
    (
        ALICE,
        "ticket",
        "priority",
        &[("ticket", "T-2"), ("priority", "urgent")],
        "urgent",
    ),
    (
        ALICE,
        "ticket",
        "route",
        &[("ticket", "T-1"), ("department", "billing")],
        "billing",
    ),
    (
        BOB,
        "ticket",
        "note",
        &[("ticket", "T-1"), ("text", "Called the customer")],
        "T-1",
    ),
    (
        BOB,
        "ticket",
        "close",
        &[("ticket", "T-1"), ("reason", "duplicate of T-2")],
        "closed",
    ),
    (
        BOB,
        "ticket",
        "reopen",
        &[("ticket", "T-1"), ("reason", "it is back")],
        "T-1",
    ),
    (ALICE, "ticket", "explain", &[("ticket", "T-2")], "refunds"),
    (ALICE, "ticket", "web", &[("ticket", "T-2")], "/ui/signin/"),
    (
        ALICE,
        "kudos",
        "give",
        &[
            ("user", BOB),
            ("why", "for untangling the refund queue"),
            ("ticket", "T-2"),
        ],
        "(T-2)",
    ),
    (BOB, "kudos", "list", &[], "untangling"),
    (
        ALICE,
        "digest",
        "preview",
        &[("schedule", "weekly")],
        "weekly",
    ),
    (ALICE, "digest", "now", &[("schedule", "weekly")], "weekly"),
    (
        ALICE,
        "metric",
        "record",
        &[("name", "nps"), ("value", "9")],
        "nps",
    ),
    (ALICE, "metric", "list", &[("name", "nps")], "9"),
    (
        ALICE,
        "reply",
        "add",
        &[
            ("name", "refund"),
            ("text", "Hi {reporter}, refunds take 5 days."),
            ("department", "billing"),
        ],
        "Saved",
    ),
    (BOB, "reply", "list", &[], "refund"),
    (
        BOB,
        "reply",
        "send",
        &[("ticket", "T-2"), ("name", "refund")],
        "Posted the saved reply",
    ),
    (
        ALICE,
        "reply",
        "remove",
        &[("name", "refund"), ("department", "billing")],
        "Removed",
    ),
    (
        CUSTOMER,
        "kb",
        "search",
        &[("words", "I forgot my password")],
        "Resetting your password",
    ),
    (
        CUSTOMER,
        "kb",
        "show",
        &[("article", "billing/refunds")],
        "five working days",
    ),
];

/// Bad input (or a refusal) for every subcommand, with a piece of the answer that says how
/// to fix it.
const BAD: &[Case] = &[
    (
        ALICE,
        "ticket",
        "new",
        &[("title", "x"), ("tags", "a/b")],
        "tag `a/b`",
    ),
    (
        ALICE,
        "ticket",
        "show",
        &[("ticket", "T-999")],
        "There is no ticket T-999",
    ),
    (
        ALICE,
        "ticket",
        "list",
        &[("status", "sleeping")],
        "is not a status",
    ),
    (
        ALICE,
        "ticket",
        "assign",
        &[("ticket", "T-1")],
        "`user` is missing",
    ),
    (ALICE, "ticket", "claim", &[("ticket", "42x")], "T-42"),
    (
        ALICE,
        "ticket",
        "status",
        &[("ticket", "T-1"), ("status", "sleeping")],
        "is not a status",
    ),
    (
        ALICE,
        "ticket",
        "priority",
        &[("ticket", "T-1"), ("priority", "asap")],
        "urgent",
    ),
    (
        ALICE,
        "ticket",
        "route",
        &[("ticket", "T-1"), ("department", "nowhere")],
        "Known departments",
    ),
    (
        ALICE,
        "ticket",
        "note",
        &[("ticket", "T-1")],
        "`text` is missing",
    ),
    (
        ALICE,
        "ticket",
        "close",
        &[("ticket", "T-999")],
        "There is no ticket T-999",
    ),
    (ALICE, "ticket", "reopen", &[("ticket", "T-2")], "reopen"),
    (ALICE, "ticket", "explain", &[], "`ticket` is missing"),
    (
        ALICE,
        "ticket",
        "web",
        &[("ticket", "T-x")],
        "is not a ticket reference",
    ),
    (
        ALICE,
        "kudos",
        "give",
        &[("user", ALICE), ("why", "me")],
        "someone else",
    ),
    (ALICE, "kudos", "list", &[("days", "0")], "days"),
    (
        ALICE,
        "digest",
        "preview",
        &[("schedule", "nosuch")],
        "weekly",
    ),
    (ALICE, "digest", "now", &[], "schedule"),
    // Discord itself refuses a non-number for a number option; the desk checks the range.
    (
        ALICE,
        "metric",
        "record",
        &[("name", "csat"), ("value", "9")],
        "1-5 rating",
    ),
    (
        ALICE,
        "metric",
        "list",
        &[("name", "nps"), ("days", "0")],
        "days",
    ),
    (
        ALICE,
        "reply",
        "add",
        &[("name", "send"), ("text", "Hi")],
        "own words",
    ),
    (
        BOB,
        "reply",
        "send",
        &[("ticket", "T-2"), ("name", "nosuch")],
        "no saved reply `nosuch`",
    ),
    (CUSTOMER, "reply", "list", &[], "a member of a department"),
    (ALICE, "kb", "search", &[], "`words` is missing"),
    (
        ALICE,
        "kb",
        "show",
        &[("article", "nosuch")],
        "There is no article `nosuch`",
    ),
    (
        BOB,
        "reply",
        "remove",
        &[("name", "refund")],
        "a department lead",
    ),
    // A permission refusal: Casey is no department's member.
    (
        CUSTOMER,
        "ticket",
        "claim",
        &[("ticket", "T-2")],
        "You need to be a member of billing",
    ),
];

async fn every_subcommand_with_good_and_bad_input(app: TestApp) {
    // Wednesday: no scheduled digest is within its grace window.
    app.clock.advance(chrono::Duration::days(2));
    let r = rig(&app).await;
    let registered = r.fake.commands();
    let global = registered
        .get("global")
        .expect("global commands, no guild ids configured");
    let names: BTreeSet<&str> = global.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "Create ticket",
            "digest",
            "kb",
            "kudos",
            "metric",
            "reply",
            "ticket"
        ])
    );
    let mut covered = BTreeSet::new();
    for (user, command, sub, opts, want) in GOOD {
        let answer = r.cmd(user, command, sub, opts).await;
        assert_eq!(answer["type"], 4, "{command} {sub}: {answer}");
        let t = text(&answer);
        assert!(
            t.contains(want) && !t.contains("Sorry"),
            "/{command} {sub} → {t}"
        );
        assert_eq!(answer["data"]["allowed_mentions"]["parse"], json!([]));
        covered.insert((command.to_string(), sub.to_string()));
    }
    let all: BTreeSet<(String, String)> = r
        .set
        .slash_commands()
        .flat_map(|c| {
            c.subcommands
                .iter()
                .map(|s| (c.name.clone(), s.name.clone()))
        })
        .collect();
    assert_eq!(covered, all, "every subcommand is run from Discord");
    for (user, command, sub, opts, want) in BAD {
        let answer = r.cmd(user, command, sub, opts).await;
        let t = text(&answer);
        assert!(ephemeral(&answer), "errors are private: /{command} {sub}");
        assert!(
            t.contains(want) && !t.contains("Sorry"),
            "/{command} {sub} → {t}"
        );
    }
    crate::discord_flow::assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

async fn autocomplete_offers_departments_and_open_tickets(app: TestApp) {
    let r = rig(&app).await;
    app.ok(&alice(), "/ticket new Refund for order 42").await;
    app.ok(&alice(), "/ticket new printer jam department:it")
        .await;
    let data = r.command_data(
        "ticket",
        "route",
        &[("ticket", "T-1"), ("department", "bi")],
        Some("department"),
    );
    let token = r.fake.interact(4, ALICE, HELP, data, None);
    let answer = r.answer(&token).await;
    assert_eq!(answer["type"], 8);
    assert_eq!(
        answer["data"]["choices"],
        json!([{ "name": "billing", "value": "billing" }])
    );
    let data = r.command_data("ticket", "claim", &[("ticket", "refund")], Some("ticket"));
    let token = r.fake.interact(4, ALICE, HELP, data, None);
    let choices = r.answer(&token).await["data"]["choices"].clone();
    assert_eq!(choices.as_array().unwrap().len(), 1, "{choices}");
    assert_eq!(choices[0]["value"], "T-1");
    assert!(choices[0]["name"]
        .as_str()
        .unwrap()
        .starts_with("T-1 Refund for order 42"));
    r.stop().await;
}

/// Saved replies on Discord: autocomplete offers the names the chosen ticket's department
/// and everyone may use (to a member of it; others only the global ones), and `/reply send`
/// posts the reply as a reply to the ticket's alert, its mentions neutralised.
async fn saved_replies_are_offered_and_posted_under_the_alert(app: TestApp) {
    let r = rig(&app).await;
    app.ok(
        &alice(),
        "/reply add printer department:it Hi {reporter}, a technician is on the way. <@&3001>",
    )
    .await;
    app.ok(
        &alice(),
        "/reply add hello Hi {reporter}, we are looking at it.",
    )
    .await;
    app.ok(&alice(), "/ticket new printer jam department:it")
        .await;
    r.work().await;
    let alert = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.channel_id == "2002")
        .expect("the alert is in it-alerts");
    assert_eq!(r.reply_names(DANA).await, ["hello", "printer"]);
    assert_eq!(
        r.reply_names(BOB).await,
        ["hello"],
        "not another department's"
    );

    let data = r.command_data(
        "reply",
        "send",
        &[("ticket", "T-1"), ("name", "printer")],
        None,
    );
    let token = r.fake.interact(2, DANA, HELP, data, None);
    let answer = r.answer(&token).await;
    assert!(
        answer
            .to_string()
            .contains("Posted the saved reply `printer` in T-1's thread"),
        "{answer}"
    );
    r.work().await;
    let reply = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.reply_to.as_deref() == Some(alert.id.as_str()))
        .expect("a reply to the alert");
    assert_eq!(reply.channel_id, "2002");
    assert!(
        reply
            .content
            .starts_with("Dana, from the saved reply printer:")
            && reply.content.contains("a technician is on the way"),
        "{}",
        reply.content
    );
    assert!(!reply.content.contains("<@&3001>"), "{}", reply.content);
    crate::discord_flow::assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

impl Rig {
    /// The saved replies autocomplete offers `user` for `/reply send T-1`, sorted.
    async fn reply_names(&self, user: &str) -> Vec<String> {
        let data = self.command_data(
            "reply",
            "send",
            &[("ticket", "T-1"), ("name", "")],
            Some("name"),
        );
        let token = self.fake.interact(4, user, HELP, data, None);
        let answer = self.answer(&token).await;
        let mut names: Vec<String> = answer["data"]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["value"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// The values and names an autocomplete of `/command sub`'s `ticket` option offers `user`
    /// who typed `typed`.
    async fn offered(
        &self,
        user: &str,
        command: &str,
        sub: &str,
        typed: &str,
    ) -> Vec<(String, String)> {
        let data = self.command_data(command, sub, &[("ticket", typed)], Some("ticket"));
        let token = self.fake.interact(4, user, HELP, data, None);
        let answer = self.answer(&token).await;
        assert_eq!(answer["type"], 8, "{answer}");
        answer["data"]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["value"].as_str().unwrap().to_string(),
                    c["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn offered_ids(&self, user: &str, command: &str, sub: &str, typed: &str) -> Vec<String> {
        self.offered(user, command, sub, typed)
            .await
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }
}

/// Autocomplete offers what the command itself allows: someone in no department sees only
/// the tickets they reported (for `/ticket show`, not for `/ticket claim`); a member sees their
/// department's; each subcommand is offered the statuses it acts on; the store searches every
/// ticket, not only the newest; choice names are clean single lines Discord accepts.
async fn autocomplete_offers_only_what_the_command_allows(app: TestApp) {
    let r = rig(&app).await;
    let casey = discord(CUSTOMER);
    app.ok(&alice(), "/ticket new Refund for order 42").await; // T-1 billing
    app.ok(&alice(), "/ticket new printer jam department:it")
        .await; // T-2 it
    app.ok(&casey, "/ticket new My refund never arrived").await; // T-3 billing, Casey's
    app.ok(&alice(), "/ticket new Old printer fault department:it")
        .await; // T-4 it
    app.ok(&alice(), "/ticket status T-1 resolved").await;
    app.ok(&alice(), "/ticket close T-4").await;

    // Casey (no department) sees their own ticket only, and cannot claim anything.
    assert_eq!(r.offered_ids(CUSTOMER, "ticket", "show", "").await, ["T-3"]);
    assert_eq!(
        r.offered_ids(CUSTOMER, "ticket", "show", "refund").await,
        ["T-3"]
    );
    assert!(r
        .offered_ids(CUSTOMER, "ticket", "claim", "")
        .await
        .is_empty());
    assert!(r
        .offered_ids(CUSTOMER, "ticket", "note", "")
        .await
        .is_empty());
    // `/kudos give` is for anyone: their own tickets, still not others'.
    assert_eq!(r.offered_ids(CUSTOMER, "kudos", "give", "").await, ["T-3"]);

    // Dana (it, by role) sees it's tickets; claim wants active ones, reopen finished ones.
    assert_eq!(
        r.offered_ids(DANA, "ticket", "show", "").await,
        ["T-4", "T-2"]
    );
    assert_eq!(r.offered_ids(DANA, "ticket", "claim", "").await, ["T-2"]);
    assert_eq!(r.offered_ids(DANA, "ticket", "reopen", "").await, ["T-4"]);
    assert!(r
        .offered_ids(DANA, "ticket", "show", "refund")
        .await
        .is_empty());

    // Alice (admin) sees every department; each subcommand its statuses.
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "reopen", "").await,
        ["T-4", "T-1"]
    );
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "claim", "").await,
        ["T-3", "T-2"]
    );
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "status", "").await,
        ["T-3", "T-2", "T-1"],
        "a resolved ticket may still be closed"
    );
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "explain", "PRINTER").await,
        ["T-4", "T-2"]
    );
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "show", "order refund").await,
        ["T-1"],
        "every word, in any order"
    );

    // Older than the newest 200 open tickets, and still found by number or by title.
    for i in 0..205 {
        app.desk
            .open_from_command(
                &alice(),
                None,
                &format!("filler {i}"),
                switchboard::desk::TicketOverrides::default(),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "claim", "never arrived")
            .await,
        ["T-3"]
    );
    let by_number = r.offered_ids(ALICE, "ticket", "claim", "t-3").await;
    assert!(by_number.contains(&"T-3".to_string()), "{by_number:?}");
    assert!(
        by_number.iter().all(|t| t.starts_with("T-3")),
        "{by_number:?}"
    );
    assert_eq!(
        r.offered_ids(ALICE, "ticket", "claim", "").await.len(),
        25,
        "Discord takes at most 25"
    );

    // A title with control characters, a right-to-left override and too many characters
    // becomes one clean line of at most 100 (the fake Discord refuses longer names).
    let title = format!("Bad\u{1b}[31m red\u{202E}exe.txt {}", "x".repeat(150));
    app.desk
        .open_from_command(
            &alice(),
            None,
            &title,
            switchboard::desk::TicketOverrides::default(),
        )
        .await
        .unwrap();
    let offered = r.offered(ALICE, "ticket", "show", "red").await;
    assert_eq!(offered.len(), 1, "{offered:?}");
    let name = &offered[0].1;
    assert!(name.starts_with("T-210 Bad [31m redexe.txt xxx"), "{name}");
    assert!(name.chars().count() <= 100, "{name}");
    assert!(
        !name
            .chars()
            .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c)),
        "{name:?}"
    );
    r.stop().await;
}

/// Past the flag limit the "Create ticket" menu explains privately instead of opening the
/// form, and a form opened before the limit was reached is refused when submitted: nothing
/// is stored.
async fn the_context_menu_and_its_form_refuse_a_flag_past_the_limit(app: TestApp) {
    let r = rig(&app).await;
    let menu = |msg: &str| {
        json!({
            "id": r.fake.command_id("Create ticket"), "name": "Create ticket", "type": 3, "guild_id": GUILD_ID,
            "target_id": msg,
            "resolved": { "messages": { msg.to_string(): {
                "id": msg, "channel_id": HELP, "content": "The export button does nothing",
                "author": { "id": CUSTOMER, "username": "casey", "discriminator": "0", "global_name": "Casey", "avatar": null },
                "timestamp": "2026-03-02T09:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": false, "type": 0, "flags": 0, "components": []
            } } }
        })
    };
    let first = r.fake.say(HELP, CUSTOMER, "The export button does nothing");
    let second = r.fake.say(HELP, CUSTOMER, "The export button does nothing");
    crate::flag_limit::use_up_flags(&app, &discord(BOB), "discord:2100", "d", 29).await;
    let token = r.fake.interact(2, BOB, HELP, menu(&first), None);
    let modal = r.answer(&token).await;
    assert_eq!(modal["type"], 9, "one flag left: the form opens: {modal}");
    let custom_id = modal["data"]["custom_id"].as_str().unwrap().to_string();
    // Bob uses his last flag on Slack before submitting.
    crate::flag_limit::use_up_flags(&app, &bob(), "slack:CHELP", "s", 1).await;
    let answer = r
        .submit(
            BOB,
            HELP,
            None,
            &custom_id,
            &[
                ("title", "Export broken"),
                ("department", "it"),
                ("priority", "normal"),
                ("tags", ""),
            ],
        )
        .await;
    let said = "You have flagged 30 messages in the last 10 minutes; the limit is 30 per 10 minutes. Try again in 10 minutes.";
    assert!(ephemeral(&answer) && text(&answer) == said, "{answer}");
    assert!(app.desk.store.inbox(None, 0).await.unwrap().is_empty());
    // The menu now explains instead of opening the form.
    let token = r.fake.interact(2, BOB, HELP, menu(&second), None);
    let refused = r.answer(&token).await;
    assert!(ephemeral(&refused) && text(&refused) == said, "{refused}");
    // Alice is another person: her form opens.
    let token = r.fake.interact(2, ALICE, HELP, menu(&second), None);
    assert_eq!(r.answer(&token).await["type"], 9);
    r.stop().await;
}

async fn the_context_menu_opens_a_modal_and_bad_input_can_be_fixed(app: TestApp) {
    let r = rig(&app).await;
    let msg = r
        .fake
        .say(HELP, CUSTOMER, "Our invoice PDF shows the wrong VAT number");
    let menu = json!({
        "id": r.fake.command_id("Create ticket"), "name": "Create ticket", "type": 3, "guild_id": GUILD_ID,
        "target_id": msg,
        "resolved": { "messages": { msg.clone(): {
            "id": msg, "channel_id": HELP, "content": "Our invoice PDF shows the wrong VAT number",
            "author": { "id": CUSTOMER, "username": "casey", "discriminator": "0", "global_name": "Casey", "avatar": null },
            "timestamp": "2026-03-02T09:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
            "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": false, "type": 0, "flags": 0, "components": []
        } } }
    });
    // Casey may not flag (who = members).
    let token = r.fake.interact(2, CUSTOMER, HELP, menu.clone(), None);
    let refused = r.answer(&token).await;
    assert!(
        ephemeral(&refused) && text(&refused).contains("not allowed"),
        "{refused}"
    );
    let token = r.fake.interact(2, BOB, HELP, menu.clone(), None);
    let modal = r.answer(&token).await;
    assert_eq!(modal["type"], 9, "{modal}");
    let custom_id = modal["data"]["custom_id"].as_str().unwrap().to_string();
    let prefilled: Vec<(String, String)> = modal["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let input = &row["components"][0];
            (
                input["custom_id"].as_str().unwrap().to_string(),
                input["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        prefilled,
        [
            (
                "title".to_string(),
                "Our invoice PDF shows the wrong VAT number".to_string()
            ),
            ("department".to_string(), "support".to_string()),
            ("priority".to_string(), "normal".to_string()),
            ("tags".to_string(), String::new()),
        ]
    );
    // Bad input: an unknown department and a bad tag. The answer says what to fix and keeps
    // what was typed behind a button that reopens the form.
    let answer = r
        .submit(
            BOB,
            HELP,
            None,
            &custom_id,
            &[
                ("title", "Wrong VAT on invoice"),
                ("department", "accounts"),
                ("priority", "high"),
                ("tags", "vat, a/b"),
            ],
        )
        .await;
    assert!(ephemeral(&answer), "{answer}");
    let t = text(&answer);
    assert!(
        t.contains("department: Pick one of: billing, it, support") && t.contains("tag `a/b`"),
        "{t}"
    );
    assert_eq!(
        answer["data"]["components"][0]["components"][0]["label"],
        "Edit and resubmit"
    );
    let original = r
        .fake
        .interaction(&token_of(&r, &answer))
        .and_then(|i| i.original);
    let error_message = original.expect("the error is a message");
    let reopen = answer["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (reopened, _) = r.click(BOB, HELP, &error_message, &reopen).await;
    assert_eq!(reopened["type"], 9);
    let again: Vec<String> = reopened["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row["components"][0]["value"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        again,
        ["Wrong VAT on invoice", "accounts", "high", "vat, a/b"],
        "what was typed"
    );
    let ok = r
        .submit(
            BOB,
            HELP,
            None,
            reopened["data"]["custom_id"].as_str().unwrap(),
            &[
                ("title", "Wrong VAT on invoice"),
                ("department", "billing"),
                ("priority", "high"),
                ("tags", "vat"),
            ],
        )
        .await;
    assert!(
        ephemeral(&ok) && text(&ok).contains("Creating a high ticket for billing"),
        "{ok}"
    );
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        (
            t.title.as_str(),
            t.department.as_str(),
            t.priority.to_string()
        ),
        ("Wrong VAT on invoice", "billing", "high".to_string())
    );
    assert!(t.tags.contains(&"vat".to_string()));
    assert_eq!(t.source.unwrap().message_id, msg);
    let reply = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.reply_to.as_deref() == Some(msg.as_str()))
        .expect("a reply under the message");
    let shown = format!("{} {}", reply.content, json!(reply.embeds));
    assert!(shown.contains("T-1"), "{shown}");
    // The menu on a message that already has a ticket points to it.
    let token = r.fake.interact(2, BOB, HELP, menu, None);
    let existing = r.answer(&token).await;
    assert!(text(&existing).contains("already T-1"), "{existing}");
    crate::discord_flow::assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

/// The token of the interaction whose answer is `answer` (the fake keeps both).
fn token_of(r: &Rig, answer: &Value) -> String {
    r.fake.answered_token(answer).expect("a known answer")
}

/// The knowledge base's buttons on Discord: the confirmation under a flagged question carries
/// them as components; someone from another department is refused, and the reporter's press
/// on "This solved it" resolves the ticket.
async fn a_suggestion_solves_the_ticket_from_discord(app: TestApp) {
    let r = rig(&app).await;
    let msg = r
        .fake
        .say(HELP, CUSTOMER, "I forgot my password and cannot sign in");
    r.fake.react(HELP, &msg, BOB, "🎫");
    for _ in 0..500 {
        if !app.desk.store.inbox(None, 0).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.work().await;
    let confirmation = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.reply_to.as_deref() == Some(msg.as_str()))
        .expect("a reply to the question");
    let components = json!(confirmation.components).to_string();
    assert!(
        components.contains("kb-solved:1:0") && components.contains("kb-not:1"),
        "{components}"
    );
    let (refused, _) = r.click(DANA, HELP, &confirmation.id, "kb-solved:1:0").await;
    assert!(
        ephemeral(&refused) && text(&refused).contains("member of support"),
        "{refused}"
    );
    let (solved, _) = r
        .click(CUSTOMER, HELP, &confirmation.id, "kb-solved:1:0")
        .await;
    assert!(
        text(&solved).contains("answered by the knowledge base"),
        "{solved}"
    );
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
    crate::discord_flow::assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

async fn claim_and_resolve_edit_the_alert_and_csat_is_stored_once(app: TestApp) {
    let r = rig(&app).await;
    let msg = r.fake.say(HELP, CUSTOMER, "I was charged twice");
    r.fake.react(HELP, &msg, BOB, "🎫");
    for _ in 0..500 {
        if !app.desk.store.inbox(None, 0).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.work().await;
    let alert = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.channel_id == "2001")
        .expect("the alert");
    // Casey may not claim; Bob may.
    let (refused, _) = r.click(CUSTOMER, "2001", &alert.id, "claim:1").await;
    assert!(
        ephemeral(&refused) && text(&refused).contains("member of billing"),
        "{refused}"
    );
    let (claimed, _) = r.click(BOB, "2001", &alert.id, "claim:1").await;
    assert!(
        ephemeral(&claimed) && text(&claimed).contains("in progress"),
        "{claimed}"
    );
    r.work().await;
    let edited = r
        .fake
        .sent()
        .into_iter()
        .find(|m| m.id == alert.id)
        .unwrap();
    assert_eq!(edited.edits, 1, "edited in place");
    assert!(serde_json::to_string(&edited.embeds)
        .unwrap()
        .contains("in progress"));
    let (resolved, _) = r.click(BOB, "2001", &alert.id, "resolve:1").await;
    assert!(text(&resolved).contains("resolved"), "{resolved}");
    r.work().await;
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
    // The reporter is asked in a DM, with 1-5 buttons.
    let dm = r
        .fake
        .sent()
        .into_iter()
        .find(|m| {
            m.embeds.first().is_some_and(|e| {
                e["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("How did we do with T-1"))
            })
        })
        .expect("the CSAT DM");
    assert_eq!(dm.components[0]["components"].as_array().unwrap().len(), 5);
    let rate = dm.components[0]["components"][4]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (thanks, _) = r.click(CUSTOMER, &dm.channel_id, &dm.id, &rate).await;
    assert_eq!(thanks["type"], 7, "the question is replaced: {thanks}");
    let updated = r.fake.sent().into_iter().find(|m| m.id == dm.id).unwrap();
    assert!(
        updated.content.contains("5/5")
            || serde_json::to_string(&updated.embeds)
                .unwrap()
                .contains("5/5"),
        "{updated:?}"
    );
    let (again, _) = r.click(CUSTOMER, &dm.channel_id, &dm.id, "csat:1:2").await;
    assert!(text(&again).contains("already recorded (5/5)"), "{again}");
    let comment = updated.components[0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (form, _) = r.click(CUSTOMER, &dm.channel_id, &dm.id, &comment).await;
    assert_eq!(form["type"], 9);
    let done = r
        .submit(
            CUSTOMER,
            &dm.channel_id,
            Some(&dm.id),
            form["data"]["custom_id"].as_str().unwrap(),
            &[("comment", "Refunded within the hour")],
        )
        .await;
    assert_eq!(done["type"], 7, "{done}");
    let csat = app.desk.store.csat(TicketRef(1)).await.unwrap().unwrap();
    assert_eq!(
        (csat.score, csat.comment.as_deref()),
        (5, Some("Refunded within the hour"))
    );
    crate::discord_flow::assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

async fn slow_work_is_deferred_and_the_answer_follows(app: TestApp) {
    // A zero budget always takes the late path.
    let r = rig_with(&app, Duration::ZERO).await;
    let data = r.command_data("ticket", "new", &[("title", "printer jam")], None);
    let token = r.fake.interact(2, ALICE, HELP, data, None);
    let first = r.answer(&token).await;
    assert_eq!(first, json!({ "type": 5, "data": { "flags": 64 } }));
    let mut edited = None;
    // Up to 20 s: the whole suite on two cores can hold the edit back for seconds.
    for _ in 0..2000 {
        let i = r.fake.interaction(&token).unwrap();
        if let Some(m) = i.original.and_then(|id| {
            r.fake
                .sent()
                .into_iter()
                .find(|m| m.id == id && m.edits > 0)
        }) {
            edited = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let edited = edited.expect("the deferred answer was edited in");
    assert!(edited.content.contains("Opened T-1"), "{edited:?}");
    r.stop().await;
}

crate::on_both_backends!(
    a_suggestion_solves_the_ticket_from_discord,
    every_subcommand_with_good_and_bad_input,
    autocomplete_offers_departments_and_open_tickets,
    autocomplete_offers_only_what_the_command_allows,
    saved_replies_are_offered_and_posted_under_the_alert,
    the_context_menu_and_its_form_refuse_a_flag_past_the_limit,
    the_context_menu_opens_a_modal_and_bad_input_can_be_fixed,
    claim_and_resolve_edit_the_alert_and_csat_is_stored_once,
    slow_work_is_deferred_and_the_answer_follows,
);

/// The HTTP endpoint: PING answered with PONG, a command answered in the response, and 401
/// for a bad signature, a missing one and a stale timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_endpoint_checks_signatures_and_answers() {
    let app = spawn_app().await;
    let fake = FakeDiscord::start(TOKEN).await.unwrap();
    fake.add_channel(HELP, "help");
    fake.add_member(ALICE, "Alice", &[]);
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    let endpoint = EndpointState::new(
        DiscordInteractions::new(app.desk.clone(), api),
        &Secret::new(fake.public_key()),
        Arc::new(app.clock.clone()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        app.desk.clone(),
        listener,
        Adapters {
            discord_endpoint: Some(endpoint),
            ..Adapters::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    let post = |body: Vec<u8>, ts: String, sig: Option<String>| {
        let base = base.clone();
        async move {
            let mut req = reqwest::Client::new()
                .post(format!("{base}/discord/interactions"))
                .header("content-type", "application/json")
                .header("x-signature-timestamp", ts);
            if let Some(s) = sig {
                req = req.header("x-signature-ed25519", s);
            }
            let r = req.body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let now = app.desk.now().timestamp().to_string();
    let ping = serde_json::to_vec(
        &json!({ "id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1 }),
    )
    .unwrap();
    let good = FakeDiscord::sign(&now, &ping);
    assert_eq!(
        post(ping.clone(), now.clone(), Some(good.clone())).await,
        (200, json!({ "type": 1 }))
    );
    let mut bad = good.clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        post(
            ping.clone(),
            now.clone(),
            Some(String::from_utf8(bad).unwrap())
        )
        .await
        .0,
        401
    );
    assert_eq!(post(ping.clone(), now.clone(), None).await.0, 401);
    let stale = (app.desk.now().timestamp() - 301).to_string();
    let stale_sig = FakeDiscord::sign(&stale, &ping);
    assert_eq!(
        post(ping.clone(), stale, Some(stale_sig)).await.0,
        401,
        "older than five minutes"
    );
    // Timestamps at the ends of i64 are refused, signed or not, and never wrap into the window.
    let far = (i128::from(app.desk.now().timestamp()) - (1i128 << 63)) as i64;
    for ts in [far, i64::MIN, i64::MAX] {
        let sig = FakeDiscord::sign(&ts.to_string(), &ping);
        assert_eq!(
            post(ping.clone(), ts.to_string(), Some(sig)).await.0,
            401,
            "{ts}"
        );
    }
    let mut tampered = ping.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        post(tampered, now.clone(), Some(good)).await.0,
        401,
        "the body is signed too"
    );
    let (payload, _) = fake.interaction_payload(
        2,
        ALICE,
        HELP,
        json!({ "id": "5", "name": "ticket", "type": 1, "options": [{ "name": "new", "type": 1, "options": [{ "name": "title", "type": 3, "value": "printer jam" }] }] }),
        None,
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let sig = FakeDiscord::sign(&now, &body);
    let (status, answer) = post(body, now, Some(sig)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4);
    assert!(text(&answer).contains("Opened T-1"), "{answer}");
    let _ = stop.send(());
}

/// A small-order public key verifies forged signatures (for the identity point, R = identity
/// and s = 0 pass the lenient check for any message): refused at start, as Discord never
/// issues one.
#[tokio::test]
async fn a_weak_public_key_is_refused_at_start() {
    let app = spawn_app().await;
    let api = DiscordApi::new("http://127.0.0.1:9", &Secret::new(TOKEN)).unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let refused = EndpointState::new(
        DiscordInteractions::new(app.desk.clone(), api),
        &Secret::new(hex::encode(identity)),
        Arc::new(app.clock.clone()),
    );
    assert!(refused.is_err());
}
