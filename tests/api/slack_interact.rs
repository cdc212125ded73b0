//! Slack's staff workflows end to end, in both connection modes: slash commands, the "Create
//! ticket" shortcut and its modal, Claim / Resolve buttons updating the alert, and CSAT. The
//! fake Slack delivers commands and interactions (signed form posts in HTTP mode, envelopes in
//! Socket Mode); the app answers through the real slack-morphism client.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sandbox::slack::{app_token_for, Ack, FakeSlack, Fault, SlackMessage, Via, BOT_USER};
use serde_json::{json, Value};
use switchboard::app::{serve, Adapters};
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::slack::interact::Interactions;
use switchboard::chat::slack::socket::{SocketMode, SocketSettings};
use switchboard::chat::slack::source::SlackEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::core::clock::Clock;
use switchboard::core::command::CommandSet;
use switchboard::core::types::{Priority, Status, TicketRef};
use switchboard::inbox::InboxWorker;
use switchboard::outbox::OutboxWorker;

use crate::helpers::*;

const TOKEN: &str = "xoxb-sandbox-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Socket,
}

struct Rig {
    fake: FakeSlack,
    mode: Mode,
    base: String,
    clock: switchboard::core::clock::ManualClock,
    inbox: InboxWorker,
    outbox: OutboxWorker,
    _socket: Option<SocketMode>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn rig_with(app: &TestApp, mode: Mode, budget: Option<Duration>) -> Rig {
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    for (id, name) in [
        ("CHELP", "help"),
        ("CBILLING", "billing"),
        ("CSUPPORT", "support"),
        ("CLEADS", "leads"),
    ] {
        fake.add_channel(id, name, true);
    }
    for (id, name) in [
        ("UCUSTOMER", "Casey Customer"),
        ("UALICE", "Alice"),
        ("UBOB", "Bob"),
        ("UCAROL", "Carol"),
        ("UERIN", "Erin"),
    ] {
        fake.add_user(id, name);
    }
    fake.add_bot("UROBOT", "Reminder Robot");
    fake.add_group("SIT", &["UERIN"]);
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    // As `app::adapters` does: kudos ask Slack whether the receiver is a bot.
    app.desk.accounts.register(std::sync::Arc::new(api.clone()));
    let mut interactions = Interactions::new(app.desk.clone(), api.clone());
    if let Some(b) = budget {
        interactions = interactions.with_budget(b);
    }
    let source = SlackEventSource::new(
        api.clone(),
        app.desk.config.flag_emojis.clone(),
        Some(BOT_USER.into()),
    )
    .with_groups(app.desk.config.slack_groups());
    let (inbox, outbox) = workers(
        app,
        vec![Arc::new(source) as Arc<dyn EventSource>],
        vec![Arc::new(api.clone()) as Arc<dyn Delivery>],
    );
    let socket = match mode {
        Mode::Socket => Some(
            SocketMode::start(
                &api,
                &Secret::new(app_token_for(TOKEN)),
                app.desk.store.clone(),
                Arc::new(app.clock.clone()),
                Some(interactions.clone()),
                SocketSettings {
                    connections: 1,
                    reconnect_seconds: 1,
                    stagger_seconds: 0,
                },
            )
            .await
            .expect("Socket Mode starts"),
        ),
        Mode::Http => None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        app.desk.clone(),
        listener,
        Adapters {
            slack_interactions: Some(interactions),
            ..Adapters::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    if mode == Mode::Socket {
        // The connection opens in the background; wait for it before pushing envelopes.
        for _ in 0..500 {
            if fake.connections() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Rig {
        fake,
        mode,
        base,
        clock: app.clock.clone(),
        inbox,
        outbox,
        _socket: socket,
        _stop: stop,
    }
}

async fn rig(app: &TestApp, mode: Mode) -> Rig {
    rig_with(app, mode, None).await
}

fn text(ack: &Ack) -> String {
    ack.body
        .as_ref()
        .and_then(|b| b["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

impl Rig {
    fn via(&self) -> Via {
        match self.mode {
            Mode::Http => Via::Http {
                base: self.base.clone(),
                secret: TEST_SIGNING_SECRET.into(),
                timestamp: Some(self.clock.now().timestamp()),
            },
            Mode::Socket => Via::Socket,
        }
    }

    /// Runs `/command text` as `user` in #help.
    async fn cmd(&self, user: &str, line: &str) -> Ack {
        let (command, text) = line.split_once(' ').unwrap_or((line, ""));
        let fields = self.fake.slash_command(user, "CHELP", command, text);
        let ack = self.fake.send_command(&self.via(), &fields).await;
        assert_eq!(ack.status, 200, "{line}: {ack:?}");
        ack
    }

    async fn interact(&self, payload: &Value) -> Ack {
        let ack = self.fake.send_interaction(&self.via(), payload).await;
        assert_eq!(ack.status, 200, "{payload}: {ack:?}");
        ack
    }

    async fn work(&self) {
        for _ in 0..3 {
            while self.inbox.round().await.unwrap() > 0 {}
            while self.outbox.round().await.unwrap() > 0 {}
        }
    }

    /// The alert for ticket `n` in `channel`.
    fn alert(&self, channel: &str, n: i64) -> SlackMessage {
        self.fake
            .bot_messages()
            .into_iter()
            .find(|m| {
                m.channel == channel
                    && m.thread_ts.is_none()
                    && m.blocks.as_ref().is_some_and(|b| {
                        b.to_string().contains(&format!("resolve:{n}"))
                            || m.text.starts_with(&format!("T-{n} "))
                    })
            })
            .unwrap_or_else(|| {
                panic!(
                    "no alert for T-{n} in {channel}: {:#?}",
                    self.fake.bot_messages()
                )
            })
    }

    /// Waits until the app has acknowledged `n` Socket Mode envelopes in all.
    async fn wait_acked(&self, n: usize) {
        for _ in 0..300 {
            if self.fake.acked().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "only {} of {n} envelopes acknowledged",
            self.fake.acked().len()
        );
    }

    /// `user` uses the "Create ticket" shortcut on a message and submits the form as
    /// prefilled; the inbox and outbox workers then make and deliver the ticket.
    async fn shortcut_and_submit(&self, user: &str, channel: &str, ts: &str) {
        let payload = self
            .fake
            .message_shortcut(user, channel, ts, "create_ticket")
            .unwrap();
        self.interact(&payload).await;
        let view = self.fake.views().pop().expect("the form opened");
        self.interact(&self.fake.submit_view(&view.id, &[]).unwrap())
            .await;
        self.work().await;
    }

    /// Waits for the app's `n`-th answer through a response URL.
    async fn response(&self, n: usize) -> Value {
        for _ in 0..500 {
            if let Some(r) = self.fake.responses().get(n) {
                return r.body.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no response #{n}: {:#?}", self.fake.responses());
    }
}

/// One good invocation of every subcommand, as typed in Slack, with a piece of the answer.
/// Run in this order on a fresh desk (T-1 is made by the first line).
const GOOD: &[(&str, &str, &str)] = &[
    ("UALICE", "/ticket new Printer on fire priority:high", "T-1"),
    ("UBOB", "/ticket new Refund for order 42", "billing"),
    ("UALICE", "/ticket show T-1", "Printer on fire"),
    ("UALICE", "/ticket list", "T-2"),
    ("UALICE", "/ticket assign T-2 <@UBOB|bob>", "Bob"),
    ("UBOB", "/ticket claim T-2", "T-2"),
    ("UBOB", "/ticket status T-2 waiting", "waiting"),
    ("UCAROL", "/ticket priority T-2 urgent", "urgent"),
    ("UALICE", "/ticket route T-1 billing", "billing"),
    ("UBOB", "/ticket note T-1 Called the customer", "T-1"),
    ("UBOB", "/ticket close T-1 duplicate of T-2", "closed"),
    ("UBOB", "/ticket reopen T-1 customer says it is back", "T-1"),
    ("UALICE", "/ticket explain T-2", "refunds"),
    (
        "UCUSTOMER",
        "/ticket web",
        "http://127.0.0.1:8080/ui/signin/",
    ),
    (
        "UALICE",
        "/kudos give <@UBOB|bob> for untangling the refund queue",
        "Bob",
    ),
    (
        "UCAROL",
        "/kudos <@UBOB|bob> for the quick refund T-2",
        "Carol thanked Bob: the quick refund (T-2)",
    ),
    ("UBOB", "/kudos list", "untangling"),
    ("UALICE", "/digest preview weekly", "weekly"),
    ("UALICE", "/digest now weekly", "weekly"),
    ("UCAROL", "/metric record nps 9", "nps"),
    ("UCAROL", "/metric list nps", "9"),
    (
        "UCAROL",
        "/reply add refund department:billing Hi {reporter}, refunds take 5 days.",
        "Saved",
    ),
    ("UBOB", "/reply list", "refund"),
    ("UBOB", "/reply send T-2 refund", "Posted the saved reply"),
    (
        "UCAROL",
        "/reply remove refund department:billing",
        "Removed",
    ),
    (
        "UCUSTOMER",
        "/kb search I forgot my password",
        "Resetting your password",
    ),
    ("UCUSTOMER", "/kb show billing/refunds", "five working days"),
];

/// Bad input for every subcommand (run after `GOOD`), with a piece of the answer that says
/// how to fix it.
const BAD: &[(&str, &str, &str)] = &[
    ("UALICE", "/ticket new", "`title` is missing"),
    ("UALICE", "/ticket show T-999", "There is no ticket T-999"),
    ("UALICE", "/ticket list status:sleeping", "is not a status"),
    ("UALICE", "/ticket assign T-1", "`user` is missing"),
    ("UALICE", "/ticket claim 42x", "T-42"),
    ("UALICE", "/ticket status T-1 sleeping", "is not a status"),
    ("UALICE", "/ticket priority T-1 asap", "urgent"),
    ("UALICE", "/ticket route T-1 nowhere", "Known departments"),
    ("UALICE", "/ticket note T-1", "`text` is missing"),
    ("UALICE", "/ticket close T-999", "There is no ticket T-999"),
    ("UALICE", "/ticket reopen T-2", "reopen"),
    ("UALICE", "/ticket explain", "`ticket` is missing"),
    ("UALICE", "/ticket web T-x", "is not a ticket reference"),
    ("UALICE", "/kudos give", "/kudos give"),
    ("UALICE", "/kudos list days:lots", "days"),
    (
        "UALICE",
        "/kudos <@UROBOT|robot> for the reminders",
        "That's a bot",
    ),
    (
        "UALICE",
        "/kudos <@USLACKBOT|slackbot> for the reminders",
        "That's a bot",
    ),
    (
        "UALICE",
        "/kudos <@UNOBODY|ghost> thanks",
        "can't find the user `UNOBODY`",
    ),
    ("UALICE", "/kudos <@UALICE|alice> thanks me", "someone else"),
    (
        "UALICE",
        "/kudos <@UBOB|bob> thanks T-999",
        "There is no ticket T-999",
    ),
    ("UALICE", "/digest preview nosuch", "weekly"),
    ("UALICE", "/digest now", "schedule"),
    ("UCAROL", "/metric record nps lots", "not a number"),
    ("UCAROL", "/metric list nps days:0", "days"),
    ("UCAROL", "/reply add send Hi", "own words"),
    ("UBOB", "/reply send T-2 nosuch", "no saved reply `nosuch`"),
    ("UBOB", "/reply list department:nowhere", "nowhere"),
    ("UBOB", "/reply remove refund", "a department lead"),
    ("UALICE", "/kb search", "`words` is missing"),
    (
        "UALICE",
        "/kb show billing/nosuch",
        "There is no article `billing/nosuch`",
    ),
    ("UALICE", "/ticket frobnicate T-1", "claim"),
];

async fn every_subcommand(app: TestApp, mode: Mode) {
    let r = rig(&app, mode).await;
    let mut covered = BTreeSet::new();
    for (user, line, want) in GOOD {
        let ack = r.cmd(user, line).await;
        let body = ack.body.clone().unwrap_or_default();
        let answer = text(&ack);
        assert!(
            answer.contains(want) && !answer.contains("Sorry"),
            "{line} → {answer}"
        );
        let kind = if line.starts_with("/kudos") && !line.starts_with("/kudos list") {
            "in_channel"
        } else {
            "ephemeral"
        };
        assert_eq!(body["response_type"], kind, "{line}");
        assert!(
            ack.took < Duration::from_secs(3),
            "{line} took {:?}",
            ack.took
        );
        let mut words = line.split_whitespace();
        let command = words.next().unwrap().trim_start_matches('/').to_string();
        let sub = words.next().unwrap();
        // `/kudos @bob why` names no subcommand: it is the default, `give`.
        if !sub.starts_with('<') {
            covered.insert((command, sub.to_string()));
        }
    }
    let set = CommandSet::builtin().unwrap();
    let all: BTreeSet<(String, String)> = set
        .slash_commands()
        .flat_map(|c| {
            c.subcommands
                .iter()
                .map(|s| (c.name.clone(), s.name.clone()))
        })
        .collect();
    assert_eq!(covered, all, "every subcommand is run from Slack");

    let mut covered_bad = BTreeSet::new();
    for (user, line, want) in BAD {
        let ack = r.cmd(user, line).await;
        assert_eq!(ack.body.as_ref().unwrap()["response_type"], "ephemeral");
        assert!(
            text(&ack).contains(want) && !text(&ack).contains("Sorry"),
            "{line} → {}",
            text(&ack)
        );
        let mut words = line.split_whitespace();
        let command = words.next().unwrap().trim_start_matches('/').to_string();
        covered_bad.insert((command, words.next().unwrap().to_string()));
    }
    assert!(
        all.is_subset(&covered_bad),
        "every subcommand gets bad input too"
    );
    // Slack escapes &, < and > in what people type; the ticket keeps what they typed.
    let ack = r
        .cmd(
            "UALICE",
            "/ticket new Totals &lt; 0 &amp; &gt; 100 on invoices",
        )
        .await;
    let n: i64 = text(&ack)
        .split("T-")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", text(&ack)));
    assert_eq!(
        app.desk.ticket(TicketRef(n)).await.unwrap().title,
        "Totals < 0 & > 100 on invoices"
    );
    // Permission: a customer may open tickets but not work them.
    let refused = r.cmd("UCUSTOMER", "/ticket claim T-2").await;
    assert!(
        text(&refused).contains("not allowed") || text(&refused).contains("need"),
        "{}",
        text(&refused)
    );
    let t = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(
        t.assignee.unwrap().id,
        "UBOB",
        "the refusal changed nothing"
    );
    // A member through a Slack user group counts.
    let erin = r
        .cmd("UERIN", "/ticket new VPN is down department:it")
        .await;
    assert!(text(&erin).contains("T-4"), "{}", text(&erin));
    let erin = r.cmd("UERIN", "/ticket claim T-4").await;
    assert!(!text(&erin).contains("not allowed"), "{}", text(&erin));
    assert_eq!(
        app.desk.ticket(TicketRef(4)).await.unwrap().status,
        Status::InProgress
    );
    // The kudos reply is public and pings nobody; its mention was resolved to Bob.
    let kudos = app
        .desk
        .store
        .list_kudos(app.desk.now() - chrono::Duration::days(1), None)
        .await
        .unwrap();
    assert_eq!(kudos[0].receiver.to_string(), "slack:UBOB");
}

async fn every_slash_subcommand_over_http(app: TestApp) {
    every_subcommand(app, Mode::Http).await;
}

async fn every_slash_subcommand_over_socket_mode(app: TestApp) {
    every_subcommand(app, Mode::Socket).await;
}

async fn a_slow_command_is_acknowledged_then_answered_through_the_response_url(app: TestApp) {
    for mode in [Mode::Http, Mode::Socket] {
        let r = rig_with(&app, mode, Some(Duration::ZERO)).await;
        let before = r.fake.responses().len();
        let ack = r.cmd("UALICE", "/ticket list").await;
        assert!(text(&ack).contains("Working on it"), "{}", text(&ack));
        let late = r.response(before).await;
        assert!(
            late["text"].as_str().unwrap().contains("open")
                || late["text"].as_str().unwrap().contains("No"),
            "{late}"
        );
        assert_eq!(late["replace_original"], false);
        // A late answer meant for the channel goes out as a post.
        r.cmd("UALICE", "/kudos give <@UBOB|bob> thanks for the help")
            .await;
        let posted = || {
            r.fake
                .bot_messages()
                .iter()
                .any(|m| m.channel == "CHELP" && m.text.contains("Bob"))
        };
        for _ in 0..500 {
            r.work().await;
            if posted() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            posted(),
            "{mode:?}: {:#?} {:#?} {:#?}",
            r.fake.bot_messages(),
            r.fake.responses(),
            futures_outbox(&app)
        );
    }
}

async fn shortcut(app: TestApp, mode: Mode) {
    let r = rig(&app, mode).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "I was charged twice for March <!channel>\nsecond line",
        None,
    );
    let payload = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    let ack = r.interact(&payload).await;
    assert!(ack.body.is_none(), "a shortcut is acknowledged empty");
    let views = r.fake.views();
    assert_eq!(views.len(), 1, "the modal opened");
    let view = &views[0];
    assert_eq!(view.user, "UBOB");
    assert_eq!(view.view["callback_id"], "create_ticket");
    let blocks = view.view["blocks"].as_array().unwrap();
    let block = |id: &str| blocks.iter().find(|b| b["block_id"] == id).unwrap().clone();
    assert_eq!(
        block("title")["element"]["initial_value"],
        "I was charged twice for March <!channel>"
    );
    assert_eq!(
        block("department")["element"]["initial_option"]["value"],
        "billing"
    );
    assert_eq!(
        block("priority")["element"]["initial_option"]["value"],
        "high"
    );
    assert_eq!(block("tags")["element"]["initial_value"], "money");
    assert!(
        !blocks[0].to_string().contains("<!channel>"),
        "the preview pings nobody"
    );

    // An invalid submission is answered in the modal, field by field, and creates nothing.
    let bad = r
        .fake
        .submit_view(&view.id, &[("title", "   "), ("tags", "ok, not ok!")])
        .unwrap();
    let ack = r.interact(&bad).await;
    let body = ack.body.expect("errors are shown in the modal");
    assert_eq!(body["response_action"], "errors");
    assert!(body["errors"]["title"].as_str().unwrap().contains("title"));
    assert!(body["errors"]["tags"].as_str().unwrap().contains("not ok!"));
    r.work().await;
    assert!(app.desk.store.ticket(TicketRef(1)).await.unwrap().is_none());

    // The person adjusts the form and submits; the modal closes and the ticket follows.
    let good = r
        .fake
        .submit_view(
            &view.id,
            &[
                ("title", "Double charge in March"),
                ("department", "support"),
                ("priority", "urgent"),
                ("tags", "vip"),
            ],
        )
        .unwrap();
    let ack = r.interact(&good).await;
    assert!(ack.body.is_none(), "{:?}", ack.body);
    // Slack retrying the submission adds nothing.
    r.interact(&good).await;
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.title, "Double charge in March");
    assert_eq!(t.department, "support");
    assert_eq!(t.priority, Priority::Urgent);
    assert!(t.tags.contains(&"vip".to_string()), "{:?}", t.tags);
    assert_eq!(t.reporter.to_string(), "slack:UCUSTOMER");
    assert!(t.body.contains("charged twice"));
    assert!(app.desk.store.ticket(TicketRef(2)).await.unwrap().is_none());
    let thread_reply = r
        .fake
        .bot_messages()
        .into_iter()
        .find(|m| m.thread_ts.as_deref() == Some("1772442000.000100"))
        .expect("the thread hears about the ticket");
    assert!(thread_reply.text.contains("T-1"));
    r.alert("CSUPPORT", 1);

    // Using the shortcut again on the same message points to the ticket instead of a form.
    let again = r
        .fake
        .message_shortcut("UALICE", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    let before = r.fake.responses().len();
    r.interact(&again).await;
    let answer = r.response(before).await;
    assert!(
        answer["text"].as_str().unwrap().contains("already T-1"),
        "{answer}"
    );
    assert_eq!(r.fake.views().len(), 1);

    // Someone not allowed to flag gets an ephemeral refusal, and no form.
    r.fake
        .seed_message("CHELP", "1772442100.000100", "UCUSTOMER", "hello", None);
    let stranger = r
        .fake
        .message_shortcut("UCUSTOMER", "CHELP", "1772442100.000100", "create_ticket")
        .unwrap();
    r.interact(&stranger).await;
    let answer = r.response(before + 1).await;
    assert!(
        answer["text"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );
    assert_eq!(r.fake.views().len(), 1);

    // A trigger id that went stale before the form opened: the person is told to retry.
    let late = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442100.000100", "create_ticket")
        .unwrap();
    r.fake.expire_triggers();
    r.interact(&late).await;
    let answer = r.response(before + 2).await;
    assert!(
        answer["text"].as_str().unwrap().contains("shortcut again"),
        "{answer}"
    );
}

/// Past the flag limit the shortcut explains privately instead of opening the form, and a
/// form opened before the limit was reached is refused in the form when submitted: nothing
/// is stored. Others may still flag.
async fn the_shortcut_and_its_form_refuse_a_flag_past_the_limit(app: TestApp) {
    let r = rig(&app, Mode::Http).await;
    for ts in ["1772442000.000100", "1772442100.000100"] {
        r.fake
            .seed_message("CHELP", ts, "UCUSTOMER", "I was charged twice", None);
    }
    crate::flag_limit::use_up_flags(&app, &bob(), "slack:CHELP", "s", 29).await;
    // Bob opens the form with one flag left, and uses it on Discord before submitting.
    let shortcut = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    r.interact(&shortcut).await;
    let view = r.fake.views().pop().expect("the form opened");
    crate::flag_limit::use_up_flags(&app, &discord("1002"), "discord:2100", "d", 1).await;
    let ack = r
        .interact(&r.fake.submit_view(&view.id, &[]).unwrap())
        .await;
    let body = ack.body.expect("the refusal is shown in the form");
    assert_eq!(body["response_action"], "errors", "{body}");
    let said = body["errors"]["title"].as_str().unwrap();
    assert_eq!(
        said,
        "You have flagged 30 messages in the last 10 minutes; the limit is 30 per 10 minutes. Try again in 10 minutes."
    );
    assert!(app.desk.store.inbox(None, 0).await.unwrap().is_empty());

    // The shortcut now explains privately and opens no form.
    let before = r.fake.responses().len();
    let again = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442100.000100", "create_ticket")
        .unwrap();
    r.interact(&again).await;
    let answer = r.response(before).await;
    assert_eq!(answer["text"].as_str().unwrap(), said, "{answer}");
    assert_eq!(answer["replace_original"], false);
    assert_eq!(r.fake.views().len(), 1, "no second form");

    // Alice is another person.
    r.shortcut_and_submit("UALICE", "CHELP", "1772442100.000100")
        .await;
    let channel = "slack:CHELP".parse().unwrap();
    let made = app
        .desk
        .store
        .ticket_by_source(&channel, "1772442100.000100")
        .await
        .unwrap();
    assert!(made.is_some());
    assert!(app
        .desk
        .store
        .ticket_by_source(&channel, "1772442000.000100")
        .await
        .unwrap()
        .is_none());
}

async fn shortcut_modal_and_submission_over_http(app: TestApp) {
    shortcut(app, Mode::Http).await;
}

async fn shortcut_modal_and_submission_over_socket_mode(app: TestApp) {
    shortcut(app, Mode::Socket).await;
}

/// Flags a customer's message in #help into billing, delivering the alert.
async fn flagged(app: &TestApp, r: &Rig) -> SlackMessage {
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "I want a refund",
        None,
    );
    r.shortcut_and_submit("UBOB", "CHELP", "1772442000.000100")
        .await;
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().department,
        "billing"
    );
    r.alert("CBILLING", 1)
}

async fn buttons(app: TestApp, mode: Mode) {
    let r = rig(&app, mode).await;
    let alert = flagged(&app, &r).await;
    assert_eq!(alert.edits, 0);

    // A customer pressing Claim is refused, privately, and nothing changes.
    let click = r
        .fake
        .click("UCUSTOMER", "CBILLING", &alert.ts, "claim:1")
        .unwrap();
    let ack = r.interact(&click).await;
    assert!(ack.body.is_none());
    let refusal = r.response(0).await;
    assert!(
        refusal["text"].as_str().unwrap().contains("not allowed")
            || refusal["text"].as_str().unwrap().contains("need"),
        "{refusal}"
    );
    assert_eq!(refusal["replace_original"], false);
    r.work().await;
    assert_eq!(r.alert("CBILLING", 1).edits, 0);

    // Bob claims from the alert: the ticket is his and the alert shows it, in place.
    let click = r
        .fake
        .click("UBOB", "CBILLING", &alert.ts, "claim:1")
        .unwrap();
    r.interact(&click).await;
    let said = r.response(1).await;
    assert!(said["text"].as_str().unwrap().contains("T-1"), "{said}");
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.status, Status::InProgress);
    assert_eq!(t.assignee.as_ref().unwrap().id, "UBOB");
    assert!(t.first_response_at.is_some(), "a claim is a first response");
    let updated = r.alert("CBILLING", 1);
    assert_eq!(updated.ts, alert.ts, "the same message");
    assert_eq!(updated.edits, 1, "chat.update");
    let blocks = updated.blocks.clone().unwrap().to_string();
    assert!(
        blocks.contains("in progress") && blocks.contains("Bob"),
        "{blocks}"
    );
    assert!(
        !blocks.contains("claim:1"),
        "no Claim once claimed: {blocks}"
    );

    // Resolve: the alert shows it, without buttons, and the reporter is asked for CSAT.
    let click = r
        .fake
        .click("UBOB", "CBILLING", &alert.ts, "resolve:1")
        .unwrap();
    r.interact(&click).await;
    r.response(2).await;
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.status, Status::Resolved);
    let updated = r.alert("CBILLING", 1);
    assert_eq!(updated.edits, 2);
    assert!(!updated.blocks.unwrap().to_string().contains("resolve:1"));
    assert!(
        r.fake
            .calls()
            .iter()
            .filter(|c| *c == "chat.update")
            .count()
            >= 2
    );
}

async fn claim_and_resolve_update_the_alert_over_http(app: TestApp) {
    buttons(app, Mode::Http).await;
}

async fn claim_and_resolve_update_the_alert_over_socket_mode(app: TestApp) {
    buttons(app, Mode::Socket).await;
}

async fn csat(app: TestApp, mode: Mode) {
    let r = rig(&app, mode).await;
    let alert = flagged(&app, &r).await;
    let click = r
        .fake
        .click("UBOB", "CBILLING", &alert.ts, "resolve:1")
        .unwrap();
    r.interact(&click).await;
    r.response(0).await;
    r.work().await;
    let dm = r
        .fake
        .bot_messages()
        .into_iter()
        .find(|m| m.channel.starts_with('D'))
        .unwrap_or_else(|| {
            panic!(
                "the reporter gets a direct message: {:#?}",
                futures_outbox(&app)
            )
        });
    assert_eq!(dm.channel, "DCUSTOMER", "to the reporter");
    let blocks = dm.blocks.clone().unwrap().to_string();
    for n in 1..=5 {
        assert!(blocks.contains(&format!("csat:1:{n}")), "{blocks}");
    }

    // Someone else cannot rate it.
    let other = r
        .fake
        .click("UBOB", &dm.channel, &dm.ts, "csat:1:1")
        .unwrap();
    r.interact(&other).await;
    assert!(r.response(1).await["text"]
        .as_str()
        .unwrap()
        .contains("Only the person"));

    // The reporter rates 4: stored, and the question is replaced by thanks and a comment button.
    let rate = r
        .fake
        .click("UCUSTOMER", &dm.channel, &dm.ts, "csat:1:4")
        .unwrap();
    let again = r
        .fake
        .click("UCUSTOMER", &dm.channel, &dm.ts, "csat:1:1")
        .unwrap();
    r.interact(&rate).await;
    let thanks = r.response(2).await;
    assert_eq!(thanks["replace_original"], true);
    assert!(thanks["text"].as_str().unwrap().contains("4/5"), "{thanks}");
    assert!(thanks.to_string().contains("csat-comment:1"));
    let stored = app.desk.store.csat(TicketRef(1)).await.unwrap().unwrap();
    assert_eq!(stored.score, 4);

    // A second click (from a copy of the question still on screen) says the first answer
    // stands.
    r.interact(&again).await;
    let said = r.response(3).await;
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("already recorded (4/5)"),
        "{said}"
    );
    assert_eq!(said["replace_original"], false);
    assert_eq!(
        app.desk
            .store
            .csat(TicketRef(1))
            .await
            .unwrap()
            .unwrap()
            .score,
        4
    );

    // The optional comment: the thanks replaced the question, with a button for a form.
    let replaced = r
        .fake
        .bot_messages()
        .into_iter()
        .find(|m| m.ts == dm.ts)
        .unwrap();
    assert!(replaced.text.contains("Thanks"), "{replaced:?}");
    let press = r
        .fake
        .click("UCUSTOMER", &dm.channel, &dm.ts, "csat-comment:1")
        .expect("the comment button is on the message");
    r.interact(&press).await;
    let view = r.fake.views().pop().expect("the comment form opened");
    assert_eq!(view.view["callback_id"], "csat_comment");
    let empty = r.fake.submit_view(&view.id, &[("comment", "  ")]).unwrap();
    let ack = r.interact(&empty).await;
    assert_eq!(ack.body.unwrap()["response_action"], "errors");
    let sent = r
        .fake
        .submit_view(&view.id, &[("comment", "Quick and friendly <!channel>")])
        .unwrap();
    assert!(r.interact(&sent).await.body.is_none());
    let stored = app.desk.store.csat(TicketRef(1)).await.unwrap().unwrap();
    assert_eq!(
        stored.comment.as_deref(),
        Some("Quick and friendly <!channel>")
    );
    let updated = r.response(4).await;
    assert!(!updated.to_string().contains("<!channel>"), "{updated}");
    let twice = r
        .fake
        .submit_view(&view.id, &[("comment", "again")])
        .unwrap();
    let ack = r.interact(&twice).await;
    assert!(ack.body.unwrap()["errors"]["comment"]
        .as_str()
        .unwrap()
        .contains("already"));
    assert_eq!(
        app.desk
            .store
            .csat(TicketRef(1))
            .await
            .unwrap()
            .unwrap()
            .comment
            .as_deref(),
        Some("Quick and friendly <!channel>")
    );

    // Resolving again after a reopen does not ask a second time.
    r.cmd("UBOB", "/ticket reopen T-1 one more thing").await;
    r.cmd("UBOB", "/ticket status T-1 resolved").await;
    r.work().await;
    let dms = r
        .fake
        .bot_messages()
        .iter()
        .filter(|m| m.channel.starts_with('D'))
        .count();
    assert_eq!(dms, 1, "{:#?}", r.fake.bot_messages());
}

async fn csat_is_stored_once_over_http(app: TestApp) {
    csat(app, Mode::Http).await;
}

async fn csat_is_stored_once_over_socket_mode(app: TestApp) {
    csat(app, Mode::Socket).await;
}

async fn a_staff_reply_in_the_thread_is_the_first_response(app: TestApp) {
    let r = rig(&app, Mode::Socket).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    app.desk
        .store
        .inbox_insert(
            "slack:event:EvFlag",
            None,
            "slack",
            &json!({"type": "event_callback", "event_id": "EvFlag", "event": {
                "type": "reaction_added", "user": "UBOB", "reaction": "ticket",
                "item": {"type": "message", "channel": "CHELP", "ts": "1772442000.000100"},
                "event_ts": "1772442001.000100"
            }}),
            app.desk.now(),
        )
        .await
        .unwrap();
    r.work().await;
    let reply = |id: &str, user: &str, ts: &str| {
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": id, "event_time": 1_772_442_100, "event": {
            "type": "message", "channel": "CHELP", "user": user, "text": "looking into it",
            "ts": ts, "thread_ts": "1772442000.000100", "channel_type": "channel",
            "event_ts": ts
        }})
    };
    // The customer's own reply is not a response; an unrelated thread is not even stored.
    r.fake
        .push_event(reply("EvA", "UCUSTOMER", "1772442100.000100"));
    let mut other = reply("EvB", "UBOB", "1772442150.000100");
    other["event"]["thread_ts"] = json!("1772440000.000100");
    r.fake.push_event(other);
    r.wait_acked(2).await;
    r.work().await;
    assert!(app
        .desk
        .ticket(TicketRef(1))
        .await
        .unwrap()
        .first_response_at
        .is_none());
    assert!(app
        .desk
        .store
        .inbox(None, 100)
        .await
        .unwrap()
        .iter()
        .all(|row| row.key != "slack:event:EvB"));
    // Bob's reply is.
    r.clock.advance(chrono::Duration::minutes(7));
    r.fake.push_event(reply("EvC", "UBOB", "1772442200.000100"));
    r.wait_acked(3).await;
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        t.first_response_at,
        Some(t.created_at + chrono::Duration::minutes(7))
    );
}

async fn a_flag_on_a_message_received_as_an_event_needs_no_fetch(app: TestApp) {
    let r = rig(&app, Mode::Socket).await;
    // Slack still holds the messages (a fetch would work); the point is that none is made.
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.fake.seed_message(
        "CHELP",
        "1772442000.000200",
        "UCUSTOMER",
        "printer jam",
        None,
    );
    let message = |id: &str, ts: &str, text: &str| {
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": id, "event_time": 1_772_442_100, "event": {
            "type": "message", "channel": "CHELP", "user": "UCUSTOMER", "text": text,
            "ts": ts, "channel_type": "channel", "event_ts": ts
        }})
    };
    let reaction = |id: &str, ts: &str| {
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": id, "event_time": 1_772_442_100, "event": {
            "type": "reaction_added", "user": "UBOB", "reaction": "ticket", "item_user": "UCUSTOMER",
            "item": {"type": "message", "channel": "CHELP", "ts": ts}, "event_ts": "1772442100.000100"
        }})
    };
    r.fake
        .push_event(message("EvM1", "1772442000.000100", "refund please"));
    // An edit arrives before the flag: the ticket takes the edited text, still without a fetch.
    r.fake.push_event(
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP",
        "type": "event_callback", "event_id": "EvM1e", "event_time": 1_772_442_101, "event": {
            "type": "message", "subtype": "message_changed", "channel": "CHELP",
            "message": {"type": "message", "user": "UCUSTOMER", "text": "refund please, order 42",
                        "ts": "1772442000.000100"},
            "previous_message": {"type": "message", "user": "UCUSTOMER", "text": "refund please",
                                 "ts": "1772442000.000100"},
            "ts": "1772442101.000100", "event_ts": "1772442101.000100", "channel_type": "channel"
        }}),
    );
    // Envelopes are handled concurrently: the edit is in before the flag is sent.
    r.wait_acked(2).await;
    r.fake.push_event(reaction("EvR1", "1772442000.000100"));
    r.wait_acked(3).await;
    r.work().await;
    let fetches = |r: &Rig| {
        r.fake
            .calls()
            .iter()
            .filter(|c| *c == "conversations.replies" || *c == "conversations.history")
            .count()
    };
    assert_eq!(fetches(&r), 0, "the received message was not fetched again");
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.source.unwrap().original_text, "refund please, order 42");
    // A message this process never received is fetched.
    r.fake.push_event(reaction("EvR2", "1772442000.000200"));
    r.wait_acked(4).await;
    r.work().await;
    assert_eq!(fetches(&r), 1);
    let t = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(t.source.unwrap().original_text, "printer jam");
}

