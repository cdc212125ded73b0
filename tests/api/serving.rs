//! The accept loop under hostile clients, over raw sockets: a client that never finishes its
//! headers is cut off, a declared body over the limit is refused before it is read, a body that
//! never arrives is answered 408, the connection cap holds, and shutdown drains for a bounded
//! time. `/healthz` keeps answering throughout.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use switchboard::serve::{serve, ServeSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn settings() -> ServeSettings {
    ServeSettings {
        header_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        max_connections: 64,
        drain: Duration::from_millis(300),
    }
}

/// Starts the server on a free port with `settings`; returns its address and a trigger that
/// shuts it down, and the task that completes when `serve` returns.
async fn start(
    settings: ServeSettings,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/echo", post(|body: Bytes| async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, settings, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Everything the server sends until it closes the connection (or 5 s pass).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn healthz(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_all(&mut s).await
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (addr, _stop, _task) = start(settings()).await;
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(healthz(&addr).await.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let answer = read_all(&mut slow).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "closed after {took:?}: {answer:?}"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let (addr, _stop, _task) = start(ServeSettings {
        request_timeout: Duration::from_secs(30),
        ..settings()
    })
    .await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\nab")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let (addr, _stop, _task) = start(settings()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(healthz(&addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_over_the_cap_wait_to_be_accepted() {
    let (addr, _stop, _task) = start(ServeSettings {
        max_connections: 1,
        header_timeout: Duration::from_millis(500),
        ..settings()
    })
    .await;
    let mut held = TcpStream::connect(&addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let answer = healthz(&addr).await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        waited >= Duration::from_millis(350),
        "the second connection waited for the first to be cut off: {waited:?}"
    );
}

#[tokio::test]
async fn shutdown_drains_for_a_bounded_time() {
    let (addr, stop, task) = start(ServeSettings {
        request_timeout: Duration::from_secs(30),
        ..settings()
    })
    .await;
    let mut held = TcpStream::connect(&addr).await.unwrap();
    held.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns despite a held connection")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    // The listener is closed: no new connection is accepted.
    assert!(TcpStream::connect(&addr).await.is_err());
}

/// Interaction work under way when the stop comes (a slow command's reply) finishes before
/// `serve` returns.
#[tokio::test]
async fn shutdown_waits_for_interaction_work_in_progress() {
    let app = crate::helpers::spawn_app().await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    app.desk.tasks.spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchboard::app::serve(
        app.desk.clone(),
        listener,
        switchboard::app::Adapters::default(),
        async {},
    )
    .await
    .unwrap();
    assert!(
        done.load(std::sync::atomic::Ordering::SeqCst),
        "the reply was sent before the process stopped"
    );
}
