//! Charts as inline SVG, drawn from a digest's days: tickets opened and resolved each day, and
//! the backlog at each day's end.
//!
//! Owns only drawing; every number comes from the digest ([`Day`]). Text in the drawing is
//! escaped here, since the page includes the SVG as markup.

use std::fmt::Write;

use crate::core::digest::Day;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 16.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round upper bound for the axis: 1, 2, 5 × a power of ten, at least `max`.
fn axis_top(max: usize) -> usize {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// The frame: title, horizontal grid with its labels, and the days under the x axis.
fn frame(out: &mut String, title: &str, days: &[Day], top: usize) -> f64 {
    let plot_h = HEIGHT - TOP - BOTTOM;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" class="chart"><title>{t}</title>"#,
        t = escape(title)
    );
    // Whole numbers on every grid line: five steps from 5 up (tops are 1, 2 or 5 × 10^n).
    let steps = if top >= 5 { 5 } else { top };
    for i in 0..=steps {
        let v = top * i / steps;
        let y = TOP + plot_h - plot_h * i as f64 / steps as f64;
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{x:.1}" y="{ty:.1}" class="axis" text-anchor="end">{v}</text>"#,
            x = LEFT - 4.0,
            ty = y + 4.0
        );
    }
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    // At most about ten date labels, so they never overlap.
    let every = days.len().div_ceil(10).max(1);
    for (i, d) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}" class="axis" text-anchor="middle">{label}</text>"#,
            x = LEFT + slot * (i as f64 + 0.5),
            y = HEIGHT - 10.0,
            label = d.date.format("%d %b")
        );
    }
    slot
}

/// Opened and resolved tickets per day, side by side.
pub fn opened_resolved(days: &[Day]) -> String {
    let mut out = String::new();
    let top = axis_top(
        days.iter()
            .map(|d| d.opened.max(d.resolved))
            .max()
            .unwrap_or(0),
    );
    let slot = frame(&mut out, "Tickets opened and resolved each day", days, top);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar = (slot * 0.4).max(1.0);
    for (i, d) in days.iter().enumerate() {
        for (j, (n, class)) in [(d.opened, "opened"), (d.resolved, "resolved")]
            .into_iter()
            .enumerate()
        {
            let h = plot_h * n as f64 / top as f64;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" class="{class}"><title>{date}: {n} {class}</title></rect>"#,
                x = LEFT + slot * i as f64 + slot * 0.1 + bar * j as f64,
                y = TOP + plot_h - h,
                date = d.date.format("%a %d %b")
            );
        }
    }
    out.push_str(
        r#"<text x="48" y="12" class="legend opened-text">■ opened</text><text x="120" y="12" class="legend resolved-text">■ resolved</text></svg>"#,
    );
    out
}

/// Tickets open at each day's end, as a line.
pub fn backlog(days: &[Day]) -> String {
    let mut out = String::new();
    let top = axis_top(days.iter().map(|d| d.backlog).max().unwrap_or(0));
    let slot = frame(&mut out, "Tickets open at the end of each day", days, top);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "{:.1},{:.1}",
                LEFT + slot * (i as f64 + 0.5),
                TOP + plot_h - plot_h * d.backlog as f64 / top as f64
            )
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline points="{}" class="backlog"/>"#,
        points.join(" ")
    );
    for (i, d) in days.iter().enumerate() {
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="backlog-dot"><title>{date}: {n} open</title></circle>"#,
            x = LEFT + slot * (i as f64 + 0.5),
            y = TOP + plot_h - plot_h * d.backlog as f64 / top as f64,
            date = d.date.format("%a %d %b"),
            n = d.backlog
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32, opened: usize, resolved: usize, backlog: usize) -> Day {
        Day {
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, n).unwrap(),
            opened,
            resolved,
            backlog,
        }
    }

    #[test]
    fn axes_round_up_to_one_two_or_five() {
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(3), 5);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(11), 20);
        assert_eq!(axis_top(500), 500);
    }

    #[test]
    fn bars_are_as_tall_as_their_share_of_the_axis() {
        let svg = opened_resolved(&[day(1, 10, 5, 3), day(2, 0, 10, 1)]);
        // Plot height 174; 10 of 10 is the whole height, 5 of 10 half of it.
        assert!(svg.contains(r#"height="174.0" class="opened""#), "{svg}");
        assert!(svg.contains(r#"height="87.0" class="resolved""#), "{svg}");
        assert!(svg.contains("Sun 01 Mar: 10 opened"), "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Grid labels 0, 2, 4, 6, 8, 10: whole numbers.
        for v in ["0", "2", "4", "6", "8", "10"] {
            assert!(
                svg.contains(&format!("text-anchor=\"end\">{v}</text>")),
                "{v}: {svg}"
            );
        }
    }

    #[test]
    fn the_backlog_line_has_a_point_per_day() {
        let svg = backlog(&[day(1, 0, 0, 2), day(2, 0, 0, 4), day(3, 0, 0, 0)]);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("Tue 03 Mar: 0 open"), "{svg}");
    }
}