/// The knowledge base's buttons in Slack: the thread confirmation of a flagged message
/// carries them, and the reporter's click on "This solved it" resolves the ticket.
async fn a_suggestion_solves_the_ticket_from_slack(app: TestApp) {
    let r = rig(&app, Mode::Http).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000200",
        "UCUSTOMER",
        "I was charged twice this month",
        None,
    );
    r.shortcut_and_submit("UBOB", "CHELP", "1772442000.000200")
        .await;
    r.work().await;
    let confirmation = r
        .fake
        .bot_messages()
        .into_iter()
        .find(|m| m.channel == "CHELP" && m.thread_ts.as_deref() == Some("1772442000.000200"))
        .expect("a reply in the thread");
    let blocks = confirmation.blocks.clone().unwrap().to_string();
    assert!(
        blocks.contains("kb-solved:1:0") && blocks.contains("kb-not:1"),
        "{blocks}"
    );
    assert!(
        confirmation.text.contains("Refunds and double charges")
            || blocks.contains("Refunds and double charges")
    );
    let click = r
        .fake
        .click("UCUSTOMER", "CHELP", &confirmation.ts, "kb-solved:1:0")
        .unwrap();
    r.interact(&click).await;
    let said = r.response(0).await;
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("answered by the knowledge base"),
        "{said}"
    );
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
}

