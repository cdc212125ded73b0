//! Neutral outgoing messages: what Switchboard says, before an adapter renders it as Slack
//! Block Kit or a Discord embed.
//!
//! Owns the message model, the ticket alert layout, button ids and mention neutralising of
//! re-posted user text. Must not contain any platform's JSON.

use serde::{Deserialize, Serialize};

use super::directory::Directory;
use super::ticket::Ticket;
use super::types::{ChannelRef, Platform, Status, TicketRef, UserRef};

/// A labelled value shown beside the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Label.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A titled part of a long message (one department of a digest): each platform shows it as
/// its own block group or embed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Section {
    /// Heading.
    pub heading: String,
    /// Labelled values, shown first.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Text after the fields (already neutralised where it quotes users).
    #[serde(default)]
    pub text: String,
}

/// How a button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonStyle {
    /// The main action.
    Primary,
    /// A neutral action.
    Secondary,
    /// Ends something.
    Danger,
}

/// A button whose id names the action and ticket, e.g. `claim:42`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// `action:ticket-number`.
    pub action_id: String,
    /// Label.
    pub label: String,
    /// Look.
    pub style: ButtonStyle,
}

/// The actions a ticket button can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    /// Take the ticket.
    Claim,
    /// Resolve the ticket.
    Resolve,
    /// The reporter's satisfaction rating, 1 to 5.
    Rate(u8),
    /// The reporter wants to add a comment to their rating.
    Comment,
    /// The suggested article number `n` (0-based) answered the ticket.
    KbSolved(u8),
    /// None of the suggested articles was what the reporter needed.
    KbNotHelpful,
    /// The presser wants a personal sign-in link to the ticket's page in the web view.
    Web,
}

impl ButtonAction {
    /// Builds the button for `ticket`.
    pub fn button(self, ticket: TicketRef) -> Button {
        let n = ticket.0;
        let (action_id, label, style) = match self {
            ButtonAction::Claim => (
                format!("claim:{n}"),
                "Claim".to_string(),
                ButtonStyle::Primary,
            ),
            ButtonAction::Resolve => (
                format!("resolve:{n}"),
                "Resolve".to_string(),
                ButtonStyle::Danger,
            ),
            ButtonAction::Rate(score) => (
                format!("csat:{n}:{score}"),
                format!(
                    "{score} {}",
                    RATING_WORDS[usize::from(score.clamp(1, 5)) - 1]
                ),
                ButtonStyle::Secondary,
            ),
            ButtonAction::Comment => (
                format!("csat-comment:{n}"),
                "Add a comment".to_string(),
                ButtonStyle::Secondary,
            ),
            ButtonAction::KbSolved(i) => (
                format!("kb-solved:{n}:{i}"),
                format!("{}. This solved it", u16::from(i) + 1),
                ButtonStyle::Primary,
            ),
            ButtonAction::KbNotHelpful => (
                format!("kb-not:{n}"),
                "Not what I need".to_string(),
                ButtonStyle::Secondary,
            ),
            ButtonAction::Web => (
                format!("web:{n}"),
                "Open in browser".to_string(),
                ButtonStyle::Secondary,
            ),
        };
        Button {
            action_id,
            label,
            style,
        }
    }

    /// Reads a button id back; `None` for ids Switchboard did not make.
    pub fn parse(action_id: &str) -> Option<(ButtonAction, TicketRef)> {
        let (action, rest) = action_id.split_once(':')?;
        let (n, score) = match rest.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let action = match (action, score) {
            ("claim", None) => ButtonAction::Claim,
            ("resolve", None) => ButtonAction::Resolve,
            ("csat-comment", None) => ButtonAction::Comment,
            ("kb-not", None) => ButtonAction::KbNotHelpful,
            ("web", None) => ButtonAction::Web,
            ("kb-solved", Some(i)) => match i.parse::<u8>().ok()? {
                i @ 0..=2 => ButtonAction::KbSolved(i),
                _ => return None,
            },
            ("csat", Some(s)) => match s.parse::<u8>().ok()? {
                s @ 1..=5 => ButtonAction::Rate(s),
                _ => return None,
            },
            _ => return None,
        };
        Some((action, TicketRef(n.parse().ok()?)))
    }
}

/// What each rating means, shown on its button.
const RATING_WORDS: [&str; 5] = ["very poor", "poor", "okay", "good", "great"];

