//! The flag limit (`[flagging] limit` per `limit_window`, 30 per 10 minutes by default) on both
//! databases: counted per person across linked accounts, platforms and kinds of flag, from
//! the store; past it a flag creates nothing and says when to try again; a re-flag and
//! `/ticket new` do not count; a burst handled at once, even by two instances, is counted
//! exactly.

use chrono::Duration;
use switchboard::config::{Config, ConfigError, FlagLimit};
use switchboard::core::directory::Actor;
use switchboard::core::ticket::{Origin, Source};
use switchboard::core::types::{ChannelRef, Platform};
use switchboard::desk::{Desk, DeskError, FlagRequest, TicketOverrides};

use crate::helpers::*;

/// A message by the customer in `channel` (`slack:CHELP`, `discord:2100`).
fn message(channel: &str, id: &str) -> Source {
    Source {
        channel: channel.parse::<ChannelRef>().unwrap(),
        message_id: id.into(),
        thread_id: None,
        permalink: None,
        original_text: format!("problem {id}"),
        author: customer(),
        author_name: None,
    }
}

async fn flag_with(
    desk: &Desk,
    flagger: &Actor,
    origin: Origin,
    src: Source,
) -> Result<bool, DeskError> {
    desk.flag(FlagRequest {
        flagger: flagger.clone(),
        origin,
        emoji: (origin == Origin::Flag).then(|| "ticket".to_string()),
        source: src,
        author_roles: vec![],
        overrides: TicketOverrides::default(),
        inbox_key: None,
    })
    .await
    .map(|o| o.created)
}

/// `flagger` flags `n` new messages in `channel` (ids `{prefix}-0`…), each making a ticket.
pub async fn use_up_flags(app: &TestApp, flagger: &Actor, channel: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let created = flag_with(
            &app.desk,
            flagger,
            Origin::Flag,
            message(channel, &format!("{prefix}-{i}")),
        )
        .await
        .unwrap();
        assert!(created, "flag {i} of {n}");
    }
}

async fn thirty_flags_per_person_in_ten_minutes_then_a_refusal_that_says_when(app: TestApp) {
    let bob_on_discord = discord("1002");
    // `/ticket new` is not a flag: it does not count.
    app.ok(&bob(), "/ticket new My own problem").await;
    // Bob's Slack and Discord accounts are one person, and every kind of flag counts.
    use_up_flags(&app, &bob(), "slack:CHELP", "s", 10).await;
    app.clock.advance(Duration::minutes(2));
    use_up_flags(&app, &bob_on_discord, "discord:2100", "d", 10).await;
    for i in 0..10 {
        let origin = if i % 2 == 0 {
            Origin::Shortcut
        } else {
            Origin::Flag
        };
        let src = message("slack:CHELP", &format!("m-{i}"));
        assert!(flag_with(&app.desk, &bob(), origin, src).await.unwrap());
    }
    assert_eq!(ticket_count(&app).await, 31);

    // The 31st flag, from either account, any kind: refused, nothing written.
    for (who, origin, channel) in [
        (&bob_on_discord, Origin::Shortcut, "discord:2100"),
        (&bob(), Origin::Flag, "slack:CHELP"),
    ] {
        let src = message(channel, "one-too-many");
        let e = flag_with(&app.desk, who, origin, src.clone())
            .await
            .unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert!(matches!(e, DeskError::FlagLimit { .. }), "{e:?}");
        assert_eq!(
            e.chat_message(),
            "You have flagged 30 messages in the last 10 minutes; the limit is 30 per 10 minutes. Try again in 8 minutes."
        );
        assert!(app
            .desk
            .store
            .ticket_by_source(&src.channel, "one-too-many")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            app.desk
                .check_flag_limit(who, None)
                .await
                .unwrap_err()
                .to_string(),
            e.to_string(),
            "the forms' early check says the same"
        );
    }
    assert_eq!(ticket_count(&app).await, 31);

    // Flagging a message that already has a ticket only points to it: allowed, not counted.
    let again = flag_with(
        &app.desk,
        &bob(),
        Origin::Flag,
        message("slack:CHELP", "s-3"),
    )
    .await
    .unwrap();
    assert!(!again, "a re-flag");
    let existing = ChannelRef::new(Platform::Slack, "CHELP");
    app.desk
        .check_flag_limit(&bob(), Some((&existing, "s-3")))
        .await
        .unwrap();
    // Others are not affected: another person, and an account linked to nobody.
    assert!(flag_with(
        &app.desk,
        &alice(),
        Origin::Flag,
        message("slack:CHELP", "a-1")
    )
    .await
    .unwrap());
    // Dave's Discord account is linked to no person: it counts alone.
    assert!(flag_with(
        &app.desk,
        &dave(),
        Origin::Flag,
        message("discord:2100", "x-1")
    )
    .await
    .unwrap());

    // The window slides: the first ten leave it eight minutes on, and ten more fit.
    app.clock.advance(Duration::minutes(5));
    let e = flag_with(
        &app.desk,
        &bob(),
        Origin::Flag,
        message("slack:CHELP", "late"),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("Try again in 3 minutes"), "{e}");
    app.clock
        .advance(Duration::minutes(3) + Duration::seconds(1));
    use_up_flags(&app, &bob(), "slack:CHELP", "later", 10).await;
    let e = flag_with(
        &app.desk,
        &bob(),
        Origin::Flag,
        message("slack:CHELP", "latest"),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("Try again in 2 minutes"), "{e}");
}

