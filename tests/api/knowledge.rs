//! The knowledge base: the fixture articles (`tests/fixtures/kb`) found for reworded
//! questions and not for unrelated text, a changed folder picked up, and `switchboard kb
//! check` reporting every problem with its file and line; the suggestions' buttons, and the
//! digest's knowledge part (both databases).

use std::path::Path;
use std::process::Command;

use switchboard::knowledge::{KnowledgeBase, SearchIndex};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn index() -> SearchIndex {
    let (articles, problems) = switchboard::knowledge::load(&fixture("kb")).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    SearchIndex::build(articles).unwrap()
}

#[test]
fn reworded_questions_find_their_article_and_unrelated_text_finds_none() {
    let index = index();
    let suggested = |text: &str, dept: &str| -> Vec<String> {
        index
            .suggest(text, dept)
            .iter()
            .map(|h| h.article.id.clone())
            .collect()
    };
    for (text, dept, want) in [
        (
            "I can't log in, I forgot my password",
            "support",
            "account/password-reset",
        ),
        (
            "password reset link please",
            "support",
            "account/password-reset",
        ),
        (
            "The SMS code for login never arrives",
            "support",
            "account/two-factor",
        ),
        (
            "I was charged twice for my subscription",
            "billing",
            "billing/refunds",
        ),
        (
            "Where can I download last month's invoice?",
            "billing",
            "billing/invoices",
        ),
        ("My VPN connection drops all the time", "it", "it/vpn"),
    ] {
        let got = suggested(text, dept);
        assert_eq!(
            got.first().map(String::as_str),
            Some(want),
            "{text}: {got:?}"
        );
    }
    for unrelated in [
        "The coffee machine on the third floor is broken",
        "Can we move the team lunch to Friday?",
        "hello",
    ] {
        assert_eq!(
            suggested(unrelated, "support"),
            Vec::<String>::new(),
            "{unrelated}"
        );
    }
    // An article for another department is not suggested.
    assert_eq!(
        suggested("I forgot my password", "billing"),
        Vec::<String>::new()
    );
    // Search lists every article sharing a word, best first.
    let hits = index.search("invoice refund", 5);
    assert_eq!(hits.len(), 2, "{hits:?}");
}

#[test]
fn a_changed_folder_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, title: &str, body: &str| {
        std::fs::write(
            dir.path().join(name),
            format!("---\ntitle: {title}\n---\n{body}\n"),
        )
        .unwrap();
    };
    write(
        "vpn.md",
        "VPN keeps disconnecting",
        "Restart the VPN client.",
    );
    let kb = KnowledgeBase::open(dir.path()).unwrap();
    assert_eq!(kb.index().len(), 1);
    assert_eq!(kb.reload_if_changed().unwrap(), None, "nothing changed");
    write(
        "printer.md",
        "Printer jams",
        "Open tray two and remove the paper.",
    );
    assert_eq!(kb.reload_if_changed().unwrap(), Some(2));
    assert_eq!(
        kb.index().search("printer paper jam", 3)[0].article.id,
        "printer"
    );
    // An edit (a longer text) and a removal are picked up too.
    write(
        "printer.md",
        "Printer jams",
        "Open tray two and remove the stuck toner cartridge.",
    );
    assert_eq!(kb.reload_if_changed().unwrap(), Some(2));
    assert!(!kb.index().search("toner", 3).is_empty());
    std::fs::remove_file(dir.path().join("vpn.md")).unwrap();
    assert_eq!(kb.reload_if_changed().unwrap(), Some(1));
    assert!(kb.index().search("vpn", 3).is_empty());
    // A broken article is left out (and logged), the others stay searchable.
    std::fs::write(dir.path().join("bad.md"), "no front matter").unwrap();
    assert_eq!(kb.reload_if_changed().unwrap(), Some(1));
}

fn switchboard(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .env_remove("SWITCHBOARD_CONFIG")
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .expect("binary runs")
}

