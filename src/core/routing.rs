//! Routing: which department gets a new ticket, at which priority and with which tags.
//!
//! Owns the ordered rule list and the explanation of every decision (`/ticket explain`). The
//! first rule whose every condition holds wins; with none, the fallback department takes it.
//! Pure: must not look anything up beyond its input.

use regex::Regex;
use serde::Serialize;

use super::types::{ChannelRef, Platform, Priority, RoleRef};

/// One routing rule: conditions (all must hold; an empty condition always holds) and actions.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name shown in explanations.
    pub name: String,
    /// Matches when the flag emoji is one of these.
    pub emojis: Vec<String>,
    /// Matches when the text contains one of these words or phrases (case-insensitive).
    pub keywords: Vec<String>,
    /// Matches when the text matches this expression.
    pub regex: Option<Regex>,
    /// Matches when the message is in one of these channels.
    pub channels: Vec<ChannelRef>,
    /// Matches when the message is on this platform.
    pub platform: Option<Platform>,
    /// Matches when the reporter holds one of these groups or roles.
    pub reporter_roles: Vec<RoleRef>,
    /// Matches when the ticket carries every one of these labels with this value (tickets
    /// from the API and from monitoring carry labels; chat flags carry none).
    pub labels: Vec<(String, String)>,
    /// Department to route to.
    pub department: String,
    /// Priority to set (else normal).
    pub priority: Option<Priority>,
    /// Tags to add.
    pub tags: Vec<String>,
    keyword_regex: Option<Regex>,
}

impl Rule {
    /// A rule routing everything to `department`; add conditions with the public fields, then
    /// call [`Rule::prepared`].
    pub fn new(name: impl Into<String>, department: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            emojis: vec![],
            keywords: vec![],
            regex: None,
            channels: vec![],
            platform: None,
            reporter_roles: vec![],
            labels: vec![],
            department: department.into(),
            priority: None,
            tags: vec![],
            keyword_regex: None,
        }
    }

    /// Compiles the keyword matcher; call after setting `keywords`.
    pub fn prepared(mut self) -> Self {
        self.emojis = self.emojis.iter().map(|e| normalize_emoji(e)).collect();
        let words: Vec<String> = self
            .keywords
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(regex::escape)
            .collect();
        self.keyword_regex = if words.is_empty() {
            None
        } else {
            // Escaped literals joined by `|` always compile.
            Regex::new(&format!(r"(?i)\b(?:{})\b", words.join("|"))).ok()
        };
        self
    }

    /// Checks every condition; `Ok(reasons it matched)` or `Err(first condition that failed)`.
    fn evaluate(&self, input: &RouteInput<'_>) -> Result<Vec<String>, String> {
        let mut why = Vec::new();
        if !self.emojis.is_empty() {
            match input.emoji.map(normalize_emoji) {
                Some(e) if self.emojis.contains(&e) => why.push(format!("flag emoji is {e}")),
                Some(e) => return Err(format!("emoji {e} is not one of {:?}", self.emojis)),
                None => return Err("there was no flag emoji".into()),
            }
        }
        if let Some(re) = &self.keyword_regex {
            match re.find(input.text) {
                Some(m) => why.push(format!("text mentions \"{}\"", m.as_str())),
                None => return Err(format!("text has none of {:?}", self.keywords)),
            }
        }
        if let Some(re) = &self.regex {
            match re.find(input.text) {
                Some(m) => why.push(format!("text matches /{}/ at \"{}\"", re, m.as_str())),
                None => return Err(format!("text does not match /{re}/")),
            }
        }
        if !self.channels.is_empty() {
            match input.channel {
                Some(c) if self.channels.contains(c) => why.push(format!("posted in {c}")),
                Some(c) => return Err(format!("channel {c} is not listed")),
                None => return Err("there was no source channel".into()),
            }
        }
        if let Some(p) = self.platform {
            if p != input.platform {
                return Err(format!("platform is {}, not {p}", input.platform));
            }
            why.push(format!("platform is {p}"));
        }
        if !self.reporter_roles.is_empty() {
            match self
                .reporter_roles
                .iter()
                .find(|r| input.reporter_roles.contains(r))
            {
                Some(r) => why.push(format!("reporter holds {r}")),
                None => return Err("reporter holds none of the listed roles".into()),
            }
        }
        for (name, value) in &self.labels {
            match input.labels.iter().find(|(n, _)| n == name) {
                Some((_, v)) if v == value => why.push(format!("label {name} is {value}")),
                Some((_, v)) => return Err(format!("label {name} is {v}, not {value}")),
                None => return Err(format!("there is no label {name}")),
            }
        }
        if why.is_empty() {
            why.push("the rule has no conditions".into());
        }
        Ok(why)
    }
}

