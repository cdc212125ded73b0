//! The tickets API over real HTTP: tokens and their scopes, routing on labels, idempotency on
//! the caller's external id, follow-ups, and every problem of a bad body in one 400.

use serde_json::{json, Value};
use switchboard::core::message::Target;
use switchboard::core::ticket::EventKind;
use switchboard::core::types::{Status, TicketRef};

use crate::helpers::*;

const API_CONFIG: &str = r#"
[[people]]
id = "olga"
name = "Olga"
slack = "UOLGA"

[[departments]]
name = "ops"
channels = ["slack:COPS"]
members = ["person:olga"]

[[departments]]
name = "billing"
channels = ["discord:2001"]
members = ["slack:UBOB"]

[routing]
fallback = "ops"

[[routing.rules]]
name = "payments"
labels = { team = "payments", severity = "critical" }
department = "billing"
priority = "urgent"

[api]

[[api.tokens]]
name = "monitoring"
secret_env = "SWITCHBOARD_TEST_TOKEN_MONITORING"
endpoints = ["tickets"]

[[api.tokens]]
name = "shop"
secret_env = "SWITCHBOARD_TEST_TOKEN_SHOP"
endpoints = ["tickets", "metrics"]
departments = ["billing"]
"#;

fn monitoring() -> String {
    test_token("SWITCHBOARD_TEST_TOKEN_MONITORING")
}

fn shop() -> String {
    test_token("SWITCHBOARD_TEST_TOKEN_SHOP")
}

/// Sends `body` to `path` with `token`; the status, the JSON answer and the Location header.
async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value, Option<String>) {
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(format!("{base}{path}")),
        _ => client.post(format!("{base}{path}")),
    };
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), location)
}