#[test]
fn kb_check_reports_every_problem_with_its_file_and_line() {
    let empty = tempfile::tempdir().unwrap();
    let out = switchboard(
        &["kb", "check", fixture("kb-broken").to_str().unwrap()],
        empty.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    for want in [
        "bad-front-matter.md:3: unknown key `colour`",
        "broken-link.md:5: the link to `network.md` leads nowhere",
        "no-front-matter.md:1: an article starts with a front matter",
        "3 problem(s)",
    ] {
        assert!(err.contains(want), "lacks `{want}`:\n{err}");
    }
    // With a configuration, departments are checked too.
    std::fs::write(
        empty.path().join("switchboard.toml"),
        "[[departments]]\nname = \"support\"\nchannels = [\"slack:C1\"]\n[routing]\nfallback = \"support\"\n",
    )
    .unwrap();
    let out = switchboard(
        &["kb", "check", fixture("kb-broken").to_str().unwrap()],
        empty.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("broken-link.md:3: no department named `nowhere`; known: support"),
        "{err}"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let out = switchboard(
        &["kb", "check", fixture("kb").to_str().unwrap()],
        elsewhere.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("knowledge base is valid: 5 article(s)"));
}

/// A flagged message's thread confirmation carries the articles that pass the relevance rule
/// and their buttons; "This solved it" by the reporter resolves the ticket as answered by the
/// knowledge base, "Not what I need" by a department member records it, someone else may press
/// neither; a message no article fits gets the plain confirmation, and the ticket says so.
async fn suggestions_and_their_buttons(app: crate::helpers::TestApp) {
    use switchboard::core::directory::Actor;
    use switchboard::core::ticket::EventKind;
    use switchboard::core::types::{Status, TicketRef};

    use crate::helpers::*;

    let suggested = |app: &TestApp, id: i64| {
        let store = app.desk.store.clone();
        async move {
            store
                .events(TicketRef(id))
                .await
                .unwrap()
                .into_iter()
                .find_map(|e| match e.kind {
                    EventKind::KbSuggested { articles } => Some(articles),
                    _ => None,
                })
        }
    };
    app.flag(
        &bob(),
        "ticket",
        source(
            "slack:CHELP",
            "7.1",
            "I forgot my password and cannot sign in",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        suggested(&app, 1).await,
        Some(vec!["account/password-reset".to_string()])
    );
    let confirmation = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|r| {
            r.outgoing
                .message
                .text
                .starts_with("Thanks! This is now ticket T-1")
        })
        .expect("a confirmation in the thread")
        .outgoing
        .message;
    assert!(
        confirmation
            .text
            .contains("1. Resetting your password <https://help.example.com/password>"),
        "{}",
        confirmation.text
    );
    let ids: Vec<&str> = confirmation
        .buttons
        .iter()
        .map(|b| b.action_id.as_str())
        .collect();
    assert_eq!(ids, ["kb-solved:1:0", "kb-not:1"]);
    // Neither a stranger nor a member of another department may answer for the reporter.
    let err = app
        .desk
        .press(&slack("UOUTSIDER"), "kb-solved:1:0")
        .await
        .unwrap_err();
    assert!(
        err.chat_message().contains("a member of support"),
        "{}",
        err.chat_message()
    );
    let err = app
        .desk
        .press(&customer_actor(), "kb-solved:1:2")
        .await
        .unwrap_err();
    assert!(
        err.chat_message().contains("has no suggestion 3"),
        "{}",
        err.chat_message()
    );
    let reply = app
        .desk
        .press(&customer_actor(), "kb-solved:1:0")
        .await
        .unwrap();
    assert!(reply
        .message
        .text
        .contains("answered by the knowledge base"));
    let t = app.desk.ticket(TicketRef(1)).await.unwrap();
    assert_eq!(t.status, Status::Resolved);
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::KbAnswered { article } if article == "account/password-reset"
    )));
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::StatusChanged { reason: Some(r), .. } if r == "answered by the knowledge base: Resetting your password"
    )));

    // Billing's refund article for a double charge; Bob (billing) says it was not it.
    app.flag(
        &bob(),
        "ticket",
        source("slack:CHELP", "7.2", "I was charged twice this month"),
    )
    .await
    .unwrap();
    assert_eq!(
        suggested(&app, 2).await,
        Some(vec!["billing/refunds".to_string()])
    );
    app.desk.press(&bob(), "kb-not:2").await.unwrap();
    let events = app.desk.store.events(TicketRef(2)).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::KbNotHelpful { articles } if articles == &["billing/refunds".to_string()]
    )));
    assert_eq!(
        app.desk.ticket(TicketRef(2)).await.unwrap().status,
        Status::Open
    );

    // Nothing fits: the plain confirmation, and the ticket records that none did.
    app.flag(
        &bob(),
        "ticket",
        source(
            "slack:CHELP",
            "7.3",
            "The coffee machine on the third floor is broken",
        ),
    )
    .await
    .unwrap();
    assert_eq!(suggested(&app, 3).await, Some(vec![]));
    let plain = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|r| {
            r.outgoing
                .message
                .text
                .starts_with("Thanks! This is now ticket T-3")
        })
        .unwrap();
    assert!(plain.outgoing.message.buttons.is_empty());

    fn customer_actor() -> Actor {
        Actor::user(customer())
    }
}

