//! Saved replies (`/reply`) on both databases: kept by leads, listed and sent by members,
//! names that would read as something else and unknown variables refused, a department's
//! reply before the global one, variables filled and mentions neutralised, the post queued in
//! the ticket's thread (under the flagged message, or under the alert) in the sender's name,
//! in the ticket's history and counted as its first response.

use switchboard::core::message::{OutKind, Target};
use switchboard::core::ticket::EventKind;
use switchboard::core::types::TicketRef;

use crate::helpers::*;

/// The ticket's thread posts: kind, target and text.
async fn thread_posts(app: &TestApp, id: TicketRef) -> Vec<(OutKind, Target, String)> {
    ticket_posts(app, id)
        .await
        .into_iter()
        .map(|(kind, target, text, _)| (kind, target, text))
        .collect()
}

async fn kept_by_leads_listed_and_sent_by_members(app: TestApp) {
    // Carol leads billing; Bob is a member of billing; Alice is an admin.
    let saved = app
        .ok(
            &carol(),
            "/reply add refund department:billing Hi {reporter}, {ticket} is with {department}: refunds take 5 days. <!here>",
        )
        .await;
    assert!(
        saved.contains("Saved the reply `refund` for billing"),
        "{saved}"
    );
    let err = app
        .user_error(
            &bob(),
            "/reply add refund department:billing Refunds take a week.",
        )
        .await;
    assert!(err.contains("a lead of billing"), "{err}");
    let err = app.user_error(&bob(), "/reply add hello Hi there.").await;
    assert!(err.contains("a department lead"), "{err}");
    app.ok(&alice(), "/reply add refund Everyone's refund answer.")
        .await;
    app.ok(
        &alice(),
        "/reply add hello Hi {reporter}, {assignee} has this one.",
    )
    .await;
    // Names that would read as a subcommand or a ticket, and unknown variables.
    for (line, want) in [
        ("/reply add send Hi.", "one of /reply's own words"),
        ("/reply add help Hi.", "one of /reply's own words"),
        ("/reply add t-9 Hi.", "would read as a ticket"),
        (
            "/reply add greet Hi {customer}.",
            "{customer} is not a variable",
        ),
        (
            "/reply add greet Hi {Reporter}.",
            "{Reporter} is not a variable",
        ),
    ] {
        let err = app.user_error(&alice(), line).await;
        assert!(err.contains(want), "{line}: {err}");
    }
    let replaced = app
        .ok(
            &alice(),
            "/reply add hello Hi {reporter}, {assignee} has this.",
        )
        .await;
    assert!(replaced.starts_with("Replaced"), "{replaced}");

    // Bob sees billing's and the global ones; someone in no department may not list them.
    let listed = app.ok(&bob(), "/reply list").await;
    for want in [
        "`refund` (billing)",
        "`refund` (every department)",
        "`hello`",
    ] {
        assert!(listed.contains(want), "{want}: {listed}");
    }
    assert!(!listed.contains("<!here>"), "{listed}");
    app.user_error(&slack("UOUTSIDER"), "/reply list").await;

    // A flagged billing ticket: billing's own `refund`, filled in, posted under the message.
    let mut src = source("slack:CHELP", "1772442000.000100", "I was charged twice");
    src.author_name = Some("Casey".into());
    app.flag(&bob(), "ticket", src).await.unwrap();
    let t1 = TicketRef(1);
    assert_eq!(app.desk.ticket(t1).await.unwrap().department, "billing");
    let err = app.user_error(&dave(), "/reply T-1 refund").await;
    assert!(err.contains("a member of billing"), "{err}");
    let sent = app.ok(&bob(), "/reply T-1 refund").await;
    assert!(
        sent.contains("Posted the saved reply `refund` in T-1's thread"),
        "{sent}"
    );
    let posts = thread_posts(&app, t1).await;
    let (kind, target, text) = posts.last().unwrap();
    assert_eq!(*kind, OutKind::Post);
    assert_eq!(
        *target,
        Target::Channel {
            channel: "slack:CHELP".parse().unwrap(),
            thread: Some("1772442000.000100".into()),
        }
    );
    assert!(
        text.starts_with("Bob, from the saved reply refund:\nHi Casey, T-1 is with billing: refunds take 5 days."),
        "{text}"
    );
    assert!(
        !text.contains("<!here>"),
        "the mention is neutralised: {text}"
    );
    let t = app.desk.ticket(t1).await.unwrap();
    assert_eq!(
        t.first_response_at,
        Some(app.desk.now()),
        "a first response"
    );
    let events = app.desk.store.events(t1).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::SavedReplySent { name, text } if name == "refund" && text.contains("Hi Casey")
    )));

    // A ticket opened by command in support has no message: the global reply goes under its
    // alert in support's channel. An unknown name lists what there is.
    app.ok(&alice(), "/ticket new The VPN drops every hour")
        .await;
    let t2 = TicketRef(2);
    app.ok(&alice(), "/ticket claim T-2").await;
    let err = app.user_error(&alice(), "/reply T-2 refnd").await;
    assert!(
        err.contains("no saved reply `refnd` for support") && err.contains("refund"),
        "{err}"
    );
    app.ok(&alice(), "/reply T-2 refund").await;
    app.ok(&alice(), "/reply send T-2 hello").await;
    let posts = thread_posts(&app, t2).await;
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0].0, OutKind::AlertReply);
    assert_eq!(
        posts[0].1,
        Target::Channel {
            channel: "slack:CSUPPORT".parse().unwrap(),
            thread: None,
        }
    );
    assert!(
        posts[0].2.ends_with("Everyone's refund answer."),
        "{}",
        posts[0].2
    );
    assert!(posts[1].2.ends_with("Alice has this."), "{}", posts[1].2);

    // Removing: a lead of the department, or for the global one any lead or an admin.
    app.user_error(&bob(), "/reply remove refund department:billing")
        .await;
    let removed = app
        .ok(&carol(), "/reply remove refund department:billing")
        .await;
    assert!(
        removed.contains("Removed the saved reply `refund` for billing"),
        "{removed}"
    );
    let err = app
        .user_error(&carol(), "/reply remove refund department:billing")
        .await;
    assert!(
        err.contains("There is no saved reply `refund` for billing"),
        "{err}"
    );
    // T-1 now gets the global `refund`.
    app.ok(&bob(), "/reply T-1 refund").await;
    let posts = thread_posts(&app, t1).await;
    assert!(posts
        .last()
        .unwrap()
        .2
        .ends_with("Everyone's refund answer."));
}

crate::on_both_backends!(kept_by_leads_listed_and_sent_by_members,);
