//! Slash-command specifications (`commands/*.toml`) and the parsing of a neutral invocation
//! into checked arguments.
//!
//! Owns the spec format, Slack-style text parsing, option validation and in-chat help. The
//! typed commands themselves live with their handlers in `crate::cmd`; platform exports live in
//! `crate::export`. Must not know any platform's wire format beyond Slack's mention syntax.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::directory::Permission;
use super::types::{Priority, Status, TicketRef, UserRef};

/// The command specs shipped in `commands/`, embedded so the binary needs no files at run time.
const BUILTIN: &[(&str, &str)] = &[
    ("ticket.toml", include_str!("../../commands/ticket.toml")),
    ("kudos.toml", include_str!("../../commands/kudos.toml")),
    ("digest.toml", include_str!("../../commands/digest.toml")),
    ("metric.toml", include_str!("../../commands/metric.toml")),
    ("reply.toml", include_str!("../../commands/reply.toml")),
    ("kb.toml", include_str!("../../commands/kb.toml")),
    (
        "create-ticket.toml",
        include_str!("../../commands/create-ticket.toml"),
    ),
];

/// What kind of entry point a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    /// A slash command with subcommands.
    #[default]
    Slash,
    /// An action on a message (Slack message shortcut, Discord message context menu).
    MessageAction,
}

/// The type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    /// Free text; in Slack's one-line form it takes the rest of the line.
    Text,
    /// One word.
    Word,
    /// A ticket reference such as `T-42`.
    Ticket,
    /// A user mention.
    User,
    /// A configured department's name.
    Department,
    /// low, normal, high or urgent.
    Priority,
    /// A ticket status.
    Status,
    /// Comma-separated labels.
    Tags,
    /// A decimal number.
    Number,
    /// A whole number.
    Integer,
    /// A saved reply's name (`/reply`): one word, offered by autocomplete on Discord.
    SavedReply,
}

impl OptionKind {
    fn placeholder(self) -> &'static str {
        match self {
            OptionKind::Text => "text",
            OptionKind::Word => "name",
            OptionKind::Ticket => "T-42",
            OptionKind::User => "@user",
            OptionKind::Department => "department",
            OptionKind::Priority => "low|normal|high|urgent",
            OptionKind::Status => "open|in_progress|waiting|resolved|closed",
            OptionKind::Tags => "tag1,tag2",
            OptionKind::Number => "1.5",
            OptionKind::Integer => "7",
            OptionKind::SavedReply => "reply-name",
        }
    }
}

/// One option of a subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// Name, also the `name:value` key in Slack text.
    pub name: String,
    /// Value type.
    pub kind: OptionKind,
    /// Help text (at most 100 characters, Discord's limit).
    pub description: String,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
}

/// One subcommand, e.g. `/ticket claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubcommandSpec {
    /// Name.
    pub name: String,
    /// Help text.
    pub description: String,
    /// Who may run it.
    pub permission: Permission,
    /// A complete example invocation for help and error messages.
    pub example: String,
    /// Options, required ones first.
    #[serde(default)]
    pub options: Vec<OptionSpec>,
}

impl SubcommandSpec {
    /// The option called `name`.
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// One file of `commands/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Slash or message action.
    #[serde(default)]
    pub kind: SpecKind,
    /// Command name without the slash, or the action's label.
    pub name: String,
    /// Help text.
    pub description: String,
    /// Callback id of a message action.
    #[serde(default)]
    pub callback_id: Option<String>,
    /// Subcommands of a slash command.
    #[serde(default)]
    pub subcommands: Vec<SubcommandSpec>,
    /// The subcommand Slack's one-line form means when its first word names none, so
    /// `/kudos @bob why` reads as `/kudos give @bob why`. Discord always names one.
    #[serde(default)]
    pub default_subcommand: Option<String>,
}

impl CommandSpec {
    /// The subcommand called `name`.
    pub fn subcommand(&self, name: &str) -> Option<&SubcommandSpec> {
        self.subcommands.iter().find(|s| s.name == name)
    }

