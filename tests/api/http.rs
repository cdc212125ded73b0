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

/// Once the server faces people, `/metrics` can move to its own address
/// (`server.metrics_listen`) and ask for a bearer token (`SWITCHBOARD_METRICS_TOKEN`): the
/// main address no longer has it, and the metrics address refuses a missing or wrong token.
#[tokio::test]
async fn metrics_can_have_their_own_address_and_a_token() {
    let app = spawn_app().await;
    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut desk = app.desk.clone();
    let mut config = (*desk.config).clone();
    config.metrics_listen = Some(free);
    config.secrets.metrics_token = Some(switchboard::config::Secret::new("m-token"));
    desk.config = std::sync::Arc::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(desk, listener, Default::default(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let main = format!("http://{addr}");
    let metrics = format!("http://{free}/metrics");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{main}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(up, "the server started");
    let r = client.get(format!("{main}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "not on the main address");
    let r = client.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = client
        .get(&metrics)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&metrics)
        .bearer_auth("m-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("switchboard_outbox_rows"));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        client.get(&metrics).send().await.is_err(),
        "the metrics address stopped too"
    );
}
