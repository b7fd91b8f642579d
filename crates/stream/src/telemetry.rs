//! Metric names of the stream engine, defined once. Every series carries an `operator`
//! label (the operator's configured name).

/// Records that arrived after every window they belong to had closed (returned to the
/// caller for the `<topic>.late` topic, never dropped silently).
pub(crate) const LATE_RECORDS: &str = "sightline_stream_late_records_total";
/// Records processed by an operator.
pub(crate) const PROCESSED_RECORDS: &str = "sightline_stream_processed_records_total";
/// Result rows emitted (updates and finals).
pub(crate) const EMITTED_ROWS: &str = "sightline_stream_emitted_rows_total";
/// Windows closed and evicted from state.
pub(crate) const CLOSED_WINDOWS: &str = "sightline_stream_closed_windows_total";
/// Open (key, window) states held in memory.
pub(crate) const OPEN_WINDOWS: &str = "sightline_stream_open_windows";
/// The operator's watermark, epoch milliseconds.
pub(crate) const WATERMARK_MS: &str = "sightline_stream_watermark_ms";
/// Size of each checkpoint written, bytes.
pub(crate) const CHECKPOINT_BYTES: &str = "sightline_stream_checkpoint_bytes";
/// Time to write each checkpoint durably.
pub(crate) const CHECKPOINT_SECONDS: &str = "sightline_stream_checkpoint_seconds";

/// Records the rollup runner read from its input topics, by `topic`.
pub(crate) const RUNNER_IN: &str = "sightline_rollups_records_in_total";
/// Records skipped because the restored checkpoint already covers them, by `topic`.
pub(crate) const RUNNER_REPLAY_SKIPPED: &str = "sightline_rollups_replay_skipped_total";
/// Records that could not be decoded, by `topic`.
pub(crate) const RUNNER_REJECTED: &str = "sightline_rollups_rejected_total";
/// Rows the runner wrote, by `output` (`rollups`, `event_counts`).
pub(crate) const RUNNER_OUT: &str = "sightline_rollups_rows_out_total";
/// Late records forwarded to `<topic>.late`, by `topic`.
pub(crate) const RUNNER_LATE: &str = "sightline_rollups_late_total";
/// Time to save a checkpoint and commit the offsets it covers.
pub(crate) const RUNNER_CHECKPOINT_SECONDS: &str = "sightline_rollups_checkpoint_seconds";
/// Failed output writes (each is retried), by `output`.
pub(crate) const RUNNER_WRITE_ERRORS: &str = "sightline_rollups_write_errors_total";
/// Partitions revoked from this node by a consumer-group rebalance.
pub(crate) const RUNNER_REVOKED: &str = "sightline_rollups_revoked_partitions_total";

/// Records a continuous query read from its source topic, by `query`.
pub(crate) const SQL_IN: &str = "sightline_sql_records_in_total";
/// Source records a continuous query could not decode (sent to `<output>.dlq`), by `query`.
pub(crate) const SQL_REJECTED: &str = "sightline_sql_rejected_total";
/// Late source records forwarded to `<source>.late`, by `query`.
pub(crate) const SQL_LATE: &str = "sightline_sql_late_total";
/// Output rows published to the query's topic, by `query`.
pub(crate) const SQL_OUT: &str = "sightline_sql_rows_out_total";
/// Records skipped because the restored checkpoint already covers them, by `query`.
pub(crate) const SQL_REPLAY_SKIPPED: &str = "sightline_sql_replay_skipped_total";
/// Failed store writes of table rows (each is retried), by `query`.
pub(crate) const SQL_WRITE_ERRORS: &str = "sightline_sql_write_errors_total";