crate::on_both_backends!(suggestions_and_their_buttons,);

/// The digest's knowledge part: tickets answered by articles (next to the week before), the
/// most used articles, those marked not helpful, and the most frequent words of the tickets no
/// article fitted; each counted under the ticket's department, so a department's digest has
/// only its own.
async fn the_digest_shows_what_the_knowledge_base_did(app: crate::helpers::TestApp) {
    use switchboard::cmd::digest::report;
    use switchboard::config::Period;
    use switchboard::core::digest::{ArticleUse, KnowledgeFigures};
    use switchboard::core::directory::Actor;

    use crate::helpers::*;

    let utc = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let flag_at = |at: &'static str, ts: &'static str, text: &'static str| {
        let app = &app;
        async move {
            app.clock.set(utc(at));
            app.flag(&bob(), "ticket", source("slack:CHELP", ts, text))
                .await
                .unwrap();
        }
    };
    let customer = Actor::user(customer());
    // The week before (from Mon 23 Feb 09:00 Berlin): one answered.
    flag_at(
        "2026-02-24T10:00:00Z",
        "8.1",
        "I forgot my password and cannot sign in",
    )
    .await;
    app.desk.press(&customer, "kb-solved:1:0").await.unwrap();
    // This week.
    flag_at(
        "2026-03-02T09:00:00Z",
        "8.2",
        "Forgot my password, cannot log in",
    )
    .await;
    app.desk.press(&customer, "kb-solved:2:0").await.unwrap();
    flag_at(
        "2026-03-03T09:00:00Z",
        "8.3",
        "Password reset: I can't sign in since Monday",
    )
    .await;
    app.desk.press(&customer, "kb-solved:3:0").await.unwrap();
    flag_at(
        "2026-03-03T10:00:00Z",
        "8.4",
        "I was charged twice this month",
    )
    .await;
    app.desk.press(&bob(), "kb-not:4").await.unwrap();
    flag_at(
        "2026-03-04T09:00:00Z",
        "8.5",
        "The printer on the second floor jams",
    )
    .await;
    flag_at("2026-03-05T09:00:00Z", "8.6", "Printer out of toner again").await;
    flag_at(
        "2026-03-06T09:00:00Z",
        "8.7",
        "The coffee machine is broken",
    )
    .await;
    // After the period's end: not in it.
    flag_at("2026-03-09T08:00:01Z", "8.8", "Printer jams again").await;

    let at = utc("2026-03-09T08:00:00Z");
    let week = |departments: &'static [&'static str]| {
        let app = &app;
        async move {
            let departments: Vec<String> = departments.iter().map(|d| d.to_string()).collect();
            report(
                &app.desk,
                "weekly",
                chrono_tz::Europe::Berlin,
                Period::Week,
                &departments,
                at,
            )
            .await
            .unwrap()
        }
    };
    let r = week(&[]).await;
    let k = r.knowledge.as_ref().expect("a knowledge part");
    assert_eq!(
        k.current,
        KnowledgeFigures {
            suggested: 3,
            unmatched: 3,
            answered: 2,
            not_helpful: 1
        }
    );
    assert_eq!(
        k.previous,
        KnowledgeFigures {
            suggested: 1,
            unmatched: 0,
            answered: 1,
            not_helpful: 0
        }
    );
    assert_eq!(
        k.most_used,
        [
            ArticleUse {
                article: "account/password-reset".into(),
                answered: 2,
                suggested: 2
            },
            ArticleUse {
                article: "billing/refunds".into(),
                answered: 0,
                suggested: 1
            }
        ]
    );
    assert_eq!(k.not_helpful, [("billing/refunds".to_string(), 1)]);
    // "printer" is in two of the three unmatched tickets; no other word is in more than one.
    assert_eq!(k.gaps, [("printer".to_string(), 2)]);
    let text = switchboard::core::digest::render(&r, chrono_tz::Europe::Berlin);
    let part = text
        .sections
        .iter()
        .find(|s| s.heading == "Knowledge base")
        .expect("a knowledge part in the post");
    assert_eq!(
        part.text,
        "Answered by an article: 2 tickets (▲ 100%, from 1)\n\
         Suggestions on 3 of 6 new tickets; 1 marked not what was needed\n\
         Most used: account/password-reset (2 answered, 2 suggested) · billing/refunds (0 answered, 1 suggested)\n\
         Not what was needed: billing/refunds (1)\n\
         No article matched 3 tickets; their most frequent words: printer (2)"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["knowledge"]["current"]["answered"], 2);
    assert_eq!(json["knowledge"]["gaps"][0][0], "printer");

    // Billing's digest has billing's ticket only.
    let billing = week(&["billing"]).await;
    let k = billing.knowledge.expect("billing had a suggestion");
    assert_eq!(
        (
            k.current.suggested,
            k.current.answered,
            k.current.not_helpful,
            k.current.unmatched
        ),
        (1, 0, 1, 0)
    );
    // IT's knowledge base did nothing in either week: no part at all.
    let it = week(&["it"]).await;
    assert_eq!(it.knowledge, None);
    assert!(
        !switchboard::core::digest::render(&it, chrono_tz::Europe::Berlin)
            .sections
            .iter()
            .any(|s| s.heading == "Knowledge base")
    );
}

