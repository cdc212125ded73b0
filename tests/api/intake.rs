//! Customer metrics from outside chat: `POST /api/metrics` and the CSV import.

use serde_json::{json, Value};
use switchboard::intake::import_csv;

use crate::helpers::*;

async fn post(base: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/metrics"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn stored(app: &TestApp) -> usize {
    app.desk
        .store
        .list_metrics(None, app.desk.now() - chrono::Duration::days(400))
        .await
        .unwrap()
        .len()
}

async fn the_metrics_api_checks_the_token_and_takes_a_batch_whole(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let good = r#"{"name": "nps", "value": 9}"#;
    assert_eq!(post(&base, None, good).await.0, 401, "no token");
    assert_eq!(post(&base, Some("wrong"), good).await.0, 401, "wrong token");
    let (status, body) = post(&base, Some(TEST_API_TOKEN), "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "the body is not JSON");
    let (status, body) = post(&base, Some(TEST_API_TOKEN), r#"{"samples": []}"#).await;
    assert_eq!(status, 400, "{body}");
    // One bad sample refuses the batch and says which and why.
    let batch = json!({"samples": [
        {"name": "nps", "value": 9},
        {"name": "nps", "value": 11},
        {"name": "ces", "value": 4, "department": "nowhere"},
        {"name": "nps", "value": 3, "at": "yesterday"},
        {"name": "ces", "value": 2, "colour": "red"},
    ]});
    let (status, body) = post(&base, Some(TEST_API_TOKEN), &batch.to_string()).await;
    assert_eq!(status, 400);
    let details = details(&body);
    assert_eq!(details.len(), 4, "{details:?}");
    assert!(
        details[0].starts_with("samples[1]: nps is one survey answer"),
        "{details:?}"
    );
    assert!(details[1].starts_with("samples[2]: there is no department `nowhere`"));
    assert!(details[2].starts_with("samples[3]: at `yesterday` is not an RFC 3339 time"));
    assert!(details[3].starts_with("samples[4]: unknown field `colour`"));
    assert_eq!(stored(&app).await, 0, "nothing was recorded");
    // A good batch, one sample, and a bare list.
    let batch = json!({"samples": [
        {"name": "nps", "value": 10, "department": "Billing", "note": "survey"},
        {"name": "ces", "value": 5.5, "at": "2026-03-01T12:00:00Z"},
    ]});
    let (status, body) = post(&base, Some(TEST_API_TOKEN), &batch.to_string()).await;
    assert_eq!(
        (status, body["recorded"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    assert_eq!(
        post(&base, Some(TEST_API_TOKEN), good).await.1["recorded"],
        1
    );
    let (status, _) = post(
        &base,
        Some(TEST_API_TOKEN),
        r#"[{"name": "mrr", "value": 12000}]"#,
    )
    .await;
    assert_eq!(status, 200);
    let all = app
        .desk
        .store
        .list_metrics(None, app.desk.now() - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    let nps = all
        .iter()
        .find(|m| m.department.as_deref() == Some("billing"))
        .unwrap();
    assert_eq!((nps.name.as_str(), nps.value), ("nps", 10.0));
}

async fn the_csv_import_keeps_good_rows_and_reports_bad_ones_by_line(app: TestApp) {
    let csv = "name,value,department,note,at\n\
               nps,9,billing,Q1 survey,2026-03-01T10:00:00Z\n\
               nps,twelve,,,\n\
               nps,12,,,\n\
               ces,4,nowhere,,\n\
               \n\
               ces,3.5,,\"slow, but fine\",\n\
               ,5,,,\n\
               mrr,12000,,,2099-01-01T00:00:00Z\n\
               churn,2,support,,\n";
    let out = import_csv(&app.desk, csv.as_bytes()).await.unwrap();
    assert_eq!(out.recorded, 3, "{out:?}");
    let lines: Vec<usize> = out.errors.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [3, 4, 5, 8, 9], "{out:?}");
    assert!(out.errors[0].1.contains("`twelve` is not a number"));
    assert!(out.errors[2].1.contains("no department `nowhere`"));
    assert!(out.errors[4].1.contains("in the future"));
    let all = app
        .desk
        .store
        .list_metrics(None, app.desk.now() - chrono::Duration::days(30))
        .await
        .unwrap();
    assert!(all
        .iter()
        .any(|m| m.note.as_deref() == Some("slow, but fine")));
    // A file without the columns is refused as a whole.
    let err = import_csv(&app.desk, "metric;amount\nnps;9\n".as_bytes())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("name,value"), "{err}");
}

async fn the_bearer_scheme_is_case_insensitive_and_times_have_bounds(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let good = r#"{"name": "nps", "value": 9}"#;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/metrics"))
            .header("content-type", "application/json")
            .header("authorization", format!("{scheme} {TEST_API_TOKEN}"))
            .body(good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
    }
    let now = app.desk.now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339();
    let batch = json!({"samples": [
        {"name": "nps", "value": 9, "at": "1999-12-31T23:59:59Z"},
        {"name": "nps", "value": 9, "at": at(chrono::Duration::hours(23))},
        {"name": "nps", "value": 9, "at": at(chrono::Duration::hours(25))},
    ]});
    let (status, body) = post(&base, Some(TEST_API_TOKEN), &batch.to_string()).await;
    assert_eq!(status, 400, "{body}");
    let details = body["details"].to_string();
    assert!(
        details.contains("samples[0]") && details.contains("before 2000"),
        "{details}"
    );
    assert!(
        details.contains("samples[2]") && details.contains("a day ahead"),
        "{details}"
    );
    assert!(!details.contains("samples[1]"), "{details}");
}

crate::on_both_backends!(
    the_bearer_scheme_is_case_insensitive_and_times_have_bounds,
    the_metrics_api_checks_the_token_and_takes_a_batch_whole,
    the_csv_import_keeps_good_rows_and_reports_bad_ones_by_line,
);
