//! `[privacy]`: the HIPAA layers. With it, every repository the data layer hands out encrypts
//! the fields entities mark `encrypt` (data keys live in PostgreSQL, wrapped by the key ring).
//! Without it, an entity with encrypted fields is refused rather than stored in the clear.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;
use crate::secret::Secret;

/// `[privacy]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    /// The local key ring of key-encryption keys, `"1:<base64 of 32 bytes>,2:..."`
    /// (`privacy.key_ring` or `privacy.key_ring_file`; env `UDL__PRIVACY__KEY_RING_FILE`).
    pub key_ring: Secret,
    /// Longest a PHI access waits for its audit entry to be durable before it is refused;
    /// default 5 s.
    pub audit_timeout: Duration,
    /// How long an access-policy decision is reused, so a revoked consent stops working within
    /// it; default 10 s.
    pub policy_cache_ttl: Duration,
    /// Where this process's local audit journal lives (a directory of its own under it, shared
    /// with other processes): a PHI access is durable once its entry is synced there, and a
    /// shipper moves entries into PostgreSQL's access log moments later. Unset, every PHI
    /// access waits for a PostgreSQL commit instead (slower).
    pub audit_journal_dir: Option<PathBuf>,
    /// Most journal entries waiting to reach PostgreSQL before PHI access is refused; default
    /// 100000. Also the most a lost disk can take with it.
    pub audit_max_unshipped: usize,
    /// Longest a journal entry may wait to reach PostgreSQL before PHI access is refused;
    /// default 10 min.
    pub audit_max_unshipped_age: Duration,
}

impl PrivacyConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let key_ring = s.secret("key_ring", "key_ring_file", problems);
        if key_ring.is_none() && !problems.iter().any(|p| p.key.starts_with("privacy.")) {
            problems.push(Problem {
                key: "privacy.key_ring".into(),
                problem: "required: set privacy.key_ring or privacy.key_ring_file".into(),
            });
        }
        let audit_timeout = s
            .duration("audit_timeout", problems)
            .unwrap_or(Duration::from_secs(5));
        let policy_cache_ttl = s
            .duration("policy_cache_ttl", problems)
            .unwrap_or(Duration::from_secs(10));
        let audit_journal_dir = s.string("audit_journal_dir", problems).map(PathBuf::from);
        if audit_journal_dir.as_ref().is_some_and(|d| d.is_relative()) {
            problems.push(Problem {
                key: "privacy.audit_journal_dir".into(),
                problem: "must be an absolute path".into(),
            });
        }
        let audit_max_unshipped = s
            .int("audit_max_unshipped", 1, 100_000_000, problems)
            .unwrap_or(100_000) as usize;
        let audit_max_unshipped_age = s
            .duration("audit_max_unshipped_age", problems)
            .unwrap_or(Duration::from_secs(600));
        s.finish(problems);
        Some(PrivacyConfig {
            key_ring: Secret::new(key_ring?),
            audit_timeout,
            policy_cache_ttl,
            audit_journal_dir,
            audit_max_unshipped,
            audit_max_unshipped_age,
        })
    }
}

impl fmt::Display for PrivacyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[privacy]")?;
        writeln!(f, "key_ring = \"{}\"", self.key_ring)?;
        writeln!(
            f,
            "audit_timeout = \"{}\"",
            humantime::format_duration(self.audit_timeout)
        )?;
        writeln!(
            f,
            "policy_cache_ttl = \"{}\"",
            humantime::format_duration(self.policy_cache_ttl)
        )?;
        if let Some(dir) = &self.audit_journal_dir {
            writeln!(f, "audit_journal_dir = {:?}", dir.display().to_string())?;
        }
        writeln!(f, "audit_max_unshipped = {}", self.audit_max_unshipped)?;
        writeln!(
            f,
            "audit_max_unshipped_age = \"{}\"",
            humantime::format_duration(self.audit_max_unshipped_age)
        )
    }
}
