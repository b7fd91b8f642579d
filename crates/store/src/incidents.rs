//! Persistence for detection and correlation: anomalies, incidents (with their timeline),
//! the correlations that explain them, silences and the service topology.
//!
//! [`IncidentStore`] is a supertrait of [`Store`](crate::Store), like
//! [`SecurityStore`](crate::SecurityStore): every backend keeps these tables next to its
//! data. Schema: `migrations/{sqlite,postgres}/0005_incidents.sql`.
//!
//! Replays are harmless by construction:
//!
//! - anomalies and correlations carry deterministic ids and are inserted with
//!   `ON CONFLICT (id) DO NOTHING`: the first stored version of an id wins and a replay is
//!   counted as a duplicate ([`WriteSummary`]);
//! - incidents are upserted by id, but only when the offered version is at least as new as
//!   the stored one (`… DO UPDATE … WHERE excluded.updated_at >= incidents.updated_at`), so
//!   an old version replayed from the log never overwrites a newer one;
//! - [`IncidentStore::update_incident`] (an operator's acknowledge / resolve / assign /
//!   note) is a read-modify-write in one transaction that first takes the row's write lock
//!   (a no-op `UPDATE`), so two concurrent updates serialize and neither loses the other's
//!   timeline entry.
//!
//! As in [`crate::security`], the SQL text is the same for both backends (`$n` placeholders
//! work in SQLite too), so one macro implements the trait for each and they cannot drift
//! apart.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sightline_model::{
    Anomaly, Correlation, CorrelationKind, Incident, IncidentStatus, Severity, Signal, Silence,
    TimelineEntry, Topology,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::column;
use crate::rollups::count_to_u64;
use crate::{Cursor, Page, Result, StoreError, WriteSummary};

/// Most rows [`IncidentStore::correlations_for_signal`] returns.
pub const MAX_CORRELATIONS: u32 = 1000;

/// Rows per multi-row insert of anomalies or correlations (15 and 8 bound values per row:
/// well under SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement).
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// Ids per `IN (…)` list of [`IncidentStore::link_anomalies`].
pub(crate) const IDS_PER_STATEMENT: usize = 1000;

/// A stored anomaly and the incident it was linked to, if any.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredAnomaly {
    /// The anomaly as written.
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// The incident [`IncidentStore::link_anomalies`] linked it to.
    pub incident_id: Option<String>,
}

/// Filters for [`IncidentStore::query_anomalies`]; newest first (by `timestamp`, then id),
/// keyset-paginated. Empty filters match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnomalyQuery {
    /// Exact service name.
    pub service: Option<String>,
    /// Exact detector name.
    pub detector: Option<String>,
    /// Only anomalies linked to this incident.
    pub incident_id: Option<String>,
    /// Anomalies at or after this time (epoch ms, on `timestamp`).
    pub from: Option<i64>,
    /// Anomalies before this time (epoch ms, on `timestamp`).
    pub to: Option<i64>,
    /// Page size, clamped to 1..=[`MAX_PAGE`](crate::MAX_PAGE).
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// Filters for [`IncidentStore::query_incidents`]; newest first (by `detected_at`, then
/// id), keyset-paginated. Empty filters match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncidentQuery {
    /// Any of these statuses; `None` matches every status, `Some(vec![])` matches nothing.
    pub status: Option<Vec<IncidentStatus>>,
    /// Any of these severities (empty: any).
    pub severities: Vec<Severity>,
    /// At least this severe (`High` matches `high` and `critical`).
    pub min_severity: Option<Severity>,
    /// Incidents attributed to this service or affecting it (`service_name` or any of
    /// `affected_services`).
    pub service: Option<String>,
    /// Detected at or after this time (epoch ms).
    pub from: Option<i64>,
    /// Detected before this time (epoch ms).
    pub to: Option<i64>,
    /// Page size, clamped to 1..=[`MAX_PAGE`](crate::MAX_PAGE).
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// An operator's change to an incident, applied by [`IncidentStore::update_incident`].
/// Each change that takes effect appends one [`TimelineEntry`] by `actor` at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentPatch {
    /// Move to this status (see [`transition_allowed`]).
    pub status: Option<IncidentStatus>,
    /// `Some(Some(name))` assigns, `Some(None)` unassigns, `None` leaves the assignee.
    pub assignee: Option<Option<String>>,
    /// A note to append to the timeline.
    pub note: Option<String>,
    /// Who makes the change (user name, API key id, `sightline`).
    pub actor: String,
    /// When, epoch milliseconds.
    pub now: i64,
}

/// How many incidents are in each status (for the dashboard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IncidentCounts {
    /// Open incidents.
    pub open: u64,
    /// Acknowledged incidents.
    pub acknowledged: u64,
    /// Resolved incidents.
    pub resolved: u64,
}

/// The current service topology and its version.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTopology {
    /// The graph.
    pub topology: Topology,
    /// 1 for the first put, incremented by each later one.
    pub version: u64,
    /// When it was last put, epoch milliseconds.
    pub updated_at: i64,
    /// Who put it.
    pub updated_by: String,
}

/// Whether an incident may move from `from` to `to`: open → acknowledged, open → resolved,
/// acknowledged → resolved, and resolved → open (reopen). Everything else, including
/// staying in the same status, is refused with [`StoreError::InvalidTransition`].
pub fn transition_allowed(from: IncidentStatus, to: IncidentStatus) -> bool {
    use IncidentStatus::{Acknowledged, Open, Resolved};
    matches!(
        (from, to),
        (Open, Acknowledged) | (Open, Resolved) | (Acknowledged, Resolved) | (Resolved, Open)
    )
}

/// Persistence for anomalies, incidents, correlations, silences and the topology (see the
/// module docs).
#[async_trait::async_trait]
pub trait IncidentStore: Send + Sync {
    /// Inserts anomalies by id in one transaction; an id already stored is left as it is
    /// (the first version wins) and counted as a duplicate. NaN numbers are refused with
    /// [`StoreError::InvalidData`] (SQLite cannot store them).
    async fn write_anomalies(&self, anomalies: &[Anomaly]) -> Result<WriteSummary>;

