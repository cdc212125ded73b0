//! Discord end to end: the real serenity client connects to the fake Discord's gateway over
//! WebSocket and calls its REST routes over HTTP. A reaction dispatch becomes an inbox row,
//! the inbox worker completes it (fetching the message), the desk makes the ticket and the
//! outbox worker posts the reply and the alert, with nonces and `allowed_mentions`.

use std::sync::Arc;
use std::time::Duration;

use sandbox::discord::{FakeDiscord, Fault, BOT_USER_ID, INTENT_MESSAGE_CONTENT};
use serde_json::Value;
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::source::DiscordEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::core::types::TicketRef;
use switchboard::inbox::InboxWorker;
use switchboard::outbox::OutboxWorker;

use crate::helpers::*;

const TOKEN: &str = "discord-sandbox-token";
/// Where customers write.
const HELP: &str = "2100";
const CUSTOMER: &str = "1099";
const OUTSIDER: &str = "1010";
/// Dana holds the IT role (3001).
const DANA: &str = "1005";

struct Rig {
    fake: FakeDiscord,
    gateway: Option<Gateway>,
    inbox: InboxWorker,
    outbox: OutboxWorker,
}

async fn fake() -> FakeDiscord {
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
    fake.add_member("1001", "Alice", &[]);
    fake.add_member("1002", "Bob", &[]);
    fake.add_member(DANA, "Dana", &["3001"]);
    fake.add_member(CUSTOMER, "Casey", &[]);
    fake.add_member(OUTSIDER, "Olly", &[]);
    fake
}

async fn rig_with(app: &TestApp, fake: FakeDiscord) -> Rig {
    let api = DiscordApi::new(&fake.base_url, &Secret::new(TOKEN)).unwrap();
    let gateway = Gateway::start(
        api.clone(),
        BOT_USER_ID.to_string(),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        GatewaySettings::default(),
    )
    .await
    .unwrap();
    assert!(
        gateway.wait_sessions(0, Duration::from_secs(10)).await >= 1,
        "the gateway becomes ready"
    );
    let source = DiscordEventSource::new(api.clone(), app.desk.config.flag_emojis.clone());
    let (inbox, outbox) = workers(
        app,
        vec![Arc::new(source) as Arc<dyn EventSource>],
        vec![Arc::new(api) as Arc<dyn Delivery>],
    );
    Rig {
        fake,
        gateway: Some(gateway),
        inbox,
        outbox,
    }
}

async fn rig(app: &TestApp) -> Rig {
    rig_with(app, fake().await).await
}

