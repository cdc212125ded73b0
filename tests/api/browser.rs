//! The web view in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. One walk: sign in through a link from chat,
//! search, open a transcript, claim from the page and see the alert edited in the fake Slack;
//! a reused and an expired link refused, another department's ticket refused, a form without
//! its CSRF token refused. Without chromedriver the walk is skipped with a message, except in
//! CI (`CI` or `SWITCHBOARD_TEST_BROWSER` set, as `.ci/run` does), where that is a failure, as
//! for PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use sandbox::slack::FakeSlack;
use switchboard::browser::{driver_path, Browser};
use switchboard::chat::slack::client::SlackApi;
use switchboard::chat::Delivery;
use switchboard::config::Secret;
use switchboard::core::directory::Actor;
use switchboard::core::types::TicketRef;
use switchboard::outbox::{OutboxSettings, OutboxWorker};

use crate::helpers::*;
use crate::web::link_for;

const TOKEN: &str = "xoxb-sandbox-token";

/// A browser, or `None` (with a message) where none is installed outside CI.
async fn browser() -> Option<Browser> {
    if driver_path().is_none() {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var_os("SWITCHBOARD_TEST_BROWSER").is_none(),
            "CI must run the browser tests: .ci/run installs chromium and chromium-driver"
        );
        eprintln!(
            "skipping the browser walk: no chromedriver (apt-get install chromium \
             chromium-driver, or set SWITCHBOARD_CHROMEDRIVER)"
        );
        return None;
    }
    Some(Browser::start(1200, 900).await.expect("Chromium starts"))
}

fn outbox(app: &TestApp, fake: &FakeSlack) -> OutboxWorker {
    let api = SlackApi::new(&fake.api_url, &Secret::new(TOKEN)).unwrap();
    OutboxWorker::new(
        app.desk.store.clone(),
        vec![Arc::new(api) as Arc<dyn Delivery>],
        Arc::new(app.clock.clone()),
        app.desk.telemetry.clone(),
        OutboxSettings {
            owner: "browser-test".into(),
            idle: Duration::from_millis(5),
            ..OutboxSettings::default()
        },
    )
}

async fn open(app: &TestApp, actor: &Actor, line: &str) -> TicketRef {
    let answer = app.ok(actor, &format!("/ticket new {line}")).await;
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Clicks the element `#id`.
async fn click(c: &fantoccini::Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The text of the page's `<main>` once the page holding `#id` has loaded (a click that
/// navigates returns before the next page is there).
async fn main_text(b: &Browser, id: &str) -> String {
    let c = b.client();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"));
    for _ in 0..100 {
        let text = match c.find(Locator::Css("main")).await {
            Ok(main) => main.text().await,
            Err(e) => Err(e),
        };
        match text {
            Ok(t) => return t,
            // The page changed between finding and reading: read the new one.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the page never settled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_through_the_web_view() {
    let Some(b) = browser().await else { return };
    let app = spawn_app().await;
    let fake = FakeSlack::start(TOKEN).await.unwrap();
    for (id, name) in [("CBILLING", "billing"), ("CSUPPORT", "support")] {
        fake.add_channel(id, name, true);
    }
    let worker = outbox(&app, &fake);
    let (base, _stop) = serve_http(&app).await;
    let customer = Actor::user(customer());
    let bill = open(&app, &customer, "Refund for order 77, charged twice").await;
    open(&app, &customer, "Printer on floor 3 is jammed").await;
    let vpn = open(&app, &alice(), "VPN drops every hour department:it").await;
    while worker.round().await.unwrap() > 0 {}
    let alert_before = fake
        .bot_messages()
        .into_iter()
        .find(|m| m.channel == "CBILLING")
        .expect("the billing alert was posted");
    assert_eq!(alert_before.edits, 0);

    let c = b.client();
    // Sign in through the link from chat.
    let link = link_for(&app, &bob(), "/ticket web").await;
    c.goto(&format!("{base}{link}")).await.unwrap();
    click(c, "continue").await;
    let list = main_text(&b, "tickets").await;
    assert!(list.contains("Refund for order 77"), "{list}");
    assert!(
        !list.contains("VPN drops"),
        "Bob works billing, not IT: {list}"
    );

    // Search by a word of the title, in another form.
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.send_keys("refunds").await.unwrap();
    click(c, "apply").await;
    for _ in 0..200 {
        if c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("q=refunds")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = main_text(&b, "tickets").await;
    assert!(found.contains("Refund for order 77"), "{found}");
    assert!(!found.contains("Printer"), "{found}");

    // Open the transcript and claim the ticket from the page.
    c.find(Locator::LinkText(&bill.to_string()))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = main_text(&b, "timeline").await;
    assert!(
        page.contains("charged twice") && page.contains("Transcript"),
        "{page}"
    );
    click(c, "claim").await;
    let page = main_text(&b, "done").await;
    assert!(
        page.contains("You claimed") && page.contains("Bob"),
        "{page}"
    );
    // The chat alert is edited in place, as for its own Claim button.
    while worker.round().await.unwrap() > 0 {}
    let alert = fake
        .bot_messages()
        .into_iter()
        .find(|m| m.ts == alert_before.ts)
        .unwrap();
    assert!(alert.edits >= 1, "the alert was not edited");
    let blocks = alert.blocks.map(|b| b.to_string()).unwrap_or_default();
    assert!(blocks.contains("Bob"), "{blocks}");

    // A form that lost its CSRF token is refused.
    c.execute(
        "document.querySelector('form[action$=\"/status\"] input[name=csrf]').remove();",
        vec![],
    )
    .await
    .unwrap();
    click(c, "set-status").await;
    let refused = main_text(&b, "notice").await;
    assert!(
        refused.contains("did not come from your signed-in page"),
        "{refused}"
    );

    // Another department's ticket.
    c.goto(&format!("{base}/ui/tickets/{}", vpn.0))
        .await
        .unwrap();
    let other = main_text(&b, "notice").await;
    assert!(other.contains("only its members"), "{other}");

    // The used link, and one past its ten minutes.
    c.goto(&format!("{base}{link}")).await.unwrap();
    click(c, "continue").await;
    assert!(main_text(&b, "notice").await.contains("used already"));
    let late = link_for(&app, &bob(), "/ticket web").await;
    app.clock.advance(chrono::Duration::minutes(11));
    c.goto(&format!("{base}{late}")).await.unwrap();
    click(c, "continue").await;
    assert!(main_text(&b, "notice").await.contains("expired"));
    b.stop().await;
}