    fn subcommand_names(&self) -> String {
        self.subcommands
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Problems in a spec file: a developer's mistake, caught by tests and at start.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The TOML did not parse into a spec.
    #[error("commands/{file}: {source}")]
    Toml {
        /// File name.
        file: String,
        /// Parser error.
        source: toml::de::Error,
    },
    /// The spec parsed but breaks a rule.
    #[error("commands/{file}: {problem}")]
    Invalid {
        /// File name.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

/// Errors in what a user typed; every message says how to fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// No such command.
    #[error("There is no /{0} command.")]
    UnknownCommand(String),
    /// A subcommand is needed.
    #[error("/{command} needs a subcommand: {available}. Try `/{command} help`.")]
    MissingSubcommand {
        /// Command.
        command: String,
        /// The choices.
        available: String,
    },
    /// No such subcommand.
    #[error("/{command} has no `{given}` subcommand; use one of: {available}.")]
    UnknownSubcommand {
        /// Command.
        command: String,
        /// What was typed.
        given: String,
        /// The choices.
        available: String,
    },
    /// A required option is missing.
    #[error("`{option}` is missing. Usage: `{usage}`, e.g. `{example}`")]
    Missing {
        /// Option name.
        option: String,
        /// Usage line.
        usage: String,
        /// Example.
        example: String,
    },
    /// An option that does not exist.
    #[error("`{option}` is not an option here. Usage: `{usage}`")]
    UnknownOption {
        /// What was typed.
        option: String,
        /// Usage line.
        usage: String,
    },
    /// The same option twice.
    #[error("`{option}` is given twice. Usage: `{usage}`")]
    Duplicate {
        /// Option name.
        option: String,
        /// Usage line.
        usage: String,
    },
    /// Words left over after every option was filled.
    #[error("I don't know what to do with `{extra}`. Usage: `{usage}`")]
    Extra {
        /// The leftover words.
        extra: String,
        /// Usage line.
        usage: String,
    },
    /// A value of the wrong form.
    #[error("`{option}`: {problem}. Usage: `{usage}`")]
    Invalid {
        /// Option name.
        option: String,
        /// What is wrong, with the expected form.
        problem: String,
        /// Usage line.
        usage: String,
    },
    /// An unbalanced quote.
    #[error("A quote is not closed: {0}")]
    Unquoted(String),
    /// A handler asked for an option its spec does not declare (a bug, caught by tests).
    #[error("internal: option `{0}` is not in the command spec")]
    NotInSpec(String),
}

/// All command specs, validated.
#[derive(Debug, Clone)]
pub struct CommandSet {
    /// Specs in `commands/` order.
    pub specs: Vec<CommandSpec>,
}

impl CommandSet {
    /// The specs shipped with Switchboard.
    pub fn builtin() -> Result<Self, SpecError> {
        Self::from_files(BUILTIN.iter().map(|(f, t)| (*f, *t)))
    }

    /// Parses and validates spec files given as (file name, contents).
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SpecError> {
        let mut specs = Vec::new();
        for (file, text) in files {
            let spec: CommandSpec = toml::from_str(text).map_err(|source| SpecError::Toml {
                file: file.to_string(),
                source,
            })?;
            validate_spec(&spec).map_err(|problem| SpecError::Invalid {
                file: file.to_string(),
                problem,
            })?;
            specs.push(spec);
        }
        Ok(Self { specs })
    }

    /// The slash command called `name`.
    pub fn slash(&self, name: &str) -> Option<&CommandSpec> {
        let name = name.trim_start_matches('/');
        self.specs
            .iter()
            .find(|s| s.kind == SpecKind::Slash && s.name == name)
    }

    /// Slash commands only.
    pub fn slash_commands(&self) -> impl Iterator<Item = &CommandSpec> {
        self.specs.iter().filter(|s| s.kind == SpecKind::Slash)
    }

    /// Message actions only.
    pub fn message_actions(&self) -> impl Iterator<Item = &CommandSpec> {
        self.specs
            .iter()
            .filter(|s| s.kind == SpecKind::MessageAction)
    }

    /// Parses Slack's one-line form: `/ticket assign T-42 <@U123|bob>`.
    ///
    /// Options may be named anywhere (`priority:high`, `priority:"very high"`); remaining words
    /// fill options in declared order, and a text option takes the rest of the line. Returns
    /// `Ok(None)` when the user asked for help (empty text or `help`).
    pub fn parse_text(&self, command: &str, text: &str) -> Result<Option<Invocation>, UsageError> {
        let spec = self
            .slash(command)
            .ok_or_else(|| UsageError::UnknownCommand(command.trim_start_matches('/').into()))?;
        let tokens = tokenize(text)?;
        let Some((first, rest)) = tokens.split_first() else {
            return Ok(None);
        };
        if first.text.eq_ignore_ascii_case("help") {
            return Ok(None);
        }
        let (sub, rest) = match (
            spec.subcommand(&first.text.to_ascii_lowercase()),
            &spec.default_subcommand,
        ) {
            (Some(sub), _) => (sub, rest),
            // The first word is already the default subcommand's first option; a bare word
            // is more likely a mistyped subcommand and gets that error instead, unless the
            // default takes free text first (`/kb reset my password`).
            (None, Some(default))
                if !is_bare_word(&first.text) || takes_text_first(spec, default) =>
            {
                (find_sub(spec, default)?, &tokens[..])
            }
            (None, _) => (find_sub(spec, &first.text.to_ascii_lowercase())?, rest),
        };
        let usage = usage(spec, sub);
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let mut positional = Vec::new();
        for tok in rest {
            let named = (!tok.quoted)
                .then(|| tok.text.split_once(':'))
                .flatten()
                .filter(|(k, _)| sub.option(&k.to_ascii_lowercase()).is_some());
            match named {
                Some((k, v)) => {
                    let k = k.to_ascii_lowercase();
                    let v = v.to_string();
                    if values.insert(k.clone(), v).is_some() {
                        return Err(UsageError::Duplicate { option: k, usage });
                    }
                }
                None => positional.push(tok),
            }
        }
        // Free text takes the rest of the line, except a trailing ticket reference when an
        // unnamed ticket option follows the text (`/kudos @bob for the export fix T-42`).
        if let Some((text_at, _)) = sub
            .options
            .iter()
            .enumerate()
            .find(|(_, o)| o.kind == OptionKind::Text && !values.contains_key(&o.name))
        {
            let trailing_ticket = sub.options[text_at + 1..]
                .iter()
                .find(|o| o.kind == OptionKind::Ticket && !values.contains_key(&o.name));
            let before_text = sub.options[..text_at]
                .iter()
                .filter(|o| !values.contains_key(&o.name))
                .count();
            if let Some(ticket) = trailing_ticket {
                if positional.len() > before_text + 1
                    && positional
                        .last()
                        .is_some_and(|t| !t.quoted && t.text.parse::<TicketRef>().is_ok())
                {
                    let tok = positional.pop().expect("checked non-empty");
                    values.insert(ticket.name.clone(), tok.text.clone());
                }
            }
        }
        let mut positional = positional.into_iter().peekable();
        for opt in &sub.options {
            if positional.peek().is_none() {
                break;
            }
            if values.contains_key(&opt.name) {
                continue;
            }
            let value = if opt.kind == OptionKind::Text {
                positional
                    .by_ref()
                    .map(|t| t.raw.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                positional
                    .next()
                    .map(|t| t.text.clone())
                    .unwrap_or_default()
            };
            values.insert(opt.name.clone(), value);
        }
        let extra: Vec<String> = positional.map(|t| t.raw.clone()).collect();
        if !extra.is_empty() {
            return Err(UsageError::Extra {
                extra: extra.join(" "),
                usage,
            });
        }
        let values = values
            .into_iter()
            .map(|(k, v)| {
                let v = if sub.option(&k).map(|o| o.kind) == Some(OptionKind::User) {
                    slack_mention_to_user(&v)
                } else {
                    v
                };
                (k, v)
            })
            .collect();
        self.invocation(&spec.name, &sub.name, values).map(Some)
    }

    /// Checks a structured invocation (Discord options, already stringified) against the spec.
    pub fn invocation(
        &self,
        command: &str,
        subcommand: &str,
        values: BTreeMap<String, String>,
    ) -> Result<Invocation, UsageError> {
        let spec = self
            .slash(command)
            .ok_or_else(|| UsageError::UnknownCommand(command.into()))?;
        let sub = find_sub(spec, subcommand)?;
        let usage = usage(spec, sub);
        let mut clean = BTreeMap::new();
        for (k, v) in values {
            if sub.option(&k).is_none() {
                return Err(UsageError::UnknownOption { option: k, usage });
            }
            let v = v.trim().to_string();
            if !v.is_empty() {
                clean.insert(k, v);
            }
        }
        if let Some(missing) = sub
            .options
            .iter()
            .find(|o| o.required && !clean.contains_key(&o.name))
        {
            return Err(UsageError::Missing {
                option: missing.name.clone(),
                usage,
                example: sub.example.clone(),
            });
        }
        Ok(Invocation {
            command: spec.name.clone(),
            subcommand: sub.name.clone(),
            values: clean,
        })
    }

    /// In-chat help for one command, or for all when `command` is `None`.
    pub fn help(&self, command: Option<&str>) -> String {
        let mut out = String::new();
        for spec in self.slash_commands() {
            if command.is_some_and(|c| c.trim_start_matches('/') != spec.name) {
                continue;
            }
            out.push_str(&format!("*/{}*: {}\n", spec.name, spec.description));
            if let Some(sub) = spec
                .default_subcommand
                .as_deref()
                .and_then(|d| spec.subcommand(d))
            {
                out.push_str(&format!(
                    "• `{}` is short for `/{} {} …`\n",
                    usage(spec, sub).replacen(&format!(" {}", sub.name), "", 1),
                    spec.name,
                    sub.name
                ));
            }
            for sub in &spec.subcommands {
                out.push_str(&format!(
                    "• `{}`: {} ({}). e.g. `{}`\n",
                    usage(spec, sub),
                    sub.description,
                    sub.permission,
                    sub.example
                ));
            }
        }
        if command.is_none() {
            for action in self.message_actions() {
                out.push_str(&format!(
                    "*{}* (message menu): {}\n",
                    action.name, action.description
                ));
            }
        }
        out
    }

    /// The spec of an invocation's subcommand.
    pub fn subcommand_of(&self, inv: &Invocation) -> Option<&SubcommandSpec> {
        self.slash(&inv.command)?.subcommand(&inv.subcommand)
    }
}

/// Whether `spec`'s subcommand `sub` starts with a free-text option.
fn takes_text_first(spec: &CommandSpec, sub: &str) -> bool {
    spec.subcommand(sub)
        .and_then(|s| s.options.first())
        .is_some_and(|o| o.kind == OptionKind::Text)
}

/// A one-word value: letters, digits, `_` or `-` (at most 64), lowercased.
fn one_word(v: &str) -> Result<String, String> {
    if v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{v}` must be one word of letters, digits, _ or - (at most 64)"
        ))
    }
}

/// Whether `w` looks like a subcommand name rather than a value.
fn is_bare_word(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
}

fn find_sub<'a>(spec: &'a CommandSpec, name: &str) -> Result<&'a SubcommandSpec, UsageError> {
    if name.is_empty() {
        return Err(UsageError::MissingSubcommand {
            command: spec.name.clone(),
            available: spec.subcommand_names(),
        });
    }
    spec.subcommand(name)
        .ok_or_else(|| UsageError::UnknownSubcommand {
            command: spec.name.clone(),
            given: name.to_string(),
            available: spec.subcommand_names(),
        })
}

/// The usage line of a subcommand: `/ticket assign <ticket> <user>`.
pub fn usage(spec: &CommandSpec, sub: &SubcommandSpec) -> String {
    let mut out = format!("/{} {}", spec.name, sub.name);
    for o in &sub.options {
        if o.required {
            out.push_str(&format!(" <{}>", o.name));
        } else {
            out.push_str(&format!(" [{}:{}]", o.name, o.kind.placeholder()));
        }
    }
    out
}

fn validate_spec(spec: &CommandSpec) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    let desc_ok = |d: &str| !d.is_empty() && d.chars().count() <= 100;
    match spec.kind {
        SpecKind::MessageAction => {
            if spec.callback_id.as_deref().is_none_or(str::is_empty) {
                return Err("a message action needs a callback_id".into());
            }
            if !spec.subcommands.is_empty() {
                return Err("a message action has no subcommands".into());
            }
            if spec.name.is_empty() || spec.name.chars().count() > 32 {
                return Err("a message action's name must be 1 to 32 characters".into());
            }
        }
        SpecKind::Slash => {
            if !name_ok(&spec.name) {
                return Err(format!(
                    "command name `{}` must be 1-32 lowercase letters, digits, - or _",
                    spec.name
                ));
            }
            if spec.subcommands.is_empty() || spec.subcommands.len() > 25 {
                return Err("a slash command needs 1 to 25 subcommands".into());
            }
            if let Some(d) = &spec.default_subcommand {
                if spec.subcommand(d).is_none() {
                    return Err(format!(
                        "default_subcommand `{d}` is not one of the subcommands"
                    ));
                }
            }
        }
    }
    if !desc_ok(&spec.description) {
        return Err("description must be 1 to 100 characters".into());
    }
    let mut seen = BTreeSet::new();
    for sub in &spec.subcommands {
        if !name_ok(&sub.name) || !seen.insert(&sub.name) || sub.name == "help" {
            return Err(format!(
                "subcommand `{}` is badly named, reserved or repeated",
                sub.name
            ));
        }
        if !desc_ok(&sub.description) {
            return Err(format!(
                "{}: description must be 1 to 100 characters",
                sub.name
            ));
        }
        let mut opt_seen = BTreeSet::new();
        let mut optional_seen = false;
        for (i, o) in sub.options.iter().enumerate() {
            if !name_ok(&o.name) || !opt_seen.insert(&o.name) || !desc_ok(&o.description) {
                return Err(format!(
                    "{} option `{}`: bad or repeated name or description",
                    sub.name, o.name
                ));
            }
            if o.required && optional_seen {
                return Err(format!(
                    "{}: required option `{}` must come before optional ones (Discord's rule)",
                    sub.name, o.name
                ));
            }
            optional_seen |= !o.required;
            if o.kind == OptionKind::Text
                && o.required
                && i + 1 < sub.options.len()
                && sub.options[i + 1].required
            {
                return Err(format!("{}: a required text option must be the last required one, since it takes the rest of the line", sub.name));
            }
        }
        if sub.options.len() > 25 {
            return Err(format!("{}: at most 25 options", sub.name));
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Token {
    /// The value, with grouping quotes removed.
    text: String,
    /// The token as typed, for free-text options.
    raw: String,
    /// Whether the whole token was quoted (then it is never a `name:value`).
    quoted: bool,
}

/// Splits on whitespace. A quote opens a group only at the start of a token or right after
/// `name:`, so `"disk full"` and `priority:"very high"` group while `=HYPERLINK("x")` or
/// `don"t` stay as typed.
fn tokenize(text: &str) -> Result<Vec<Token>, UsageError> {
    let mut tokens = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut tok = Token {
            text: String::new(),
            raw: String::new(),
            quoted: false,
        };
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            let opens_group = tok.text.is_empty()
                || (tok.text.ends_with(':') && !tok.text[..tok.text.len() - 1].contains(':'));
            match closing_quote(c).filter(|_| opens_group) {
                Some(close) => {
                    tok.quoted = tok.text.is_empty();
                    tok.raw.push(c);
                    let mut closed = false;
                    for q in chars.by_ref() {
                        tok.raw.push(q);
                        if q == close {
                            closed = true;
                            break;
                        }
                        tok.text.push(q);
                    }
                    if !closed {
                        return Err(UsageError::Unquoted(text.trim().to_string()));
                    }
                }
                None => {
                    tok.text.push(c);
                    tok.raw.push(c);
                }
            }
        }
        tokens.push(tok);
    }
    Ok(tokens)
}

fn closing_quote(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '“' => Some('”'),
        _ => None,
    }
}

/// Reads comma-separated tags (`#` and case ignored, duplicates dropped), or says which tag
/// is not letters, digits, `-` or `_` of at most 32 characters.
pub fn parse_tags(v: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for t in v
        .split(',')
        .map(|t| t.trim().trim_start_matches('#').to_ascii_lowercase())
    {
        if t.is_empty() {
            continue;
        }
        if t.len() > 32
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "tag `{t}` must be letters, digits, - or _ (at most 32)"
            ));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

/// Turns Slack's escaped mention `<@U123|name>` (or `<@U123>`) into `slack:U123`; other text is
/// returned unchanged, so a plain `slack:U123` or `discord:1` also works.
pub fn slack_mention_to_user(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix("<@").and_then(|r| r.strip_suffix('>')) {
        let id = inner.split('|').next().unwrap_or(inner);
        return format!("slack:{id}");
    }
    v.to_string()
}

/// A checked invocation: command, subcommand and the raw option values given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    /// Command name.
    pub command: String,
    /// Subcommand name.
    pub subcommand: String,
    /// Option name to raw value (users as `slack:U1` or `discord:1`).
    pub values: BTreeMap<String, String>,
}

