//! The fake Slack's answers checked against Slack's published Web API spec
//! (`tests/fixtures/platform-specs/slack/web_api_openapi_v2.json`), so the fake speaks Slack,
//! not just what our adapter happens to accept.

use sandbox::slack::{method_scope, FakeSlack};
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-schema-check";

fn spec() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/platform-specs/slack/web_api_openapi_v2.json"
    ))
    .unwrap()
}

fn check(spec: &Value, method: &str, status: &str, answer: &Value) -> Vec<String> {
    let path = format!("/{method}");
    let op = spec["paths"][&path]
        .get("post")
        .or(spec["paths"][&path].get("get"))
        .expect("method in spec");
    let mut schema = op["responses"][status]["schema"].clone();
    schema["definitions"] = spec["definitions"].clone();
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .expect("schema compiles");
    v.iter_errors(answer)
        .map(|e| format!("{method}: {e} at {}", e.instance_path()))
        .collect()
}

async fn call(fake: &FakeSlack, method: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/{method}", fake.api_url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fakes_answers_match_slacks_web_api_spec() {
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    fake.add_channel("C0HELP0001", "help", true);
    fake.seed_message(
        "C0HELP0001",
        "1772442000.000100",
        "U0CUSTOMER1",
        "hello",
        None,
    );
    let spec = spec();
    let mut errors = Vec::new();
    let posted = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "C0HELP0001", "text": "hi", "thread_ts": "1772442000.000100"}),
    )
    .await;
    errors.extend(check(&spec, "chat.postMessage", "200", &posted));
    let ts = posted["ts"].as_str().unwrap().to_string();
    let updated = call(
        &fake,
        "chat.update",
        json!({"channel": "C0HELP0001", "ts": ts, "text": "hi again"}),
    )
    .await;
    errors.extend(check(&spec, "chat.update", "200", &updated));
    errors.extend(check(
        &spec,
        "auth.test",
        "200",
        &call(&fake, "auth.test", json!({})).await,
    ));
    let link = call(
        &fake,
        "chat.getPermalink",
        json!({"channel": "C0HELP0001", "message_ts": "1772442000.000100"}),
    )
    .await;
    errors.extend(check(&spec, "chat.getPermalink", "200", &link));
    // Errors use Slack's documented error shape and codes.
    let missing = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "C0NOPE0001", "text": "hi"}),
    )
    .await;
    assert_eq!(missing["error"], "channel_not_found");
    errors.extend(check(&spec, "chat.postMessage", "default", &missing));
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The scope the fake demands for each method agrees with the spec's security section, so
/// the scope test against the manifest is a test against Slack's rules.
#[test]
fn the_fakes_scopes_are_slacks() {
    let spec = spec();
    for method in [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.getPermalink",
        "conversations.history",
        "conversations.replies",
        "conversations.info",
        "users.info",
        "usergroups.users.list",
        "views.open",
    ] {
        let path = format!("/{method}");
        let op = spec["paths"][&path]
            .get("post")
            .or(spec["paths"][&path].get("get"))
            .unwrap();
        let allowed: Vec<&str> = op["security"][0]["slackAuth"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        match method_scope(method) {
            None => assert_eq!(allowed, ["none"], "{method}"),
            // chat:write is listed by the spec in its legacy :bot/:user spelling.
            Some("chat:write") => assert!(allowed.contains(&"chat:write:bot"), "{method}"),
            Some(scope) => assert!(
                allowed.contains(&scope),
                "{method}: {scope} not in {allowed:?}"
            ),
        }
    }
}