async fn tokens_scopes_labels_and_repeats(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let alert = json!({
        "title": "Card payments failing",
        "body": "Error rate 12% on /checkout",
        "labels": { "team": "payments", "severity": "critical", "env": "prod" },
        "links": ["https://grafana.example/d/payments",
                  { "title": "Runbook", "url": "https://runbooks.example/payments" }],
        "tags": ["checkout"],
        "external_id": "INC-1",
    })
    .to_string();
    let post = |token: Option<String>, body: String| {
        let base = base.clone();
        async move { call(&base, "POST", "/api/tickets", token.as_deref(), Some(&body)).await }
    };
    // No token, a wrong one, and one without the tickets endpoint.
    assert_eq!(post(None, alert.clone()).await.0, 401);
    assert_eq!(post(Some("not-a-token".into()), alert.clone()).await.0, 401);
    let (status, body, _) = post(Some(TEST_API_TOKEN.into()), alert.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("tickets"),
        "{body}"
    );
    assert_eq!(ticket_count(&app).await, 0);

    // Labels route it: billing, urgent, with the rule's reasons in its history.
    let (status, body, location) = post(Some(monitoring()), alert.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ticket"], "T-1");
    assert_eq!(body["department"], "billing");
    assert_eq!(location.as_deref(), Some("/api/tickets/T-1"));
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.priority.to_string(), "urgent");
    assert_eq!(t.reporter.automation_source(), Some("monitoring"));
    assert_eq!(t.tags, vec!["checkout".to_string()]);
    // The department's alert is queued for its channel.
    let outbox = app.desk.store.outbox(None, 0).await.unwrap();
    assert!(
        outbox.iter().any(|o| matches!(&o.outgoing.target,
            Target::Channel { channel, .. } if channel.to_string() == "discord:2001")),
        "{outbox:#?}"
    );

    // The same external id again: the same ticket, 200, nothing new.
    let (status, body, _) = post(Some(monitoring()), alert.clone()).await;
    assert_eq!((status, body["ticket"].as_str()), (200, Some("T-1")));
    assert_eq!(ticket_count(&app).await, 1);
    // With a changed body: still the same ticket, the new body in its history.
    let changed = alert.replace("12%", "40%");
    let (status, _, _) = post(Some(monitoring()), changed).await;
    assert_eq!(status, 200);
    assert_eq!(ticket_count(&app).await, 1);
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Resent { body } if body.contains("40%"))),
        "{events:#?}"
    );
    // Another token's external ids are its own.
    let (status, body, _) = post(Some(shop()), alert.clone()).await;
    assert_eq!((status, body["ticket"].as_str()), (201, Some("T-2")));

    // The ticket as the API shows it: source, links, history.
    let (status, body, _) = call(&base, "GET", "/api/tickets/T-1", Some(&monitoring()), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reporter"], "monitoring (automation)");
    assert_eq!(body["status"], "open");
    assert_eq!(body["links"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["links"][1]["title"], "Runbook");
    assert!(body["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["what"].as_str().unwrap().contains("rule `payments`")));

    // `/ticket show` names the source and its links.
    let shown = switchboard::cmd::run_text(
        &app.desk,
        &switchboard::core::directory::Actor::user(switchboard::core::types::UserRef::new(
            switchboard::core::types::Platform::Slack,
            "UBOB",
        )),
        None,
        "ticket",
        "show T-1",
    )
    .await;
    let fields = format!("{:?}", shown.message.fields);
    assert!(fields.contains("monitoring (automation)"), "{fields}");
    assert!(
        fields.contains("https://runbooks.example/payments"),
        "{fields}"
    );

    // A token limited to billing may not open in ops, nor read ops tickets.
    let ops = json!({ "title": "Disk full", "department": "ops" }).to_string();
    let (status, body, _) = post(Some(shop()), ops.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = post(Some(monitoring()), ops).await;
    assert_eq!(status, 201);
    let (status, _, _) = call(&base, "GET", "/api/tickets/T-3", Some(&shop()), None).await;
    assert_eq!(status, 403);
    let (status, _, _) = call(&base, "GET", "/api/tickets/T-99", Some(&shop()), None).await;
    assert_eq!(status, 404);
}

async fn a_bad_body_lists_every_problem(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let bad = json!({
        "title": 5,
        "priority": "asap",
        "department": "nowhere",
        "links": ["ftp://files.example/x", { "url": 3 }],
        "labels": { "team": 7 },
        "tags": ["fine", "not fine"],
        "colour": "red",
    })
    .to_string();
    let (status, body, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some(&bad),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let details = details(&body);
    for field in [
        "colour:",
        "title:",
        "department:",
        "priority:",
        "tags[1]:",
        "labels.team:",
        "links[0]:",
        "links[1]:",
    ] {
        assert!(
            details.iter().any(|d| d.starts_with(field)),
            "{field} missing from {details:#?}"
        );
    }
    let (status, body, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some("{oops"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("the body is not JSON"))
    );
    let (status, _, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some("{}"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(ticket_count(&app).await, 0, "nothing was opened");
}

async fn follow_ups_note_and_resolve_without_asking_for_a_rating(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let open = json!({ "title": "Backups failed", "body": "nightly job exited 2" }).to_string();
    let (status, body, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some(&open),
    )
    .await;
    assert_eq!((status, body["department"].as_str()), (201, Some("ops")));
    let events = |b: &str| {
        let base = base.clone();
        let b = b.to_string();
        async move {
            call(
                &base,
                "POST",
                "/api/tickets/T-1/events",
                Some(&monitoring()),
                Some(&b),
            )
            .await
        }
    };
    let (status, body, _) = events(r#"{"note": "retry scheduled"}"#).await;
    assert_eq!(status, 200, "{body}");
    let outbox_before = app.desk.store.outbox(None, 0).await.unwrap().len();
    let (status, body, _) = events(r#"{"status": "resolved", "reason": "the retry passed"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "resolved");
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.status, Status::Resolved);
    assert_eq!(
        t.first_response_at, None,
        "the source's own changes are no response"
    );
    // The alert is updated; no rating is asked of a monitoring system.
    let outbox = app.desk.store.outbox(None, 0).await.unwrap();
    assert!(outbox.len() > outbox_before, "the alert update is queued");
    assert!(
        outbox
            .iter()
            .all(|o| !matches!(o.outgoing.target, Target::User { .. })),
        "{outbox:#?}"
    );
    // Open again: a reopen.
    let (status, body, _) = events(r#"{"status": "open", "reason": "failed again"}"#).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("open")));
    // Bad follow-ups.
    let (status, body, _) = events(r#"{"status": "bogus", "colour": 1}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");
    let (status, _, _) = events("{}").await;
    assert_eq!(status, 400);
    let (status, _, _) = call(
        &base,
        "POST",
        "/api/tickets/T-1/events",
        Some(&shop()),
        Some(r#"{"note": "not mine"}"#),
    )
    .await;
    assert_eq!(status, 403);
    let notes = app
        .desk
        .store
        .events(TicketRef(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Noted { .. }))
        .count();
    assert_eq!(notes, 1, "the refused note was not recorded");
}

async fn concurrent_repeats_open_one_ticket(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let body = json!({ "title": "Queue depth high", "external_id": "alert-7" }).to_string();
    let mut calls = Vec::new();
    for _ in 0..12 {
        let (base, body) = (base.clone(), body.clone());
        calls.push(tokio::spawn(async move {
            call(
                &base,
                "POST",
                "/api/tickets",
                Some(&monitoring()),
                Some(&body),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for c in calls {
        let (status, answer, _) = c.await.unwrap();
        assert_eq!(answer["ticket"], "T-1", "{answer}");
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200);
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(ticket_count(&app).await, 1);
    // Another request holds an external id's claim (it is opening that ticket right now): after
    // a moment's wait the answer is a retryable 503, and nothing is opened twice.
    let now = app.desk.now();
    app.desk
        .store
        .external_claim(
            "monitoring",
            "id:held",
            now,
            now - chrono::Duration::seconds(30),
        )
        .await
        .unwrap();
    let held = json!({ "title": "Held", "external_id": "held" }).to_string();
    let (status, answer, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some(&held),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(ticket_count(&app).await, 1);
    // A claim left by a request that died (older than 30 s) is taken over: the ticket opens.
    app.clock.advance(chrono::Duration::seconds(31));
    let (status, answer, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some(&held),
    )
    .await;
    assert_eq!(
        (status, answer["ticket"].as_str()),
        (201, Some("T-2")),
        "{answer}"
    );
    let (status, _, _) = call(
        &base,
        "POST",
        "/api/tickets",
        Some(&monitoring()),
        Some(&held),
    )
    .await;
    assert_eq!(status, 200, "the repeat finds it");
    assert_eq!(ticket_count(&app).await, 2);
}

crate::on_both_backends_with!(
    API_CONFIG;
    tokens_scopes_labels_and_repeats,
    a_bad_body_lists_every_problem,
    follow_ups_note_and_resolve_without_asking_for_a_rating,
    concurrent_repeats_open_one_ticket,
);