/// Strips `:colons:` and Slack skin-tone suffixes so `:ticket:`, `ticket` and
/// `ticket::skin-tone-2` compare equal.
pub fn normalize_emoji(e: &str) -> String {
    let e = e.trim().trim_matches(':');
    let e = e.split("::").next().unwrap_or(e);
    e.to_string()
}

/// What routing looks at.
#[derive(Debug, Clone)]
pub struct RouteInput<'a> {
    /// Platform the message is on.
    pub platform: Platform,
    /// Channel holding the message, if any (`/ticket new` from a DM has none).
    pub channel: Option<&'a ChannelRef>,
    /// The flag emoji, when flagged by reaction.
    pub emoji: Option<&'a str>,
    /// Title and text of the message.
    pub text: &'a str,
    /// Groups or roles of the reporter.
    pub reporter_roles: &'a [RoleRef],
    /// Labels (name, value) of a ticket from the API or monitoring; empty for chat.
    pub labels: &'a [(String, String)],
}

/// The outcome of routing, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Chosen department.
    pub department: String,
    /// Chosen priority.
    pub priority: Priority,
    /// Tags to add.
    pub tags: Vec<String>,
    /// The matching rule's name and position (1-based), or `None` for the fallback.
    pub rule: Option<(usize, String)>,
    /// Why the matching rule matched.
    pub reasons: Vec<String>,
    /// Rules tried before it, with the condition that failed.
    pub skipped: Vec<(String, String)>,
}

impl Decision {
    /// A multi-line explanation for `/ticket explain` and the demo transcript.
    pub fn explain(&self) -> String {
        let mut out = match &self.rule {
            Some((n, name)) => format!(
                "Rule #{n} `{name}` matched ({}) → department {}, priority {}",
                self.reasons.join("; "),
                self.department,
                self.priority
            ),
            None => format!(
                "No rule matched → fallback department {}, priority {}",
                self.department, self.priority
            ),
        };
        if !self.tags.is_empty() {
            out.push_str(&format!(", tags {}", self.tags.join(", ")));
        }
        for (name, why) in &self.skipped {
            out.push_str(&format!("\n  skipped `{name}`: {why}"));
        }
        out
    }
}

/// The ordered rules and the fallback department.
#[derive(Debug, Clone)]
pub struct Router {
    /// Rules, tried in order.
    pub rules: Vec<Rule>,
    /// Department for tickets no rule matches.
    pub fallback: String,
}

impl Router {
    /// Routes a message.
    pub fn route(&self, input: &RouteInput<'_>) -> Decision {
        let mut skipped = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.evaluate(input) {
                Ok(reasons) => {
                    return Decision {
                        department: rule.department.clone(),
                        priority: rule.priority.unwrap_or(Priority::Normal),
                        tags: rule.tags.clone(),
                        rule: Some((i + 1, rule.name.clone())),
                        reasons,
                        skipped,
                    }
                }
                Err(why) => skipped.push((rule.name.clone(), why)),
            }
        }
        Decision {
            department: self.fallback.clone(),
            priority: Priority::Normal,
            tags: vec![],
            rule: None,
            reasons: vec![],
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut refund = Rule::new("refunds", "billing");
        refund.keywords = vec!["refund".into(), "charged twice".into()];
        refund.priority = Some(Priority::High);
        refund.tags = vec!["money".into()];
        let mut outage = Rule::new("outage-emoji", "it");
        outage.emojis = vec![":rotating_light:".into()];
        outage.priority = Some(Priority::Urgent);
        let mut vip = Rule::new("vip-discord", "success");
        vip.platform = Some(Platform::Discord);
        vip.reporter_roles = vec![RoleRef::new(Platform::Discord, "55")];
        let mut errors = Rule::new("error-codes", "it");
        errors.regex = Some(Regex::new(r"E\d{3}").unwrap());
        errors.channels = vec!["slack:CSUPPORT".parse().unwrap()];
        Router {
            rules: vec![
                refund.prepared(),
                outage.prepared(),
                vip.prepared(),
                errors.prepared(),
            ],
            fallback: "support".into(),
        }
    }