/// Typed access to an invocation's options, checked against the spec.
///
/// Records which options a handler read, so tests can prove handler and spec agree.
pub struct Args<'a> {
    spec: &'a CommandSpec,
    sub: &'a SubcommandSpec,
    inv: &'a Invocation,
    read: RefCell<BTreeSet<String>>,
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args").field("inv", &self.inv).finish()
    }
}

impl<'a> Args<'a> {
    /// Wraps an invocation produced by this command set.
    pub fn new(set: &'a CommandSet, inv: &'a Invocation) -> Result<Self, UsageError> {
        let spec = set
            .slash(&inv.command)
            .ok_or_else(|| UsageError::UnknownCommand(inv.command.clone()))?;
        let sub = find_sub(spec, &inv.subcommand)?;
        Ok(Self {
            spec,
            sub,
            inv,
            read: RefCell::new(BTreeSet::new()),
        })
    }

    /// The subcommand name.
    pub fn subcommand(&self) -> &str {
        &self.sub.name
    }

    /// Names of the spec's options the handler never read.
    pub fn unread(&self) -> Vec<String> {
        let read = self.read.borrow();
        self.sub
            .options
            .iter()
            .filter(|o| !read.contains(&o.name))
            .map(|o| o.name.clone())
            .collect()
    }