/// The replies in a flagged message's thread are kept for its transcript, as Slack sent them,
/// with their edits and deletions; `tickets export --format json` includes them.
async fn replies_in_the_thread_are_kept_with_edits_and_deletions(app: TestApp) {
    let r = rig(&app, Mode::Socket).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    let envelope = |id: &str, event: Value| {
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP",
        "type": "event_callback", "event_id": id, "event_time": 1_772_442_100, "event": event})
    };
    r.fake.push_event(envelope(
        "EvFlag",
        json!({"type": "reaction_added", "user": "UBOB", "reaction": "ticket", "item_user": "UCUSTOMER",
               "item": {"type": "message", "channel": "CHELP", "ts": "1772442000.000100"},
               "event_ts": "1772442001.000100"}),
    ));
    r.wait_acked(1).await;
    r.work().await;
    let reply = |user: &str, ts: &str, text: &str| {
        json!({"type": "message", "channel": "CHELP", "user": user, "text": text, "ts": ts,
               "thread_ts": "1772442000.000100", "channel_type": "channel", "event_ts": ts})
    };
    r.fake.push_event(envelope(
        "EvR1",
        reply(
            "UCUSTOMER",
            "1772442100.000100",
            "it was order <@U0OTHER> 42",
        ),
    ));
    r.fake.push_event(envelope(
        "EvR2",
        reply("UBOB", "1772442200.000200", "lookin into it"),
    ));
    r.wait_acked(3).await;
    r.work().await;
    // Bob fixes his typo; the customer deletes theirs.
    r.fake.push_event(envelope(
        "EvE",
        json!({"type": "message", "subtype": "message_changed", "channel": "CHELP",
               "message": {"type": "message", "user": "UBOB", "text": "looking into it",
                           "ts": "1772442200.000200", "thread_ts": "1772442000.000100",
                           "edited": {"user": "UBOB", "ts": "1772442300.000000"}},
               "previous_message": {"type": "message", "user": "UBOB", "text": "lookin into it",
                                    "ts": "1772442200.000200", "thread_ts": "1772442000.000100"},
               "ts": "1772442300.000100", "event_ts": "1772442300.000100", "channel_type": "channel"}),
    ));
    r.fake.push_event(envelope(
        "EvD",
        json!({"type": "message", "subtype": "message_deleted", "channel": "CHELP",
               "deleted_ts": "1772442100.000100", "hidden": true,
               "previous_message": {"type": "message", "user": "UCUSTOMER",
                                    "text": "it was order <@U0OTHER> 42",
                                    "ts": "1772442100.000100", "thread_ts": "1772442000.000100"},
               "ts": "1772442400.000100", "event_ts": "1772442400.000100", "channel_type": "channel"}),
    ));
    r.wait_acked(5).await;
    r.work().await;
    let replies = app.desk.store.thread_replies(TicketRef(1)).await.unwrap();
    let seen = replies_seen(&app, TicketRef(1)).await;
    assert_eq!(
        seen,
        [
            (
                "slack:UCUSTOMER".to_string(),
                "it was order <@U0OTHER> 42".to_string(),
                false,
                true
            ),
            (
                "slack:UBOB".to_string(),
                "looking into it".to_string(),
                true,
                false
            ),
        ]
    );
    assert_eq!(replies[0].message_id, "1772442100.000100");
    // Written at its Slack timestamp (kept to the millisecond on SQLite).
    assert_eq!(replies[0].at.timestamp(), 1_772_442_100);
    // The flagged message is still the ticket's; the edits did not touch it.
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.source.unwrap().original_text, "refund please");
    let mut out = Vec::new();
    switchboard::tickets_cli::write_json(
        &mut out,
        &app.desk.store,
        &[app.desk.ticket(TicketRef(1)).await.unwrap()],
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["replies"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["replies"][1]["text"], "looking into it");
    assert!(v[0]["replies"][0]["deleted_at"].is_string());
    // Talk under the department's alert is the ticket's thread too.
    let alert = r
        .fake
        .bot_messages()
        .into_iter()
        .find(|m| m.channel == "CBILLING" && m.thread_ts.is_none())
        .expect("the alert");
    r.fake.push_event(envelope(
        "EvA",
        json!({"type": "message", "channel": "CBILLING", "user": "UBOB", "text": "on it",
               "ts": "1772442500.000100", "thread_ts": alert.ts, "channel_type": "channel",
               "event_ts": "1772442500.000100"}),
    ));
    r.wait_acked(6).await;
    r.work().await;
    let replies = app.desk.store.thread_replies(TicketRef(1)).await.unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[2].channel.to_string(), "slack:CBILLING");
    assert_eq!(replies[2].text, "on it");
}

