//! `DataLayer::connect(config)`: every configured store, connected.

use udl_config::UdlConfig;
use udl_core::{Error, ErrorKind, Result, StoreKind};

/// The connected stores of one process.
#[derive(Clone)]
pub struct DataLayer {
    #[cfg(feature = "postgres")]
    postgres: Option<udl_postgres::PgStore>,
}

impl DataLayer {
    /// Connects every store configured in `config`.
    pub async fn connect(config: &UdlConfig) -> Result<Self> {
        Ok(DataLayer {
            #[cfg(feature = "postgres")]
            postgres: match &config.postgres {
                Some(pg) => Some(udl_postgres::PgStore::connect(pg).await?),
                None => None,
            },
        })
    }

    /// The PostgreSQL store, or a `Config` error when `[postgres]` is not configured.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<&udl_postgres::PgStore> {
        self.postgres
            .as_ref()
            .ok_or_else(|| not_configured(StoreKind::Postgres))
    }
}

fn not_configured(store: StoreKind) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "{store} is not configured (set {store}.url or UDL__{}__URL)",
            store.name().to_uppercase()
        ),
    )
    .with_store(store)
}
