//! The help desk's use cases end to end through the real SQLite store: flagging, every
//! `/ticket` subcommand, permissions, kudos, metrics and digests.

use chrono::Duration;
use switchboard::core::message::{OutKind, Target};
use switchboard::core::ticket::EventKind;
use switchboard::core::types::{Priority, Status, TicketRef};
use switchboard::desk::DeskError;
use switchboard::store::TicketFilter;

use crate::helpers::*;

async fn a_flag_writes_ticket_event_alerts_and_thread_reply_together(app: TestApp) {
    let src = source(
        "slack:CHELP",
        "1700000000.000100",
        "I was charged twice <!channel>, please refund",
    );
    let o = app.flag(&bob(), ":ticket:", src).await.unwrap();
    assert!(o.created);
    let t = &o.ticket;
    assert_eq!(t.id, TicketRef(1));
    assert_eq!(t.department, "billing");
    assert_eq!(t.priority, Priority::High);
    assert_eq!(t.tags, vec!["money"]);
    assert_eq!(
        t.reporter,
        customer(),
        "the message's author is the reporter"
    );
    assert_eq!(o.decision.rule, Some((2, "refunds".into())));

    let events = app.desk.store.events(t.id).await.unwrap();
    assert_eq!(
        events.len(),
        2,
        "opened, and what the knowledge base suggested"
    );
    assert!(matches!(events[1].kind, EventKind::KbSuggested { .. }));
    assert_eq!(
        events[0].actor,
        Some(bob().user),
        "the flagger is the actor"
    );
    assert!(
        matches!(&events[0].kind, EventKind::Created { rule: Some(r), emoji: Some(e), .. } if r == "refunds" && e == "ticket")
    );

    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let targets: Vec<String> = rows.iter().map(|r| r.outgoing.target.to_string()).collect();
    assert_eq!(
        targets,
        [
            "slack:CHELP (thread 1700000000.000100)",
            "slack:CBILLING",
            "discord:2001"
        ]
    );
    assert!(rows
        .iter()
        .all(|r| r.outgoing.ticket == Some(t.id) && r.status == "pending"));
    let alert = &rows[1].outgoing;
    assert_eq!(alert.kind, OutKind::Alert);
    let buttons: Vec<&str> = alert
        .message
        .buttons
        .iter()
        .map(|b| b.action_id.as_str())
        .collect();
    // The test config turns the web view on: its button too.
    assert_eq!(buttons, ["claim:1", "resolve:1", "web:1"]);
    assert!(
        !alert.message.text.contains("<!channel>"),
        "re-posted text is neutralised: {}",
        alert.message.text
    );
    assert!(
        rows[0].outgoing.message.text.contains("T-1"),
        "{}",
        rows[0].outgoing.message.text
    );
}

async fn a_second_flag_on_the_same_message_points_to_the_existing_ticket(app: TestApp) {
    let src = source("slack:CHELP", "1700000000.000100", "refund please");
    let first = app.flag(&bob(), "ticket", src.clone()).await.unwrap();
    let again = app.flag(&alice(), "🎫", src.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.ticket.id, first.ticket.id);
    let all = app
        .desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    let events = app.desk.store.events(first.ticket.id).await.unwrap();
    assert_eq!(events.last().unwrap().kind, EventKind::Reflagged);
    assert_eq!(
        app.desk.store.outbox(None, 0).await.unwrap().len(),
        3,
        "no second alert"
    );
}

async fn flags_from_people_not_allowed_or_with_other_emojis_write_nothing(app: TestApp) {
    let src = source("slack:CHELP", "1.1", "hello");
    let err = app
        .flag(&slack("USTRANGER"), "ticket", src.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, DeskError::Access(_)), "{err}");
    assert!(err.to_string().contains("[flagging]"), "{err}");
    let err = app.flag(&bob(), "thumbsup", src).await.unwrap_err();
    assert!(
        err.to_string().contains(":thumbsup: is not a flag emoji"),
        "{err}"
    );
    assert!(app
        .desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(app.desk.store.outbox(None, 0).await.unwrap().is_empty());
}

