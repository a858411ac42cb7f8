//! The privacy layers, set up from `[privacy]`.

use std::sync::Arc;

use udl_config::PrivacyConfig;
use udl_core::{RecordStore, Result};
use udl_postgres::PgStore;
use udl_privacy::audit::{AuditWriter, AuditedStore, JournalConfig};
use udl_privacy::history::ChangeHistory;
use udl_privacy::policy::ConsentPolicy;
use udl_privacy::tokens::TokenVault;
use udl_privacy::{EncryptedStore, FieldKeys, LocalKeyRing};
use udl_resilience::ResilientStore;

/// What every protected store shares: the field keys, the audit writer, the access policy, the
/// change history and the token vault.
#[derive(Clone)]
pub(crate) struct Privacy {
    pub keys: Arc<FieldKeys>,
    pub audit: Arc<AuditWriter>,
    policy: Arc<ConsentPolicy>,
    pub history: Arc<ChangeHistory>,
    pub vault: Arc<TokenVault>,
}

/// How often a process loads the field-encryption keys again, so that after a rotation
/// elsewhere its new values use the new version (values sealed under it already open at once:
/// reading one loads the keys again).
const KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Reloads `keys` every [`KEY_REFRESH`] until they are dropped.
fn refresh_periodically(keys: std::sync::Weak<FieldKeys>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(KEY_REFRESH);
        every.tick().await;
        loop {
            every.tick().await;
            let Some(keys) = keys.upgrade() else { return };
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "field-encryption keys could not be loaded again; the loaded ones stay in use");
            }
        }
    });
}

impl Privacy {
    /// Loads the field keys kept in `pg` (unwrapped by the configured key ring), starts the
    /// audit writer on `pg` (with a local journal when one is configured, reporting to
    /// `metrics`), reads the access policy from it (through `postgres`, its resilience layer)
    /// and keeps the history there (its reads within `history_kept`).
    pub async fn start(
        pg: &PgStore,
        postgres: Arc<ResilientStore>,
        config: &PrivacyConfig,
        history_kept: std::time::Duration,
        metrics: Arc<udl_metrics::Metrics>,
    ) -> Result<Self> {
        let ring = Arc::new(LocalKeyRing::parse(config.key_ring.expose())?);
        let keys = Arc::new(FieldKeys::load(pg, ring).await?);
        refresh_periodically(Arc::downgrade(&keys));
        let audit = Arc::new(match &config.audit_journal_dir {
            Some(dir) => AuditWriter::journaled(
                pg.clone(),
                config.audit_timeout,
                JournalConfig {
                    dir: dir.clone(),
                    max_unshipped: config.audit_max_unshipped,
                    max_unshipped_age: config.audit_max_unshipped_age,
                },
            )
            .reporting_to(metrics),
            None => AuditWriter::start(pg.clone(), config.audit_timeout),
        });
        let policy =
            Arc::new(ConsentPolicy::new(pg.clone(), config.policy_cache_ttl).through(postgres));
        Ok(Privacy {
            vault: Arc::new(TokenVault::new(
                pg.clone(),
                Arc::clone(&keys),
                Arc::clone(&audit),
                Arc::clone(&policy),
            )),
            history: Arc::new(
                ChangeHistory::new(pg.clone(), Arc::clone(&keys))
                    .guarded(Arc::clone(&audit), Arc::clone(&policy))
                    .keeping(history_kept),
            ),
            audit,
            policy,
            keys,
        })
    }

    /// `inner` behind encryption, and that behind the policy and audit (which see what
    /// callers see).
    pub fn protect(&self, inner: Arc<dyn RecordStore>) -> Arc<dyn RecordStore> {
        let encrypted = EncryptedStore::new(inner, Arc::clone(&self.keys));
        AuditedStore::new(
            encrypted,
            Arc::clone(&self.audit),
            Arc::clone(&self.policy),
            Some(Arc::clone(&self.history)),
        )
    }
}