crate::on_both_backends!(
    replies_in_the_thread_are_kept_with_edits_and_deletions,
    a_suggestion_solves_the_ticket_from_slack,
    a_flag_on_a_message_received_as_an_event_needs_no_fetch,
    every_slash_subcommand_over_http,
    every_slash_subcommand_over_socket_mode,
    a_slow_command_is_acknowledged_then_answered_through_the_response_url,
    shortcut_modal_and_submission_over_http,
    shortcut_modal_and_submission_over_socket_mode,
    the_shortcut_and_its_form_refuse_a_flag_past_the_limit,
    claim_and_resolve_update_the_alert_over_http,
    claim_and_resolve_update_the_alert_over_socket_mode,
    csat_is_stored_once_over_http,
    csat_is_stored_once_over_socket_mode,
    a_staff_reply_in_the_thread_is_the_first_response,
);

#[tokio::test]
async fn commands_and_interactions_with_a_bad_signature_get_401() {
    let app = spawn_app().await;
    let r = rig(&app, Mode::Http).await;
    let fields = r.fake.slash_command("UALICE", "CHELP", "/ticket", "list");
    for via in [
        Via::Http {
            base: r.base.clone(),
            secret: "not-the-secret".into(),
            timestamp: Some(app.desk.now().timestamp()),
        },
        Via::Http {
            base: r.base.clone(),
            secret: TEST_SIGNING_SECRET.into(),
            timestamp: Some(app.desk.now().timestamp() - 600),
        },
    ] {
        assert_eq!(r.fake.send_command(&via, &fields).await.status, 401);
        let payload = json!({"type": "block_actions"});
        assert_eq!(r.fake.send_interaction(&via, &payload).await.status, 401);
    }
    assert!(r.fake.responses().is_empty());
}