async fn members_through_roles_and_groups_may_flag_and_rules_see_the_emoji(app: TestApp) {
    let mut src = source("discord:2009", "9001", "site is down");
    src.author =
        switchboard::core::types::UserRef::new(switchboard::core::types::Platform::Discord, "5555");
    let o = app.flag(&dave(), "rotating_light", src).await.unwrap();
    assert_eq!(
        (o.ticket.department.as_str(), o.ticket.priority),
        ("it", Priority::Urgent)
    );
}

async fn ticket_new_routes_by_rules_or_by_the_department_given(app: TestApp) {
    let out = app
        .ok(&slack("UCUSTOMER"), "/ticket new I need a refund for May")
        .await;
    assert!(
        out.contains("Opened T-1 for billing (rule `refunds`)"),
        "{out}"
    );
    let out = app
        .ok(
            &slack("UCUSTOMER"),
            "/ticket new Laptop is slow department:it priority:low tags:hw",
        )
        .await;
    assert!(
        out.contains("Opened T-2 for it (your choice), priority low"),
        "{out}"
    );
    let out = app.ok(&slack("UCUSTOMER"), "/ticket new Hello there").await;
    assert!(out.contains("for support (the fallback)"), "{out}");
    let err = app
        .user_error(&slack("UCUSTOMER"), "/ticket new x department:legal")
        .await;
    assert!(
        err.contains("no department called `legal`. Known departments: billing, it, support"),
        "{err}"
    );
    let t = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(t.tags, vec!["hw"]);
    assert_eq!(t.reporter, slack("UCUSTOMER").user);
}

async fn the_life_of_a_ticket_through_every_working_subcommand(app: TestApp) {
    app.ok(&slack("UCUSTOMER"), "/ticket new Refund for invoice 7")
        .await;
    app.clock.advance(Duration::minutes(10));

    let out = app.ok(&bob(), "/ticket claim T-1").await;
    assert!(
        out.contains("T-1 is yours. It is now in progress."),
        "{out}"
    );
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        t.first_response_at,
        Some(t.created_at + Duration::minutes(10))
    );

    app.ok(&bob(), "/ticket assign T-1 <@UCAROL|carol>").await;
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().assignee,
        Some(carol().user)
    );
    app.ok(&bob(), "/ticket priority T-1 urgent").await;
    app.ok(&bob(), "/ticket note T-1 Stripe shows two charges")
        .await;
    app.ok(&bob(), "/ticket status T-1 waiting").await;
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::WaitingOnCustomer
    );
    app.ok(&bob(), "/ticket status T-1 resolved").await;
    let err = app
        .user_error(&bob(), "/ticket status T-1 in_progress")
        .await;
    assert!(
        err.contains("T-1 cannot go from resolved to in progress"),
        "{err}"
    );
    app.ok(&bob(), "/ticket close T-1 refunded").await;
    let err = app.user_error(&bob(), "/ticket priority T-1 low").await;
    assert!(
        err.contains("reopen it first with `/ticket reopen T-1`"),
        "{err}"
    );
    app.ok(&bob(), "/ticket reopen T-1 customer charged again")
        .await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        (t.status, t.closed_at, t.resolved_at),
        (Status::Open, None, None)
    );
    app.ok(&bob(), "/ticket route T-1 support").await;
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.department, "support");

    let show = app.ok(&alice(), "/ticket show T-1").await;
    for want in [
        "status open → in progress",
        "assignee Bob → Carol",
        "priority high → urgent",
        "note: Stripe shows two charges",
        "department billing → support",
        "(customer charged again)",
    ] {
        assert!(show.contains(want), "show lacks `{want}`:\n{show}");
    }
    let explain = app.ok(&alice(), "/ticket explain T-1").await;
    assert!(
        explain.contains("routed to billing by rule `refunds` because text mentions \"Refund\""),
        "{explain}"
    );
    assert!(
        explain.contains("moved it from billing to support"),
        "{explain}"
    );

    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    assert!(
        events.iter().skip(1).all(|e| e.actor.is_some()),
        "every change records its actor"
    );

    // The billing alert was updated for each visible change and the support channel got a new
    // alert when the ticket moved; the note changed nothing anyone sees.
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let updates = rows
        .iter()
        .filter(|r| r.outgoing.kind == OutKind::AlertUpdate)
        .count();
    let alerts: Vec<String> = rows
        .iter()
        .filter(|r| r.outgoing.kind == OutKind::Alert)
        .map(|r| r.outgoing.target.to_string())
        .collect();
    assert_eq!(alerts, ["slack:CBILLING", "discord:2001", "slack:CSUPPORT"]);
    assert_eq!(
        updates,
        2 * 8,
        "claim, assign, priority, waiting, resolved, closed, reopened, routed × 2 billing channels"
    );
}