impl Rig {
    /// Waits until the inbox holds `n` rows (the gateway handler stores dispatches as they
    /// arrive), failing loudly after 10 s.
    async fn inbox_rows(&self, app: &TestApp, n: usize) {
        for _ in 0..1000 {
            if app.desk.store.inbox(None, 0).await.unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the inbox never reached {n} rows");
    }

    async fn work(&self) {
        while self.inbox.round().await.unwrap() > 0 {}
        while self.outbox.round().await.unwrap() > 0 {}
    }

    /// A customer's message in #help flagged by `flagger` with `emoji`; waits for the inbox
    /// row `n` and works it through.
    async fn flag(
        &self,
        app: &TestApp,
        text: &str,
        flagger: &str,
        emoji: &str,
        n: usize,
    ) -> String {
        let id = self.fake.say(HELP, CUSTOMER, text);
        self.fake.react(HELP, &id, flagger, emoji);
        self.inbox_rows(app, n).await;
        self.work().await;
        id
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// Validates every message create and edit, interaction answer and command registration the
/// fake received against Discord's OpenAPI spec.
pub fn assert_bodies_match_discords_schema(fake: &FakeDiscord) {
    let spec: Value = serde_json::from_str(include_str!(
        "../fixtures/platform-specs/discord/openapi.json"
    ))
    .unwrap();
    let mut checked = 0;
    for r in fake.requests() {
        let op = match (r.method.as_str(), r.route.as_str()) {
            ("POST", "/channels/{channel_id}/messages") => "post",
            ("PATCH", "/channels/{channel_id}/messages/{message_id}") => "patch",
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback") => "post",
            ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") => "patch",
            ("PUT", "/applications/{application_id}/commands") => "put",
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands") => "put",
            _ => continue,
        };
        let mut schema = spec["paths"][&r.route][op]["requestBody"]["content"]["application/json"]
            ["schema"]
            .clone();
        assert!(!schema.is_null(), "the spec has {op} {}", r.route);
        schema["components"] = spec["components"].clone();
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .unwrap();
        let mut body = r.body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("_files");
        }
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{op} {}: {errors:#?}\n{body:#}", r.route);
        checked += 1;
    }
    assert!(checked > 0, "some bodies were checked");
}

async fn a_reaction_becomes_a_ticket_a_reply_and_an_alert(app: TestApp) {
    let r = rig(&app).await;
    let msg = r
        .flag(&app, "Hi, I was charged twice for March", "1002", "🎫", 1)
        .await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.department, "billing");
    let src = t.source.clone().unwrap();
    assert_eq!(src.original_text, "Hi, I was charged twice for March");
    assert_eq!(
        src.permalink.as_deref(),
        Some(format!("https://discord.com/channels/700000000000000001/{HELP}/{msg}").as_str())
    );
    assert_eq!(t.reporter.to_string(), format!("discord:{CUSTOMER}"));
    assert_eq!(src.author_name.as_deref(), Some("Casey"));
    let mut sent = r.fake.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    // The reply and the alert go to different channels, at once: in either order.
    sent.sort_by_key(|m| m.channel_id != HELP);
    let reply = &sent[0];
    assert_eq!(reply.channel_id, HELP);
    assert_eq!(
        reply.reply_to.as_deref(),
        Some(msg.as_str()),
        "a reply to the flagged message"
    );
    // With knowledge base suggestions (and their buttons) the text is an embed's.
    let shown = format!("{} {}", reply.content, serde_json::json!(reply.embeds));
    assert!(
        shown.contains("T-1") && shown.contains("billing"),
        "{shown}"
    );
    let alert = &sent[1];
    assert_eq!(alert.channel_id, "2001");
    assert!(alert.embeds[0]["title"]
        .as_str()
        .unwrap()
        .starts_with("T-1 "));
    let buttons = &alert.components[0]["components"];
    assert_eq!(buttons[0]["custom_id"], "claim:1");
    assert_eq!(buttons[1]["custom_id"], "resolve:1");
    for m in &sent {
        assert!(
            m.nonce.as_deref().is_some_and(|n| n.starts_with("sb")),
            "{m:?}"
        );
        assert_eq!(
            m.allowed_mentions.as_ref().unwrap()["parse"],
            serde_json::json!([])
        );
    }
    let creates: Vec<_> = r
        .fake
        .requests()
        .into_iter()
        .filter(|q| q.method == "POST" && q.route == "/channels/{channel_id}/messages")
        .collect();
    assert!(creates.iter().all(|q| q.body["enforce_nonce"] == true));
    assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

async fn a_flag_by_someone_not_allowed_makes_no_ticket(app: TestApp) {
    let r = rig(&app).await;
    r.flag(&app, "printer on fire", OUTSIDER, "🎫", 1).await;
    assert_eq!(
        ticket_count(&app).await,
        0,
        "who = members: Olly is in no department"
    );
    assert!(r.fake.sent().is_empty());
    // A reaction that is not a flag emoji is ignored too.
    r.flag(&app, "nice", "1002", "👍", 2).await;
    assert_eq!(ticket_count(&app).await, 0);
    r.stop().await;
}

async fn a_repeated_dispatch_and_a_second_flag_make_one_ticket(app: TestApp) {
    let r = rig(&app).await;
    let msg = r.flag(&app, "refund please", "1002", "🎫", 1).await;
    // Discord may send a dispatch again (a replay after RESUME): the same key, no new row.
    r.fake.react(HELP, &msg, "1002", "🎫");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.desk.store.inbox(None, 0).await.unwrap().len(), 1);
    // Another person flags the same message: a new event, the same ticket.
    r.fake.react(HELP, &msg, "1001", "🎫");
    r.inbox_rows(&app, 2).await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 1);
    let alerts = r
        .fake
        .sent()
        .iter()
        .filter(|m| m.channel_id == "2001")
        .count();
    assert_eq!(alerts, 1, "one alert");
    r.stop().await;
}

async fn edits_and_deletions_of_the_flagged_message_are_recorded(app: TestApp) {
    let r = rig(&app).await;
    let msg = r.flag(&app, "refund for order 7", "1002", "🎫", 1).await;
    r.fake.edit(&msg, "refund for order 8, sorry");
    r.inbox_rows(&app, 2).await;
    r.fake.delete(&msg);
    r.inbox_rows(&app, 3).await;
    r.work().await;
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    let described: Vec<String> = events.iter().map(|e| format!("{:?}", e.kind)).collect();
    assert!(
        described
            .iter()
            .any(|d| d.contains("refund for order 8, sorry")),
        "{described:#?}"
    );
    assert!(
        described.iter().any(|d| d == "SourceDeleted"),
        "{described:#?}"
    );
    r.stop().await;
}

async fn a_dropped_gateway_resumes_and_the_next_flag_is_handled(app: TestApp) {
    let r = rig(&app).await;
    r.flag(&app, "refund please", "1002", "🎫", 1).await;
    r.fake.drop_connections();
    // The flag happens while the bot is away; the session replays it after RESUME.
    let msg = r.fake.say(HELP, CUSTOMER, "charged twice again");
    r.fake.react(HELP, &msg, "1002", "🎫");
    r.inbox_rows(&app, 2).await;
    r.work().await;
    assert_eq!(ticket_count(&app).await, 2);
    assert!(r.fake.resumes() >= 1, "serenity resumed");
    assert_eq!(r.fake.identifies().len(), 1, "without identifying again");
    r.stop().await;
}

async fn an_invalid_session_makes_the_bot_identify_again(app: TestApp) {
    let r = rig(&app).await;
    let seen = r.gateway.as_ref().unwrap().sessions();
    r.fake.invalidate_sessions(false);
    let now = r
        .gateway
        .as_ref()
        .unwrap()
        .wait_sessions(seen, Duration::from_secs(20))
        .await;
    assert!(now > seen, "a new READY after INVALID_SESSION");
    assert_eq!(r.fake.identifies().len(), 2);
    r.flag(&app, "refund please", "1002", "🎫", 1).await;
    assert_eq!(ticket_count(&app).await, 1);
    r.stop().await;
}

async fn without_the_message_content_intent_the_bot_runs_and_links_the_message(app: TestApp) {
    let fake = fake().await;
    fake.set_message_content_allowed(false);
    let r = rig_with(&app, fake).await;
    assert!(!r.gateway.as_ref().unwrap().message_content());
    let ids = r.fake.identifies();
    assert_eq!(ids.len(), 2, "{ids:#?}");
    assert_ne!(
        ids[0]["intents"].as_u64().unwrap() & INTENT_MESSAGE_CONTENT,
        0
    );
    assert_eq!(
        ids[1]["intents"].as_u64().unwrap() & INTENT_MESSAGE_CONTENT,
        0
    );
    let msg = r.flag(&app, "charged twice", "1002", "🎫", 1).await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    let text = &t.source.unwrap().original_text;
    assert!(
        text.contains(&format!("/{HELP}/{msg}")),
        "the link stands in: {text}"
    );
    assert_eq!(t.department, "support", "no text to route on: the fallback");
    r.stop().await;
}

async fn mentions_in_flagged_text_ping_nobody(app: TestApp) {
    let r = rig(&app).await;
    r.flag(
        &app,
        "@everyone @here <@&3001> <@1001> charged twice!",
        "1002",
        "🎫",
        1,
    )
    .await;
    let sent = r.fake.sent();
    assert_eq!(sent.len(), 2);
    for m in &sent {
        assert!(
            FakeDiscord::pinged(m).is_empty(),
            "{m:#?} pings {:?}",
            FakeDiscord::pinged(m)
        );
        assert_eq!(
            m.allowed_mentions.as_ref().unwrap()["parse"],
            serde_json::json!([])
        );
    }
    let alert = serde_json::to_string(&sent[1].embeds).unwrap();
    assert!(
        !alert.contains("@everyone") && !alert.contains("<@"),
        "{alert}"
    );
    r.stop().await;
}

async fn a_429_is_honoured_and_a_5xx_retried_and_the_alert_arrives_once(app: TestApp) {
    let r = rig(&app).await;
    r.fake.fail(
        "POST /channels/{channel_id}/messages",
        &[Fault::RateLimited(0.5), Fault::ServerError(502)],
    );
    let msg = r.fake.say(HELP, CUSTOMER, "refund please");
    r.fake.react(HELP, &msg, "1002", "🎫");
    r.inbox_rows(&app, 1).await;
    while r.inbox.round().await.unwrap() > 0 {}
    let creates = |f: &FakeDiscord| {
        f.requests()
            .iter()
            .filter(|q| q.method == "POST" && q.route == "/channels/{channel_id}/messages")
            .count()
    };
    // The thread reply and the alert go to different channels: one meets the 429, the other
    // the 502 (or, the route being new, one goes first and the other follows its answer).
    r.outbox.round().await.unwrap();
    let first = creates(&r.fake);
    assert!((1..=2).contains(&first), "{first}");
    assert!(r.fake.sent().len() < 2, "429 (and 502) first");
    // Due again by the worker's clock, but Discord's half second has not passed: no call.
    app.clock.advance(chrono::Duration::seconds(1));
    r.outbox.round().await.unwrap();
    let second = creates(&r.fake);
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.clock.advance(chrono::Duration::seconds(60));
    while r.outbox.round().await.unwrap() > 0 {}
    assert!(creates(&r.fake) > second, "retried after retry_after");
    let sent = r.fake.sent();
    assert_eq!(
        sent.iter().filter(|m| m.channel_id == "2001").count(),
        1,
        "the alert once"
    );
    assert_eq!(sent.len(), 2, "{sent:#?}");
    r.stop().await;
}

async fn a_retried_create_is_deduplicated_by_its_nonce(app: TestApp) {
    // The first create reached Discord but its answer was lost (the worker died): the retry
    // carries the same nonce with enforce_nonce, so Discord returns the first message.
    let r = rig(&app).await;
    app.ok(&alice(), "/ticket new printer jam department:billing")
        .await;
    let row = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.outgoing.target.platform() == switchboard::core::types::Platform::Discord)
        .unwrap();
    let api = DiscordApi::new(&r.fake.base_url, &Secret::new(TOKEN)).unwrap();
    let key = format!("switchboard-outbox-{}", row.id);
    let first = api
        .post(&row.outgoing.target, &row.outgoing.message, &key)
        .await
        .unwrap();
    let again = api
        .post(&row.outgoing.target, &row.outgoing.message, &key)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(r.fake.sent().len(), 1);
    r.stop().await;
}