/// This thread's log lines while the guard lives. A current-thread runtime polls every task
/// (the server, the Socket Mode listener) on this thread, so they are all captured.
fn capture_logs() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    #[derive(Clone)]
    struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("switchboard=debug")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

/// The captured lines at `level` (`WARN`, `ERROR`).
fn lines_at(logs: &std::sync::Mutex<Vec<u8>>, level: &str) -> Vec<String> {
    String::from_utf8_lossy(&logs.lock().unwrap())
        .lines()
        .filter(|l| l.contains(&format!(" {level} ")))
        .map(str::to_string)
        .collect()
}

/// A `view_submission` of the create-ticket form `UBOB` opened on a message in #help.
async fn opened_create_form(r: &Rig) -> Value {
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "I was charged twice",
        None,
    );
    let shortcut = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    r.interact(&shortcut).await;
    let view = r.fake.views().pop().expect("the form opened");
    r.fake.submit_view(&view.id, &[]).unwrap()
}

/// Signed payloads that are not what Slack sends, each with the reason it is refused.
fn malformed_interactions(r: &Rig, form: &Value) -> Vec<(&'static str, Value)> {
    let shortcut = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    let mut without_message = shortcut.clone();
    without_message.as_object_mut().unwrap().remove("message");
    let click = json!({
        "type": "block_actions", "team": { "id": "T0SANDBOX", "domain": "sandbox" },
        "api_app_id": "A0SWITCHBD", "trigger_id": "1.2.3", "response_url": "http://127.0.0.1:9/r",
        "container": { "type": "message", "message_ts": "1772442000.000100", "channel_id": "CBILLING" },
        "user": { "id": "UBOB", "name": "bob", "team_id": "T0SANDBOX" },
        "actions": [{ "action_id": "claim:1", "block_id": "b0", "type": "button",
                      "action_ts": "1772442200.000100" }]
    });
    let mut without_user = click.clone();
    without_user.as_object_mut().unwrap().remove("user");
    let mut without_actions = click.clone();
    without_actions.as_object_mut().unwrap().remove("actions");
    let mut without_view = form.clone();
    without_view.as_object_mut().unwrap().remove("view");
    let mut comment = form.clone();
    comment["view"]["callback_id"] = json!("csat_comment");
    comment["view"]["private_metadata"] = json!("{not json");
    comment["view"]["state"] = json!({ "values": { "comment": { "comment": { "type": "plain_text_input", "value": "thanks" } } } });
    vec![
        ("an empty object", json!({})),
        ("a list", json!([])),
        ("a number as the type", json!({ "type": 5 })),
        ("block_actions without a user", without_user),
        ("block_actions without actions", without_actions),
        ("message_action without a message", without_message),
        ("view_submission without a view", without_view),
        ("a comment form whose metadata is not JSON", comment),
    ]
}

