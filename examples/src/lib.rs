//! What every example shares: the configuration from the environment (`UDL__...` variables,
//! or the file in `$UDL_CONFIG`), and the platform's migrations applied to every configured
//! store, as `udl migrate up` would.

use udl::{DataLayer, Error, ErrorKind, Result};

/// The configuration in the environment.
pub fn config() -> Result<udl::UdlConfig> {
    udl::config::load(None).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))
}

/// The data layer of the configuration in the environment, its stores migrated.
pub async fn connect() -> Result<DataLayer> {
    let config = config()?;
    // The privacy layers load their keys from tables the migrations create.
    let mut stores_only = config.clone();
    stores_only.privacy = None;
    let migrating = DataLayer::connect(&stores_only).await?;
    migrating.migrate().await?;
    migrating.shutdown(std::time::Duration::from_secs(1)).await;
    DataLayer::connect(&config).await
}
