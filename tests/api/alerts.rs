//! Tickets from monitoring over real HTTP, fed the payloads Alertmanager and Grafana send
//! (`tests/fixtures/monitoring/`): one ticket per firing alert, repeats adding nothing, the
//! resolution recorded and followed, a new firing reopening or opening again, storms rolled
//! up, and tokens, basic auth and bad payloads refused.

use chrono::Duration;
use serde_json::{json, Value};
use switchboard::cmd::digest::report;
use switchboard::config::Period;
use switchboard::core::digest;
use switchboard::core::directory::Permission;
use switchboard::core::ticket::{Change, EventKind};
use switchboard::core::types::{Priority, Status, TicketRef};
use switchboard::desk::TicketOverrides;

use crate::helpers::*;

const ALERTS_CONFIG: &str = r#"
admins = ["slack:UALICE"]

[[departments]]
name = "ops"
channels = ["slack:COPS"]

[[departments]]
name = "billing"
channels = ["discord:2001"]

[[departments]]
name = "storage"
channels = ["slack:CSTORAGE"]

[routing]
fallback = "ops"

[[routing.rules]]
name = "payments"
labels = { team = "payments" }
department = "billing"

[[routing.rules]]
name = "storage"
labels = { team = "storage" }
department = "storage"

[automation]
resolve_when_source_resolves = true
max_tickets_per_group = 3

[api]

[[api.tokens]]
name = "alertmanager"
secret_env = "SWITCHBOARD_TEST_TOKEN_ALERTMANAGER"
endpoints = ["alertmanager"]

[[api.tokens]]
name = "grafana"
secret_env = "SWITCHBOARD_TEST_TOKEN_GRAFANA"
endpoints = ["grafana"]
departments = ["storage"]
"#;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/monitoring/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn am_token() -> String {
    test_token("SWITCHBOARD_TEST_TOKEN_ALERTMANAGER")
}

fn grafana_token() -> String {
    test_token("SWITCHBOARD_TEST_TOKEN_GRAFANA")
}

/// How the request authenticates.
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

async fn send(base: &str, path: &str, auth: Auth<'_>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `(fingerprint, ticket, outcome)` of each alert in an answer.
fn outcomes(answer: &Value) -> Vec<(String, Option<String>, String)> {
    answer["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("no alerts in {answer}"))
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap().to_string(),
                a["ticket"].as_str().map(str::to_string),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const PAYMENTS: &str = "5f1c2a9e0b7d4c31";
const WEB: &str = "a03e77d1c2b95f60";

async fn alertmanager_alerts_open_resolve_reopen_and_open_again(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let firing = fixture("alertmanager-firing.json");
    let resolved = fixture("alertmanager-resolved.json");
    let am = |body: String| {
        let base = base.clone();
        async move { send(&base, "/api/alertmanager", Auth::Bearer(&am_token()), &body).await }
    };
    let (status, answer) = am(firing.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        outcomes(&answer),
        [
            (PAYMENTS.into(), Some("T-1".into()), "opened".into()),
            (WEB.into(), Some("T-2".into()), "opened".into()),
        ]
    );
    // Labels route, severity sets the priority, annotations make title, body and links.
    let t1 = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t1.department, "billing");
    assert_eq!(t1.priority, Priority::Urgent);
    assert_eq!(t1.title, "Checkout error rate above 5% on checkout-1");
    assert!(t1.body.contains("12% of POST /checkout"), "{}", t1.body);
    assert!(t1.body.contains("team=payments"), "{}", t1.body);
    assert_eq!(t1.reporter.automation_source(), Some("alertmanager"));
    let t2 = app.desk.ticket(TicketRef(2)).await.unwrap();
    assert_eq!(
        (t2.department.as_str(), t2.priority),
        ("ops", Priority::High)
    );
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    let links = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Linked { links } => Some(links.clone()),
            _ => None,
        })
        .expect("the alert's links are kept");
    let titles: Vec<&str> = links.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(titles, ["Source", "Runbook"]);
    assert!(app
        .desk
        .telemetry
        .render()
        .contains("origin=\"alertmanager\""));

    // Alertmanager repeats the firing group every repeat_interval: nothing new.
    let (_, answer) = am(firing.clone()).await;
    let repeat: Vec<String> = outcomes(&answer).into_iter().map(|o| o.2).collect();
    assert_eq!(repeat, ["firing", "firing"]);
    assert_eq!(ticket_count(&app).await, 2);

    // The payments alert resolves: recorded, and (as configured) the ticket resolved.
    app.clock.advance(Duration::minutes(45));
    let (_, answer) = am(resolved.clone()).await;
    assert_eq!(
        outcomes(&answer),
        [(PAYMENTS.into(), Some("T-1".into()), "resolved".into())]
    );
    let t1 = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t1.status, Status::Resolved);
    // Sent again, the resolution changes nothing more.
    let before = app.desk.store.events(TicketRef(1)).await.unwrap().len();
    am(resolved.clone()).await;
    assert_eq!(
        app.desk.store.events(TicketRef(1)).await.unwrap().len(),
        before
    );

    // It fires again within reopen_within (24 h): the same ticket, reopened.
    app.clock.advance(Duration::hours(1));
    let (_, answer) = am(firing.clone()).await;
    assert_eq!(
        outcomes(&answer)[0],
        (PAYMENTS.into(), Some("T-1".into()), "reopened".into())
    );
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Open
    );

    // Resolved, then firing again two days later: a new ticket.
    am(resolved.clone()).await;
    app.clock.advance(Duration::days(2));
    let (_, answer) = am(firing.clone()).await;
    assert_eq!(
        outcomes(&answer)[0],
        (PAYMENTS.into(), Some("T-3".into()), "opened".into())
    );
    assert_eq!(ticket_count(&app).await, 3);
}

