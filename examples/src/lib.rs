//! What every example shares: the configuration from the environment (`UDL__...` variables,
//! or the file in `$UDL_CONFIG`), and the platform's migrations applied to every configured
//! store, as `udl migrate up` would.

use udl::{DataLayer, Error, ErrorKind, Result, UdlConfig};

/// The data layer of the configuration in the environment, its stores migrated.
pub async fn connect() -> Result<DataLayer> {
    let config = UdlConfig::load(None).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))?;
    if let Some(pg) = &config.postgres {
        let store = udl::postgres::PgStore::connect(pg).await?;
        udl::postgres::models::migrator().up(&store).await?;
    }
    let data = DataLayer::connect(&config).await?;
    if config.mongo.is_some() {
        udl::mongo::models::migrator().up(data.mongo()?).await?;
    }
    if config.scylla.is_some() {
        udl::scylla::models::migrator().up(data.scylla()?).await?;
    }
    Ok(data)
}
