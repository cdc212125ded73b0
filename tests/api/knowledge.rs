//! The knowledge base: the fixture articles (`tests/fixtures/kb`) found for reworded
//! questions and not for unrelated text, a changed folder picked up, and `switchboard kb
//! check` reporting every problem with its file and line.

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
