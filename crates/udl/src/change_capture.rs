//! `DataLayer::change_relay`: the change relay of this deployment, built from the data layer's
//! own stores, registry and privacy keys, so what it sends is sanitized by the same
//! declarations every repository enforces.

use std::sync::Arc;

use udl_config::UdlConfig;
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::PostgresConfig;
use udl_redis::UserPlans;
use udl_sync::snapshot::{self, Condition, SnapshotProgress};
use udl_sync::{
    CacheInvalidation, Ledger, NatsSettings, NatsSink, Projection, ProjectionSink, Relay,
    RelaySettings, ReplicationTarget, Sanitizer, Sink, UserPlansProjection, OUTBOX_STORE,
};

use crate::DataLayer;

/// Where a relay sends its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelaySinks {
    /// ScyllaDB's `ce_events` when `[scylla]` is configured, the NATS bus when `[nats]` is
    /// (at least one of them).
    Configured,
    /// Nowhere: the relay alone, for measuring it.
    Null,
}

/// The bus settings `[nats]` gives, if it is configured.
pub fn nats_settings(config: &UdlConfig) -> Option<NatsSettings> {
    config.nats.as_ref().map(|n| NatsSettings {
        url: n.url.expose().to_owned(),
        stream: n.stream.clone(),
        subject_prefix: n.subject_prefix.clone(),
        duplicate_window: n.duplicate_window,
        max_age: n.max_age,
    })
}

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
    /// The change relay `[cdc]` configures, into the configured sinks: what `udl serve` and
    /// `udl cdc run` run.
    pub async fn configured_relay(&self, config: &UdlConfig) -> Result<Relay> {
        let settings = relay_settings(config, self.postgres()?.schema());
        self.change_relay(config, settings, RelaySinks::Configured)
            .await
    }

    /// The change relay capturing every registered PostgreSQL entity, and sending every
    /// registered outbox event, into `sinks`. Needs
    /// `[postgres]` and `[privacy]`: tokens, the ledger and sealed fields use the privacy
    /// keys.
    pub async fn change_relay(
        &self,
        config: &UdlConfig,
        settings: RelaySettings,
        sinks: RelaySinks,
    ) -> Result<Relay> {
        let pg = self.postgres()?.clone();
        let pg_config = config
            .store::<PostgresConfig>()
            .ok_or_else(|| Error::new(ErrorKind::Config, "change data capture needs [postgres]"))?;
        let target = ReplicationTarget::from_config(pg_config)?;
        let privacy = self.privacy("change data capture")?;
        let entities: Vec<_> = self
            .registry()
            .entities()
            .into_iter()
            .filter(|e| matches!(e.store, Some(s) if s == StoreKind::POSTGRES || s == OUTBOX_STORE))
            .collect();
        let sinks = self.relay_sinks(config, sinks, &entities).await?;
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

    /// The configured sinks, and the invalidation of the caches over PostgreSQL when any of
    /// `entities` is cached.
    async fn relay_sinks(
        &self,
        config: &UdlConfig,
        sinks: RelaySinks,
        entities: &[&'static udl_core::EntityMeta],
    ) -> Result<Vec<Sink>> {
        if sinks == RelaySinks::Null {
            return Ok(vec![Sink::Null]);
        }
        let mut chosen = Vec::new();
        if let Ok(scylla) = self.scylla() {
            chosen.push(Sink::scylla(scylla).await?);
        }
        if let Some(bus) = nats_settings(config) {
            chosen.push(Sink::Nats(Box::new(NatsSink::connect(&bus).await?)));
        }
        if chosen.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "change data capture needs a sink: configure [scylla] or [nats]",
            ));
        }
        let invalidation = self
            .cache_over(StoreKind::POSTGRES)
            .and_then(|cached| CacheInvalidation::new(Arc::clone(cached), entities));
        chosen.extend(invalidation.map(|i| Sink::Cache(Box::new(i))));
        for name in config.cdc.iter().flat_map(|cdc| &cdc.projections) {
            chosen.push(self.projection(name)?);
        }
        Ok(chosen)
    }

    /// The projection `cdc.projections` names.
    fn projection(&self, name: &str) -> Result<Sink> {
        let projection: Box<dyn Projection> = match name {
            "user_plans" => Box::new(UserPlansProjection::new(UserPlans::new(
                self.redis()?.clone(),
            ))),
            other => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("unknown projection {other:?}"),
                ))
            }
        };
        let sink = ProjectionSink::new(projection, Arc::clone(self.metrics()));
        Ok(Sink::Projection(Box::new(sink)))
    }

    /// Asks the relay `[cdc]` configures for a snapshot (batch sync) of the registered
    /// PostgreSQL entity `entity`: its rows that `conditions` select, read `chunk_rows` at a
    /// time and sent to the sinks as `ce.<entity>.snapshot` events while streaming goes on.
    /// Returns the snapshot's id, for [`DataLayer::snapshot_progress`].
    pub async fn request_snapshot(
        &self,
        config: &UdlConfig,
        entity: &str,
        conditions: &[Condition],
        chunk_rows: u32,
    ) -> Result<i64> {
        let pg = self.postgres()?;
        let meta = self
            .registry()
            .find(StoreKind::POSTGRES, entity)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("no registered PostgreSQL entity is called {entity:?}"),
                )
            })?;
        let slot = relay_settings(config, pg.schema()).slot;
        snapshot::request(pg, &slot, meta, conditions, chunk_rows).await
    }

    /// Where snapshot `id` stands.
    pub async fn snapshot_progress(&self, id: i64) -> Result<SnapshotProgress> {
        snapshot::progress(self.postgres()?, id).await
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
