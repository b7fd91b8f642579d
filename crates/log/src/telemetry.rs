//! Metric names of the event log, defined once (both backends report appends alike).

/// Records appended, by topic.
pub(crate) const APPENDED_RECORDS: &str = "sightline_log_appended_records_total";
/// Duration of each group-commit fsync.
pub(crate) const FSYNC_SECONDS: &str = "sightline_log_fsync_seconds";
/// Records made durable by one group-commit round.
pub(crate) const GROUP_COMMIT_RECORDS: &str = "sightline_log_group_commit_records";
/// Bytes cut from damaged segment tails when the log was opened.
pub(crate) const RECOVERY_TRUNCATED_BYTES: &str = "sightline_log_recovery_truncated_bytes_total";
/// Bytes deleted by retention.
pub(crate) const RETENTION_DELETED_BYTES: &str = "sightline_log_retention_deleted_bytes_total";
/// Time from handing a batch to the Kafka producer until every record is acknowledged.
pub(crate) const KAFKA_PRODUCE_SECONDS: &str = "sightline_log_kafka_produce_seconds";
/// Commits that raced a consumer-group rebalance and were deferred.
pub(crate) const KAFKA_DEFERRED_COMMITS: &str = "sightline_log_kafka_deferred_commits_total";
/// Partitions revoked from this node's consumers by a rebalance.
pub(crate) const KAFKA_REVOKED_PARTITIONS: &str = "sightline_log_kafka_revoked_partitions_total";
