//! `/kb`: search the knowledge base, and read an article in full.
//!
//! Owns how search results and articles are shown in chat (privately, mentions neutralised,
//! cut to fit a message). Searching is `knowledge`'s; never posts in a channel.

use crate::core::command::{Args, UsageError};
use crate::core::message::{neutralize_mentions, truncate, Message, Reply};
use crate::desk::{Desk, DeskError};

use super::Context;

/// Command name.
pub const NAME: &str = "kb";
/// Implemented subcommands.
pub const SUBCOMMANDS: &[&str] = &["search", "show"];

/// How many results `/kb search` lists.
const RESULTS: usize = 5;

/// The longest article text shown in chat; longer ones end with their link.
const MAX_SHOWN: usize = 1_800;

/// A typed `/kb` subcommand.
#[derive(Debug, Clone, PartialEq)]
pub enum KbCmd {
    /// Find articles.
    Search(String),
    /// Show one article in full.
    Show(String),
}

impl KbCmd {
    /// Reads the typed subcommand from checked arguments.
    pub fn parse(a: &Args<'_>) -> Result<Self, UsageError> {
        Ok(match a.subcommand() {
            "search" => KbCmd::Search(a.text("words")?),
            "show" => KbCmd::Show(
                a.text("article")?
                    .trim()
                    .trim_end_matches(".md")
                    .to_string(),
            ),
            _ => return Err(super::unknown_sub(NAME, a)),
        })
    }

    /// Runs it.
    pub async fn run(self, desk: &Desk, ctx: &Context<'_>) -> Result<Reply, DeskError> {
        desk.authorize(ctx.actor, ctx.permission, None, "search the knowledge base")?;
        let index = desk.knowledge.index();
        if index.is_empty() {
            return Err(DeskError::User(
                "There is no knowledge base yet: an admin sets `[knowledge] dir` to a folder of Markdown articles.".into(),
            ));
        }
        match self {
            KbCmd::Search(words) => {
                let hits = index.search(&words, RESULTS);
                if hits.is_empty() {
                    return Ok(Reply::ephemeral(Message::text(format!(
                        "No article matches \"{}\". Try other words, or open a ticket with `/ticket new`.",
                        truncate(&neutralize_mentions(&words), 100)
                    ))));
                }
                let lines: Vec<String> = hits
                    .iter()
                    .map(|h| {
                        let a = &h.article;
                        let link = match &a.url {
                            Some(u) => format!(" <{u}>"),
                            None => String::new(),
                        };
                        format!(
                            "• *{}*{link}: {} (`/kb show {}`)",
                            neutralize_mentions(&a.title),
                            truncate(&neutralize_mentions(&first_words(&a.body)), 140),
                            a.id
                        )
                    })
                    .collect();
                Ok(Reply::ephemeral(Message {
                    title: Some(format!(
                        "Knowledge base: {}",
                        truncate(&neutralize_mentions(&words), 80)
                    )),
                    text: lines.join("\n"),
                    ..Message::default()
                }))
            }
            KbCmd::Show(id) => {
                let Some(a) = index.article(&id) else {
                    return Err(DeskError::User(format!(
                        "There is no article `{}`. `/kb search <words>` lists them with their names.",
                        truncate(&neutralize_mentions(&id), 80)
                    )));
                };
                let mut text = neutralize_mentions(&a.body);
                if text.chars().count() > MAX_SHOWN {
                    text = truncate(&text, MAX_SHOWN);
                }
                if let Some(u) = &a.url {
                    text.push_str(&format!("\n\nRead it online: <{u}>"));
                }
                Ok(Reply::ephemeral(Message {
                    title: Some(neutralize_mentions(&a.title)),
                    text,
                    link: a.url.clone(),
                    ..Message::default()
                }))
            }
        }
    }
}

/// The start of an article's text on one line, without Markdown headings.
fn first_words(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}
