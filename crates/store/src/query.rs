//! Query parameters and result shapes shared by every store backend.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sightline_model::{Metric, Severity};

use crate::StoreError;

/// Largest page any query returns.
pub const MAX_PAGE: u32 = 1000;

/// Most time buckets one analytics query may span (`(until - since) / bucket_ms`); wider
/// requests are refused with [`StoreError::InvalidQuery`] instead of building huge answers.
pub const MAX_BUCKETS: i64 = 10_000;

/// The `LIKE` pattern matching `text` as a literal substring, for use with `ESCAPE '\'`:
/// `%`, `_` and `\` in `text` are escaped so they match only themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    format!("%{}%", escape_like(text))
}

/// A `LIKE … ESCAPE '\'` pattern matching text that starts with `text` literally.
pub(crate) fn prefix_pattern(text: &str) -> String {
    format!("{}%", escape_like(text))
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An opaque keyset-pagination cursor: the sort key of the last row of the previous page.
///
/// Rows are ordered by `(timestamp DESC, id DESC)`; the next page holds rows strictly
/// after the cursor in that order, so pages never overlap or skip rows, even while new
/// rows arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Timestamp of the last row returned.
    pub timestamp: i64,
    /// Id of the last row returned.
    pub id: String,
}

impl Cursor {
    /// The URL-safe text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.timestamp, self.id))
    }

    /// Parses a cursor produced by [`Cursor::encode`].
    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::InvalidCursor(s.chars().take(64).collect());
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (ts, id) = text.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            timestamp: ts.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}

/// One page of results and the cursor for the next, if there is one.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters for [`Store::query_events`](crate::Store::query_events). Empty filters match all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Any of these severities.
    pub severities: Vec<Severity>,
    /// Events at or after this time (epoch ms).
    pub since_ms: Option<i64>,
    /// Events before this time (epoch ms).
    pub until_ms: Option<i64>,
    /// Exact service name.
    pub service: Option<String>,
    /// Exact host.
    pub host: Option<String>,
    /// Exact event type (upper case).
    pub event_type: Option<String>,
    /// Exact environment (upper case).
    pub environment: Option<String>,
    /// Case-insensitive substring of `details`.
    pub text: Option<String>,
    /// Page size, 1..=[`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// What analytics counts group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By severity.
    Severity,
    /// By service name.
    Service,
    /// By event type.
    EventType,
    /// By host (events without a host count under `""`).
    Host,
}

impl GroupBy {
    /// Parses the API's `groupby` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "severity" => GroupBy::Severity,
            "service" | "service_name" => GroupBy::Service,
            "event_type" | "type" => GroupBy::EventType,
            "host" => GroupBy::Host,
            _ => return None,
        })
    }

    /// The `processed_events` column it groups by.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Severity => "severity",
            GroupBy::Service => "service_name",
            GroupBy::EventType => "event_type",
            GroupBy::Host => "host",
        }
    }
}

/// Parameters of [`Store::event_analytics`](crate::Store::event_analytics).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticsQuery {
    /// Start of the range (epoch ms, inclusive).
    pub since_ms: i64,
    /// End of the range (epoch ms, exclusive).
    pub until_ms: i64,
    /// Grouping.
    pub group_by: GroupBy,
    /// Width of a time bucket in ms; buckets are aligned to multiples of it.
    pub bucket_ms: i64,
}

/// The count of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupCount {
    /// The group's value (`""` for a missing host).
    pub key: String,
    /// Events in the range.
    pub count: u64,
}

/// Counts per group within one time bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BucketCounts {
    /// Bucket start, epoch ms.
    pub start_ms: i64,
    /// Count per group key; groups with no events are absent.
    pub counts: BTreeMap<String, u64>,
}

/// Result of an analytics query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    /// Grouping used.
    pub group_by: GroupBy,
    /// Range start, epoch ms.
    pub since_ms: i64,
    /// Range end, epoch ms.
    pub until_ms: i64,
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// Events in the range.
    pub total: u64,
    /// Per group, largest first (ties by key).
    pub groups: Vec<GroupCount>,
    /// Per bucket, oldest first; buckets with no events are absent.
    pub buckets: Vec<BucketCounts>,
}

/// Filters for [`Store::query_metrics`](crate::Store::query_metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricQuery {
    /// Exact service name.
    pub service: Option<String>,
    /// Exact metric type.
    pub metric_type: Option<String>,
    /// Points at or after this time (epoch ms).
    pub since_ms: Option<i64>,
    /// Points before this time (epoch ms).
    pub until_ms: Option<i64>,
    /// Page size, 1..=[`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// A stored metric point with its id (`{partition}-{offset}` of its log record, zero-padded
/// so ids sort like positions).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MetricPoint {
    /// Stable id.
    pub id: String,
    /// The point.
    #[serde(flatten)]
    pub metric: Metric,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            timestamp: 1_700_000_000_123,
            id: "evt:with:colons".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("%%%").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("nots:x")).is_err());
    }

    #[test]
    fn contains_pattern_escapes_wildcards() {
        assert_eq!(contains_pattern("disk"), "%disk%");
        assert_eq!(contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