async fn list_filters_by_status_department_and_linked_assignee(app: TestApp) {
    app.ok(&slack("UC1"), "/ticket new refund one").await;
    app.ok(&slack("UC2"), "/ticket new printer broken department:it")
        .await;
    app.ok(&slack("UC3"), "/ticket new refund three").await;
    app.ok(&bob(), "/ticket claim T-3").await;
    let out = app.ok(&bob(), "/ticket list").await;
    assert!(
        out.contains("T-1") && out.contains("T-2") && out.contains("T-3"),
        "{out}"
    );
    let out = app.ok(&alice(), "/ticket list department:it").await;
    assert!(out.contains("T-2") && !out.contains("T-1"), "{out}");
    // Bob claimed on Slack; asking for his Discord account finds it too.
    let out = app.ok(&bob(), "/ticket list assignee:discord:1002").await;
    assert!(out.contains("T-3") && !out.contains("T-1"), "{out}");
    let out = app.ok(&bob(), "/ticket list status:closed").await;
    assert!(out.contains("No tickets match"), "{out}");
}

async fn permissions_are_checked_before_any_change(app: TestApp) {
    app.ok(&slack("UCUSTOMER"), "/ticket new refund please")
        .await;
    app.ok(&slack("UCUSTOMER"), "/ticket new printer jam department:it")
        .await;
    // A customer may open and see their own ticket, nothing more.
    app.ok(&slack("UCUSTOMER"), "/ticket show T-1").await;
    let err = app.user_error(&slack("UOTHER"), "/ticket show T-1").await;
    assert!(err.contains("a member of billing to see T-1"), "{err}");
    let err = app
        .user_error(&slack("UCUSTOMER"), "/ticket claim T-1")
        .await;
    assert!(
        err.contains("You need to be a member of billing to claim T-1"),
        "{err}"
    );
    let err = app.user_error(&slack("UCUSTOMER"), "/ticket list").await;
    assert!(err.contains("a member of a department"), "{err}");
    // Bob is billing, not it.
    let err = app.user_error(&bob(), "/ticket close T-2").await;
    assert!(err.contains("a member of it"), "{err}");
    // Dave is it through his Discord role; Erin through her Slack user group.
    app.ok(&dave(), "/ticket claim T-2").await;
    let mut erin = slack("UERIN");
    erin.roles.push(switchboard::core::types::RoleRef::new(
        switchboard::core::types::Platform::Slack,
        "SIT",
    ));
    app.ok(&erin, "/ticket note T-2 on it").await;
    // Leads and admins.
    let err = app.user_error(&bob(), "/digest now weekly").await;
    assert!(err.contains("a department lead to post digests"), "{err}");
    app.ok(&carol(), "/digest now weekly").await;
    app.ok(&discord("1001"), "/ticket close T-1").await; // Alice, admin, from Discord
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.status, Status::Closed);
    let t2 = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(t2.assignee, Some(dave().user));
    assert_eq!(
        app.desk.store.events(TicketRef(1)).await.unwrap().len(),
        3,
        "refusals wrote nothing (opened, the knowledge base's suggestions, closed)"
    );
}

async fn unknown_tickets_and_departments_say_how_to_find_the_right_one(app: TestApp) {
    let err = app.user_error(&bob(), "/ticket claim T-99").await;
    assert_eq!(
        err,
        "There is no ticket T-99. `/ticket list` shows the open ones."
    );
    app.ok(&slack("UC"), "/ticket new refund").await;
    let err = app.user_error(&bob(), "/ticket route T-1 legal").await;
    assert!(
        err.contains("Known departments: billing, it, support"),
        "{err}"
    );
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().department,
        "billing"
    );
}