/// The direct message asking a ticket's reporter how it went.
pub fn csat_prompt(ticket: &Ticket) -> Message {
    Message {
        title: Some(format!("How did we do with {}?", ticket.id)),
        text: format!(
            "Your ticket \"{}\" was resolved by {}. Please rate the help you got, from 1 (very poor) to 5 (great).",
            truncate(&neutralize_mentions(&ticket.title), 150),
            ticket.department
        ),
        fields: vec![],
        buttons: (1..=5)
            .map(|s| ButtonAction::Rate(s).button(ticket.id))
            .collect(),
        link: None,
        mentions: vec![],
        attachment: None,
        full_view: None,
        sections: vec![],
    }
}

/// The prompt after a rating was recorded, offering the optional comment.
pub fn csat_thanks(ticket: TicketRef, score: u8, comment: Option<&str>) -> Message {
    let mut msg = Message::text(format!(
        "Thanks! You rated {ticket} {score}/5 ({}).",
        RATING_WORDS[usize::from(score.clamp(1, 5)) - 1]
    ));
    match comment {
        Some(c) => msg.fields.push(Field {
            name: "Your comment".into(),
            value: truncate(&neutralize_mentions(c), 1000),
        }),
        None => msg.buttons.push(ButtonAction::Comment.button(ticket)),
    }
    msg
}

/// A neutral rich message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    /// Heading.
    pub title: Option<String>,
    /// Body text (already neutralised where it quotes users).
    pub text: String,
    /// Labelled values.
    pub fields: Vec<Field>,
    /// Titled parts after the fields (a digest's departments, shout-outs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// Buttons.
    pub buttons: Vec<Button>,
    /// A link the heading points to.
    pub link: Option<String>,
    /// The only people or groups this message pings (rendered as real mentions by each
    /// adapter for its own platform; everything else in the message pings nobody).
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// A file sent instead of text (the digest's chart); adapters upload it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Where to read all of it when a platform's limits cut the message (a command or CLI
    /// line); adapters end a cut message with "…and N more" and this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_view: Option<String>,
}

/// A file to upload, such as a chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name, e.g. `digest-weekly.png`.
    pub filename: String,
    /// Title shown with it.
    pub title: String,
    /// MIME type.
    pub content_type: String,
    /// The bytes (base64 in JSON, so outbox rows stay text).
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

pub use super::types::Mention;

impl Message {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// Renders as plain text (CLI, demo transcript, platform `text` fallbacks).
    pub fn plain(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.title {
            out.push_str(t);
            out.push('\n');
        }
        out.push_str(&self.text);
        for f in &self.fields {
            out.push_str(&format!("\n{}: {}", f.name, f.value));
        }
        for sec in &self.sections {
            out.push_str(&format!("\n\n*{}*", sec.heading));
            for f in &sec.fields {
                out.push_str(&format!("\n{}: {}", f.name, f.value));
            }
            if !sec.text.is_empty() {
                out.push('\n');
                out.push_str(sec.text.trim_end());
            }
        }
        if !self.buttons.is_empty() {
            let labels: Vec<String> = self
                .buttons
                .iter()
                .map(|b| format!("[{}]", b.label))
                .collect();
            out.push_str(&format!("\n{}", labels.join(" ")));
        }
        out
    }
}

/// Who sees a command's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the person who ran the command.
    Ephemeral,
    /// Everyone in the channel.
    InChannel,
}

/// The answer to a command or interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Who sees it.
    pub visibility: Visibility,
    /// What it says.
    pub message: Message,
}

impl Reply {
    /// An answer only the invoker sees.
    pub fn ephemeral(message: Message) -> Self {
        Self {
            visibility: Visibility::Ephemeral,
            message,
        }
    }

    /// An answer the channel sees.
    pub fn in_channel(message: Message) -> Self {
        Self {
            visibility: Visibility::InChannel,
            message,
        }
    }
}

/// Where an outbox message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A channel, optionally inside a thread (Slack `thread_ts`; Discord reply reference).
    Channel {
        /// Channel.
        channel: ChannelRef,
        /// Message to thread under or reply to.
        thread: Option<String>,
    },
    /// A direct message to a user.
    User {
        /// User.
        user: UserRef,
    },
}

impl Target {
    /// The platform that delivers to this target.
    pub fn platform(&self) -> Platform {
        match self {
            Target::Channel { channel, .. } => channel.platform,
            Target::User { user } => user.platform,
        }
    }

    /// Where a message lands, without the thread: its channel, or the user's DM. Messages to
    /// one destination about one ticket are delivered in the order they were queued.
    pub fn destination(&self) -> String {
        match self {
            Target::Channel { channel, .. } => channel.to_string(),
            Target::User { user } => format!("dm:{user}"),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Channel {
                channel,
                thread: Some(t),
            } => write!(f, "{channel} (thread {t})"),
            Target::Channel { channel, .. } => write!(f, "{channel}"),
            Target::User { user } => write!(f, "DM {user}"),
        }
    }
}