async fn grafana_alerts_with_bearer_or_basic_auth(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let firing = fixture("grafana-firing.json");
    let (status, answer) = send(
        &base,
        "/api/grafana",
        Auth::Basic("grafana", &grafana_token()),
        &firing,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        outcomes(&answer),
        [(
            "9c4b21e07f3a6d58".into(),
            Some("T-1".into()),
            "opened".into()
        )]
    );
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(
        (t.department.as_str(), t.priority),
        ("storage", Priority::High)
    );
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    let titles: Vec<String> = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Linked { links } => Some(links.iter().map(|l| l.title.clone()).collect()),
            _ => None,
        })
        .unwrap();
    assert_eq!(titles, ["Source", "Dashboard", "Panel", "Silence"]);
    // Bearer works too; a repeat adds nothing.
    let (status, answer) = send(
        &base,
        "/api/grafana",
        Auth::Bearer(&grafana_token()),
        &firing,
    )
    .await;
    assert_eq!((status, outcomes(&answer)[0].2.as_str()), (200, "firing"));
    // Basic auth names the token: another user name is refused.
    let (status, _) = send(
        &base,
        "/api/grafana",
        Auth::Basic("someone", &grafana_token()),
        &firing,
    )
    .await;
    assert_eq!(status, 401);
    // A token for Grafana may not post to Alertmanager's endpoint, nor the other way round.
    let (status, _) = send(
        &base,
        "/api/alertmanager",
        Auth::Bearer(&grafana_token()),
        &firing,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(&base, "/api/grafana", Auth::Bearer(&am_token()), &firing).await;
    assert_eq!(status, 403);
    // Grafana's token covers storage only: an alert routed elsewhere is refused, nothing opened.
    let elsewhere = firing
        .replace("\"team\": \"storage\"", "\"team\": \"web\"")
        .replace("9c4b21e07f3a6d58", "0000000000000001");
    let (status, answer) = send(
        &base,
        "/api/grafana",
        Auth::Bearer(&grafana_token()),
        &elsewhere,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(ticket_count(&app).await, 1);
}

/// A notification with `n` firing alerts in one group.
fn storm(n: usize) -> String {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": { "alertname": "NodeDown", "instance": format!("node-{i}"), "severity": "critical" },
                "annotations": { "summary": format!("node-{i} is down") },
                "startsAt": "2026-03-02T08:59:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"NodeDown\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "switchboard", "groupLabels": { "alertname": "NodeDown" },
        "commonLabels": { "alertname": "NodeDown", "severity": "critical" }, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.internal:9093", "alerts": alerts,
    })
    .to_string()
}

async fn a_storm_rolls_up_into_one_ticket(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let (status, answer) = send(
        &base,
        "/api/alertmanager",
        Auth::Bearer(&am_token()),
        &storm(5),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let all = outcomes(&answer);
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .all(|(_, t, o)| t.as_deref() == Some("T-1") && o == "rolled_up"),
        "{all:?}"
    );
    assert_eq!(ticket_count(&app).await, 1);
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert!(t.title.starts_with("5 alerts firing"), "{}", t.title);
    assert!(t.body.contains("node-4 is down"), "{}", t.body);
    assert_eq!(t.priority, Priority::Urgent);
    // The same alerts again find the roll-up; below the limit, new ones open their own.
    let (_, answer) = send(
        &base,
        "/api/alertmanager",
        Auth::Bearer(&am_token()),
        &storm(6),
    )
    .await;
    let again = outcomes(&answer);
    assert!(again[..5]
        .iter()
        .all(|(_, t, o)| t.as_deref() == Some("T-1") && o == "firing"));
    assert_eq!(again[5].1.as_deref(), Some("T-2"));
    assert_eq!(again[5].2, "opened");
    assert_eq!(ticket_count(&app).await, 2);
}