async fn buttons_claim_and_resolve_like_the_commands(app: TestApp) {
    app.ok(&slack("UC"), "/ticket new refund").await;
    let r = app.desk.press(&discord("1002"), "claim:1").await.unwrap();
    assert!(
        r.message.text.contains("T-1 is now in progress"),
        "{}",
        r.message.text
    );
    let err = app.desk.press(&slack("UC"), "resolve:1").await.unwrap_err();
    assert!(matches!(err, DeskError::Access(_)));
    app.desk.press(&bob(), "resolve:1").await.unwrap();
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
    assert!(app
        .desk
        .press(&bob(), "explode:1")
        .await
        .unwrap_err()
        .is_user_error());
}

async fn concurrent_changes_to_one_ticket_all_land_in_the_audit_log(app: TestApp) {
    app.ok(&slack("UC"), "/ticket new refund").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let desk = app.desk.clone();
        tasks.push(tokio::spawn(async move {
            let inv = desk
                .commands
                .parse_text("ticket", &format!("note T-1 note {i}"))
                .unwrap()
                .unwrap();
            switchboard::cmd::try_run(&desk, &bob(), None, &inv)
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.version, 13);
    let notes = app
        .desk
        .store
        .events(TicketRef(1))
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Noted { .. }))
        .count();
    assert_eq!(notes, 12);
}

async fn kudos_thank_others_across_linked_accounts_and_list_them(app: TestApp) {
    let out = app
        .ok(
            &alice(),
            "/kudos give <@UBOB|bob> for untangling <!here> the refund queue",
        )
        .await;
    assert!(
        out.contains("Alice thanked Bob: untangling @\u{200B}here the refund queue"),
        "{out}"
    );
    let err = app
        .user_error(&bob(), "/kudos give discord:1002 for me")
        .await;
    assert!(err.contains("for thanking someone else"), "{err}");
    app.clock.advance(Duration::days(1));
    app.ok(&carol(), "/kudos give discord:1002 for the export fix")
        .await;
    let out = app.ok(&alice(), "/kudos list user:<@UBOB>").await;
    assert!(
        out.contains("Kudos in the last 7 days (2)"),
        "Bob's Slack and Discord kudos count as one person: {out}"
    );
    app.clock.advance(Duration::days(8));
    let out = app.ok(&alice(), "/kudos list").await;
    assert!(out.contains("No kudos in the last 7 days"), "{out}");
    let out = app.ok(&alice(), "/kudos list days:30").await;
    assert!(out.contains("(2)"), "{out}");
}

async fn metrics_are_recorded_checked_and_listed(app: TestApp) {
    let out = app
        .ok(&bob(), "/metric record nps 9 department:billing Q1 survey")
        .await;
    assert_eq!(out, "Recorded nps = 9 for billing.");
    let err = app.user_error(&bob(), "/metric record csat 9").await;
    assert!(err.contains("csat is a 1-5 rating, not 9"), "{err}");
    let err = app.user_error(&slack("UC"), "/metric record nps 10").await;
    assert!(err.contains("a member of a department"), "{err}");
    let err = app
        .user_error(&bob(), "/metric record nps 10 department:nowhere")
        .await;
    assert!(err.contains("no department called `nowhere`"), "{err}");
    let out = app.ok(&bob(), "/metric list").await;
    assert!(out.contains("nps = 9 (billing): Q1 survey"), "{out}");
    let out = app.ok(&bob(), "/metric list csat").await;
    assert!(out.contains("No metric values"), "{out}");
}