    /// Anomalies matching the filters, newest first, keyset-paginated.
    async fn query_anomalies(&self, query: &AnomalyQuery) -> Result<Page<StoredAnomaly>>;

    /// Links the given anomalies to an incident (replacing any previous link); returns how
    /// many stored anomalies were linked (unknown ids are skipped).
    async fn link_anomalies(&self, incident_id: &str, anomaly_ids: &[String]) -> Result<u64>;

    /// Upserts incidents by id in one transaction. A stored incident is replaced only by a
    /// version whose `updated_at` is at least its own, so a replayed older version never
    /// overwrites a newer one. Returns how many incidents were written (new or replaced);
    /// the rest were stale.
    async fn upsert_incidents(&self, incidents: &[Incident]) -> Result<u64>;

    /// One incident by id.
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>>;

    /// Incidents matching the filters, newest detected first, keyset-paginated.
    async fn query_incidents(&self, query: &IncidentQuery) -> Result<Page<Incident>>;

    /// Applies an operator's change in one transaction and returns the incident as stored.
    ///
    /// A status change must be allowed by [`transition_allowed`]
    /// ([`StoreError::InvalidTransition`] otherwise); acknowledging sets `acknowledged_at`,
    /// resolving sets `resolved_at`, reopening clears both. Each change that takes effect
    /// appends a timeline entry by `patch.actor` at `patch.now`, and `updated_at` becomes
    /// `patch.now` (never earlier than it was). An unknown id is
    /// [`StoreError::NotFound`]; a patch with nothing in it (or an empty note) is
    /// [`StoreError::InvalidData`]; re-assigning the current assignee changes nothing.
    async fn update_incident(&self, id: &str, patch: &IncidentPatch) -> Result<Incident>;

    /// How many incidents are in each status.
    async fn count_incidents_by_status(&self) -> Result<IncidentCounts>;

    /// How many incidents are open or acknowledged, as `(status, severity, count)` rows
    /// (combinations without incidents are absent). Resolved incidents, the bulk of the
    /// table, are not counted: the status index skips them.
    async fn count_unresolved_incidents(&self) -> Result<Vec<(IncidentStatus, Severity, u64)>>;

    /// Inserts correlations by id in one transaction; an id already stored is left as it
    /// is and counted as a duplicate.
    async fn write_correlations(&self, correlations: &[Correlation]) -> Result<WriteSummary>;

    /// Every correlation of an incident, oldest first (by `created_at`, then id).
    async fn correlations_for_incident(&self, incident_id: &str) -> Result<Vec<Correlation>>;

    /// The correlations in which `signal_id` (an event or anomaly id) is the source or the
    /// target, newest first, at most `limit` (clamped to 1..=[`MAX_CORRELATIONS`]).
    async fn correlations_for_signal(
        &self,
        signal_id: &str,
        limit: u32,
    ) -> Result<Vec<Correlation>>;

    /// Stores a new silence; [`StoreError::Conflict`] when its id exists.
    async fn create_silence(&self, silence: &Silence) -> Result<()>;

    /// Silences by creation time, newest first. Without `include_expired`, only those not
    /// yet over at `now_ms` (active or pending: `ends_at > now_ms`).
    async fn list_silences(&self, include_expired: bool, now_ms: i64) -> Result<Vec<Silence>>;

    /// Ends a silence at `now_ms` (an already ended one keeps its earlier end) and returns
    /// it; [`StoreError::NotFound`] when there is no such silence.
    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<Silence>;

    /// Replaces the topology and returns its new version (1 for the first put). Refused
    /// with [`StoreError::InvalidData`] when it would not read back equal (NaN
    /// criticality).
    async fn put_topology(&self, topology: &Topology, actor: &str, now_ms: i64) -> Result<u64>;

    /// The current topology, if one was ever put.
    async fn get_topology(&self) -> Result<Option<StoredTopology>>;
}

/// For stores that wrap another (fault injection, instrumentation): name the inner store and
/// [`IncidentStore`] is implemented by handing every call to it.
pub trait DelegateIncidents: Send + Sync {
    /// The store that keeps the incident tables.
    fn incidents(&self) -> &dyn IncidentStore;
}

#[async_trait::async_trait]
impl<T: DelegateIncidents> IncidentStore for T {
    async fn write_anomalies(&self, anomalies: &[Anomaly]) -> Result<WriteSummary> {
        self.incidents().write_anomalies(anomalies).await
    }
    async fn query_anomalies(&self, query: &AnomalyQuery) -> Result<Page<StoredAnomaly>> {
        self.incidents().query_anomalies(query).await
    }
    async fn link_anomalies(&self, incident_id: &str, anomaly_ids: &[String]) -> Result<u64> {
        self.incidents()
            .link_anomalies(incident_id, anomaly_ids)
            .await
    }
    async fn upsert_incidents(&self, incidents: &[Incident]) -> Result<u64> {
        self.incidents().upsert_incidents(incidents).await
    }
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>> {
        self.incidents().get_incident(id).await
    }
    async fn query_incidents(&self, query: &IncidentQuery) -> Result<Page<Incident>> {
        self.incidents().query_incidents(query).await
    }
    async fn update_incident(&self, id: &str, patch: &IncidentPatch) -> Result<Incident> {
        self.incidents().update_incident(id, patch).await
    }
    async fn count_incidents_by_status(&self) -> Result<IncidentCounts> {
        self.incidents().count_incidents_by_status().await
    }
    async fn count_unresolved_incidents(&self) -> Result<Vec<(IncidentStatus, Severity, u64)>> {
        self.incidents().count_unresolved_incidents().await
    }
    async fn write_correlations(&self, correlations: &[Correlation]) -> Result<WriteSummary> {
        self.incidents().write_correlations(correlations).await
    }
    async fn correlations_for_incident(&self, incident_id: &str) -> Result<Vec<Correlation>> {
        self.incidents()
            .correlations_for_incident(incident_id)
            .await
    }
    async fn correlations_for_signal(
        &self,
        signal_id: &str,
        limit: u32,
    ) -> Result<Vec<Correlation>> {
        self.incidents()
            .correlations_for_signal(signal_id, limit)
            .await
    }
    async fn create_silence(&self, silence: &Silence) -> Result<()> {
        self.incidents().create_silence(silence).await
    }
    async fn list_silences(&self, include_expired: bool, now_ms: i64) -> Result<Vec<Silence>> {
        self.incidents()
            .list_silences(include_expired, now_ms)
            .await
    }
    async fn expire_silence(&self, id: &str, now_ms: i64) -> Result<Silence> {
        self.incidents().expire_silence(id, now_ms).await
    }
    async fn put_topology(&self, topology: &Topology, actor: &str, now_ms: i64) -> Result<u64> {
        self.incidents().put_topology(topology, actor, now_ms).await
    }
    async fn get_topology(&self) -> Result<Option<StoredTopology>> {
        self.incidents().get_topology().await
    }
}

