//! Customer metrics from outside chat: `POST /api/metrics` (a token with the `metrics`
//! endpoint, `SWITCHBOARD_API_TOKEN` in its short form; authenticated by `api`) and `switchboard metrics import FILE.csv`. NPS survey answers
//! (`nps`, 0-10), CES and any custom metric feed the digest.
//!
//! Owns reading and checking samples (the same rules as `/metric record`: a one-word name, a
//! finite value in the metric's range, a known department, a time not in the future) and the
//! answers: the API takes a batch whole or not at all, with every problem listed; the CSV
//! import keeps the good rows and reports each bad one with its line number. Must not hold
//! digest rules.

use std::collections::BTreeSet;
use std::io::Read;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::api::{authenticate, problem, ApiState};
use crate::cmd::metric::check_value;
use crate::config::ApiEndpoint;
use crate::desk::Desk;
use crate::store::{NewMetric, StoreError};

/// Largest API body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most samples in one request or file.
pub const MAX_SAMPLES: usize = 10_000;

/// Why an import could not run at all (bad rows are reported, not errors).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The header row is missing `name` or `value`.
    #[error("the first line must name the columns: name,value and optionally department,note,at (found `{0}`)")]
    Header(String),
    /// The samples could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One sample as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleIn {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Department, if the value is one department's.
    #[serde(default)]
    pub department: Option<String>,
    /// Where it came from.
    #[serde(default)]
    pub note: Option<String>,
    /// When it was measured (RFC 3339); default now.
    #[serde(default)]
    pub at: Option<String>,
}

/// Checks one sample against the configuration and the metric's rules.
pub fn check(desk: &Desk, s: SampleIn, now: DateTime<Utc>) -> Result<NewMetric, String> {
    let name = s.name.trim().to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "name `{}` must be one word of letters, digits, _ or - (at most 64), e.g. nps or ces",
            s.name
        ));
    }
    if !s.value.is_finite() {
        return Err("value must be a number".into());
    }
    check_value(&name, s.value)?;
    let department = match s
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => Some(
            desk.config
                .directory
                .department(d)
                .map(|d| d.name.clone())
                .ok_or_else(|| {
                    format!(
                        "there is no department `{d}`; known: {}",
                        desk.config.directory.department_names().join(", ")
                    )
                })?,
        ),
    };
    let at = match s.at.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => now,
        Some(a) => DateTime::parse_from_rfc3339(a)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                format!("at `{a}` is not an RFC 3339 time such as 2026-11-23T09:00:00Z")
            })?,
    };
    // A day of slack for clocks and time zones; nothing before 2000 is a customer metric of
    // this bot's (and such a time is almost always a unit mistake, seconds for milliseconds).
    if at > now + Duration::days(1) {
        return Err(format!(
            "at `{}` is in the future; times may be at most a day ahead",
            at.to_rfc3339()
        ));
    }
    if at.year() < 2000 {
        return Err(format!(
            "at `{}` is before 2000; give the time the value was measured, e.g. 2026-11-23T09:00:00Z",
            at.to_rfc3339()
        ));
    }
    Ok(NewMetric {
        name,
        value: s.value,
        department,
        note: s
            .note
            .map(|n| crate::core::message::truncate(n.trim(), 500))
            .filter(|n| !n.is_empty()),
        recorded_by: None,
        at,
        received_at: now,
    })
}

/// What the API or an import stored, and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Samples stored.
    pub recorded: usize,
    /// Refused samples: (position, why). Positions are 0-based indexes for the API and line
    /// numbers for a file.
    pub errors: Vec<(usize, String)>,
}

/// Imports a CSV file with a header row (`name,value[,department][,note][,at]`): good rows are
/// stored, each bad one is reported with its line number.
pub async fn import_csv(desk: &Desk, mut input: impl Read) -> Result<Outcome, IntakeError> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|source| IntakeError::Io {
            path: "input".into(),
            source,
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| IntakeError::Header(e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(name_col), Some(value_col)) = (col("name"), col("value")) else {
        return Err(IntakeError::Header(headers.join(",")));
    };
    let known: BTreeSet<&str> = ["name", "value", "department", "note", "at"].into();
    if let Some(extra) = headers.iter().find(|h| !known.contains(h.as_str())) {
        return Err(IntakeError::Header(format!("unknown column `{extra}`")));
    }
    let now = desk.now();
    let mut out = Outcome::default();
    let mut good = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i + 2, |p| usize::try_from(p.line()).unwrap_or(i + 2));
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.errors.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        if i >= MAX_SAMPLES {
            out.errors.push((
                line,
                format!("more than {MAX_SAMPLES} rows; split the file"),
            ));
            break;
        }
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::to_string);
        let value = match get(Some(value_col)).unwrap_or_default().parse::<f64>() {
            Ok(v) => v,
            Err(_) => {
                out.errors.push((
                    line,
                    format!(
                        "value `{}` is not a number",
                        get(Some(value_col)).unwrap_or_default()
                    ),
                ));
                continue;
            }
        };
        let sample = SampleIn {
            name: get(Some(name_col)).unwrap_or_default(),
            value,
            department: get(col("department")),
            note: get(col("note")),
            at: get(col("at")),
        };
        match check(desk, sample, now) {
            Ok(m) => good.push(m),
            Err(e) => out.errors.push((line, e)),
        }
    }
    out.recorded = desk.store.add_metrics(good).await?;
    Ok(out)
}

/// `POST /api/metrics`, with the body limit (tokens with the `metrics` endpoint).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/metrics", post(post_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn post_metrics(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = authenticate(&s.tokens, &headers, ApiEndpoint::Metrics) {
        return refused.into_response();
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "the body is not JSON",
                vec![e.to_string()],
            )
        }
    };
    let items = match value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) if o.contains_key("samples") => {
            match o.remove("samples") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "`samples` must be a list",
                        vec![],
                    )
                }
            }
        }
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "send one sample {\"name\": \"nps\", \"value\": 9}, a list of them, or {\"samples\": [...]}",
                vec![],
            )
        }
    };
    if items.is_empty() || items.len() > MAX_SAMPLES {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("send 1 to {MAX_SAMPLES} samples"),
            vec![],
        );
    }
    let now = s.desk.now();
    let mut good = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let checked = serde_json::from_value::<SampleIn>(item)
            .map_err(|e| e.to_string())
            .and_then(|sample| check(&s.desk, sample, now));
        match checked {
            Ok(m) => good.push(m),
            Err(e) => errors.push(format!("samples[{i}]: {e}")),
        }
    }
    if !errors.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "nothing was recorded; fix these samples and send the batch again",
            errors,
        );
    }
    match s.desk.store.add_metrics(good).await {
        Ok(n) => (StatusCode::OK, Json(json!({ "recorded": n }))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not store metric samples");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the samples could not be stored (none were); try again",
                vec![],
            )
        }
    }
}
