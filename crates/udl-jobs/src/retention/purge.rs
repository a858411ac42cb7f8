//! `retention_purge`: every data class's purge, in one job.

use udl_config::RetentionConfig;
use udl_core::Result;
use udl_mongo::MongoStore;
use udl_postgres::PgStore;

use super::documents::interaction_logs;
use super::holds::LegalHolds;
use super::partitions::{MonthPartitions, ACCESS_LOG, CHANGE_HISTORY, REDACTION_LEDGER};
use super::{DataClass, RetentionPolicy};
use crate::job::{Counts, Job, JobRun};

/// Removes what every data class's retention has passed, unless a legal hold covers it.
pub struct RetentionPurge {
    pg: PgStore,
    mongo: Option<MongoStore>,
    config: RetentionConfig,
}

impl RetentionPurge {
    /// The purge of the classes kept in `pg`, under `config`.
    pub fn new(pg: PgStore, config: RetentionConfig) -> Self {
        RetentionPurge {
            pg,
            mongo: None,
            config,
        }
    }

    /// The same purge, also over the classes kept in `mongo`.
    pub fn with_mongo(mut self, mongo: MongoStore) -> Self {
        self.mongo = Some(mongo);
        self
    }
}

#[async_trait::async_trait]
impl Job for RetentionPurge {
    fn name(&self) -> &'static str {
        "retention_purge"
    }

    fn description(&self) -> &'static str {
        "drops the months of the access log, change history and redaction ledger past retention, and expired interaction logs, unless held"
    }

    async fn run(&self, run: &JobRun) -> Result<Counts> {
        let holds = LegalHolds::new(self.pg.clone()).list(false).await?;
        let mut counts = Counts::new();
        let tables: [MonthPartitions; 3] = [ACCESS_LOG, CHANGE_HISTORY, REDACTION_LEDGER];
        for table in tables {
            let policy = RetentionPolicy::of(&self.config, table.class);
            let purged = table.purge(&self.pg, &policy, run, &holds).await?;
            count(
                &mut counts,
                table.class,
                [
                    ("months_dropped", purged.dropped.len() as u64),
                    ("records_deleted", purged.deleted),
                    ("months_held", purged.held.len() as u64),
                    ("records_held_back", purged.held_back),
                ],
            );
        }
        if let Some(mongo) = &self.mongo {
            let logs = interaction_logs();
            let policy = RetentionPolicy::of(&self.config, logs.class);
            let purged = logs.purge(mongo, &self.pg, &policy, run, &holds).await?;
            count(
                &mut counts,
                logs.class,
                [
                    ("records_deleted", purged.deleted),
                    ("records_held_back", purged.held_back),
                    ("holds_applied", purged.holds_applied),
                    ("holds_released", purged.holds_released),
                ],
            );
        }
        Ok(counts)
    }
}

/// Adds `figures` to `counts` as `<class>.<name>`.
fn count(counts: &mut Counts, class: DataClass, figures: [(&str, u64); 4]) {
    for (what, n) in figures {
        counts.insert(format!("{}.{what}", class.as_str()), n);
    }
}