pub(crate) const ANOMALY_COLUMNS: &str = "id, detector, service_name, signal_kind, signal_name, \
     timestamp, value, expected_low, expected_high, score, severity, explanation, event_id, \
     detected_at, incident_id";
pub(crate) const INCIDENT_COLUMNS: &str = "id, title, description, severity, severity_rank, \
     score, status, service_name, affected_services, detected_at, updated_at, \
     acknowledged_at, resolved_at, correlation_id, fingerprint, labels, event_ids, \
     anomaly_ids, occurrences, assignee, flapping, timeline";
pub(crate) const CORRELATION_COLUMNS: &str =
    "id, incident_id, source_id, target_id, kind, score, reason, created_at";
pub(crate) const SILENCE_COLUMNS: &str =
    "id, matchers, starts_at, ends_at, created_by, comment, created_at";

/// The upsert of one incident: replaces the stored row only with a version at least as new.
pub(crate) const UPSERT_INCIDENT: &str = "INSERT INTO incidents (id, title, description, \
     severity, severity_rank, score, status, service_name, affected_services, detected_at, \
     updated_at, acknowledged_at, resolved_at, correlation_id, fingerprint, labels, \
     event_ids, anomaly_ids, occurrences, assignee, flapping, timeline) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22) \
     ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
     description = excluded.description, severity = excluded.severity, \
     severity_rank = excluded.severity_rank, score = excluded.score, \
     status = excluded.status, service_name = excluded.service_name, \
     affected_services = excluded.affected_services, detected_at = excluded.detected_at, \
     updated_at = excluded.updated_at, acknowledged_at = excluded.acknowledged_at, \
     resolved_at = excluded.resolved_at, correlation_id = excluded.correlation_id, \
     fingerprint = excluded.fingerprint, labels = excluded.labels, \
     event_ids = excluded.event_ids, anomaly_ids = excluded.anomaly_ids, \
     occurrences = excluded.occurrences, assignee = excluded.assignee, \
     flapping = excluded.flapping, timeline = excluded.timeline \
     WHERE excluded.updated_at >= incidents.updated_at";

/// Writes back the fields [`IncidentStore::update_incident`] changes.
pub(crate) const UPDATE_INCIDENT: &str = "UPDATE incidents SET status = $2, assignee = $3, \
     acknowledged_at = $4, resolved_at = $5, updated_at = $6, timeline = $7 WHERE id = $1";

/// Puts the topology: the first put inserts version 1, later ones bump it, atomically.
pub(crate) const PUT_TOPOLOGY: &str = "INSERT INTO topology (id, version, document, \
     updated_at, updated_by) VALUES (1, 1, $1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET version = topology.version + 1, \
     document = excluded.document, updated_at = excluded.updated_at, \
     updated_by = excluded.updated_by RETURNING version";

/// Position of a severity in [`Severity::ALL`]: 0 for critical … 4 for info.
pub(crate) fn severity_rank(severity: Severity) -> i64 {
    Severity::ALL
        .iter()
        .position(|s| *s == severity)
        .and_then(|p| i64::try_from(p).ok())
        .unwrap_or(i64::MAX)
}

/// The `(signal_kind, signal_name)` columns of a signal.
pub(crate) fn signal_columns(signal: &Signal) -> (&'static str, &str) {
    let kind = match signal {
        Signal::Metric { .. } => "metric",
        Signal::ErrorRate => "error_rate",
        Signal::Pattern { .. } => "pattern",
    };
    (kind, signal.name())
}

fn signal_from_columns(kind: &str, name: &str) -> Option<Signal> {
    Some(match kind {
        "metric" => Signal::Metric {
            metric_type: name.to_owned(),
        },
        "error_rate" => Signal::ErrorRate,
        "pattern" => Signal::Pattern {
            fingerprint: name.to_owned(),
        },
        _ => return None,
    })
}

/// Refuses NaN in a number column: SQLite stores it as NULL (which the NOT NULL columns
/// refuse) while PostgreSQL keeps it, so both refuse it here, the same way.
pub(crate) fn check_number(value: f64, what: &str, id: &str) -> Result<()> {
    if value.is_nan() {
        return Err(StoreError::InvalidData(format!("{what} of '{id}' is NaN")));
    }
    Ok(())
}

/// Checks an anomaly's numbers before it is bound.
pub(crate) fn check_anomaly(a: &Anomaly) -> Result<()> {
    for (value, what) in [
        (a.value, "value"),
        (a.expected_low, "expected_low"),
        (a.expected_high, "expected_high"),
        (a.score, "score"),
    ] {
        check_number(value, &format!("anomaly {what}"), &a.id)?;
    }
    Ok(())
}

/// JSON text of a value kept in a JSON column.
pub(crate) fn json<T: Serialize>(value: &T, what: &str, id: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidData(format!("{what} of '{id}' does not encode: {e}")))
}

