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

/// A migration as recorded in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Version.
    pub version: i64,
    /// Name when applied.
    pub name: String,
    /// Checksum when applied.
    pub checksum: String,
    /// When applied.
    pub at: DateTime<Utc>,
}

/// A migration as this build knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownMigration {
    /// Version.
    pub version: i64,
    /// Name.
    pub name: String,
    /// Checksum of its current definition.
    pub checksum: String,
}

/// Refuses (with `Conflict`) a database holding a migration that was edited after it was
/// applied, or one this build does not know.
pub fn check_applied(known: &[KnownMigration], applied: &[AppliedMigration]) -> crate::Result<()> {
    for a in applied {
        let message = match known.iter().find(|m| m.version == a.version) {
            None => format!(
                "database has migration {} ({}) that this build does not know; run a build that includes it",
                a.version, a.name
            ),
            Some(m) if m.checksum != a.checksum => format!(
                "migration {} ({}) was edited after it was applied (checksum mismatch); restore the \
                 applied version and add a new migration",
                m.version, m.name
            ),
            Some(_) => continue,
        };
        return Err(crate::Error::new(crate::ErrorKind::Conflict, message));
    }
    Ok(())
}

/// Every migration known here or applied there, with its state, by version.
pub fn statuses(known: &[KnownMigration], applied: &[AppliedMigration]) -> Vec<MigrationStatus> {
    let mut out: Vec<MigrationStatus> = known
        .iter()
        .map(|m| {
            let state = match applied.iter().find(|a| a.version == m.version) {
                None => MigrationState::Pending,
                Some(a) if a.checksum != m.checksum => MigrationState::Modified,
                Some(a) => MigrationState::Applied { at: a.at },
            };
            MigrationStatus {
                version: m.version,
                name: m.name.clone(),
                state,
            }
        })
        .collect();
    for a in applied
        .iter()
        .filter(|a| !known.iter().any(|m| m.version == a.version))
    {
        out.push(MigrationStatus {
            version: a.version,
            name: a.name.clone(),
            state: MigrationState::Unknown,
        });
    }
    out.sort_by_key(|s| s.version);
    out
}

/// What the shared bookkeeping needs from a store's migration type.
pub trait VersionedMigration {
    /// Positive, unique, applied in ascending order.
    fn version(&self) -> i64;
    /// Short name shown in status listings.
    fn name(&self) -> &str;
    /// Checksum of the migration's definition, so an edit after applying is detected.
    fn checksum(&self) -> String;

    /// What this build knows of the migration.
    fn known(&self) -> KnownMigration {
        KnownMigration {
            version: self.version(),
            name: self.name().to_owned(),
            checksum: self.checksum(),
        }
    }
}

/// `migrations` in version order; `Config` (naming `store`) unless the versions are positive
/// and unique.
pub fn in_version_order<M: VersionedMigration>(
    mut migrations: Vec<M>,
    store: crate::StoreKind,
) -> crate::Result<Vec<M>> {
    migrations.sort_by_key(M::version);
    let versions: Vec<i64> = migrations.iter().map(M::version).collect();
    check_versions(&versions).map_err(|e| e.with_store(store).with_operation("migrate"))?;
    Ok(migrations)
}

/// What this build knows of each of `migrations`.
pub fn known_migrations<M: VersionedMigration>(migrations: &[M]) -> Vec<KnownMigration> {
    migrations.iter().map(M::known).collect()
}

/// Checks sorted migration versions: positive and unique (`Config` error otherwise).
pub fn check_versions(sorted: &[i64]) -> crate::Result<()> {
    if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(crate::Error::new(
            crate::ErrorKind::Config,
            format!("migration version {} is used twice", pair[0]),
        ));
    }
    if sorted.first().is_some_and(|v| *v <= 0) {
        return Err(crate::Error::new(
            crate::ErrorKind::Config,
            "migration versions must be positive",
        ));
    }
    Ok(())
}