/// Signed but malformed interactions are the sender's fault: 400 and a warning, never
/// `500 try again` and an error (which would have Slack retry, and page whoever watches
/// errors). The bot goes on answering.
#[tokio::test]
async fn signed_but_malformed_interactions_get_400_and_a_warning() {
    let (logs, _guard) = capture_logs();
    let app = spawn_app().await;
    let r = rig(&app, Mode::Http).await;
    let form = opened_create_form(&r).await;
    let cases = malformed_interactions(&r, &form);
    for (what, payload) in &cases {
        let ack = r.fake.send_interaction(&r.via(), payload).await;
        assert_eq!(ack.status, 400, "{what}: {ack:?}");
    }
    let warned = lines_at(&logs, "WARN");
    assert_eq!(
        warned
            .iter()
            .filter(|l| l.contains("malformed Slack interaction"))
            .count(),
        cases.len(),
        "{warned:#?}"
    );
    assert!(
        lines_at(&logs, "ERROR").is_empty(),
        "{:#?}",
        lines_at(&logs, "ERROR")
    );
    assert!(r.fake.responses().is_empty(), "nothing was answered");
    let ack = r.cmd("UALICE", "/ticket list").await;
    assert!(text(&ack).contains("No tickets"), "{}", text(&ack));
}

/// A submission whose view has no id is refused as malformed, every time: its id is the
/// dedupe key, and an empty one (`slack:view:`) would make each such submission after the
/// first a silent duplicate. The same form with its id is stored once.
#[tokio::test]
async fn a_view_submission_without_a_view_id_is_refused_not_deduplicated() {
    let app = spawn_app().await;
    let r = rig(&app, Mode::Http).await;
    let form = opened_create_form(&r).await;
    for id in [None, Some(json!("")), Some(json!(42))] {
        let mut anonymous = form.clone();
        match id {
            None => {
                anonymous["view"].as_object_mut().unwrap().remove("id");
            }
            Some(v) => anonymous["view"]["id"] = v,
        }
        for _ in 0..2 {
            let ack = r.fake.send_interaction(&r.via(), &anonymous).await;
            assert_eq!(ack.status, 400, "{:?}: {ack:?}", anonymous["view"]["id"]);
        }
    }
    assert!(app.desk.store.inbox(None, 0).await.unwrap().is_empty());
    let ack = r.interact(&form).await;
    assert!(ack.body.is_none(), "{:?}", ack.body);
    let rows = app.desk.store.inbox(None, 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].key,
        format!("slack:view:{}", form["view"]["id"].as_str().unwrap())
    );
    r.work().await;
    assert!(app.desk.store.ticket(TicketRef(1)).await.unwrap().is_some());
}