/// An incident's columns that need encoding before they can be bound.
#[derive(Debug)]
pub(crate) struct EncodedIncident {
    pub(crate) affected_services: String,
    pub(crate) labels: String,
    pub(crate) event_ids: String,
    pub(crate) anomaly_ids: String,
    pub(crate) timeline: String,
    /// `service_name` and every affected service, each once.
    pub(crate) services: BTreeSet<String>,
}

/// Encodes an incident's JSON columns (and checks its numbers).
pub(crate) fn encode_incident(incident: &Incident) -> Result<EncodedIncident> {
    let id = incident.id.as_str();
    check_number(incident.score, "incident score", id)?;
    let services = std::iter::once(&incident.service_name)
        .chain(&incident.affected_services)
        .map(|s| crate::rollups::clean(s).into_owned())
        .collect();
    Ok(EncodedIncident {
        affected_services: json(&incident.affected_services, "affected_services", id)?,
        labels: json(&incident.labels, "labels", id)?,
        event_ids: json(&incident.event_ids, "event_ids", id)?,
        anomaly_ids: json(&incident.anomaly_ids, "anomaly_ids", id)?,
        timeline: json(&incident.timeline, "timeline", id)?,
        services,
    })
}

/// Applies `patch` to `incident` (as read inside the update transaction). Returns whether
/// anything changed.
pub(crate) fn apply_patch(incident: &mut Incident, patch: &IncidentPatch) -> Result<bool> {
    if patch.status.is_none() && patch.assignee.is_none() && patch.note.is_none() {
        return Err(StoreError::InvalidData(
            "the incident update changes nothing: give a status, an assignee or a note".into(),
        ));
    }
    if let Some(note) = &patch.note
        && note.trim().is_empty()
    {
        return Err(StoreError::InvalidData("the note is empty".into()));
    }
    let now = patch.now;
    let mut entries = Vec::new();
    if let Some(to) = patch.status {
        let from = incident.status;
        if !transition_allowed(from, to) {
            return Err(StoreError::InvalidTransition {
                id: incident.id.clone(),
                from,
                to,
            });
        }
        incident.status = to;
        match to {
            IncidentStatus::Acknowledged => incident.acknowledged_at = Some(now),
            IncidentStatus::Resolved => incident.resolved_at = Some(now),
            IncidentStatus::Open => {
                incident.acknowledged_at = None;
                incident.resolved_at = None;
            }
        }
        let message = if from == IncidentStatus::Resolved {
            format!("reopened (was {from})")
        } else {
            format!("status changed from {from} to {to}")
        };
        entries.push(("status", message));
    }
    if let Some(assignee) = &patch.assignee
        && *assignee != incident.assignee
    {
        let message = match (assignee, &incident.assignee) {
            (Some(to), None) => format!("assigned to {to}"),
            (Some(to), Some(was)) => format!("assigned to {to} (was {was})"),
            (None, Some(was)) => format!("unassigned (was {was})"),
            (None, None) => String::new(),
        };
        incident.assignee.clone_from(assignee);
        entries.push(("assigned", message));
    }
    if let Some(note) = &patch.note {
        entries.push(("note", note.clone()));
    }
    if entries.is_empty() {
        return Ok(false);
    }
    for (kind, message) in entries {
        incident.timeline.push(TimelineEntry {
            at: now,
            kind: kind.to_owned(),
            message,
            actor: patch.actor.clone(),
        });
    }
    incident.updated_at = incident.updated_at.max(now);
    Ok(true)
}

/// Encodes a topology, refusing one that would not read back equal.
pub(crate) fn encode_topology(topology: &Topology) -> Result<String> {
    let text = json(topology, "topology", "current")?;
    let back: std::result::Result<Topology, _> = serde_json::from_str(&text);
    match back {
        Ok(back) if back == *topology => Ok(text),
        _ => Err(StoreError::InvalidData(
            "the topology does not survive a JSON round trip (NaN criticality?)".into(),
        )),
    }
}

/// Decodes a `topology` row.
pub(crate) fn topology_from_row<'r, R>(row: &'r R) -> Result<StoredTopology>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "topology";
    let document: String = column(row, "document", T)?;
    let topology =
        serde_json::from_str(&document).map_err(|e| StoreError::corrupt("topology.document", e))?;
    let version: i64 = column(row, "version", T)?;
    Ok(StoredTopology {
        topology,
        version: count_to_u64(version, "topology.version", "current")?,
        updated_at: column(row, "updated_at", T)?,
        updated_by: column(row, "updated_by", T)?,
    })
}

/// Decodes an `anomalies` row.
pub(crate) fn anomaly_from_row<'r, R>(row: &'r R) -> Result<StoredAnomaly>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "anomalies";
    let id: String = column(row, "id", T)?;
    let corrupt = |name: &str, reason: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{T}.{name} of '{id}'"), reason)
    };
    let kind: String = column(row, "signal_kind", T)?;
    let name: String = column(row, "signal_name", T)?;
    let signal = signal_from_columns(&kind, &name)
        .ok_or_else(|| corrupt("signal_kind", &format!("unknown signal kind '{kind}'")))?;
    let severity: String = column(row, "severity", T)?;
    let severity =
        Severity::parse("severity", &severity).map_err(|e| corrupt("severity", &e.to_string()))?;
    Ok(StoredAnomaly {
        anomaly: Anomaly {
            detector: column(row, "detector", T)?,
            service_name: column(row, "service_name", T)?,
            signal,
            timestamp: column(row, "timestamp", T)?,
            value: column(row, "value", T)?,
            expected_low: column(row, "expected_low", T)?,
            expected_high: column(row, "expected_high", T)?,
            score: column(row, "score", T)?,
            severity,
            explanation: column(row, "explanation", T)?,
            event_id: column(row, "event_id", T)?,
            detected_at: column(row, "detected_at", T)?,
            id,
        },
        incident_id: column(row, "incident_id", T)?,
    })
}