async fn bad_notifications_and_tokens_are_refused(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let firing = fixture("alertmanager-firing.json");
    assert_eq!(
        send(&base, "/api/alertmanager", Auth::None, &firing)
            .await
            .0,
        401
    );
    assert_eq!(
        send(
            &base,
            "/api/alertmanager",
            Auth::Bearer("wrong-token"),
            &firing
        )
        .await
        .0,
        401
    );
    let v3 = firing.replace("\"version\": \"4\"", "\"version\": \"3\"");
    let (status, answer) = send(&base, "/api/alertmanager", Auth::Bearer(&am_token()), &v3).await;
    assert_eq!(status, 400);
    assert!(answer["details"][0]
        .as_str()
        .unwrap()
        .starts_with("version:"));
    let bad = json!({
        "version": "4",
        "alerts": [
            { "status": "burning", "labels": {} },
            { "status": "firing", "labels": { "team": 5 }, "fingerprint": "ab" },
            { "status": "firing", "labels": {}, "startsAt": "yesterday" },
        ]
    })
    .to_string();
    let (status, answer) = send(&base, "/api/alertmanager", Auth::Bearer(&am_token()), &bad).await;
    assert_eq!(status, 400, "{answer}");
    let details = details(&answer);
    for field in [
        "alerts[0].status:",
        "alerts[1].labels.team:",
        "alerts[2].fingerprint:",
    ] {
        assert!(
            details.iter().any(|d| d.starts_with(field)),
            "{field} missing from {details:#?}"
        );
    }
    let (status, _) = send(
        &base,
        "/api/alertmanager",
        Auth::Bearer(&am_token()),
        "{\"version\": \"4\"}",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(ticket_count(&app).await, 0, "nothing was opened");
}

/// Tickets monitoring opened count in digests under their own origin, and the resolutions
/// it made as auto-resolved; a person's resolution and a chat ticket do not.
async fn monitoring_counts_in_digests_under_its_own_origin(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let start = app.desk.now();
    let am = |body: String| {
        let base = base.clone();
        async move { send(&base, "/api/alertmanager", Auth::Bearer(&am_token()), &body).await }
    };
    am(fixture("alertmanager-firing.json")).await;
    app.desk
        .open_from_command(
            &slack("UCUSTOMER"),
            None,
            "The invoice page is blank",
            TicketOverrides::default(),
        )
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(45));
    // The payments alert resolves (T-1, resolved by monitoring); a person resolves T-2.
    am(fixture("alertmanager-resolved.json")).await;
    app.desk
        .change(
            &alice(),
            TicketRef(2),
            Permission::Admin,
            "test",
            Change::SetStatus {
                to: Status::Resolved,
                reason: None,
            },
        )
        .await
        .unwrap();
    app.clock.advance(Duration::hours(1));
    let week = |at| report(&app.desk, "weekly", chrono_tz::UTC, Period::Week, &[], at);
    let r = week(app.desk.now()).await.unwrap();
    let c = &r.overall.current;
    assert_eq!((c.opened, c.resolved), (3, 2));
    assert_eq!((c.automation.opened, c.automation.auto_resolved), (2, 1));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["overall"]["current"]["automation"]["by_origin"],
        json!({ "alertmanager": 2 })
    );
    let billing = r
        .departments
        .iter()
        .find(|d| d.department.as_deref() == Some("billing"))
        .unwrap();
    assert_eq!(
        (
            billing.current.automation.opened,
            billing.current.automation.auto_resolved
        ),
        (1, 1)
    );
    let text = digest::render(&r, chrono_tz::UTC).plain();
    assert!(
        text.contains("From monitoring and the API: 2 (alertmanager 2), 1 auto-resolved; before 0"),
        "{text}"
    );
    // A week later: none this week, two the week before; a week with neither says nothing.
    let next = week(start + Duration::days(8)).await.unwrap();
    let text = digest::render(&next, chrono_tz::UTC).plain();
    assert!(
        text.contains("From monitoring and the API: 0, 0 auto-resolved; before 2"),
        "{text}"
    );
    let quiet = week(start + Duration::days(30)).await.unwrap();
    let text = digest::render(&quiet, chrono_tz::UTC).plain();
    assert!(!text.contains("From monitoring"), "{text}");
}

crate::on_both_backends_with!(
    ALERTS_CONFIG;
    monitoring_counts_in_digests_under_its_own_origin,
    alertmanager_alerts_open_resolve_reopen_and_open_again,
    grafana_alerts_with_bearer_or_basic_auth,
    a_storm_rolls_up_into_one_ticket,
    bad_notifications_and_tokens_are_refused,
);