/// In Socket Mode the same payloads are acknowledged (Slack would otherwise send them again,
/// and they would fail again), logged as warnings and dropped; the connection lives on.
#[tokio::test]
async fn malformed_interactions_over_socket_mode_are_acknowledged_and_dropped() {
    let (logs, _guard) = capture_logs();
    let app = spawn_app().await;
    let r = rig(&app, Mode::Socket).await;
    let form = opened_create_form(&r).await;
    let connections = r.fake.connections();
    for (what, payload) in malformed_interactions(&r, &form) {
        let ack = r.fake.send_interaction(&Via::Socket, &payload).await;
        assert_eq!(ack.status, 200, "{what}: not acknowledged");
        assert!(ack.body.is_none(), "{what}: {:?}", ack.body);
    }
    assert_eq!(r.fake.connections(), connections, "no reconnect");
    let warned = lines_at(&logs, "WARN");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("malformed Slack interaction")),
        "{warned:#?}"
    );
    assert!(
        lines_at(&logs, "ERROR").is_empty(),
        "{:#?}",
        lines_at(&logs, "ERROR")
    );
    let ack = r.cmd("UALICE", "/ticket list").await;
    assert!(text(&ack).contains("No tickets"), "{}", text(&ack));
}

fn futures_outbox(app: &TestApp) -> Vec<String> {
    let store = app.desk.store.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            store
                .outbox(None, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| format!("{r:?}"))
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// An install from the manifest grants exactly the bot scopes the adapter needs: every flow
/// runs with only those granted, and each one is used (the private-channel twins aside,
/// which the fake's public channels cannot exercise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_grants_exactly_the_scopes_the_adapter_uses() {
    let app = spawn_app().await;
    let r = rig(&app, Mode::Socket).await;
    let manifest = switchboard::export::slack_manifest(
        &CommandSet::builtin().unwrap(),
        &switchboard::export::SlackMode::Socket,
    );
    let granted: Vec<&str> = manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    r.fake.grant_only(&granted);
    let api = SlackApi::new(&r.fake.api_url, &Secret::new(TOKEN)).unwrap();
    let problems = switchboard::app::slack_channel_problems(&api, &app.desk.config).await;
    assert!(
        problems.iter().all(|p| !p.contains("missing_scope")),
        "{problems:?}"
    );

    // A reaction flag, a staff reply in its thread, a command, a shortcut, buttons and CSAT.
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.fake.push_event(json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP",
        "type": "event_callback", "event_id": "EvS1", "event_time": 1_772_442_100, "event": {
            "type": "reaction_added", "user": "UERIN", "reaction": "ticket", "item_user": "UCUSTOMER",
            "item": {"type": "message", "channel": "CHELP", "ts": "1772442000.000100"},
            "event_ts": "1772442100.000100"}}));
    r.wait_acked(1).await;
    r.work().await;
    r.fake.push_event(
        json!({"token": "XXYYZZ", "team_id": "T0SANDBOX", "api_app_id": "A0APP",
        "type": "event_callback", "event_id": "EvS2", "event_time": 1_772_442_200, "event": {
            "type": "message", "channel": "CHELP", "user": "UBOB", "text": "on it",
            "ts": "1772442200.000100", "thread_ts": "1772442000.000100", "channel_type": "channel",
            "event_ts": "1772442200.000100"}}),
    );
    r.wait_acked(2).await;
    r.cmd("UBOB", "/ticket list").await;
    r.fake.seed_message(
        "CHELP",
        "1772442300.000100",
        "UCUSTOMER",
        "printer jam",
        None,
    );
    r.shortcut_and_submit("UBOB", "CHELP", "1772442300.000100")
        .await;
    let alert = r.alert("CBILLING", 1);
    r.interact(
        &r.fake
            .click("UBOB", "CBILLING", &alert.ts, "claim:1")
            .unwrap(),
    )
    .await;
    r.interact(
        &r.fake
            .click("UBOB", "CBILLING", &alert.ts, "resolve:1")
            .unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    r.cmd("UCAROL", "/digest now weekly").await;
    r.work().await;

    let t1 = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t1.status, Status::Resolved);
    assert!(t1.first_response_at.is_some());
    assert!(app.desk.store.ticket(TicketRef(2)).await.unwrap().is_some());
    let failed = app.desk.store.outbox(Some("failed"), 100).await.unwrap();
    assert!(failed.is_empty(), "{failed:#?}");
    let failed = app.desk.store.inbox(Some("failed"), 100).await.unwrap();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(r
        .fake
        .bot_messages()
        .iter()
        .any(|m| m.channel == "DCUSTOMER"));

    let used: BTreeSet<String> = r.fake.scopes_used().into_iter().collect();
    let granted: BTreeSet<String> = granted.iter().map(|s| s.to_string()).collect();
    assert!(
        used.is_subset(&granted),
        "used {used:?}, granted {granted:?}"
    );
    let unused: Vec<&String> = granted.difference(&used).collect();
    assert_eq!(
        unused,
        ["groups:history", "groups:read"],
        "granted but never needed"
    );
}