/// Forty flags by one person handled at once, half by a second instance on the same
/// database: exactly thirty tickets, whatever the order.
async fn a_burst_from_two_instances_is_counted_exactly(app: TestApp) {
    let mut other = app.desk.clone();
    other.store = app.second_store().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let desk = if i % 2 == 0 {
            app.desk.clone()
        } else {
            other.clone()
        };
        let who = if i % 3 == 0 { discord("1002") } else { bob() };
        tasks.push(tokio::spawn(async move {
            flag_with(
                &desk,
                &who,
                Origin::Flag,
                message("slack:CHELP", &format!("b-{i}")),
            )
            .await
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => created += 1,
            Err(DeskError::FlagLimit { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((created, refused), (30, 10));
    assert_eq!(ticket_count(&app).await, 30);
}

crate::on_both_backends!(
    thirty_flags_per_person_in_ten_minutes_then_a_refusal_that_says_when,
    a_burst_from_two_instances_is_counted_exactly,
);

fn config(flagging: &str) -> Result<Config, ConfigError> {
    let text = TEST_CONFIG.replace(
        "who = \"members\"",
        &format!("who = \"members\"\n{flagging}"),
    );
    Config::from_toml(&text, "test.toml", |_| None::<String>)
}

#[test]
fn the_limit_is_configured_under_flagging() {
    assert_eq!(config("").unwrap().flag_limit, Some(FlagLimit::default()));
    assert_eq!(
        FlagLimit::default(),
        FlagLimit {
            count: 30,
            window: Duration::minutes(10)
        }
    );
    assert_eq!(
        config("limit = 5\nlimit_window = \"1h 30m\"")
            .unwrap()
            .flag_limit,
        Some(FlagLimit {
            count: 5,
            window: Duration::minutes(90)
        })
    );
    assert_eq!(
        config("limit = 0").unwrap().flag_limit,
        None,
        "0 turns it off"
    );
    for (bad, key) in [
        ("limit = -1", "flagging.limit"),
        ("limit = \"lots\"", "flagging.limit"),
        ("limit_window = \"soon\"", "flagging.limit_window"),
        ("limit_window = \"30s\"", "flagging.limit_window"),
    ] {
        let Err(ConfigError::Invalid { problems, .. }) = config(bad) else {
            panic!("{bad} was accepted");
        };
        assert!(problems.iter().any(|p| p.key == key), "{bad}: {problems:?}");
    }
}