/// What an outbox row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutKind {
    /// The department alert for a ticket.
    Alert,
    /// An edit of a ticket's alert in the same channel (waits for the alert to be posted).
    AlertUpdate,
    /// A post in the thread of the ticket's alert in the same channel (delivered after the
    /// alert, whose message it answers).
    AlertReply,
    /// Any other post: confirmations, DMs, digests.
    Post,
}

/// A message to deliver later through the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// What it does.
    pub kind: OutKind,
    /// Where it goes.
    pub target: Target,
    /// The ticket it concerns (orders delivery per ticket).
    pub ticket: Option<TicketRef>,
    /// What it says.
    pub message: Message,
}

impl Outgoing {
    /// Posts of `message` to each of `channels` (not in a thread), about `ticket` if any.
    pub fn posts(
        channels: &[ChannelRef],
        ticket: Option<TicketRef>,
        message: &Message,
    ) -> Vec<Self> {
        channels
            .iter()
            .map(|c| Outgoing {
                kind: OutKind::Post,
                target: Target::Channel {
                    channel: c.clone(),
                    thread: None,
                },
                ticket,
                message: message.clone(),
            })
            .collect()
    }
}

/// Makes re-posted user text harmless: mass mentions and user, group and role mentions of
/// both platforms become plain names, so quoting a message never pings anyone.
pub fn neutralize_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let inner = &after[1..end];
        if inner.contains('<') {
            // `<<@1>`: the mention starts at the inner `<`; this one is plain text.
            out.push('<');
            rest = &after[1..];
            continue;
        }
        let label = |fallback: &str| -> String {
            match inner.split_once('|') {
                Some((_, l)) if !l.is_empty() => format!("@{}", l.trim_start_matches('@')),
                _ => fallback.to_string(),
            }
        };
        let replaced = if let Some(special) = inner.strip_prefix('!') {
            let name = special.split(['|', '^']).next().unwrap_or(special);
            match name {
                "channel" | "here" | "everyone" => Some(format!("@\u{200B}{name}")),
                "subteam" => Some(label("@group")),
                _ => Some(label("@mention")),
            }
        } else if let Some(id) = inner.strip_prefix("@&") {
            Some(format!("@role-{}", id.trim()))
        } else if let Some(id) = inner.strip_prefix('@') {
            let id = id.trim_start_matches('!');
            Some(label(&format!("@{}", id.split('|').next().unwrap_or(id))))
        } else {
            None
        };
        match replaced {
            Some(r) => {
                // `<<@!66>>` would become `<@66>`, a live mention again: keep the literal `<`
                // and the replacement apart.
                if out.ends_with('<') {
                    out.push('\u{200B}');
                }
                out.push_str(&r)
            }
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    // Discord parses bare @everyone / @here; a zero-width space breaks the mention but reads the same.
    out.replace("@everyone", "@\u{200B}everyone")
        .replace("@here", "@\u{200B}here")
}

/// Splits text into pieces of at most `max` characters each, on line breaks where it can
/// (a longer line is cut into `max`-character pieces); blank remainders are dropped.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if current.chars().count() + line.chars().count() > max && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if line.chars().count() > max {
            let chars: Vec<char> = line.chars().collect();
            for piece in chars.chunks(max) {
                out.push(piece.iter().collect());
            }
        } else {
            current.push_str(line);
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Shortens `text` to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The reporter as people know them: an automation source by its name, the configured
/// person, else the name the platform gave for the flagged message's author, else the account.
pub fn reporter_name(ticket: &Ticket, dir: &Directory) -> String {
    if ticket.reporter.automation_source().is_some() {
        return dir.display_name(&ticket.reporter);
    }
    if dir.person_of(&ticket.reporter).is_some() {
        return dir.display_name(&ticket.reporter);
    }
    ticket
        .source
        .as_ref()
        .filter(|s| s.author == ticket.reporter)
        .and_then(|s| s.author_name.as_deref())
        .map(neutralize_mentions)
        .unwrap_or_else(|| dir.display_name(&ticket.reporter))
}

/// Which promise an escalation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaClockKind {
    /// Time to first response.
    FirstResponse,
    /// Time to resolution.
    Resolution,
}

impl SlaClockKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaClockKind::FirstResponse => "first_response",
            SlaClockKind::Resolution => "resolution",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SlaClockKind::FirstResponse => "first response",
            SlaClockKind::Resolution => "resolution",
        }
    }
}

