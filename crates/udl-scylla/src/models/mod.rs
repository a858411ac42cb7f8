//! The platform's ScyllaDB schema, as migrations, and its key-read models.

mod chat_archive;
mod plaintext_archive;

pub use chat_archive::{month_of, ArchiveRole, ArchivedMessage, ChatArchive};

use crate::migrate::{CqlMigration, ScyllaMigrator};

/// Every model read by key, for the data layer's registry (the first, plaintext archive is
/// read only by the job that moves it).
pub fn entities() -> Vec<&'static udl_core::EntityMeta> {
    use udl_core::Entity as _;
    vec![ArchivedMessage::meta()]
}

/// Time series: points partitioned by (series, time bucket) so no partition grows without
/// bound, and rollups per resolution ("minute", "hour") partitioned the same way.
const TIME_SERIES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS {keyspace}.metric_points (series text, bucket bigint, \
     at timestamp, value double, PRIMARY KEY ((series, bucket), at)) \
     WITH CLUSTERING ORDER BY (at ASC)",
    "CREATE TABLE IF NOT EXISTS {keyspace}.metric_rollups (series text, resolution text, \
     bucket bigint, at timestamp, count bigint, sum double, min double, max double, \
     PRIMARY KEY ((series, resolution, bucket), at)) WITH CLUSTERING ORDER BY (at ASC)",
];

/// Append-only event streams (usage analytics, logs), partitioned by (stream, bucket);
/// events of one millisecond are told apart by id.
const EVENT_STREAMS: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS {keyspace}.usage_events (stream text, bucket bigint, \
     at timestamp, id uuid, attributes map<text, text>, PRIMARY KEY ((stream, bucket), at, id)) \
     WITH CLUSTERING ORDER BY (at ASC, id ASC)",
    "CREATE TABLE IF NOT EXISTS {keyspace}.log_events (stream text, bucket bigint, \
     at timestamp, id uuid, attributes map<text, text>, PRIMARY KEY ((stream, bucket), at, id)) \
     WITH CLUSTERING ORDER BY (at ASC, id ASC)",
];

/// Historical reports: one row per (report, period kind, period start), newest first.
const REPORTS: [&str; 1] = [
    "CREATE TABLE IF NOT EXISTS {keyspace}.report_aggregates (report text, period text, \
     period_start timestamp, figures map<text, double>, \
     PRIMARY KEY ((report, period), period_start)) WITH CLUSTERING ORDER BY (period_start DESC)",
];

/// The first chat archive, from before message texts were encrypted; no longer written.
const CHAT_ARCHIVE_PLAINTEXT: &str = "CREATE TABLE IF NOT EXISTS {keyspace}.\"chat_archive\" \
     (\"id\" uuid, \"conversation_id\" uuid, \"month\" text, \"sent_at\" timestamp, \
     \"role\" text, \"text\" text, \
     PRIMARY KEY ((\"conversation_id\", \"month\"), \"sent_at\", \"id\"))";

/// The chat archive in the stored form of [`ArchivedMessage`]: the text is ciphertext. (A
/// CQL column cannot change type, so the sealed archive is a table of its own.)
const CHAT_ARCHIVE_SEALED: &str = "CREATE TABLE IF NOT EXISTS {keyspace}.\"chat_archive_sealed\" \
     (\"id\" uuid, \"conversation_id\" uuid, \"month\" text, \"sent_at\" timestamp, \
     \"role\" text, \"text\" blob, \
     PRIMARY KEY ((\"conversation_id\", \"month\"), \"sent_at\", \"id\"))";

/// Sanitized change events from PostgreSQL (change data capture), one row per event id so a
/// replayed event lands once; rows expire with the analytics TTL given on each write.
const CHANGE_EVENTS: &str =
    "CREATE TABLE IF NOT EXISTS {keyspace}.ce_events (id text PRIMARY KEY, \
     type text, source text, subject text, time timestamp, position bigint, data text)";

/// Every ScyllaDB migration of the platform, in order.
pub fn migrations() -> Vec<CqlMigration> {
    let statements = |list: &[&'static str]| list.iter().map(|s| (*s).into()).collect();
    vec![
        CqlMigration::new(1, "time_series", statements(&TIME_SERIES)),
        CqlMigration::new(2, "event_streams", statements(&EVENT_STREAMS)),
        CqlMigration::new(3, "reports", statements(&REPORTS)),
        CqlMigration::new(4, "chat_archive", vec![CHAT_ARCHIVE_PLAINTEXT.into()]),
        CqlMigration::new(5, "chat_archive_sealed", vec![CHAT_ARCHIVE_SEALED.into()]),
        CqlMigration::new(6, "change_events", vec![CHANGE_EVENTS.into()]),
    ]
}

/// A migrator over [`migrations`].
pub fn migrator() -> ScyllaMigrator {
    ScyllaMigrator::new(migrations()).expect("the platform's migration versions are unique")
}