    fn input<'a>(text: &'a str, emoji: Option<&'a str>, channel: &'a ChannelRef) -> RouteInput<'a> {
        RouteInput {
            platform: channel.platform,
            channel: Some(channel),
            emoji,
            text,
            reporter_roles: &[],
            labels: &[],
        }
    }

    #[test]
    fn first_matching_rule_wins_and_says_why() {
        let ch: ChannelRef = "slack:CGENERAL".parse().unwrap();
        let d = router().route(&input(
            "I was CHARGED TWICE for May",
            Some("rotating_light"),
            &ch,
        ));
        assert_eq!(d.department, "billing");
        assert_eq!(d.priority, Priority::High);
        assert_eq!(d.tags, vec!["money"]);
        assert_eq!(d.rule, Some((1, "refunds".into())));
        assert!(
            d.explain().contains("text mentions \"CHARGED TWICE\""),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let ch: ChannelRef = "slack:CGENERAL".parse().unwrap();
        let d = router().route(&input("refunded? no, refundable", None, &ch));
        assert_eq!(d.department, "support");
        assert_eq!(d.rule, None);
    }

    #[test]
    fn emoji_rule_accepts_colon_and_skin_tone_forms() {
        let ch: ChannelRef = "discord:1".parse().unwrap();
        for e in [
            "rotating_light",
            ":rotating_light:",
            "rotating_light::skin-tone-3",
        ] {
            let d = router().route(&input("site down", Some(e), &ch));
            assert_eq!(d.department, "it", "{e}");
            assert_eq!(d.priority, Priority::Urgent);
            assert_eq!(d.skipped.len(), 1, "refunds was tried first");
        }
    }

    #[test]
    fn platform_and_reporter_role_must_both_hold() {
        let ch: ChannelRef = "discord:1".parse().unwrap();
        let roles = [RoleRef::new(Platform::Discord, "55")];
        let mut inp = input("hello", None, &ch);
        assert_eq!(router().route(&inp).department, "support");
        inp.reporter_roles = &roles;
        let d = router().route(&inp);
        assert_eq!(d.department, "success");
        assert_eq!(d.priority, Priority::Normal);
        let slack: ChannelRef = "slack:C1".parse().unwrap();
        let inp = RouteInput {
            reporter_roles: &roles,
            ..input("hello", None, &slack)
        };
        assert_eq!(router().route(&inp).department, "support");
    }

    #[test]
    fn regex_and_channel_conditions_combine() {
        let support: ChannelRef = "slack:CSUPPORT".parse().unwrap();
        let other: ChannelRef = "slack:COTHER".parse().unwrap();
        assert_eq!(
            router()
                .route(&input("got E502", None, &support))
                .department,
            "it"
        );
        let d = router().route(&input("got E502", None, &other));
        assert_eq!(d.department, "support");
        assert!(
            d.explain().contains("channel slack:COTHER is not listed"),
            "{}",
            d.explain()
        );
    }

    #[test]
    fn fallback_explains_every_skipped_rule() {
        let ch: ChannelRef = "slack:C1".parse().unwrap();
        let d = router().route(&input("hello", None, &ch));
        assert_eq!(d.skipped.len(), 4);
        let text = d.explain();
        assert!(
            text.starts_with("No rule matched → fallback department support"),
            "{text}"
        );
        assert!(
            text.contains("skipped `outage-emoji`: there was no flag emoji"),
            "{text}"
        );
    }
}