/// Decodes an `incidents` row.
pub(crate) fn incident_from_row<'r, R>(row: &'r R) -> Result<Incident>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "incidents";
    let id: String = column(row, "id", T)?;
    let corrupt = |name: &str, reason: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{T}.{name} of '{id}'"), reason)
    };
    fn from_json<V: serde::de::DeserializeOwned>(
        text: &str,
        corrupt: impl Fn(&dyn std::fmt::Display) -> StoreError,
    ) -> Result<V> {
        serde_json::from_str(text).map_err(|e| corrupt(&e))
    }
    let text = |name: &str| -> Result<String> { column(row, name, T) };
    let severity = text("severity")?;
    let severity =
        Severity::parse("severity", &severity).map_err(|e| corrupt("severity", &e.to_string()))?;
    let status = text("status")?;
    let status =
        IncidentStatus::parse("status", &status).map_err(|e| corrupt("status", &e.to_string()))?;
    let occurrences: i64 = column(row, "occurrences", T)?;
    let affected_services: Vec<String> = from_json(&text("affected_services")?, |e| {
        corrupt("affected_services", e)
    })?;
    let labels: BTreeMap<String, String> = from_json(&text("labels")?, |e| corrupt("labels", e))?;
    let event_ids: Vec<String> = from_json(&text("event_ids")?, |e| corrupt("event_ids", e))?;
    let anomaly_ids: Vec<String> = from_json(&text("anomaly_ids")?, |e| corrupt("anomaly_ids", e))?;
    let timeline: Vec<TimelineEntry> = from_json(&text("timeline")?, |e| corrupt("timeline", e))?;
    Ok(Incident {
        title: column(row, "title", T)?,
        description: column(row, "description", T)?,
        severity,
        score: column(row, "score", T)?,
        status,
        service_name: column(row, "service_name", T)?,
        affected_services,
        detected_at: column(row, "detected_at", T)?,
        updated_at: column(row, "updated_at", T)?,
        acknowledged_at: column(row, "acknowledged_at", T)?,
        resolved_at: column(row, "resolved_at", T)?,
        correlation_id: column(row, "correlation_id", T)?,
        fingerprint: column(row, "fingerprint", T)?,
        labels,
        event_ids,
        anomaly_ids,
        occurrences: count_to_u64(occurrences, "incidents.occurrences", &id)?,
        assignee: column(row, "assignee", T)?,
        flapping: column(row, "flapping", T)?,
        timeline,
        id,
    })
}

/// Decodes an `event_correlations` row.
pub(crate) fn correlation_from_row<'r, R>(row: &'r R) -> Result<Correlation>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "event_correlations";
    let id: String = column(row, "id", T)?;
    let kind: String = column(row, "kind", T)?;
    let kind = match kind.as_str() {
        "time_based" => CorrelationKind::TimeBased,
        "pattern_based" => CorrelationKind::PatternBased,
        "causal" => CorrelationKind::Causal,
        other => {
            return Err(StoreError::corrupt(
                format!("{T}.kind of '{id}'"),
                format!("unknown correlation kind '{other}'"),
            ));
        }
    };
    Ok(Correlation {
        incident_id: column(row, "incident_id", T)?,
        source_id: column(row, "source_id", T)?,
        target_id: column(row, "target_id", T)?,
        kind,
        score: column(row, "score", T)?,
        reason: column(row, "reason", T)?,
        created_at: column(row, "created_at", T)?,
        id,
    })
}

/// Decodes a `silences` row.
pub(crate) fn silence_from_row<'r, R>(row: &'r R) -> Result<Silence>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "silences";
    let id: String = column(row, "id", T)?;
    let matchers: String = column(row, "matchers", T)?;
    let matchers = serde_json::from_str(&matchers)
        .map_err(|e| StoreError::corrupt(format!("{T}.matchers of '{id}'"), e))?;
    Ok(Silence {
        matchers,
        starts_at: column(row, "starts_at", T)?,
        ends_at: column(row, "ends_at", T)?,
        created_by: column(row, "created_by", T)?,
        comment: column(row, "comment", T)?,
        created_at: column(row, "created_at", T)?,
        id,
    })
}

