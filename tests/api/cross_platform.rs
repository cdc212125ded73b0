//! One Switchboard serving Slack and Discord at once, each through its real client against its
//! fake: a ticket flagged on one platform is delivered to its department's channel on the other,
//! and buttons and commands on either side act on the same ticket; a person linked across
//! platforms is one person in permissions and statistics.

use std::sync::Arc;
use std::time::Duration;

use sandbox::discord::{FakeDiscord, BOT_USER_ID};
use sandbox::slack::{FakeSlack, Via, BOT_USER};
use serde_json::json;
use switchboard::app::{serve, Adapters};
use switchboard::chat::discord::client::DiscordApi;
use switchboard::chat::discord::gateway::{Gateway, GatewaySettings};
use switchboard::chat::discord::interact::DiscordInteractions;
use switchboard::chat::discord::source::DiscordEventSource;
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::slack::interact::Interactions;
use switchboard::chat::slack::source::SlackEventSource;
use switchboard::chat::{Delivery, EventSource};
use switchboard::config::Secret;
use switchboard::core::types::{Status, TicketRef};
use switchboard::inbox::InboxWorker;
use switchboard::outbox::OutboxWorker;

use crate::helpers::*;

const SLACK_TOKEN: &str = "xoxb-cross";
const DISCORD_TOKEN: &str = "discord-cross";

