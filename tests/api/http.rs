//! The HTTP server on port 0: health, readiness, Prometheus metrics and a clean stop.

use switchboard::app::serve;

use crate::helpers::*;

#[tokio::test]
async fn health_ready_and_metrics_answer_and_shutdown_is_clean() {
    let app = spawn_app().await;
    app.ok(&slack("UC"), "/ticket new refund").await;
    // A refused claim, through the entry point adapters use, so it is counted.
    let reply =
        switchboard::cmd::run_text(&app.desk, &slack("UC"), None, "/ticket", "claim T-1").await;
    assert!(
        reply.message.text.contains("member of billing"),
        "{}",
        reply.message.text
    );
    // Two days on, no digest fire is within its grace window, so the scheduler serve() runs
    // adds no posts and the outbox count below is exact.
    app.clock.advance(chrono::Duration::days(2));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        app.desk.clone(),
        listener,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["database"], "up", "{ready}");
    assert!(ready["adapters"].is_array(), "{ready}");

    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"switchboard_outbox_rows{status="pending"} 2"#),
        "{body}"
    );
    assert!(
        body.contains(
            r#"switchboard_commands_total{command="ticket claim",outcome="user_error"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains(
            r#"switchboard_tickets_created_total{origin="command",department="billing"} 1"#
        ),
        "{body}"
    );

    let r = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "stopped listening"
    );
}