/// Implements [`IncidentStore`] for a backend: `$writer` / `$reader` are expressions giving
/// the pools for writes and reads (the same pool for PostgreSQL), `$db` the sqlx database.
macro_rules! impl_incident_store {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        /// Ends a newest-first page over `time_column`: the range `[from, to)`, the keyset
        /// cursor `(time_column, id) < cursor`, the order and a limit one row beyond the
        /// page. `time_column` is one of a fixed set, never input.
        fn push_time_page(
            select: &mut sqlx::QueryBuilder<'_, $db>,
            filter: &mut $crate::common::Filter,
            time_column: &'static str,
            (from, to): (Option<i64>, Option<i64>),
            cursor: Option<&$crate::Cursor>,
            limit: u32,
        ) {
            if let Some(from) = from {
                filter
                    .and(select)
                    .push(time_column)
                    .push(" >= ")
                    .push_bind(from);
            }
            if let Some(to) = to {
                filter
                    .and(select)
                    .push(time_column)
                    .push(" < ")
                    .push_bind(to);
            }
            if let Some(cursor) = cursor {
                filter
                    .and(select)
                    .push("(")
                    .push(time_column)
                    .push(", id) < (")
                    .push_bind(cursor.timestamp)
                    .push(", ")
                    .push_bind(cursor.id.clone())
                    .push(")");
            }
            select
                .push(" ORDER BY ")
                .push(time_column)
                .push(" DESC, id DESC LIMIT ")
                .push_bind(i64::from(limit) + 1);
        }

        /// The incident `id` as read inside `tx`.
        async fn incident_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            id: &str,
        ) -> $crate::Result<Option<sightline_model::Incident>> {
            sqlx::query::<$db>(&format!(
                "SELECT {} FROM incidents WHERE id = $1",
                $crate::incidents::INCIDENT_COLUMNS
            ))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .as_ref()
            .map($crate::incidents::incident_from_row)
            .transpose()
        }

        #[async_trait::async_trait]
        impl $crate::incidents::IncidentStore for $store {
            async fn write_anomalies(
                &self,
                anomalies: &[sightline_model::Anomaly],
            ) -> $crate::Result<$crate::WriteSummary> {
                use $crate::rollups::clean;
                if anomalies.is_empty() {
                    return Ok($crate::WriteSummary::default());
                }
                for anomaly in anomalies {
                    $crate::incidents::check_anomaly(anomaly)?;
                }
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let mut inserted = 0;
                for chunk in anomalies.chunks($crate::incidents::ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO anomalies (id, detector, service_name, signal_kind, \
                         signal_name, timestamp, value, expected_low, expected_high, score, \
                         severity, explanation, event_id, detected_at) ",
                    );
                    insert.push_values(chunk, |mut row, a| {
                        let (kind, name) = $crate::incidents::signal_columns(&a.signal);
                        row.push_bind(clean(&a.id).into_owned())
                            .push_bind(clean(&a.detector).into_owned())
                            .push_bind(clean(&a.service_name).into_owned())
                            .push_bind(kind)
                            .push_bind(clean(name).into_owned())
                            .push_bind(a.timestamp)
                            .push_bind(a.value)
                            .push_bind(a.expected_low)
                            .push_bind(a.expected_high)
                            .push_bind(a.score)
                            .push_bind(a.severity.as_str())
                            .push_bind(clean(&a.explanation).into_owned())
                            .push_bind(a.event_id.as_deref().map(|e| clean(e).into_owned()))
                            .push_bind(a.detected_at);
                    });
                    insert.push(" ON CONFLICT (id) DO NOTHING");
                    inserted += insert.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok($crate::common::summary(anomalies.len(), inserted))
            }

            async fn query_anomalies(
                &self,
                query: &$crate::incidents::AnomalyQuery,
            ) -> $crate::Result<$crate::Page<$crate::incidents::StoredAnomaly>> {
                let limit = query.limit.clamp(1, $crate::MAX_PAGE);
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM anomalies",
                    $crate::incidents::ANOMALY_COLUMNS
                ));
                let mut filter = $crate::common::Filter::new();
                for (column, value) in [
                    ("service_name", &query.service),
                    ("detector", &query.detector),
                    ("incident_id", &query.incident_id),
                ] {
                    if let Some(value) = value {
                        filter
                            .and(&mut select)
                            .push(column)
                            .push(" = ")
                            .push_bind(value.clone());
                    }
                }
                push_time_page(
                    &mut select,
                    &mut filter,
                    "timestamp",
                    (query.from, query.to),
                    query.cursor.as_ref(),
                    limit,
                );
                let rows = select.build().fetch_all($reader).await?;
                let anomalies = rows
                    .iter()
                    .map($crate::incidents::anomaly_from_row)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::common::page(anomalies, limit, |a| $crate::Cursor {
                    timestamp: a.anomaly.timestamp,
                    id: a.anomaly.id.clone(),
                }))
            }

            async fn link_anomalies(
                &self,
                incident_id: &str,
                anomaly_ids: &[String],
            ) -> $crate::Result<u64> {
                use $crate::rollups::clean;
                if anomaly_ids.is_empty() {
                    return Ok(0);
                }
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let mut linked = 0;
                for chunk in anomaly_ids.chunks($crate::incidents::IDS_PER_STATEMENT) {
                    let mut update =
                        sqlx::QueryBuilder::<$db>::new("UPDATE anomalies SET incident_id = ");
                    update
                        .push_bind(clean(incident_id).into_owned())
                        .push(" WHERE id IN (");
                    let mut ids = update.separated(", ");
                    for id in chunk {
                        ids.push_bind(clean(id).into_owned());
                    }
                    update.push(")");
                    linked += update.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(linked)
            }

            async fn upsert_incidents(
                &self,
                incidents: &[sightline_model::Incident],
            ) -> $crate::Result<u64> {
                use $crate::rollups::clean;
                if incidents.is_empty() {
                    return Ok(0);
                }
                let encoded = incidents
                    .iter()
                    .map($crate::incidents::encode_incident)
                    .collect::<$crate::Result<Vec<_>>>()?;
                // In id order (stable: versions of one id keep their order), so two
                // concurrent batches lock rows in the same order and cannot deadlock.
                let mut order: Vec<usize> = (0..incidents.len()).collect();
                order.sort_by(|&a, &b| incidents[a].id.cmp(&incidents[b].id));
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let mut written = 0;
                for (incident, enc) in order.iter().map(|&i| (&incidents[i], &encoded[i])) {
                    let id = clean(&incident.id).into_owned();
                    let applied = sqlx::query::<$db>($crate::incidents::UPSERT_INCIDENT)
                        .bind(&id)
                        .bind(clean(&incident.title).into_owned())
                        .bind(clean(&incident.description).into_owned())
                        .bind(incident.severity.as_str())
                        .bind($crate::incidents::severity_rank(incident.severity))
                        .bind(incident.score)
                        .bind(incident.status.as_str())
                        .bind(clean(&incident.service_name).into_owned())
                        .bind(&enc.affected_services)
                        .bind(incident.detected_at)
                        .bind(incident.updated_at)
                        .bind(incident.acknowledged_at)
                        .bind(incident.resolved_at)
                        .bind(clean(&incident.correlation_id).into_owned())
                        .bind(clean(&incident.fingerprint).into_owned())
                        .bind(&enc.labels)
                        .bind(&enc.event_ids)
                        .bind(&enc.anomaly_ids)
                        .bind($crate::common::to_i64(incident.occurrences))
                        .bind(incident.assignee.as_deref().map(|a| clean(a).into_owned()))
                        .bind(incident.flapping)
                        .bind(&enc.timeline)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if applied == 0 {
                        continue;
                    }
                    written += 1;
                    sqlx::query::<$db>("DELETE FROM incident_services WHERE incident_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO incident_services (service_name, incident_id) ",
                    );
                    insert.push_values(&enc.services, |mut row, service| {
                        row.push_bind(service.clone()).push_bind(id.clone());
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn get_incident(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::Incident>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM incidents WHERE id = $1",
                    $crate::incidents::INCIDENT_COLUMNS
                ))
                .bind(id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::incidents::incident_from_row)
                .transpose()
            }

            async fn query_incidents(
                &self,
                query: &$crate::incidents::IncidentQuery,
            ) -> $crate::Result<$crate::Page<sightline_model::Incident>> {
                let limit = query.limit.clamp(1, $crate::MAX_PAGE);
                if query.status.as_ref().is_some_and(Vec::is_empty) {
                    return Ok($crate::Page {
                        items: Vec::new(),
                        next_cursor: None,
                    });
                }
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM incidents",
                    $crate::incidents::INCIDENT_COLUMNS
                ));
                let mut filter = $crate::common::Filter::new();
                if let Some(statuses) = &query.status {
                    filter.and(&mut select).push("status IN (");
                    let mut list = select.separated(", ");
                    for status in statuses {
                        list.push_bind(status.as_str());
                    }
                    select.push(")");
                }
                if !query.severities.is_empty() {
                    filter.and(&mut select).push("severity IN (");
                    let mut list = select.separated(", ");
                    for severity in &query.severities {
                        list.push_bind(severity.as_str());
                    }
                    select.push(")");
                }
                if let Some(min) = query.min_severity {
                    filter
                        .and(&mut select)
                        .push("severity_rank <= ")
                        .push_bind($crate::incidents::severity_rank(min));
                }
                if let Some(service) = &query.service {
                    filter
                        .and(&mut select)
                        .push(
                            "id IN (SELECT incident_id FROM incident_services \
                             WHERE service_name = ",
                        )
                        .push_bind(service.clone())
                        .push(")");
                }
                push_time_page(
                    &mut select,
                    &mut filter,
                    "detected_at",
                    (query.from, query.to),
                    query.cursor.as_ref(),
                    limit,
                );
                let rows = select.build().fetch_all($reader).await?;
                let incidents = rows
                    .iter()
                    .map($crate::incidents::incident_from_row)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::common::page(incidents, limit, |i| $crate::Cursor {
                    timestamp: i.detected_at,
                    id: i.id.clone(),
                }))
            }

            async fn update_incident(
                &self,
                id: &str,
                patch: &$crate::incidents::IncidentPatch,
            ) -> $crate::Result<sightline_model::Incident> {
                let $w = self;
                let mut tx = ($writer).begin().await?;
                // Take the row's write lock before reading it: PostgreSQL blocks a second
                // updater here until the first commits (then reads its result); SQLite
                // takes the database write lock.
                let locked = sqlx::query::<$db>(
                    "UPDATE incidents SET updated_at = updated_at WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if locked == 0 {
                    return Err($crate::StoreError::NotFound(format!("incident '{id}'")));
                }
                let mut incident = incident_in(&mut tx, id)
                    .await?
                    .ok_or_else(|| $crate::StoreError::NotFound(format!("incident '{id}'")))?;
                if !$crate::incidents::apply_patch(&mut incident, patch)? {
                    tx.commit().await?;
                    return Ok(incident);
                }
                let timeline = $crate::incidents::json(&incident.timeline, "timeline", id)?;
                sqlx::query::<$db>($crate::incidents::UPDATE_INCIDENT)
                    .bind(id)
                    .bind(incident.status.as_str())
                    .bind(
                        incident
                            .assignee
                            .as_deref()
                            .map(|a| $crate::rollups::clean(a).into_owned()),
                    )
                    .bind(incident.acknowledged_at)
                    .bind(incident.resolved_at)
                    .bind(incident.updated_at)
                    .bind(timeline)
                    .execute(&mut *tx)
                    .await?;
                // Read back what is stored (text as the backend keeps it).
                let stored = incident_in(&mut tx, id)
                    .await?
                    .ok_or_else(|| $crate::StoreError::NotFound(format!("incident '{id}'")))?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn count_incidents_by_status(
                &self,
            ) -> $crate::Result<$crate::incidents::IncidentCounts> {
                use sqlx::Row as _;
                let $r = self;
                let rows = sqlx::query::<$db>(
                    "SELECT status, COUNT(*) AS n FROM incidents GROUP BY status",
                )
                .fetch_all($reader)
                .await?;
                let mut counts = $crate::incidents::IncidentCounts::default();
                for row in &rows {
                    let status: String = row.try_get("status")?;
                    let n: i64 = row.try_get("n")?;
                    let n = u64::try_from(n).unwrap_or(0);
                    match status.as_str() {
                        "open" => counts.open = n,
                        "acknowledged" => counts.acknowledged = n,
                        "resolved" => counts.resolved = n,
                        other => {
                            return Err($crate::StoreError::corrupt(
                                "incidents.status",
                                format!("unknown status '{other}'"),
                            ));
                        }
                    }
                }
                Ok(counts)
            }

            async fn count_unresolved_incidents(
                &self,
            ) -> $crate::Result<
                Vec<(
                    sightline_model::IncidentStatus,
                    sightline_model::Severity,
                    u64,
                )>,
            > {
                use sqlx::Row as _;
                let $r = self;
                let rows = sqlx::query::<$db>(
                    "SELECT status, severity, COUNT(*) AS n FROM incidents \
                     WHERE status IN ('open', 'acknowledged') GROUP BY status, severity",
                )
                .fetch_all($reader)
                .await?;
                let mut counts = Vec::with_capacity(rows.len());
                for row in &rows {
                    let status: String = row.try_get("status")?;
                    let severity: String = row.try_get("severity")?;
                    let n: i64 = row.try_get("n")?;
                    let status = sightline_model::IncidentStatus::parse("status", &status)
                        .map_err(|e| $crate::StoreError::corrupt("incidents.status", e))?;
                    let severity = sightline_model::Severity::parse("severity", &severity)
                        .map_err(|e| $crate::StoreError::corrupt("incidents.severity", e))?;
                    counts.push((
                        status,
                        severity,
                        $crate::rollups::count_to_u64(n, "incident count", status.as_str())?,
                    ));
                }
                Ok(counts)
            }

            async fn write_correlations(
                &self,
                correlations: &[sightline_model::Correlation],
            ) -> $crate::Result<$crate::WriteSummary> {
                use $crate::rollups::clean;
                if correlations.is_empty() {
                    return Ok($crate::WriteSummary::default());
                }
                for c in correlations {
                    $crate::incidents::check_number(c.score, "correlation score", &c.id)?;
                }
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let mut inserted = 0;
                for chunk in correlations.chunks($crate::incidents::ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO event_correlations ({}) ",
                        $crate::incidents::CORRELATION_COLUMNS
                    ));
                    insert.push_values(chunk, |mut row, c| {
                        row.push_bind(clean(&c.id).into_owned())
                            .push_bind(clean(&c.incident_id).into_owned())
                            .push_bind(clean(&c.source_id).into_owned())
                            .push_bind(clean(&c.target_id).into_owned())
                            .push_bind(c.kind.as_str())
                            .push_bind(c.score)
                            .push_bind(clean(&c.reason).into_owned())
                            .push_bind(c.created_at);
                    });
                    insert.push(" ON CONFLICT (id) DO NOTHING");
                    inserted += insert.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok($crate::common::summary(correlations.len(), inserted))
            }

            async fn correlations_for_incident(
                &self,
                incident_id: &str,
            ) -> $crate::Result<Vec<sightline_model::Correlation>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM event_correlations WHERE incident_id = $1 \
                     ORDER BY created_at, id",
                    $crate::incidents::CORRELATION_COLUMNS
                ))
                .bind(incident_id)
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::incidents::correlation_from_row)
                .collect()
            }

            async fn correlations_for_signal(
                &self,
                signal_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<sightline_model::Correlation>> {
                let limit = limit.clamp(1, $crate::incidents::MAX_CORRELATIONS);
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM event_correlations WHERE source_id = $1 OR target_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                    $crate::incidents::CORRELATION_COLUMNS
                ))
                .bind(signal_id)
                .bind(i64::from(limit))
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::incidents::correlation_from_row)
                .collect()
            }

            async fn create_silence(
                &self,
                silence: &sightline_model::Silence,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let matchers =
                    $crate::incidents::json(&silence.matchers, "silence matchers", &silence.id)?;
                let $w = self;
                sqlx::query::<$db>(&format!(
                    "INSERT INTO silences ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    $crate::incidents::SILENCE_COLUMNS
                ))
                .bind(clean(&silence.id).into_owned())
                .bind(matchers)
                .bind(silence.starts_at)
                .bind(silence.ends_at)
                .bind(clean(&silence.created_by).into_owned())
                .bind(clean(&silence.comment).into_owned())
                .bind(silence.created_at)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || {
                        format!("silence '{}' already exists", silence.id)
                    })
                })?;
                Ok(())
            }

            async fn list_silences(
                &self,
                include_expired: bool,
                now_ms: i64,
            ) -> $crate::Result<Vec<sightline_model::Silence>> {
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM silences",
                    $crate::incidents::SILENCE_COLUMNS
                ));
                if !include_expired {
                    select.push(" WHERE ends_at > ").push_bind(now_ms);
                }
                select.push(" ORDER BY created_at DESC, id DESC");
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map($crate::incidents::silence_from_row)
                    .collect()
            }

            async fn expire_silence(
                &self,
                id: &str,
                now_ms: i64,
            ) -> $crate::Result<sightline_model::Silence> {
                let $w = self;
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE silences SET \
                     ends_at = CASE WHEN ends_at > $2 THEN $2 ELSE ends_at END, \
                     expired_at = COALESCE(expired_at, $2) \
                     WHERE id = $1 RETURNING {}",
                    $crate::incidents::SILENCE_COLUMNS
                ))
                .bind(id)
                .bind(now_ms)
                .fetch_optional($writer)
                .await?;
                match row {
                    Some(row) => $crate::incidents::silence_from_row(&row),
                    None => Err($crate::StoreError::NotFound(format!("silence '{id}'"))),
                }
            }

            async fn put_topology(
                &self,
                topology: &sightline_model::Topology,
                actor: &str,
                now_ms: i64,
            ) -> $crate::Result<u64> {
                let document = $crate::incidents::encode_topology(topology)?;
                let $w = self;
                let version: i64 = sqlx::query_scalar::<$db, i64>($crate::incidents::PUT_TOPOLOGY)
                    .bind(document)
                    .bind(now_ms)
                    .bind($crate::rollups::clean(actor).into_owned())
                    .fetch_one($writer)
                    .await?;
                $crate::rollups::count_to_u64(version, "topology.version", "current")
            }

            async fn get_topology(
                &self,
            ) -> $crate::Result<Option<$crate::incidents::StoredTopology>> {
                let $r = self;
                sqlx::query::<$db>(
                    "SELECT version, document, updated_at, updated_by FROM topology WHERE id = 1",
                )
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::incidents::topology_from_row)
                .transpose()
            }
        }
    };
}

pub(crate) use impl_incident_store;

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentStatus::{Acknowledged, Open, Resolved};

    #[test]
    fn transitions_follow_the_lifecycle() {
        let all = [Open, Acknowledged, Resolved];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|&f| all.iter().map(move |&t| (f, t)))
            .filter(|&(f, t)| transition_allowed(f, t))
            .collect();
        assert_eq!(
            allowed,
            [
                (Open, Acknowledged),
                (Open, Resolved),
                (Acknowledged, Resolved),
                (Resolved, Open)
            ]
        );
    }

    #[test]
    fn severity_ranks_order_most_severe_first() {
        let ranks: Vec<i64> = Severity::ALL.iter().map(|s| severity_rank(*s)).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn signals_round_trip_through_their_columns() {
        for signal in [
            Signal::Metric {
                metric_type: "latency_ms".into(),
            },
            Signal::ErrorRate,
            Signal::Pattern {
                fingerprint: "fp-1".into(),
            },
        ] {
            let (kind, name) = signal_columns(&signal);
            assert_eq!(signal_from_columns(kind, name), Some(signal.clone()));
        }
        assert_eq!(signal_from_columns("bogus", "x"), None);
    }
}
