//! How log lines are written: to stderr, filtered by `SWITCHBOARD_LOG`, one event per line,
//! and every field's value with its control characters and bidirectional-text controls
//! escaped (`\u{0}`, `\u{202e}`), because fields carry outside input (event and channel ids,
//! errors quoting what a platform or a person sent) and a raw NUL, escape sequence, line break
//! or right-to-left override could forge or hide log lines.
//!
//! Owns only the format; what is logged belongs to each module. Must not log secrets (they
//! never reach a field: [`crate::config::Secret`] prints as `[redacted]`).

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::EnvFilter;

/// Whether `c` must not reach a log line as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control and bidirectional-text control character written as its Rust
/// escape (`\u{1b}`), so a log line shows what was sent and cannot be split or reordered.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Writes one field: the message as is, others as `name=value`, each escaped.
fn field(
    w: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    let text = format!("{value:?}");
    if field.name() == "message" {
        write!(w, "{}", escape(&text))
    } else {
        write!(w, "{}={}", field.name(), escape(&text))
    }
}

/// Installs the process's logger: `SWITCHBOARD_LOG` (an `EnvFilter`) or `default`, colour only
/// on a terminal, fields escaped.
pub fn init(default: &str) {
    let filter =
        EnvFilter::try_from_env("SWITCHBOARD_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal, so logs written to files and journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .fmt_fields(debug_fn(field).delimited(" "))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn control_and_direction_characters_are_escaped() {
        assert_eq!(escape("Ev123"), "Ev123");
        assert_eq!(escape("a\u{0}b"), "a\\u{0}b");
        assert_eq!(escape("C1\u{202E}lmth.exe"), "C1\\u{202e}lmth.exe");
        assert_eq!(escape("x\r\nINFO forged"), "x\\u{d}\\u{a}INFO forged");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("ünïcode ✓"), "ünïcode ✓");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_hostile_field_cannot_forge_a_line() {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .fmt_fields(debug_fn(field).delimited(" "))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let id = "Ev1\n2026-11-30T00:00:00Z ERROR forged \u{202E}";
            tracing::warn!(event = %id, "event refused: {}", "bad\u{0}");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("event=Ev1\\u{a}2026"), "{text}");
        assert!(
            text.contains("\\u{202e}") && text.contains("bad\\u{0}"),
            "{text}"
        );
        assert!(
            !text.contains('\u{202E}') && !text.contains('\u{0}'),
            "{text}"
        );
    }
}