/// The post to a department channel when a ticket breaches its promise (`breached`) or has
/// used 80% of it: the ticket's state and buttons, pinging only `mentions` (the leads).
pub fn escalation(
    ticket: &Ticket,
    dir: &Directory,
    kind: SlaClockKind,
    breached: bool,
    state: &str,
    mentions: Vec<Mention>,
) -> Message {
    let mut msg = alert(ticket, dir);
    let (icon, what) = if breached {
        ("⏰", "SLA breached")
    } else {
        ("⚠️", "SLA warning")
    };
    msg.title = Some(format!(
        "{icon} {what}: {} {}",
        ticket.id,
        truncate(&neutralize_mentions(&ticket.title), 120)
    ));
    msg.text = format!(
        "The {} promise is {state}. {}",
        kind.label(),
        if mentions.is_empty() {
            "Please take a look."
        } else {
            "Leads, please take a look."
        }
    );
    msg.mentions = mentions;
    msg
}

/// The department alert for a ticket, showing its current state and the buttons that apply.
pub fn alert(ticket: &Ticket, dir: &Directory) -> Message {
    let mut fields = vec![
        Field {
            name: "Status".into(),
            value: ticket.status.label().to_string(),
        },
        Field {
            name: "Priority".into(),
            value: ticket.priority.to_string(),
        },
        Field {
            name: "Department".into(),
            value: ticket.department.clone(),
        },
        Field {
            name: "Reporter".into(),
            value: reporter_name(ticket, dir),
        },
        Field {
            name: "Assignee".into(),
            value: ticket
                .assignee
                .as_ref()
                .map_or("nobody yet".to_string(), |a| dir.display_name(a)),
        },
    ];
    if !ticket.tags.is_empty() {
        fields.push(Field {
            name: "Tags".into(),
            value: ticket.tags.join(", "),
        });
    }
    let mut buttons = Vec::new();
    if ticket.status.is_active() {
        if ticket.status == Status::Open || ticket.assignee.is_none() {
            buttons.push(ButtonAction::Claim.button(ticket.id));
        }
        buttons.push(ButtonAction::Resolve.button(ticket.id));
    }
    Message {
        title: Some(format!(
            "{} {}",
            ticket.id,
            truncate(&neutralize_mentions(&ticket.title), 150)
        )),
        text: truncate(&neutralize_mentions(&ticket.body), 2500),
        fields,
        buttons,
        link: ticket.source.as_ref().and_then(|s| s.permalink.clone()),
        mentions: vec![],
        attachment: None,
        full_view: None,
        sections: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_and_personal_mentions_of_both_platforms_become_plain_text() {
        let cases = [
            (
                "hey <!channel> and <!here|here>",
                "hey @\u{200B}channel and @\u{200B}here",
            ),
            ("<!everyone> look", "@\u{200B}everyone look"),
            ("ask <!subteam^S123|@oncall>", "ask @oncall"),
            ("thanks <@U123|bob>!", "thanks @bob!"),
            ("thanks <@U123>", "thanks @U123"),
            (
                "discord <@123> <@!456> <@&789>",
                "discord @123 @456 @role-789",
            ),
            ("@everyone @here", "@\u{200B}everyone @\u{200B}here"),
            (
                "a < b > c and <https://x.y|link>",
                "a < b > c and <https://x.y|link>",
            ),
            // Found by the property tests: a stray `<` before a mention hid it.
            (
                "<<@123> <<!channel>",
                "<\u{200B}@123 <\u{200B}@\u{200B}channel",
            ),
            // ... and a stray `<` before and `>` after one made it live again.
            ("<<@!66>>", "<\u{200B}@66>"),
        ];
        for (input, want) in cases {
            assert_eq!(neutralize_mentions(input), want, "{input}");
        }
    }

    #[test]
    fn button_ids_round_trip_and_foreign_ids_are_ignored() {
        let b = ButtonAction::Claim.button(TicketRef(42));
        assert_eq!(b.action_id, "claim:42");
        assert_eq!(
            ButtonAction::parse(&b.action_id),
            Some((ButtonAction::Claim, TicketRef(42)))
        );
        assert_eq!(ButtonAction::parse("delete:42"), None);
        assert_eq!(
            ButtonAction::parse("csat:42:5"),
            Some((ButtonAction::Rate(5), TicketRef(42)))
        );
        assert_eq!(ButtonAction::parse("csat:42:6"), None);
        assert_eq!(ButtonAction::parse("csat:42"), None);
        assert_eq!(ButtonAction::parse("claim:42:1"), None);
        let c = ButtonAction::Comment.button(TicketRef(9));
        assert_eq!(
            ButtonAction::parse(&c.action_id),
            Some((ButtonAction::Comment, TicketRef(9)))
        );
        assert_eq!(ButtonAction::parse("claim:x"), None);
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
