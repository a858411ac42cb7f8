//! `DataLayer::change_relay`: the change relay of this deployment, built from the data layer's
//! own stores, registry and privacy keys, so what it sends is sanitized by the same
//! declarations every repository enforces.

use std::sync::Arc;

use udl_config::UdlConfig;
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::PostgresConfig;
use udl_sync::{Ledger, Relay, RelaySettings, ReplicationTarget, Sanitizer, Sink};

use crate::DataLayer;

/// The relay settings `[cdc]` asks for, for the tables of `schema`.
pub fn relay_settings(config: &UdlConfig, schema: &str) -> RelaySettings {
    let mut settings = RelaySettings::for_schema(schema);
    if let Some(cdc) = &config.cdc {
        if let Some(slot) = &cdc.slot {
            settings.slot.clone_from(slot);
            settings.publication.clone_from(slot);
        }
        settings.batch_events = cdc.batch_events;
        settings.batch_delay = cdc.batch_delay;
        settings.heartbeat = cdc.heartbeat;
        settings.halt_retry = cdc.halt_retry;
    }
    settings
}

impl DataLayer {
    /// The change relay `[cdc]` configures, into ScyllaDB: what `udl serve` and `udl cdc run`
    /// run.
    pub async fn configured_relay(&self, config: &UdlConfig) -> Result<Relay> {
        let settings = relay_settings(config, self.postgres()?.schema());
        self.change_relay(config, settings, true).await
    }

    /// The change relay capturing every registered PostgreSQL entity into ScyllaDB's
    /// `ce_events` (when `[scylla]` is configured) — or into nothing with `sink_to_scylla`
    /// false, for measuring. Needs `[postgres]` and `[privacy]`: tokens, the ledger and sealed
    /// fields use the privacy keys.
    pub async fn change_relay(
        &self,
        config: &UdlConfig,
        settings: RelaySettings,
        sink_to_scylla: bool,
    ) -> Result<Relay> {
        let pg = self.postgres()?.clone();
        let pg_config = config
            .store::<PostgresConfig>()
            .ok_or_else(|| Error::new(ErrorKind::Config, "change data capture needs [postgres]"))?;
        let target = ReplicationTarget::from_config(pg_config)?;
        let privacy = self.privacy("change data capture")?;
        let mut sinks = Vec::new();
        if sink_to_scylla {
            sinks.push(Sink::scylla(self.scylla()?).await?);
        } else {
            sinks.push(Sink::Null);
        }
        let entities: Vec<_> = self
            .registry()
            .entities()
            .into_iter()
            .filter(|e| e.store == Some(StoreKind::POSTGRES))
            .collect();
        let source = format!("udl/postgres/{}/{}", target.database, pg.schema());
        let sanitizer = Sanitizer::new(
            Arc::clone(&privacy.keys),
            Arc::clone(&privacy.vault),
            source,
        );
        let ledger = Ledger::new(pg.clone(), Arc::clone(&privacy.keys));
        Ok(Relay::new(
            pg,
            target,
            &entities,
            sanitizer,
            Arc::clone(&privacy.vault),
            ledger,
            sinks,
            settings,
            Arc::clone(self.metrics()),
        ))
    }

    /// The redaction ledger, for reading it (auditors and administrators, audited). Needs
    /// `[postgres]` and `[privacy]`.
    pub fn redaction_ledger(&self) -> Result<Ledger> {
        let privacy = self.privacy("the redaction ledger")?;
        Ok(Ledger::new(
            self.postgres()?.clone(),
            Arc::clone(&privacy.keys),
        ))
    }
}
