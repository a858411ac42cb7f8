//! Setting up the privacy layers from `[privacy]`.

use udl_config::PrivacyConfig;
use udl_core::Result;
use udl_postgres::PgStore;
use udl_privacy::{FieldKeys, LocalKeyRing};

/// The field keys kept in `pg`, unwrapped by the configured key ring.
pub(crate) async fn field_keys(pg: &PgStore, config: &PrivacyConfig) -> Result<FieldKeys> {
    let ring = LocalKeyRing::parse(config.key_ring.expose())?;
    FieldKeys::load(pg, &ring).await
}
