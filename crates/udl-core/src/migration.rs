//! The migration contract every store's migrator reports in.

use std::fmt;

use chrono::{DateTime, Utc};

/// Where a migration stands in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationState {
    /// Applied with the same SQL.
    Applied {
        /// When it was applied.
        at: DateTime<Utc>,
    },
    /// Not applied yet.
    Pending,
    /// Applied, but its SQL has since been edited.
    Modified,
    /// Applied in the database but unknown to this build.
    Unknown,
}

/// One line of `udl migrate status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Version.
    pub version: i64,
    /// Name.
    pub name: String,
    /// State.
    pub state: MigrationState,
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            MigrationState::Applied { at } => {
                format!("applied {}", at.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            MigrationState::Pending => "pending".into(),
            MigrationState::Modified => "MODIFIED after being applied".into(),
            MigrationState::Unknown => "applied, unknown to this build".into(),
        };
        write!(f, "{:>4}  {:<32} {state}", self.version, self.name)
    }
}

/// What one `up` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Migrations that were already applied before this run.
    pub already_applied: usize,
}