async fn digests_preview_privately_and_post_through_the_outbox(app: TestApp) {
    app.ok(&slack("UC"), "/ticket new refund").await;
    app.clock.advance(Duration::minutes(30));
    app.ok(&bob(), "/ticket claim T-1").await;
    app.clock.advance(Duration::hours(2));
    app.ok(&bob(), "/ticket status T-1 resolved").await;
    app.ok(&slack("UC"), "/ticket new printer department:it")
        .await;
    let reply = app.run(&bob(), "/digest preview").await.unwrap();
    assert_eq!(
        reply.visibility,
        switchboard::core::message::Visibility::Ephemeral
    );
    let text = reply.message.plain();
    for want in [
        "Digest `weekly`",
        "*billing*\nOpened: 1 (new, from 0)\nResolved: 1 (new, from 0)\nOpen at the end: 0 (no change, from 0)",
        "First response: median 30m, p90 30m (1 ticket; before: median n/a)",
        "Resolution: median 2h 30m, p90 2h 30m (1 ticket;",
        "*it*\nOpened: 1 (new, from 0)\nResolved: 0 (no change, from 0)\nOpen at the end: 1 (new, from 0)",
        "Opened: 2 (new, from 0)",
        "Open at the end: 1 (new, from 0)",
    ] {
        assert!(text.contains(want), "lacks `{want}`:\n{text}");
    }
    let before = app.desk.store.outbox(None, 0).await.unwrap().len();
    let out = app.ok(&carol(), "/digest now weekly").await;
    assert!(out.contains("on its way to 2 channel(s)"), "{out}");
    let rows = app.desk.store.outbox(None, 0).await.unwrap();
    let posted: Vec<String> = rows[before..]
        .iter()
        .map(|r| r.outgoing.target.to_string())
        .collect();
    assert_eq!(
        posted,
        [
            "slack:CLEADS",
            "discord:2003",
            "slack:CLEADS",
            "discord:2003"
        ],
        "the text to each target, then the chart to each"
    );
    assert!(rows[before + 2..]
        .iter()
        .all(|r| r.outgoing.message.attachment.is_some()));
    assert!(rows[before..].iter().all(
        |r| matches!(r.outgoing.target, Target::Channel { .. }) && r.outgoing.ticket.is_none()
    ));
    let err = app.user_error(&carol(), "/digest now monthly").await;
    assert!(
        err.contains("no digest called `monthly`. Configured: weekly"),
        "{err}"
    );
}

crate::on_both_backends!(
    a_flag_writes_ticket_event_alerts_and_thread_reply_together,
    a_second_flag_on_the_same_message_points_to_the_existing_ticket,
    flags_from_people_not_allowed_or_with_other_emojis_write_nothing,
    members_through_roles_and_groups_may_flag_and_rules_see_the_emoji,
    ticket_new_routes_by_rules_or_by_the_department_given,
    the_life_of_a_ticket_through_every_working_subcommand,
    list_filters_by_status_department_and_linked_assignee,
    permissions_are_checked_before_any_change,
    unknown_tickets_and_departments_say_how_to_find_the_right_one,
    buttons_claim_and_resolve_like_the_commands,
    concurrent_changes_to_one_ticket_all_land_in_the_audit_log,
    kudos_thank_others_across_linked_accounts_and_list_them,
    metrics_are_recorded_checked_and_listed,
    digests_preview_privately_and_post_through_the_outbox,
);

async fn many_concurrent_flags_each_get_one_ticket_even_when_they_repeat(app: TestApp) {
    let mut tasks = Vec::new();
    for i in 0..60 {
        let desk = app.desk.clone();
        // Ten of the sixty flag one shared message; the rest flag a message each.
        let ts = if i % 6 == 0 {
            "1.0".to_string()
        } else {
            format!("2.{i}")
        };
        // Four people, each well under the flag limit (thirty per ten minutes).
        let flagger = [bob(), alice(), carol(), dave()][i % 4].clone();
        tasks.push(tokio::spawn(async move {
            let req = switchboard::desk::FlagRequest {
                flagger,
                origin: switchboard::core::ticket::Origin::Flag,
                emoji: Some("ticket".into()),
                source: source("slack:CHELP", &ts, "refund please"),
                author_roles: vec![],
                overrides: Default::default(),
                inbox_key: None,
            };
            desk.flag(req).await.map(|o| (ts, o.ticket.id))
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap().unwrap());
    }
    let tickets = app
        .desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 51, "one ticket per distinct message");
    let shared: std::collections::HashSet<TicketRef> = acked
        .iter()
        .filter(|(ts, _)| ts == "1.0")
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(
        shared.len(),
        1,
        "every flag of the shared message got the same ticket"
    );
    for (_, id) in &acked {
        assert!(
            app.desk.store.ticket(*id).await.unwrap().is_some(),
            "acked {id} is stored"
        );
        assert!(!app.desk.store.events(*id).await.unwrap().is_empty());
    }
}

crate::on_both_backends!(many_concurrent_flags_each_get_one_ticket_even_when_they_repeat);