    fn raw(&self, name: &str, kind: OptionKind) -> Result<Option<&'a str>, UsageError> {
        let opt = self
            .sub
            .option(name)
            .filter(|o| o.kind == kind)
            .ok_or_else(|| UsageError::NotInSpec(format!("{name} ({kind:?})")))?;
        self.read.borrow_mut().insert(opt.name.clone());
        Ok(self.inv.values.get(name).map(String::as_str))
    }

    fn invalid(&self, name: &str, problem: impl Into<String>) -> UsageError {
        UsageError::Invalid {
            option: name.to_string(),
            problem: problem.into(),
            usage: usage(self.spec, self.sub),
        }
    }

    fn required<T>(&self, name: &str, v: Option<T>) -> Result<T, UsageError> {
        v.ok_or_else(|| UsageError::Missing {
            option: name.to_string(),
            usage: usage(self.spec, self.sub),
            example: self.sub.example.clone(),
        })
    }

    fn parsed<T, E: fmt::Display>(
        &self,
        name: &str,
        kind: OptionKind,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, UsageError> {
        match self.raw(name, kind)? {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .map_err(|e| self.invalid(name, e.to_string())),
        }
    }

    /// An optional text option.
    pub fn opt_text(&self, name: &str) -> Result<Option<String>, UsageError> {
        Ok(self.raw(name, OptionKind::Text)?.map(str::to_string))
    }

    /// A required text option.
    pub fn text(&self, name: &str) -> Result<String, UsageError> {
        let v = self.opt_text(name)?;
        self.required(name, v)
    }

    /// An optional one-word option: letters, digits, `_` or `-`, lowercased.
    pub fn opt_word(&self, name: &str) -> Result<Option<String>, UsageError> {
        self.parsed(name, OptionKind::Word, one_word)
    }

    /// A required saved reply's name: one word, lowercased.
    pub fn saved_reply(&self, name: &str) -> Result<String, UsageError> {
        let v = self.parsed(name, OptionKind::SavedReply, one_word)?;
        self.required(name, v)
    }

    /// A required one-word option.
    pub fn word(&self, name: &str) -> Result<String, UsageError> {
        let v = self.opt_word(name)?;
        self.required(name, v)
    }

    /// A required ticket reference.
    pub fn ticket(&self, name: &str) -> Result<TicketRef, UsageError> {
        let v = self.opt_ticket(name)?;
        self.required(name, v)
    }

    /// An optional ticket reference.
    pub fn opt_ticket(&self, name: &str) -> Result<Option<TicketRef>, UsageError> {
        self.parsed(name, OptionKind::Ticket, str::parse::<TicketRef>)
    }

    /// An optional user.
    pub fn opt_user(&self, name: &str) -> Result<Option<UserRef>, UsageError> {
        self.parsed(name, OptionKind::User, |v| {
            slack_mention_to_user(v)
                .parse::<UserRef>()
                .map_err(|_| format!("`{v}` is not a user; mention them, e.g. @alice"))
        })
    }

    /// A required user.
    pub fn user(&self, name: &str) -> Result<UserRef, UsageError> {
        let v = self.opt_user(name)?;
        self.required(name, v)
    }

    /// An optional department name (checked against the config by the handler).
    pub fn opt_department(&self, name: &str) -> Result<Option<String>, UsageError> {
        Ok(self
            .raw(name, OptionKind::Department)?
            .map(|v| v.trim().to_ascii_lowercase()))
    }

    /// A required department name.
    pub fn department(&self, name: &str) -> Result<String, UsageError> {
        let v = self.opt_department(name)?;
        self.required(name, v)
    }

    /// An optional priority.
    pub fn opt_priority(&self, name: &str) -> Result<Option<Priority>, UsageError> {
        self.parsed(name, OptionKind::Priority, str::parse::<Priority>)
    }

    /// A required priority.
    pub fn priority(&self, name: &str) -> Result<Priority, UsageError> {
        let v = self.opt_priority(name)?;
        self.required(name, v)
    }

    /// An optional status.
    pub fn opt_status(&self, name: &str) -> Result<Option<Status>, UsageError> {
        self.parsed(name, OptionKind::Status, str::parse::<Status>)
    }

    /// A required status.
    pub fn status(&self, name: &str) -> Result<Status, UsageError> {
        let v = self.opt_status(name)?;
        self.required(name, v)
    }

    /// Comma-separated tags, lowercased, deduplicated; empty when not given.
    pub fn tags(&self, name: &str) -> Result<Vec<String>, UsageError> {
        let v = self.parsed(name, OptionKind::Tags, parse_tags)?;
        Ok(v.unwrap_or_default())
    }

    /// A required finite number.
    pub fn number(&self, name: &str) -> Result<f64, UsageError> {
        let v = self.parsed(name, OptionKind::Number, |v| {
            match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(n),
                _ => Err(format!("`{v}` is not a number (e.g. 42 or 4.5)")),
            }
        })?;
        self.required(name, v)
    }

    /// An optional whole number within `range`.
    pub fn opt_integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, UsageError> {
        self.parsed(name, OptionKind::Integer, |v| {
            match v.trim().parse::<i64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(format!(
                    "`{v}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> CommandSet {
        CommandSet::builtin().expect("builtin specs are valid")
    }

    #[test]
    fn builtin_specs_load_with_every_subcommand_the_issue_names() {
        let set = set();
        let names = |c: &str| -> Vec<String> {
            set.slash(c)
                .unwrap()
                .subcommands
                .iter()
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(
            names("ticket"),
            [
                "new", "show", "list", "assign", "claim", "status", "priority", "route", "note",
                "close", "reopen", "explain", "web"
            ]
        );
        assert_eq!(names("kudos"), ["give", "list"]);
        assert_eq!(names("digest"), ["preview", "now"]);
        assert_eq!(names("metric"), ["record", "list"]);
        let actions: Vec<_> = set.message_actions().map(|a| a.name.as_str()).collect();
        assert_eq!(actions, ["Create ticket"]);
    }

    #[test]
    fn text_fills_positionals_in_order_and_named_options_anywhere() {
        let inv = set()
            .parse_text(
                "/ticket",
                "new Checkout shows 502 priority:high tags:web,Checkout",
            )
            .unwrap()
            .unwrap();
        assert_eq!(inv.subcommand, "new");
        assert_eq!(inv.values["title"], "Checkout shows 502");
        assert_eq!(inv.values["priority"], "high");
        assert_eq!(inv.values["tags"], "web,Checkout");
        let inv = set()
            .parse_text("ticket", "assign T-42 <@U123ABC|bob>")
            .unwrap()
            .unwrap();
        assert_eq!(inv.values["user"], "slack:U123ABC");
        let inv = set()
            .parse_text("ticket", r#"note T-1 Error: "disk full" on db1"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            inv.values["text"], r#"Error: "disk full" on db1"#,
            "free text keeps its quotes"
        );
        let inv = set()
            .parse_text(
                "ticket",
                r#"new =HYPERLINK("x") "two words" priority:"high""#,
            )
            .unwrap()
            .unwrap();
        assert_eq!(inv.values["title"], r#"=HYPERLINK("x") "two words""#);
        assert_eq!(inv.values["priority"], "high");
        let inv = set()
            .parse_text("ticket", r#"new Slow exports department:"billing""#)
            .unwrap()
            .unwrap();
        assert_eq!(inv.values["department"], "billing");
    }

    #[test]
    fn help_and_empty_text_ask_for_help() {
        assert_eq!(set().parse_text("ticket", "  ").unwrap(), None);
        assert_eq!(set().parse_text("ticket", "help").unwrap(), None);
        let help = set().help(Some("ticket"));
        assert!(help.contains("/ticket assign <ticket> <user>"), "{help}");
        assert!(set().help(None).contains("Create ticket"));
    }

    #[test]
    fn bad_text_gets_errors_that_say_how_to_fix_it() {
        let s = set();
        let err = |t: &str| s.parse_text("ticket", t).unwrap_err().to_string();
        assert!(err("frobnicate T-1").contains("no `frobnicate` subcommand; use one of: new, show"));
        assert!(err("assign T-1").contains("`user` is missing. Usage: `/ticket assign <ticket> <user>`, e.g. `/ticket assign T-42 @alice`"));
        assert!(err("claim T-1 T-2").contains("I don't know what to do with `T-2`"));
        assert!(err("new x priority:high priority:low").contains("given twice"));
        assert!(err("new \"unterminated").contains("quote is not closed"));
        assert!(matches!(
            s.parse_text("nope", "x"),
            Err(UsageError::UnknownCommand(_))
        ));
    }

    #[test]
    fn structured_invocations_are_checked_against_the_spec() {
        let s = set();
        let vals = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(s
            .invocation("ticket", "claim", vals(&[("ticket", "T-1")]))
            .is_ok());
        let e = s
            .invocation(
                "ticket",
                "claim",
                vals(&[("ticket", "T-1"), ("colour", "red")]),
            )
            .unwrap_err();
        assert!(matches!(e, UsageError::UnknownOption { .. }));
        let e = s
            .invocation("ticket", "claim", vals(&[("ticket", "  ")]))
            .unwrap_err();
        assert!(matches!(e, UsageError::Missing { .. }));
        let e = s.invocation("ticket", "", BTreeMap::new()).unwrap_err();
        assert!(matches!(e, UsageError::MissingSubcommand { .. }));
    }

    #[test]
    fn typed_getters_refuse_bad_values_with_the_expected_form() {
        let s = set();
        let inv = s
            .parse_text("ticket", "status T-x sleeping")
            .unwrap()
            .unwrap();
        let args = Args::new(&s, &inv).unwrap();
        let e = args.ticket("ticket").unwrap_err().to_string();
        assert!(
            e.contains("`T-x` is not a ticket reference such as `T-42`"),
            "{e}"
        );
        let e = args.status("status").unwrap_err().to_string();
        assert!(e.contains("open, in_progress"), "{e}");
        assert!(matches!(
            args.priority("status"),
            Err(UsageError::NotInSpec(_))
        ));
        let inv = s.parse_text("metric", "record nps lots").unwrap().unwrap();
        let args = Args::new(&s, &inv).unwrap();
        assert!(args
            .number("value")
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        let inv = s.parse_text("kudos", "list days:9999").unwrap().unwrap();
        let args = Args::new(&s, &inv).unwrap();
        assert!(args.opt_integer("days", 1..=365).is_err());
        let inv = s
            .parse_text("ticket", "new x tags:ok,not/ok")
            .unwrap()
            .unwrap();
        let args = Args::new(&s, &inv).unwrap();
        assert!(args
            .tags("tags")
            .unwrap_err()
            .to_string()
            .contains("not/ok"));
        let inv = s.parse_text("kudos", "give bob thanks").unwrap().unwrap();
        let args = Args::new(&s, &inv).unwrap();
        assert!(args
            .user("user")
            .unwrap_err()
            .to_string()
            .contains("mention them"));
    }

    #[test]
    fn spec_validation_catches_developer_mistakes() {
        let bad = [
            "name = \"Bad Name\"\ndescription = \"x\"\n[[subcommands]]\nname=\"a\"\ndescription=\"a\"\npermission=\"anyone\"\nexample=\"/x a\"",
            "name = \"x\"\ndescription = \"x\"",
            "name = \"x\"\ndescription = \"x\"\n[[subcommands]]\nname=\"a\"\ndescription=\"a\"\npermission=\"anyone\"\nexample=\"/x a\"\n[[subcommands.options]]\nname=\"o\"\nkind=\"word\"\ndescription=\"o\"\n[[subcommands.options]]\nname=\"p\"\nkind=\"word\"\ndescription=\"p\"\nrequired=true",
            "kind = \"message_action\"\nname = \"Do it\"\ndescription = \"x\"",
            "name = \"x\"\ndescription = \"x\"\ncolour = 1",
            "name = \"x\"\ndescription = \"x\"\ndefault_subcommand = \"b\"\n[[subcommands]]\nname=\"a\"\ndescription=\"a\"\npermission=\"anyone\"\nexample=\"/x a\"",
        ];
        for text in bad {
            assert!(
                CommandSet::from_files([("bad.toml", text)]).is_err(),
                "{text}"
            );
        }
    }
}
