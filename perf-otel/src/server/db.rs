//! The database part of the request span (feature `db`): the summary attributes and N+1 events
//! from the [`DbSummary`] a `perf_middleware::db::DbLayer` inside this layer puts into the
//! response, and the optional `CLIENT` child span per statement.

use std::borrow::Cow;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, SpanRef, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute::{
    DB_OPERATION_NAME, DB_QUERY_SUMMARY, DB_QUERY_TEXT, DB_RESPONSE_RETURNED_ROWS, DB_SYSTEM_NAME,
};
use perf_middleware::db::{DbStatement, DbSummary, Operation};

/// `perf.db.query_count` (int): statements the request ran before its response head.
pub(crate) const QUERY_COUNT: &str = "perf.db.query_count";
/// `perf.db.duration` (double, seconds): their summed time.
pub(crate) const DURATION: &str = "perf.db.duration";
/// `perf.db.n_plus_one` (int): N+1 findings; also the name of one span event per finding.
pub(crate) const N_PLUS_ONE: &str = "perf.db.n_plus_one";
/// `perf.db.fingerprint` (string, at most [`MAX_EVENT_TEXT`] bytes): the normalized statement
/// of an N+1 event.
pub(crate) const FINGERPRINT: &str = "perf.db.fingerprint";
/// `perf.db.count` (int): how many times an N+1 statement ran in a row.
pub(crate) const COUNT: &str = "perf.db.count";
/// Bytes of statement text an N+1 event carries, and of a `db.query.summary`.
pub(crate) const MAX_EVENT_TEXT: usize = 255;

/// Records the summary attributes and one `perf.db.n_plus_one` event per finding.
pub(crate) fn record(span: &SpanRef<'_>, summary: &DbSummary) {
    span.set_attributes([
        KeyValue::new(QUERY_COUNT, i64::from(summary.queries)),
        KeyValue::new(DURATION, summary.duration.as_secs_f64()),
        KeyValue::new(N_PLUS_ONE, summary.n_plus_one.len() as i64),
    ]);
    for fp in &summary.n_plus_one {
        let Some(stats) = summary
            .fingerprints
            .iter()
            .find(|s| s.fingerprint.hash() == fp.hash())
        else {
            continue;
        };
        span.add_event(
            N_PLUS_ONE,
            vec![
                KeyValue::new(FINGERPRINT, bounded(fp.text()).to_owned()),
                KeyValue::new(COUNT, i64::from(stats.sequential)),
                KeyValue::new(DURATION, stats.sequential_total.as_secs_f64()),
            ],
        );
    }
}

/// One `CLIENT` span per listed statement, children of the request span in `cx`, with their
/// real start and end.
pub(crate) fn client_spans(tracer: &BoxedTracer, cx: &Context, summary: &DbSummary) {
    for statement in &summary.statements {
        let (name, attributes) = client_span(summary.system, statement);
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Client)
            .with_start_time(statement.start)
            .with_attributes(attributes);
        let mut span = tracer.build_with_context(builder, cx);
        span.end_with_timestamp(statement.end().max(statement.start));
    }
}

/// The span name and attributes of one statement, per the database semantic conventions: name
/// `db.query.summary` (`SELECT posts`), else `db.system.name`.
fn client_span(system: &'static str, s: &DbStatement) -> (Cow<'static, str>, Vec<KeyValue>) {
    let fp = &s.fingerprint;
    let mut attributes = vec![
        KeyValue::new(DB_SYSTEM_NAME, system),
        // The fingerprint is sanitized text (every literal is `?`), as the conventions require
        // for text that was not parameterized.
        KeyValue::new(DB_QUERY_TEXT, fp.text().to_owned()),
        KeyValue::new(DB_RESPONSE_RETURNED_ROWS, s.rows_returned as i64),
    ];
    // `WITH …` and other statements may hold several operations: no operation name then.
    let operation = match fp.operation() {
        Operation::With | Operation::Other => None,
        op => Some(op.as_str()),
    };
    if let Some(op) = operation {
        attributes.push(KeyValue::new(DB_OPERATION_NAME, op));
    }
    let name = match operation.and_then(|op| query_summary(op, fp.text())) {
        Some(summary) => {
            attributes.push(KeyValue::new(DB_QUERY_SUMMARY, summary.clone()));
            Cow::Owned(summary)
        }
        None => Cow::Borrowed(system),
    };
    (name, attributes)
}

/// `{operation} {table} …`: the operation, then each table named after `from`, `join`, `into`
/// or `update`, in source order, at most [`MAX_EVENT_TEXT`] bytes; `None` when no table is named.
fn query_summary(operation: &str, text: &str) -> Option<String> {
    let mut summary = operation.to_owned();
    let mut words = text.split(' ').peekable();
    while let Some(word) = words.next() {
        if !matches!(word, "from" | "join" | "into" | "update") {
            continue;
        }
        let Some(table) = words.peek().map(|t| t.trim_end_matches(',')) else {
            break;
        };
        let identifier = table
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '"' | '`'));
        if identifier && !table.is_empty() {
            if summary.len() + 1 + table.len() > MAX_EVENT_TEXT {
                break;
            }
            summary.push(' ');
            summary.push_str(table);
        }
    }
    (summary.len() > operation.len()).then_some(summary)
}

/// `text` cut to at most [`MAX_EVENT_TEXT`] bytes, on a character boundary.
fn bounded(text: &str) -> &str {
    if text.len() <= MAX_EVENT_TEXT {
        return text;
    }
    let mut end = MAX_EVENT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_operation_and_its_tables() {
        let summary = |op, sql| query_summary(op, perf_middleware::db::Fingerprint::of(sql).text());
        assert_eq!(
            summary(
                "SELECT",
                "SELECT p.id FROM posts p JOIN users u ON u.id = p.author_id"
            )
            .as_deref(),
            Some("SELECT posts users")
        );
        assert_eq!(
            summary("INSERT", "INSERT INTO posts (a) VALUES ($1)").as_deref(),
            Some("INSERT posts")
        );
        assert_eq!(
            summary("UPDATE", "UPDATE t SET a = 1").as_deref(),
            Some("UPDATE t")
        );
        assert_eq!(summary("SELECT", "SELECT 1"), None);
        assert_eq!(summary("SELECT", "SELECT * FROM (SELECT 1) x"), None);
    }

    #[test]
    fn event_text_is_bounded_on_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_EVENT_TEXT && long.starts_with(cut));
        assert_eq!(bounded("short"), "short");
    }
}