struct Rig {
    slack: FakeSlack,
    discord: FakeDiscord,
    gateway: Option<Gateway>,
    inbox: InboxWorker,
    outbox: OutboxWorker,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn rig(app: &TestApp) -> Rig {
    let slack = FakeSlack::start(SLACK_TOKEN).await.unwrap();
    for (id, name) in [
        ("CHELP", "help"),
        ("CBILLING", "billing"),
        ("CSUPPORT", "support"),
        ("CLEADS", "leads"),
    ] {
        slack.add_channel(id, name, true);
    }
    for (id, name) in [("UALICE", "Alice"), ("UBOB", "Bob"), ("UCUSTOMER", "Casey")] {
        slack.add_user(id, name);
    }
    let discord = FakeDiscord::start(DISCORD_TOKEN).await.unwrap();
    discord.set_heartbeat_ms(250);
    for (id, name) in [
        ("2100", "help"),
        ("2001", "billing"),
        ("2002", "it-alerts"),
        ("2003", "leads"),
    ] {
        discord.add_channel(id, name);
    }
    discord.add_role("3001", "IT", 0);
    discord.add_member("1001", "Alice", &[]);
    discord.add_member("1002", "Bob", &[]);
    discord.add_member("1005", "Dana", &["3001"]);
    discord.add_member("1099", "Riley", &[]);
    let slack_api = SlackApi::new(&slack.api_url, &Secret::new(SLACK_TOKEN)).unwrap();
    let discord_api = DiscordApi::new(&discord.base_url, &Secret::new(DISCORD_TOKEN)).unwrap();
    let gateway = Gateway::start(
        discord_api.clone(),
        BOT_USER_ID.into(),
        app.desk.store.clone(),
        Arc::new(app.clock.clone()),
        GatewaySettings {
            interactions: Some(DiscordInteractions::new(
                app.desk.clone(),
                discord_api.clone(),
            )),
            ..GatewaySettings::default()
        },
    )
    .await
    .unwrap();
    assert!(gateway.wait_sessions(0, Duration::from_secs(10)).await > 0);
    let (inbox, outbox) = workers(
        app,
        vec![
            Arc::new(SlackEventSource::new(
                slack_api.clone(),
                app.desk.config.flag_emojis.clone(),
                Some(BOT_USER.into()),
            )) as Arc<dyn EventSource>,
            Arc::new(DiscordEventSource::new(
                discord_api.clone(),
                app.desk.config.flag_emojis.clone(),
            )),
        ],
        vec![
            Arc::new(slack_api.clone()) as Arc<dyn Delivery>,
            Arc::new(discord_api),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        app.desk.clone(),
        listener,
        Adapters {
            slack_interactions: Some(Interactions::new(app.desk.clone(), slack_api)),
            ..Adapters::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    Rig {
        slack,
        discord,
        gateway: Some(gateway),
        inbox,
        outbox,
        base,
        _stop: stop,
    }
}

impl Rig {
    fn via(&self, app: &TestApp) -> Via {
        Via::Http {
            base: self.base.clone(),
            secret: TEST_SIGNING_SECRET.into(),
            timestamp: Some(app.desk.now().timestamp()),
        }
    }

    async fn work(&self) {
        for _ in 0..3 {
            while self.inbox.round().await.unwrap() > 0 {}
            while self.outbox.round().await.unwrap() > 0 {}
        }
    }

    async fn inbox_rows(&self, app: &TestApp, n: usize) {
        for _ in 0..1000 {
            if app.desk.store.inbox(None, 0).await.unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the inbox never reached {n} rows");
    }

    async fn discord_answer(&self, token: &str) -> serde_json::Value {
        self.discord
            .answer(token)
            .await
            .expect("an answer from Discord's side")
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

async fn tickets_cross_platforms_both_ways_and_either_side_acts_on_them(app: TestApp) {
    let r = rig(&app).await;
    // Discord → Slack: no rule matches, so the fallback, support, whose channel is on Slack.
    let msg = r.discord.say("2100", "1099", "The dashboard will not load");
    r.discord.react("2100", &msg, "1002", "🎫");
    r.inbox_rows(&app, 1).await;
    r.work().await;
    let t1 = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        (t1.department.as_str(), t1.reporter.to_string()),
        ("support", "discord:1099".to_string())
    );
    let alert = r
        .slack
        .bot_messages()
        .into_iter()
        .find(|m| m.channel == "CSUPPORT")
        .expect("the Discord ticket's alert is in Slack #support");
    assert!(alert.text.contains("T-1"), "{alert:?}");
    // The reply went back to the Discord message.
    assert!(r
        .discord
        .sent()
        .iter()
        .any(|m| m.reply_to.as_deref() == Some(msg.as_str())));
    // Alice claims it with the Slack alert's button.
    let click = r
        .slack
        .click("UALICE", "CSUPPORT", &alert.ts, "claim:1")
        .unwrap();
    let ack = r.slack.send_interaction(&r.via(&app), &click).await;
    assert_eq!(ack.status, 200);
    r.work().await;
    let t1 = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t1.status, Status::InProgress);
    assert_eq!(
        t1.assignee.map(|a| a.to_string()).as_deref(),
        Some("slack:UALICE")
    );

    // Slack → Discord: an outage flag routes to it, whose channel is on Discord.
    r.slack.seed_message(
        "CHELP",
        "1772442000.000100",
        "UCUSTOMER",
        "VPN is down for everyone",
        None,
    );
    let event = json!({
        "token": "x", "team_id": "T0SANDBOX", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": "EvCross1", "event_time": 1_772_442_100, "authed_users": [BOT_USER],
        "event": { "type": "reaction_added", "user": "UBOB", "reaction": "rotating_light", "item_user": "UCUSTOMER",
                   "item": { "type": "message", "channel": "CHELP", "ts": "1772442000.000100" }, "event_ts": "1772442100.000100" }
    });
    app.desk
        .store
        .inbox_insert(
            "slack:event:EvCross1",
            None,
            "slack",
            &event,
            app.desk.now(),
        )
        .await
        .unwrap();
    r.work().await;
    let t2 = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(t2.department, "it");
    let alert = r
        .discord
        .sent()
        .into_iter()
        .find(|m| m.channel_id == "2002")
        .expect("the Slack ticket's alert is in Discord #it-alerts");
    // Dana (IT by Discord role) resolves it with the Discord alert's button.
    let token = r.discord.interact(
        3,
        "1005",
        "2002",
        json!({ "custom_id": "resolve:2", "component_type": 2 }),
        Some(&alert.id),
    );
    let answer = r.discord_answer(&token).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap_or("")
            .contains("resolved"),
        "{answer}"
    );
    r.work().await;
    assert_eq!(
        app.desk.ticket(TicketRef(2)).await.unwrap().status,
        Status::Resolved
    );
    let edited = r
        .discord
        .sent()
        .into_iter()
        .find(|m| m.id == alert.id)
        .unwrap();
    assert!(edited.edits >= 1, "the Discord alert shows the new state");
    // The Slack reporter is asked for CSAT in Slack.
    assert!(r
        .slack
        .bot_messages()
        .iter()
        .any(|m| m.channel.starts_with('D') || m.channel == "UCUSTOMER"));

    // Commands on either side act on the same ticket: Alice claimed T-1 in Slack and notes it
    // from Discord; her Discord account is linked to her person, who is a support member
    // (Bob's Discord account is not: he is billing).
    let data = json!({
        "id": "1", "name": "ticket", "type": 1,
        "options": [{ "name": "note", "type": 1, "options": [
            { "name": "ticket", "type": 3, "value": "T-1" }, { "name": "text", "type": 3, "value": "Cache cleared" }
        ]}]
    });
    let token = r.discord.interact(2, "1002", "2100", data.clone(), None);
    let answer = r.discord_answer(&token).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap_or("")
            .contains("member of support"),
        "{answer}"
    );
    let token = r.discord.interact(2, "1001", "2100", data, None);
    let answer = r.discord_answer(&token).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap_or("")
            .contains("T-1 has your note"),
        "{answer}"
    );
    let notes: Vec<_> = app
        .desk
        .store
        .events(TicketRef(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| format!("{:?}", e.kind).contains("Cache cleared"))
        .collect();
    assert_eq!(notes.len(), 1);
    // Her Slack claim and Discord note count for one person in the digest's earned figures.
    let dir = &app.desk.config.directory;
    assert_eq!(
        dir.identity_key(&notes[0].actor.clone().unwrap()),
        dir.identity_key(&switchboard::core::types::UserRef::new(
            switchboard::core::types::Platform::Slack,
            "UALICE"
        ))
    );
    r.stop().await;
}

crate::on_both_backends!(tickets_cross_platforms_both_ways_and_either_side_acts_on_them);