crate::on_both_backends!(the_digest_shows_what_the_knowledge_base_did,);

/// A ticket opened with `/ticket new` gets the suggestions in the reply only its reporter
/// sees, with the same buttons: "This solved it" resolves it.
async fn a_command_ticket_gets_suggestions_in_its_reply(app: crate::helpers::TestApp) {
    use switchboard::core::directory::Actor;
    use switchboard::core::ticket::EventKind;
    use switchboard::core::types::{Status, TicketRef};

    use crate::helpers::*;

    let customer = Actor::user(customer());
    let reply = app
        .run(
            &customer,
            "/ticket new I forgot my password and cannot sign in",
        )
        .await
        .unwrap();
    assert_eq!(
        reply.visibility,
        switchboard::core::message::Visibility::Ephemeral
    );
    let text = &reply.message.text;
    assert!(text.starts_with("Opened T-1 for support"), "{text}");
    assert!(
        text.contains("1. Resetting your password <https://help.example.com/password>"),
        "{text}"
    );
    let ids: Vec<&str> = reply
        .message
        .buttons
        .iter()
        .map(|b| b.action_id.as_str())
        .collect();
    assert_eq!(ids, ["kb-solved:1:0", "kb-not:1"]);
    let events = app.desk.store.events(TicketRef(1)).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::KbSuggested { articles } if articles == &["account/password-reset".to_string()]))
            .count(),
        1,
        "recorded once: {events:?}"
    );
    app.desk.press(&customer, "kb-solved:1:0").await.unwrap();
    assert_eq!(
        app.desk.ticket(TicketRef(1)).await.unwrap().status,
        Status::Resolved
    );
    // Nothing fits: the plain reply, and the ticket records that none did.
    let reply = app
        .run(&customer, "/ticket new The coffee machine is broken")
        .await
        .unwrap();
    assert!(reply.message.buttons.is_empty());
    assert!(!reply.message.text.contains("While you wait"));
    let events = app.desk.store.events(TicketRef(2)).await.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::KbSuggested { articles } if articles.is_empty())));
}

crate::on_both_backends!(a_command_ticket_gets_suggestions_in_its_reply,);