/// A digest reaches Slack as its text and its chart, the chart through the external upload
/// flow, and the uploaded file is the PNG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_posts_its_text_and_uploads_its_chart() {
    let app = spawn_app().await;
    // Wednesday: no scheduled fire is within its grace window, so only `/digest now` posts.
    app.clock.advance(chrono::Duration::days(2));
    let r = rig(&app, Mode::Http).await;
    app.ok(&slack("UC"), "/ticket new refund please").await;
    let said = text(&r.cmd("UCAROL", "/digest now weekly").await);
    assert!(said.contains("on its way"), "{said}");
    r.work().await;
    let posted: Vec<SlackMessage> = r
        .fake
        .bot_messages()
        .into_iter()
        .filter(|m| m.channel == "CLEADS")
        .collect();
    assert_eq!(posted.len(), 1, "the text, once");
    assert!(posted[0].text.contains("Digest `weekly`"));
    let files = r.fake.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].channel, "CLEADS");
    assert_eq!(files[0].filename, "digest-weekly.png");
    let img =
        image::load_from_memory_with_format(&files[0].bytes, image::ImageFormat::Png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (switchboard::chart::WIDTH, switchboard::chart::HEIGHT)
    );
    let calls = r.fake.calls();
    let pos = |m: &str| calls.iter().position(|c| c == m).unwrap();
    assert!(pos("files.getUploadURLExternal") < pos("files.completeUploadExternal"));
    let failed = app.desk.store.outbox(Some("failed"), 10).await.unwrap();
    assert!(
        failed
            .iter()
            .all(|f| f.outgoing.target.platform() == switchboard::core::types::Platform::Discord)
            || failed.is_empty(),
        "{failed:#?}"
    );
}

/// A dropped Socket Mode connection is the connection's trouble, logged as a warning while
/// Switchboard reconnects, never as an event that could not be stored; a reconnection that
/// fails is recorded as Socket Mode failing, and the next `hello` as working again.
#[tokio::test]
async fn a_dropped_socket_is_a_connection_warning_not_a_lost_event() {
    let (logs, _guard) = capture_logs();
    let app = spawn_app().await;
    let r = rig(&app, Mode::Socket).await;
    let before = r.fake.connections();
    // The first attempt to reconnect finds Slack's connection endpoint failing.
    r.fake
        .fail_next("apps.connections.open", Fault::ServerError(503), 1);
    r.fake.drop_sockets();
    let later = app.desk.now() + chrono::Duration::seconds(61);
    let mut down = false;
    for _ in 0..200 {
        let health = app
            .desk
            .telemetry
            .adapters(later, chrono::Duration::seconds(60));
        if let Some(socket) = health.iter().find(|h| h.part == "socket_mode") {
            if socket.state == "down" {
                assert!(socket.reason.is_some(), "{health:#?}");
                down = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(down, "the failed reconnection is recorded");
    for _ in 0..200 {
        if r.fake.connections() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(r.fake.connections() > before, "reconnected");
    // The new connection's `hello` and the next envelope handled show it works again.
    let ack = r.cmd("UALICE", "/ticket list").await;
    assert!(text(&ack).contains("No tickets"), "{}", text(&ack));
    let health = app
        .desk
        .telemetry
        .adapters(later, chrono::Duration::seconds(60));
    let socket = health.iter().find(|h| h.part == "socket_mode").unwrap();
    assert_eq!(socket.state, "up", "{health:#?}");
    let errors = lines_at(&logs, "ERROR");
    assert!(errors.is_empty(), "{errors:#?}");
    let warned = lines_at(&logs, "WARN");
    assert!(
        warned
            .iter()
            .any(|l| l.contains("Socket Mode connection trouble")),
        "{warned:#?}"
    );
}

/// Socket Mode handles a connection's envelopes side by side: an event pushed while a
/// shortcut waits on a slow Slack (its modal needs Web API calls) is acknowledged first, once
/// it is committed, instead of queueing behind the shortcut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_envelope_does_not_hold_up_the_ones_behind_it() {
    let app = spawn_app().await;
    let r = rig(&app, Mode::Socket).await;
    r.fake.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "refund please",
        None,
    );
    r.fake.set_latency(Duration::from_millis(800));
    let shortcut = r
        .fake
        .message_shortcut("UBOB", "CHELP", "1772442000.000100", "create_ticket")
        .unwrap();
    let slow = r.fake.send_interaction(&Via::Socket, &shortcut);
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let id = r
            .fake
            .push_event(json!({"token": "XXYYZZ", "team_id": "T0SANDBOX",
                "api_app_id": "A0APP", "type": "event_callback", "event_id": "EvQ1",
                "event_time": 1_772_442_100, "event": {
                    "type": "reaction_added", "user": "UBOB", "reaction": "ticket",
                    "item_user": "UCUSTOMER", "event_ts": "1772442100.000100",
                    "item": {"type": "message", "channel": "CHELP", "ts": "1772442000.000100"}
            }}));
        r.wait_acked(1).await;
        id
    };
    let (ack, event) = tokio::join!(slow, quick);
    assert_eq!(ack.status, 200, "{ack:?}");
    let acked = r.fake.acked();
    assert_eq!(acked.len(), 2, "{acked:?}");
    assert_eq!(
        acked[0], event,
        "the event's ack did not wait for the shortcut"
    );
    assert_eq!(
        app.desk.store.inbox(None, 0).await.unwrap().len(),
        1,
        "committed before its ack"
    );
}
