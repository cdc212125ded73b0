//! Property tests for every parser of outside text: whatever a person, a platform or a config
//! file sends, parsing never panics, and text made safe for re-posting never carries a live
//! mention or link. Inputs mix printable text with the characters that matter to each parser
//! (brackets, pipes, quotes, `@`, `!`, `<`, `>`, colons, newlines, NUL, right-to-left marks).

use proptest::prelude::*;
use switchboard::chat::discord::render::neutral;
use switchboard::chat::slack::blocks::escape;
use switchboard::config::Config;
use switchboard::core::command::CommandSet;
use switchboard::core::message::{neutralize_mentions, split_text, truncate};

/// Text built from pieces that exercise the parsers: syntax characters, mention and link
/// shapes, words, and odd characters.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("|".to_string()),
        Just("!".to_string()),
        Just("@".to_string()),
        Just("&".to_string()),
        Just("^".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{202E}".to_string()),
        Just("<!channel>".to_string()),
        Just("<!here|here>".to_string()),
        Just("<!subteam^S1|@team>".to_string()),
        Just("<@U123|bob>".to_string()),
        Just("<@&55>".to_string()),
        Just("<@!66>".to_string()),
        Just("@everyone".to_string()),
        Just("@here".to_string()),
        Just("https://evil.example/x".to_string()),
        Just("[label](https://evil.example)".to_string()),
        Just("T-42".to_string()),
        Just("priority:high".to_string()),
        Just("department:\"very long\"".to_string()),
        "[a-zA-Z0-9 ]{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Whether `text` still holds something Slack would turn into a ping or a link.
fn live_on_slack(text: &str) -> bool {
    text.contains('<') || text.contains('>')
}

/// Whether `text` still holds something Discord would turn into a ping or a masked link: a
/// user or role mention (`<@123>`, `<@!123>`, `<@&123>`), `@everyone`, `@here`, or `](`.
fn live_on_discord(text: &str) -> bool {
    let mention = text.match_indices("<@").any(|(i, _)| {
        let rest = text[i + 2..].trim_start_matches(['!', '&']);
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with('>')
    });
    mention
        || text.contains("@everyone")
        || text.contains("@here")
        || text.replace("\\](", "").contains("](")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn slash_command_text_never_panics(text in hostile_text(), which in 0usize..6) {
        let set = CommandSet::builtin().unwrap();
        let command = ["/ticket", "/kudos", "/digest", "/metric", "/ticket-admin", "/nothing"][which];
        let _ = set.parse_text(command, &text);
    }

    #[test]
    fn cron_expressions_never_panic(fields in prop::collection::vec(
        prop_oneof![
            Just("*".to_string()), Just("*/5".to_string()), Just("1-5".to_string()),
            Just("MON-FRI".to_string()), Just("0".to_string()), Just("7".to_string()),
            Just("60".to_string()), Just("1,2,3".to_string()), Just("L".to_string()),
            Just("?".to_string()), Just("-1".to_string()), Just("99999999999".to_string()),
            "[0-9A-Z*/,-]{0,6}",
        ],
        0..8,
    )) {
        let _ = switchboard::core::cronexpr::parse(&fields.join(" "));
    }

    #[test]
    fn durations_never_panic(text in prop_oneof![
        "[0-9]{0,25}[smhdw]?",
        "[0-9]{1,4}[hm] ?[0-9]{0,4}[ms]?",
        hostile_text(),
    ]) {
        let _ = switchboard::core::sla::parse_duration(&text);
    }

    #[test]
    fn the_config_walker_never_panics(key in "[a-z_.]{1,20}", value in prop_oneof![
        Just("1".to_string()), Just("-1".to_string()), Just("\"x\"".to_string()),
        Just("[]".to_string()), Just("{}".to_string()), Just("[1, \"a\"]".to_string()),
        Just("true".to_string()), Just("9999999999999999999".to_string()),
        Just("1.5".to_string()), Just("\"\"".to_string()),
        Just("{ timezone = \"Mars/Base\", days = \"MON\" }".to_string()),
    ], table in prop_oneof![
        Just(""), Just("[slack]\n"), Just("[slack.limits]\n"), Just("[discord.limits]\n"),
        Just("[[departments]]\nname = \"d\"\n"), Just("[[digests]]\nname = \"w\"\n"),
        Just("[sla]\n"), Just("[routing]\n"), Just("[[routing.rules]]\n"), Just("[flagging]\n"),
        Just("[[people]]\nid = \"p\"\n"), Just("[inbox]\n"),
    ]) {
        let text = format!("{table}{key} = {value}\n");
        let _ = Config::from_toml(&text, "prop.toml", |_| None);
    }

    #[test]
    fn neutralised_text_pings_and_links_nobody(text in hostile_text()) {
        let slack = escape(&text);
        prop_assert!(!live_on_slack(&slack), "{slack:?}");
        let discord = neutral(&text);
        prop_assert!(!live_on_discord(&discord), "{discord:?}");
        // The shared step leaves no Slack mention (`<!…>`, `<@U…>`) either.
        let both = neutralize_mentions(&text);
        prop_assert!(!both.contains("<!channel>") && !both.contains("<@U1"), "{both:?}");
        prop_assert!(!live_on_discord(&both.replace("](", "")), "{both:?}");
    }

    #[test]
    fn splitting_keeps_every_piece_within_the_limit_and_loses_no_text(
        text in hostile_text(),
        max in 1usize..40,
    ) {
        let pieces = split_text(&text, max);
        for p in &pieces {
            prop_assert!(p.chars().count() <= max, "{p:?} over {max}");
        }
        // Only blank remainders are dropped.
        let kept: String = pieces.concat();
        prop_assert_eq!(
            kept.chars().filter(|c| !c.is_whitespace()).collect::<String>(),
            text.chars().filter(|c| !c.is_whitespace()).collect::<String>()
        );
        let cut = truncate(&text, max);
        prop_assert!(cut.chars().count() <= max.max(1), "{cut:?}");
    }
}
