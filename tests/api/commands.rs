//! Command specs, parsing of every subcommand, and the platform exports against the
//! platforms' published schemas.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use switchboard::cmd::{
    self, digest::DigestCmd, kb::KbCmd, kudos::KudosCmd, metric::MetricCmd, reply::ReplyCmd,
    ticket::TicketCmd, Command,
};
use switchboard::core::command::{CommandSet, OptionKind};
use switchboard::core::types::{Platform, Priority, Status, TicketRef, UserRef};
use switchboard::export;

fn set() -> CommandSet {
    CommandSet::builtin().unwrap()
}

fn sample(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::Text => "some words here",
        OptionKind::Word => "nps",
        OptionKind::Ticket => "T-1",
        OptionKind::User => "slack:UBOB",
        OptionKind::Department => "billing",
        OptionKind::Priority => "high",
        OptionKind::Status => "waiting",
        OptionKind::Tags => "a,b",
        OptionKind::Number => "4",
        OptionKind::Integer => "7",
        OptionKind::SavedReply => "refund-policy",
    }
}

#[test]
fn every_spec_subcommand_has_a_handler_that_reads_every_option() {
    let set = set();
    for spec in set.slash_commands() {
        for sub in &spec.subcommands {
            let all: BTreeMap<String, String> = sub
                .options
                .iter()
                .map(|o| (o.name.clone(), sample(o.kind).to_string()))
                .collect();
            let inv = set.invocation(&spec.name, &sub.name, all).unwrap();
            let (_, unread) = cmd::parse_reporting_unread(&set, &inv)
                .unwrap_or_else(|e| panic!("/{} {}: {e}", spec.name, sub.name));
            assert!(
                unread.is_empty(),
                "/{} {} never reads {unread:?}",
                spec.name,
                sub.name
            );
            let required: BTreeMap<String, String> = sub
                .options
                .iter()
                .filter(|o| o.required)
                .map(|o| (o.name.clone(), sample(o.kind).to_string()))
                .collect();
            let inv = set.invocation(&spec.name, &sub.name, required).unwrap();
            cmd::parse(&set, &inv)
                .unwrap_or_else(|e| panic!("/{} {} with required only: {e}", spec.name, sub.name));
        }
    }
}

#[test]
fn every_handler_subcommand_has_a_spec_and_nothing_else() {
    let set = set();
    let specs: BTreeSet<(String, String)> = set
        .slash_commands()
        .flat_map(|c| {
            c.subcommands
                .iter()
                .map(move |s| (c.name.clone(), s.name.clone()))
        })
        .collect();
    let handlers: BTreeSet<(String, String)> = cmd::HANDLERS
        .iter()
        .flat_map(|(c, subs)| subs.iter().map(move |s| (c.to_string(), s.to_string())))
        .collect();
    assert_eq!(specs, handlers);
}

fn parse(line: &str) -> Result<Command, String> {
    let set = set();
    let (c, text) = line.split_once(' ').unwrap_or((line, ""));
    let inv = set
        .parse_text(c, text)
        .map_err(|e| e.to_string())?
        .ok_or("help")?;
    cmd::parse(&set, &inv).map_err(|e| e.to_string())
}

fn bob() -> UserRef {
    UserRef::new(Platform::Slack, "UBOB")
}