/// A digest reaches Discord as embeds (one per department, within Discord's limits) and its
/// chart as an attachment of the next message.
async fn a_digest_posts_its_embeds_and_attaches_its_chart(app: TestApp) {
    // Wednesday: no scheduled fire is within its grace window, so only `/digest now` posts.
    app.clock.advance(chrono::Duration::days(2));
    let r = rig(&app).await;
    app.ok(&slack("UC"), "/ticket new refund please").await;
    app.ok(&alice(), "/kudos give <@UBOB> for the refund queue")
        .await;
    let said = app.ok(&carol(), "/digest now weekly").await;
    assert!(said.contains("on its way"), "{said}");
    while r.outbox.round().await.unwrap() > 0 {}
    let leads: Vec<_> = r
        .fake
        .sent()
        .into_iter()
        .filter(|m| m.channel_id == "2003")
        .collect();
    assert_eq!(leads.len(), 2, "the text and the chart: {leads:#?}");
    let digest = &leads[0];
    assert!(digest.embeds[0]["title"]
        .as_str()
        .unwrap()
        .starts_with("Digest `weekly`"));
    let titles: Vec<&str> = digest
        .embeds
        .iter()
        .filter_map(|e| e["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"billing") && titles.contains(&"Shout-outs"),
        "{titles:?}"
    );
    let total: usize = digest
        .embeds
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .sum();
    assert!(total > 0 && digest.embeds.len() <= 10);
    assert!(FakeDiscord::pinged(digest).is_empty());
    let chart = &leads[1];
    assert_eq!(chart.files.len(), 1, "{chart:#?}");
    assert_eq!(chart.files[0].0, "digest-weekly.png");
    let img =
        image::load_from_memory_with_format(&chart.files[0].1, image::ImageFormat::Png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (switchboard::chart::WIDTH, switchboard::chart::HEIGHT)
    );
    let upload = r
        .fake
        .requests()
        .into_iter()
        .find(|q| !q.body["_files"].is_null() && q.path == "channels/2003/messages")
        .expect("a multipart create");
    assert_eq!(
        upload.body["attachments"][0]["filename"],
        "digest-weekly.png"
    );
    assert_eq!(upload.body["_files"][0]["field"], "files[0]");
    assert_bodies_match_discords_schema(&r.fake);
    r.stop().await;
}

/// A staff member's reply to the flagged message is the ticket's first response; the
/// customer's own reply is not, and replies to other messages are not even stored.
async fn a_staff_reply_to_the_flagged_message_is_the_first_response(app: TestApp) {
    let r = rig(&app).await;
    let msg = r.flag(&app, "refund for order 9", "1002", "🎫", 1).await;
    let other = r.fake.say(HELP, CUSTOMER, "unrelated chatter");
    r.fake.reply(HELP, CUSTOMER, &other, "still unrelated");
    r.fake.reply(HELP, CUSTOMER, &msg, "any news?");
    r.inbox_rows(&app, 2).await;
    r.work().await;
    assert!(app
        .desk
        .ticket(TicketRef(1))
        .await
        .unwrap()
        .first_response_at
        .is_none());
    app.clock.advance(chrono::Duration::minutes(7));
    r.fake
        .reply(HELP, "1002", &msg, "Refund issued, sorry about that!");
    r.inbox_rows(&app, 3).await;
    r.work().await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        t.first_response_at.map(|at| at - t.created_at),
        Some(chrono::Duration::minutes(7))
    );
    assert_eq!(
        app.desk.store.inbox(None, 0).await.unwrap().len(),
        3,
        "chatter is not stored"
    );
    r.stop().await;
}

