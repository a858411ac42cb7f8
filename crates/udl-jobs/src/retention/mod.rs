//! Retention by data class: how long each class is kept (`[retention]`), where it lives, and
//! the purge that removes what has wholly expired with the store's own mechanism, unless a legal
//! hold covers it, leaving a deletion receipt for every step.

mod documents;
mod holds;
mod partitions;
mod purge;
mod receipts;

use std::time::Duration;

use chrono::{DateTime, Utc};
use udl_config::RetentionConfig;
use udl_core::text_enum;

pub use documents::{interaction_logs, CollectionPurge, RetainedCollection};
pub use holds::{HoldScope, LegalHold, LegalHolds};
pub use partitions::{
    MonthPartitions, PartitionPurge, ACCESS_LOG, CHANGE_HISTORY, REDACTION_LEDGER,
};
pub use purge::RetentionPurge;
pub use receipts::{DeletionReceipt, Receipts};

text_enum! {
    /// A class of data with a retention of its own.
    pub enum DataClass {
        /// The PHI access log (PostgreSQL, month partitions).
        PhiAccessLog => "phi_access_log",
        /// The PHI change history (PostgreSQL, month partitions).
        PhiChangeHistory => "phi_change_history",
        /// The redaction ledger of change events (PostgreSQL, month partitions).
        RedactionLedger => "redaction_ledger",
        /// Patients' interaction logs (MongoDB, a TTL index).
        InteractionLogs => "interaction_logs",
    }
}

/// How long one class is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The class.
    pub class: DataClass,
    /// How long a record is kept after it was written.
    pub keep: Duration,
}

impl RetentionPolicy {
    /// Class `class`'s policy from `config`.
    pub fn of(config: &RetentionConfig, class: DataClass) -> RetentionPolicy {
        let keep = match class {
            DataClass::PhiAccessLog => config.phi_access_log,
            DataClass::PhiChangeHistory => config.phi_change_history,
            DataClass::RedactionLedger => config.redaction_ledger,
            DataClass::InteractionLogs => config.interaction_logs,
        };
        RetentionPolicy { class, keep }
    }

    /// The oldest instant still kept at `now`: records written before it are past retention
    /// (reads leave them out; purges remove them once their whole partition is).
    pub fn kept_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let keep = chrono::Duration::from_std(self.keep).unwrap_or(chrono::Duration::MAX);
        now.checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// How receipts name the policy (`phi_access_log: keep 6years`).
    pub fn describe(&self) -> String {
        format!(
            "{}: keep {}",
            self.class.as_str(),
            humantime::format_duration(self.keep)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn a_record_is_kept_until_exactly_its_retention_has_passed() {
        let policy = RetentionPolicy {
            class: DataClass::PhiChangeHistory,
            keep: Duration::from_secs(86_400),
        };
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        assert_eq!(
            policy.kept_since(now),
            Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
        );
        assert_eq!(policy.describe(), "phi_change_history: keep 1day");
    }
}
