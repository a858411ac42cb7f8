//! The platform's ScyllaDB schema, as migrations.

use crate::migrate::{CqlMigration, ScyllaMigrator};

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

/// Every ScyllaDB migration of the platform, in order.
pub fn migrations() -> Vec<CqlMigration> {
    vec![CqlMigration::new(
        1,
        "time_series",
        TIME_SERIES.iter().map(|s| (*s).into()).collect(),
    )]
}

/// A migrator over [`migrations`].
pub fn migrator() -> ScyllaMigrator {
    ScyllaMigrator::new(migrations()).expect("the platform's migration versions are unique")
}
