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