#[test]
fn every_subcommand_parses_good_input() {
    let t1 = TicketRef(1);
    let cases: Vec<(&str, Command)> = vec![
        (
            "/ticket new Printer on fire priority:urgent department:IT tags:hw,Office",
            Command::Ticket(TicketCmd::New {
                title: "Printer on fire".into(),
                department: Some("it".into()),
                priority: Some(Priority::Urgent),
                tags: vec!["hw".into(), "office".into()],
            }),
        ),
        ("/ticket show t1", Command::Ticket(TicketCmd::Show(t1))),
        (
            "/ticket list status:resolved",
            Command::Ticket(TicketCmd::List {
                department: None,
                status: Some(Status::Resolved),
                assignee: None,
            }),
        ),
        (
            "/ticket list billing",
            Command::Ticket(TicketCmd::List {
                department: Some("billing".into()),
                status: None,
                assignee: None,
            }),
        ),
        (
            "/ticket assign T-1 <@UBOB|bob>",
            Command::Ticket(TicketCmd::Assign(t1, bob())),
        ),
        ("/ticket claim #1", Command::Ticket(TicketCmd::Claim(t1))),
        (
            "/ticket status T-1 in-progress",
            Command::Ticket(TicketCmd::Status(t1, Status::InProgress)),
        ),
        (
            "/ticket priority T-1 LOW",
            Command::Ticket(TicketCmd::Priority(t1, Priority::Low)),
        ),
        (
            "/ticket route T-1 billing",
            Command::Ticket(TicketCmd::Route(t1, "billing".into())),
        ),
        (
            "/ticket note T-1 called them back",
            Command::Ticket(TicketCmd::Note(t1, "called them back".into())),
        ),
        (
            "/ticket close T-1",
            Command::Ticket(TicketCmd::Close(t1, None)),
        ),
        (
            "/ticket close T-1 duplicate of T-2",
            Command::Ticket(TicketCmd::Close(t1, Some("duplicate of T-2".into()))),
        ),
        (
            "/ticket reopen T-1 it is back",
            Command::Ticket(TicketCmd::Reopen(t1, Some("it is back".into()))),
        ),
        (
            "/ticket explain T-1",
            Command::Ticket(TicketCmd::Explain(t1)),
        ),
        ("/ticket web", Command::Ticket(TicketCmd::Web(None))),
        ("/ticket web T-1", Command::Ticket(TicketCmd::Web(Some(t1)))),
        (
            "/kudos give <@UBOB> for the export fix",
            Command::Kudos(KudosCmd::Give {
                user: bob(),
                reason: "for the export fix".into(),
                ticket: None,
            }),
        ),
        (
            "/kudos <@UBOB> for the export fix T-1",
            Command::Kudos(KudosCmd::Give {
                user: bob(),
                reason: "for the export fix".into(),
                ticket: Some(t1),
            }),
        ),
        (
            "/kudos <@UBOB> for closing T-1 fast",
            Command::Kudos(KudosCmd::Give {
                user: bob(),
                reason: "for closing T-1 fast".into(),
                ticket: None,
            }),
        ),
        (
            "/kudos <@UBOB> T-1",
            Command::Kudos(KudosCmd::Give {
                user: bob(),
                reason: "T-1".into(),
                ticket: None,
            }),
        ),
        (
            "/kudos give <@UBOB> \"fixed T-1\" ticket:T-1",
            Command::Kudos(KudosCmd::Give {
                user: bob(),
                reason: "\"fixed T-1\"".into(),
                ticket: Some(t1),
            }),
        ),
        (
            "/kudos list days:30",
            Command::Kudos(KudosCmd::List {
                user: None,
                days: Some(30),
            }),
        ),
        (
            "/digest preview",
            Command::Digest(DigestCmd::Preview {
                schedule: None,
                department: None,
            }),
        ),
        (
            "/digest now Weekly",
            Command::Digest(DigestCmd::Now {
                schedule: "weekly".into(),
            }),
        ),
        (
            "/metric record nps 6 department:billing from survey",
            Command::Metric(MetricCmd::Record {
                name: "nps".into(),
                value: 6.0,
                department: Some("billing".into()),
                note: Some("from survey".into()),
            }),
        ),
        (
            "/metric list csat",
            Command::Metric(MetricCmd::List {
                name: Some("csat".into()),
                days: None,
            }),
        ),
        (
            "/reply T-1 Refund-Policy",
            Command::Reply(ReplyCmd::Send {
                ticket: t1,
                name: "refund-policy".into(),
            }),
        ),
        (
            "/reply add refund department:billing Hi {reporter}, refunds take 5 days.",
            Command::Reply(ReplyCmd::Add {
                name: "refund".into(),
                text: "Hi {reporter}, refunds take 5 days.".into(),
                department: Some("billing".into()),
            }),
        ),
        (
            "/reply list",
            Command::Reply(ReplyCmd::List { department: None }),
        ),
        (
            "/kb reset my password",
            Command::Kb(KbCmd::Search("reset my password".into())),
        ),
        (
            "/kb show billing/refunds",
            Command::Kb(KbCmd::Show("billing/refunds".into())),
        ),
        (
            "/reply remove refund billing",
            Command::Reply(ReplyCmd::Remove {
                name: "refund".into(),
                department: Some("billing".into()),
            }),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(
            parse(line).unwrap_or_else(|e| panic!("{line}: {e}")),
            want,
            "{line}"
        );
    }
}

#[test]
fn every_subcommand_refuses_bad_input_saying_how_to_fix_it() {
    let cases = [
        (
            "/ticket new",
            "`title` is missing. Usage: `/ticket new <title>",
        ),
        ("/ticket new x priority:asap", "low, normal, high or urgent"),
        ("/ticket new x tags:a/b", "tag `a/b`"),
        ("/ticket show", "`ticket` is missing"),
        (
            "/ticket show 4x",
            "is not a ticket reference such as `T-42`",
        ),
        ("/ticket list status:sleeping", "is not a status"),
        ("/ticket list assignee:bob", "mention them"),
        ("/ticket assign T-1", "`user` is missing"),
        ("/ticket assign T-1 bob", "mention them"),
        ("/ticket claim", "e.g. `/ticket claim T-42`"),
        (
            "/ticket claim T-1 T-2",
            "I don't know what to do with `T-2`",
        ),
        ("/ticket status T-1", "`status` is missing"),
        ("/ticket priority T-1 meh", "low, normal, high or urgent"),
        ("/ticket route T-1", "`department` is missing"),
        ("/ticket note T-1", "`text` is missing"),
        ("/ticket close", "`ticket` is missing"),
        ("/ticket reopen X", "is not a ticket reference"),
        ("/ticket explain", "`ticket` is missing"),
        ("/ticket web soon", "is not a ticket reference"),
        (
            "/ticket frob",
            "no `frob` subcommand; use one of: new, show, list",
        ),
        ("/kudos give <@UBOB>", "`why` is missing"),
        ("/kudos give", "`user` is missing"),
        ("/kudos <@UBOB>", "`why` is missing"),
        ("/kudos lst", "no `lst` subcommand; use one of: give, list"),
        (
            "/kudos <@UBOB> thanks ticket:X-1",
            "is not a ticket reference",
        ),
        ("/kudos list days:0", "from 1 to 365"),
        (
            "/digest preview weekly it extra",
            "I don't know what to do with `extra`",
        ),
        ("/digest now", "`schedule` is missing"),
        ("/digest now we/ekly", "one word"),
        ("/metric record nps", "`value` is missing"),
        ("/metric record nps lots", "is not a number"),
        ("/metric record nps NaN", "is not a number"),
        ("/metric list days:x", "whole number"),
        ("/ticket new \"open quote", "quote is not closed"),
        ("/reply T-1", "`name` is missing"),
        ("/reply T-1 refund/policy", "one word"),
        ("/reply add refund", "`text` is missing"),
        (
            "/reply refund",
            "no `refund` subcommand; use one of: send, add, list, remove",
        ),
    ];
    for (line, want) in cases {
        let err = parse(line).expect_err(line);
        assert!(err.contains(want), "{line}: `{err}` lacks `{want}`");
    }
}

fn validator(schema: Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .expect("schema compiles")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn discord_bulk_schema() -> jsonschema::Validator {
    let spec: Value = serde_json::from_str(include_str!(
        "../fixtures/platform-specs/discord/openapi.json"
    ))
    .unwrap();
    let body = spec["paths"]["/applications/{application_id}/commands"]["put"]["requestBody"]
        ["content"]["application/json"]["schema"]
        .clone();
    let mut schema = body;
    schema["components"] = spec["components"].clone();
    validator(schema)
}

#[test]
fn discord_export_validates_against_discords_openapi_schema() {
    let v = discord_bulk_schema();
    let export = export::discord_commands(&set());
    let errs = errors(&v, &export);
    assert!(errs.is_empty(), "{errs:#?}");
}

#[test]
fn the_discord_schema_check_catches_a_broken_export() {
    let v = discord_bulk_schema();
    let mut export = export::discord_commands(&set());
    export[0]["description"] = json!("x".repeat(101));
    export[0]["options"][0]["type"] = json!("subcommand");
    assert!(errors(&v, &export).len() >= 2);
}

#[test]
fn slack_manifest_validates_against_slacks_manifest_schema() {
    let schema: Value = serde_json::from_str(include_str!(
        "../fixtures/platform-specs/slack/manifest.schema.1.0.0.json"
    ))
    .unwrap();
    let v = validator(schema);
    for mode in [
        export::SlackMode::Socket,
        export::SlackMode::http("https://desk.example.com").unwrap(),
    ] {
        let manifest = export::slack_manifest(&set(), &mode);
        let errs = errors(&v, &manifest);
        assert!(errs.is_empty(), "{mode:?}: {errs:#?}");
    }
    let manifest = export::slack_manifest(&set(), &export::SlackMode::Socket);
    let mut broken = manifest.clone();
    broken["features"]["slash_commands"][0]["command"] = json!("ticket");
    assert!(
        !errors(&v, &broken).is_empty(),
        "a command without its slash is refused"
    );
    let mut broken = manifest.clone();
    broken["settings"]["interactivity"]["request_url"] = json!("desk.example.com/x");
    assert!(
        !errors(&v, &broken).is_empty(),
        "a request URL needs a scheme"
    );
}
