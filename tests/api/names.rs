//! Names people can read: someone not under `[[people]]` is named everywhere by the name
//! their platform shows (asked through the real Slack client of the fake Slack, cached, and
//! stored for other instances and restarts), never by `slack:U0AGENT`; mentions in a name
//! ping nobody.

use std::sync::Arc;

use sandbox::slack::FakeSlack;
use switchboard::app::build_desk_with_store;
use switchboard::chat::slack::client::SlackApi;
use switchboard::config::{Config, Secret};
use switchboard::core::directory::Names;
use switchboard::core::message::OutKind;
use switchboard::core::types::{Platform, RoleRef, TicketRef, UserRef};

use crate::helpers::*;

/// An IT member by Slack user group, not listed under `[[people]]`.
fn agent() -> switchboard::core::directory::Actor {
    let mut a = slack("UAGENT");
    a.roles.push(RoleRef::new(Platform::Slack, "SIT"));
    a
}

async fn people_not_configured_are_named_as_their_platform_shows_them(app: TestApp) {
    let fake = FakeSlack::start("xoxb-names").await.unwrap();
    fake.add_user("UAGENT", "Agent Smith");
    fake.add_user("UCUSTOMER", "<!channel> Casey");
    let api = SlackApi::new(&fake.api_url, &Secret::new("xoxb-names")).unwrap();
    app.desk.accounts.register(Arc::new(api));

    app.ok(
        &slack("UCUSTOMER"),
        "/ticket new printer on fire department:it",
    )
    .await;
    app.ok(&agent(), "/ticket claim T-1").await;
    // The alert edit names the assignee.
    let alert = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|r| r.outgoing.kind == OutKind::AlertUpdate)
        .expect("the claim edits the alert");
    let rendered = serde_json::to_string(&alert.outgoing.message).unwrap();
    assert!(rendered.contains("Agent Smith"), "{rendered}");
    assert!(!rendered.contains("slack:UAGENT"), "{rendered}");
    // /ticket show names the reporter, the assignee and who did what.
    let shown = app.ok(&agent(), "/ticket show T-1").await;
    assert!(shown.contains("Assignee: Agent Smith"), "{shown}");
    assert!(
        shown.contains("Reporter: ") && shown.contains("Casey"),
        "{shown}"
    );
    assert!(!shown.contains("<!channel>"), "a name never pings: {shown}");
    assert!(!shown.contains("slack:UAGENT"), "{shown}");

    let alerts: Vec<String> = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .iter()
        .filter(|r| matches!(r.outgoing.kind, OutKind::Alert | OutKind::AlertUpdate))
        .map(|r| serde_json::to_string(&r.outgoing.message).unwrap())
        .collect();
    for a in &alerts {
        assert!(!a.contains("slack:UCUSTOMER"), "the reporter is named: {a}");
    }
    assert!(!shown.contains("slack:UCUSTOMER"), "{shown}");
    // Another instance on the same database (its own memory) knows the names from the
    // database, without asking Slack.
    let mut config: Config = (*app.desk.config).clone();
    config.directory.names = Names::default();
    let other = build_desk_with_store(
        config,
        app.second_store().await,
        Arc::new(app.clock.clone()),
    )
    .await
    .unwrap();
    let dir = &other.config.directory;
    assert_eq!(
        dir.display_name(&UserRef::new(Platform::Slack, "UAGENT")),
        "Agent Smith"
    );
    let t = other.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.assignee, Some(agent().user));
    // An account Slack does not know stays a reference.
    assert_eq!(
        app.desk
            .config
            .directory
            .display_name(&UserRef::new(Platform::Slack, "UNOBODY")),
        "slack:UNOBODY"
    );
}

crate::on_both_backends!(people_not_configured_are_named_as_their_platform_shows_them,);