/// The replies to a flagged message are kept for its transcript with their author, time,
/// edits and deletion; `tickets export --format json` includes them.
async fn replies_to_the_flagged_message_are_kept_with_edits_and_deletions(app: TestApp) {
    let r = rig(&app).await;
    let msg = r.flag(&app, "refund for order 9", "1002", "🎫", 1).await;
    let asked = r.fake.reply(HELP, CUSTOMER, &msg, "any news? @everyone");
    let answered = r.fake.reply(HELP, "1002", &msg, "Refund isued");
    r.inbox_rows(&app, 3).await;
    r.work().await;
    r.fake.edit(&answered, "Refund issued, sorry about that!");
    r.fake.delete(&asked);
    r.inbox_rows(&app, 5).await;
    r.work().await;
    let replies = app.desk.store.thread_replies(TicketRef(1)).await.unwrap();
    let seen = replies_seen(&app, TicketRef(1)).await;
    assert_eq!(
        seen,
        [
            (
                format!("discord:{CUSTOMER}"),
                "any news? @everyone".to_string(),
                false,
                true
            ),
            (
                "discord:1002".to_string(),
                "Refund issued, sorry about that!".to_string(),
                true,
                false
            ),
        ]
    );
    assert_eq!(replies[0].message_id, asked);
    assert_eq!(replies[1].channel.to_string(), format!("discord:{HELP}"));
    // The flagged message kept its own text.
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        t.source.as_ref().unwrap().original_text,
        "refund for order 9"
    );
    let mut out = Vec::new();
    switchboard::tickets_cli::write_json(&mut out, &app.desk.store, std::slice::from_ref(&t))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["replies"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["replies"][0]["author"]["id"], CUSTOMER);
    r.stop().await;
}

crate::on_both_backends!(
    replies_to_the_flagged_message_are_kept_with_edits_and_deletions,
    a_staff_reply_to_the_flagged_message_is_the_first_response,
    a_digest_posts_its_embeds_and_attaches_its_chart,
    a_reaction_becomes_a_ticket_a_reply_and_an_alert,
    a_flag_by_someone_not_allowed_makes_no_ticket,
    a_repeated_dispatch_and_a_second_flag_make_one_ticket,
    edits_and_deletions_of_the_flagged_message_are_recorded,
    a_dropped_gateway_resumes_and_the_next_flag_is_handled,
    an_invalid_session_makes_the_bot_identify_again,
    without_the_message_content_intent_the_bot_runs_and_links_the_message,
    mentions_in_flagged_text_ping_nobody,
    a_429_is_honoured_and_a_5xx_retried_and_the_alert_arrives_once,
    a_retried_create_is_deduplicated_by_its_nonce,
);
