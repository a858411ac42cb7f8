//! The change relay: holds the lease (one leader per slot; the others stand by), streams the
//! slot, sanitizes every change of a committed transaction, keeps the tokens, writes the
//! ledger and then the sinks, and only then acknowledges the slot. A change it cannot
//! sanitize halts it before anything of that transaction leaves; a lost connection makes it
//! start again from the slot's acknowledged position (sinks deduplicate by event id).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent};
use sqlx::postgres::PgConnection;
use tokio::sync::watch;
use tokio::time::Instant;
use udl_core::{EntityMeta, Error, ErrorKind, Result};
use udl_metrics::Metrics;
use udl_postgres::PgStore;
use udl_privacy::tokens::TokenVault;

use crate::event::{ChangeKind, Redaction};
use crate::in_flight::{Flushed, InFlight, PublishTurn, PublishTurns};
use crate::ledger::Ledger;
use crate::outbox::{self, outbox_prefix, EventPlan, OUTBOX_STORE};
use crate::pgoutput::{self, Message, Relation, Tuple};
use crate::plan::EntityPlan;
use crate::sanitize::{BoundTable, ChangePlace, Sanitized, Sanitizer};
use crate::sink::Sink;
use crate::slot::{self, ReplicationTarget};
use crate::snapshot::{self, snapshot_prefix, Active, Chunk, ChunkDone, Mark};

/// How a relay runs.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// Replication slot.
    pub slot: String,
    /// Publication.
    pub publication: String,
    /// Most events written to the sinks at once.
    pub batch_events: usize,
    /// Longest a committed change waits for its batch to fill.
    pub batch_delay: Duration,
    /// Between heartbeats (and status reports).
    pub heartbeat: Duration,
    /// Between a standby's attempts at the lease.
    pub standby_poll: Duration,
    /// After a halt, before the relay looks again (a newer declaration may have arrived in
    /// another process, which then takes over).
    pub halt_retry: Duration,
    /// After a lost connection, before reconnecting.
    pub reconnect_delay: Duration,
}

impl RelaySettings {
    /// Defaults for capturing the tables of `schema`: slot and publication `udl_<schema>`.
    pub fn for_schema(schema: &str) -> Self {
        let name: String = format!("udl_{schema}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        RelaySettings {
            slot: name.clone(),
            publication: name,
            batch_events: 2000,
            batch_delay: Duration::from_millis(20),
            heartbeat: Duration::from_secs(5),
            standby_poll: Duration::from_millis(500),
            halt_retry: Duration::from_secs(30),
            reconnect_delay: Duration::from_secs(1),
        }
    }
}

/// Where the relay stands, as [`Relay::state`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayState {
    /// Not started yet.
    Starting,
    /// Waiting for the lease another process holds.
    Standby,
    /// Streaming the slot.
    Running,
    /// Stopped at a change it may not send, and why.
    Halted(String),
    /// Shut down.
    Stopped,
}

impl RelayState {
    fn metric_name(&self) -> &'static str {
        match self {
            RelayState::Starting | RelayState::Standby => "standby",
            RelayState::Running => "running",
            RelayState::Halted(_) => "halted",
            RelayState::Stopped => "stopped",
        }
    }
}

/// How one streaming session ended.
enum SessionEnd {
    Shutdown,
    Halted(String),
}

/// A committed transaction's sanitized changes.
struct Committed {
    changes: Vec<Sanitized>,
    end_lsn: u64,
    time: DateTime<Utc>,
    /// The snapshot chunk whose rows it carries, if it is one's high watermark.
    chunk: Option<ChunkDone>,
}

/// Transactions waiting to be made durable together.
#[derive(Default)]
struct Batch {
    committed: Vec<Committed>,
    events: usize,
    since: Option<Instant>,
}

/// Durable events kept for in-process subscribers that fall behind.
const DURABLE_BACKLOG: usize = 4096;

/// Tokens known to be in the vault already, so a repeated value is not written again.
const KNOWN_TOKENS_MAX: usize = 200_000;

/// The change relay of one slot.
pub struct Relay {
    pg: PgStore,
    target: ReplicationTarget,
    plans: HashMap<&'static str, std::result::Result<Arc<EntityPlan>, String>>,
    /// The outbox events it may send (those whose declaration is sound).
    events: Vec<Arc<EventPlan>>,
    /// Why each unsound outbox event declaration is.
    unsound_events: Vec<String>,
    /// The prefixes of this schema's outbox messages and snapshot watermarks.
    outbox_prefix: String,
    snapshot_prefix: String,
    sanitizer: Sanitizer,
    vault: Arc<TokenVault>,
    ledger: Ledger,
    sinks: Vec<Sink>,
    settings: RelaySettings,
    metrics: Arc<Metrics>,
    holder: String,
    state: watch::Sender<RelayState>,
    /// Events already durable in every sink, for in-process subscribers.
    durable: tokio::sync::broadcast::Sender<crate::ChangeEvent>,
    known_tokens: std::sync::Mutex<HashSet<String>>,
}

fn stream_error(e: pgwire_replication::PgWireError) -> Error {
    Error::new(ErrorKind::Unavailable, format!("replication stream: {e}"))
}

impl Relay {
    /// A relay capturing `entities` (those in PostgreSQL) of `pg`, and sending the outbox
    /// events among them, into `sinks`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pg: PgStore,
        target: ReplicationTarget,
        entities: &[&'static EntityMeta],
        sanitizer: Sanitizer,
        vault: Arc<TokenVault>,
        ledger: Ledger,
        sinks: Vec<Sink>,
        settings: RelaySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let plans = entities
            .iter()
            .filter(|e| e.store == Some(udl_core::StoreKind::POSTGRES))
            .map(|e| (e.name, EntityPlan::new(e).map(Arc::new)))
            .collect();
        // An event whose declaration is not sound is not sendable: one that arrives halts
        // the relay, naming it.
        let (mut events, mut unsound_events) = (Vec::new(), Vec::new());
        for entity in entities.iter().filter(|e| e.store == Some(OUTBOX_STORE)) {
            match EventPlan::new(entity) {
                Ok(plan) => events.push(Arc::new(plan)),
                Err(why) => unsound_events.push(why),
            }
        }
        let schema = pg.schema();
        let (outbox_prefix, snapshot_prefix) = (outbox_prefix(schema), snapshot_prefix(schema));
        Relay {
            pg,
            target,
            plans,
            events,
            unsound_events,
            outbox_prefix,
            snapshot_prefix,
            sanitizer,
            vault,
            ledger,
            sinks,
            settings,
            metrics,
            holder: format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
                std::process::id()
            ),
            state: watch::channel(RelayState::Starting).0,
            durable: tokio::sync::broadcast::channel(DURABLE_BACKLOG).0,
            known_tokens: Default::default(),
        }
    }

    /// The relay's settings.
    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Every event from now on, once it is durable in the ledger and every sink (sanitized
    /// like the sinks' copies). A subscriber more than a few thousand events behind misses
    /// some (`Lagged`); the sinks are the record.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::ChangeEvent> {
        self.durable.subscribe()
    }

    /// Follows the relay's state.
    pub fn state(&self) -> watch::Receiver<RelayState> {
        self.state.subscribe()
    }

    fn enter(&self, state: RelayState) {
        self.metrics.set_cdc_state(state.metric_name());
        self.state.send_replace(state);
    }

    /// Why each registered table cannot be captured, if it cannot: the check `udl cdc
    /// check` runs before anything streams (declarations, and each table's columns against
    /// them). Empty when everything matches.
    pub async fn check(&self) -> Result<Vec<String>> {
        let mut problems = self.unsound_events.clone();
        for (table, plan) in &self.plans {
            let plan = match plan {
                Ok(plan) => plan,
                Err(why) => {
                    problems.push(why.clone());
                    continue;
                }
            };
            let Some(relation) = slot::table_relation(&self.pg, table).await? else {
                problems.push(format!("table {}.{table} does not exist", self.pg.schema()));
                continue;
            };
            if let Err(why) = plan.bind(&relation) {
                problems.push(why);
            }
        }
        problems.sort();
        Ok(problems)
    }

    /// Runs until `shutdown` turns true: stands by while another process leads, streams
    /// while this one does, reconnects after failures, and after a halt waits
    /// [`RelaySettings::halt_retry`] before trying again.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *shutdown.borrow() {
                self.enter(RelayState::Stopped);
                return Ok(());
            }
            let Some(mut lease) = self.acquire_lease(&mut shutdown).await else {
                self.enter(RelayState::Stopped);
                return Ok(());
            };
            let end = match self.lead(&mut lease, &mut shutdown).await {
                // A sink refuses an event outright (too large for it): replaying would only
                // meet the same refusal, so it is a halt with the reason, not a reconnect.
                Err(e) if e.kind() == ErrorKind::InvalidInput => {
                    Ok(SessionEnd::Halted(format!("a sink refuses an event: {e}")))
                }
                end => end,
            };
            let pause = match end {
                Ok(SessionEnd::Shutdown) => {
                    self.enter(RelayState::Stopped);
                    return Ok(());
                }
                Ok(SessionEnd::Halted(reason)) => {
                    tracing::error!(slot = %self.settings.slot, reason = %reason, "change relay halted: nothing from this change on is sent until it is resolved");
                    let _ = slot::report(
                        &mut lease,
                        &self.settings.slot,
                        &self.holder,
                        "halted",
                        Some(&reason),
                        slot::Progress::default(),
                    )
                    .await;
                    self.enter(RelayState::Halted(reason));
                    self.settings.halt_retry
                }
                Err(e) => {
                    tracing::warn!(slot = %self.settings.slot, error = %e, "change relay lost its stream; starting again from the acknowledged position");
                    self.settings.reconnect_delay
                }
            };
            drop(lease);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Waits for the lease; `None` when shut down first.
    async fn acquire_lease(&self, shutdown: &mut watch::Receiver<bool>) -> Option<PgConnection> {
        loop {
            match slot::try_lease(&self.pg, &self.settings.slot).await {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) => {
                    if *self.state.borrow() != RelayState::Standby {
                        tracing::info!(slot = %self.settings.slot, "change relay standing by: another process leads");
                        self.enter(RelayState::Standby);
                    }
                }
                Err(e) => {
                    tracing::warn!(slot = %self.settings.slot, error = %e, "change relay cannot reach PostgreSQL for its lease")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.standby_poll) => {}
                _ = shutdown.changed() => return None,
            }
            if *shutdown.borrow() {
                return None;
            }
        }
    }

    /// One streaming session as leader.
    async fn lead(
        &self,
        lease: &mut PgConnection,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<SessionEnd> {
        let tables: Vec<&'static str> = self.plans.keys().copied().collect();
        let tables = slot::existing_tables(&self.pg, &tables).await?;
        slot::ensure_publication(&self.pg, &self.settings.publication, &tables).await?;
        slot::ensure_slot(&self.pg, &self.settings.slot).await?;
        let config = ReplicationConfig::new(
            self.target.host.clone(),
            self.target.user.clone(),
            self.target.password.clone(),
            self.target.database.clone(),
            self.settings.slot.clone(),
            self.settings.publication.clone(),
        )
        .with_port(self.target.port)
        .with_start_lsn(Lsn(0))
        .with_binary(true)
        .with_status_interval(Duration::from_millis(200))
        .with_wakeup_interval(self.settings.heartbeat)
        .with_application_name("udl-cdc");
        let mut client = ReplicationClient::connect(config)
            .await
            .map_err(stream_error)?;
        slot::report(
            lease,
            &self.settings.slot,
            &self.holder,
            "running",
            None,
            slot::Progress::default(),
        )
        .await?;
        self.enter(RelayState::Running);
        tracing::info!(slot = %self.settings.slot, tables = tables.len(), "change relay streaming");
        let mut session = Session {
            relay: self,
            client: &mut client,
            relations: HashMap::new(),
            open: None,
            batch: Batch::default(),
            acked: 0,
            received: 0,
            last_commit: None,
            in_flight: InFlight::default(),
            turns: PublishTurns::default(),
            snapshot: None,
            chunk: None,
            finishing: None,
        };
        let end = session.stream(lease, shutdown).await;
        let progress = session.progress();
        // A batch still in flight (after an error) is abandoned: it is not acknowledged.
        drop(session);
        let acked = progress.acked_lsn;
        if matches!(end, Ok(SessionEnd::Shutdown)) {
            // Let the last acknowledgement reach the server before the stream closes.
            let deadline = Instant::now() + Duration::from_secs(2);
            while client.metrics().last_applied_lsn().0 < acked && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            slot::report(
                lease,
                &self.settings.slot,
                &self.holder,
                "stopped",
                None,
                progress,
            )
            .await?;
        }
        let _ = client.shutdown().await;
        end
    }
}

/// An open transaction's changes.
struct Open {
    position: u64,
    time: DateTime<Utc>,
    changes: Vec<Sanitized>,
    ordinal: u32,
    chunk: Option<ChunkDone>,
}

/// One leader's streaming session.
struct Session<'r> {
    relay: &'r Relay,
    client: &'r mut ReplicationClient,
    relations: HashMap<u32, Arc<std::result::Result<BoundTable, String>>>,
    open: Option<Open>,
    batch: Batch,
    /// Acknowledged up to here.
    acked: u64,
    /// The server's WAL end as last seen.
    received: u64,
    last_commit: Option<DateTime<Utc>>,
    /// The batches being made durable.
    in_flight: InFlight<'r>,
    /// The order they publish in.
    turns: PublishTurns,
    /// The snapshot being read, if any.
    snapshot: Option<Active>,
    /// Its chunk between watermarks.
    chunk: Option<Chunk>,
    /// A snapshot whose last chunk is on its way to the sinks (not to be taken up again).
    finishing: Option<i64>,
}

fn commit_time(micros_since_2000: i64) -> DateTime<Utc> {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    DateTime::from_timestamp_micros(micros_since_2000.saturating_add(PG_EPOCH_MICROS))
        .unwrap_or_default()
}

impl Session<'_> {
    async fn stream(
        &mut self,
        lease: &mut PgConnection,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<SessionEnd> {
        let settings = &self.relay.settings;
        let mut heartbeat = tokio::time::interval(settings.heartbeat);
        loop {
            let flush_at = self
                .batch
                .since
                .map(|t| t + settings.batch_delay)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let flushing = !self.in_flight.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.flush().await?;
                        self.settle().await?;
                        return Ok(SessionEnd::Shutdown);
                    }
                }
                _ = tokio::time::sleep_until(flush_at), if self.batch.since.is_some() => {
                    self.flush().await?;
                }
                done = self.in_flight.next(), if flushing => {
                    self.acknowledge(done?).await?;
                }
                _ = std::future::ready(()), if self.snapshot.is_some() && self.chunk.is_none() => {
                    self.read_chunk().await?;
                }
                _ = heartbeat.tick() => {
                    if self.snapshot.is_none() {
                        self.snapshot = Active::next(&self.relay.pg, &settings.slot, &self.relay.plans, self.finishing).await?;
                    }
                    slot::heartbeat(lease).await?;
                    let progress = self.progress();
                    slot::report(lease, &settings.slot, &self.relay.holder, "running", None, progress).await?;
                    self.report_lag();
                }
                event = self.client.recv() => {
                    let Some(event) = event.map_err(stream_error)? else {
                        return Err(Error::new(ErrorKind::Unavailable, "the replication stream ended"));
                    };
                    if let Some(end) = self.on_event(event).await? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    fn progress(&self) -> slot::Progress {
        let oldest = self.in_flight.oldest();
        let oldest = oldest.or(self.batch.committed.first().map(|c| c.time));
        let oldest = oldest.or(self.open.as_ref().map(|o| o.time));
        slot::Progress {
            acked_lsn: self.acked,
            last_commit_at: self.last_commit,
            lag_seconds: oldest
                .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
        }
    }

    fn report_lag(&self) {
        let seconds = self.progress().lag_seconds;
        self.relay
            .metrics
            .set_cdc_lag(self.received.saturating_sub(self.acked), seconds);
    }

    /// Nothing received is waiting: the stream may be acknowledged up to `lsn`.
    fn ack_idle(&mut self, lsn: u64) {
        let idle =
            self.open.is_none() && self.batch.committed.is_empty() && self.in_flight.is_empty();
        if idle && lsn > self.acked {
            self.acked = lsn;
            self.client.update_applied_lsn(Lsn(lsn));
        }
    }

    async fn on_event(&mut self, event: ReplicationEvent) -> Result<Option<SessionEnd>> {
        match event {
            ReplicationEvent::Begin {
                final_lsn,
                commit_time_micros,
                ..
            } => {
                self.open = Some(Open {
                    position: final_lsn.0,
                    time: commit_time(commit_time_micros),
                    changes: Vec::new(),
                    ordinal: 0,
                    chunk: None,
                });
            }
            ReplicationEvent::XLogData { data, wal_end, .. } => {
                self.received = self.received.max(wal_end.0);
                if let Err(reason) = self.on_change(pgoutput::decode(data)?) {
                    return self.halt(reason).await;
                }
            }
            ReplicationEvent::Message {
                transactional: true,
                prefix,
                content,
                ..
            } if prefix == self.relay.outbox_prefix => {
                if let Err(reason) = self.on_outbox(&content) {
                    return self.halt(reason).await;
                }
            }
            ReplicationEvent::Message {
                transactional: true,
                prefix,
                content,
                ..
            } if prefix == self.relay.snapshot_prefix => self.on_watermark(&content).await?,
            ReplicationEvent::Commit { end_lsn, .. } => {
                let open = self.open.take().ok_or_else(|| {
                    Error::new(
                        ErrorKind::DataCorruption,
                        "a commit without its transaction's start",
                    )
                })?;
                let batch = &mut self.batch;
                batch.events += open.changes.len();
                batch.since.get_or_insert_with(Instant::now);
                batch.committed.push(Committed {
                    changes: open.changes,
                    end_lsn: end_lsn.0,
                    time: open.time,
                    chunk: open.chunk,
                });
                if batch.events >= self.relay.settings.batch_events {
                    self.flush().await?;
                }
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                self.received = self.received.max(wal_end.0);
                self.ack_idle(wal_end.0);
            }
            ReplicationEvent::Message {
                transactional: false,
                lsn,
                ..
            } => self.ack_idle(lsn.0),
            ReplicationEvent::StoppedAt { .. } => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "the replication stream stopped at a bound it was not given",
                ));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Stops before the open transaction: what came before it is made durable, nothing of
    /// it is sent.
    async fn halt(&mut self, reason: String) -> Result<Option<SessionEnd>> {
        self.open = None;
        self.flush().await?;
        self.settle().await?;
        Ok(Some(SessionEnd::Halted(reason)))
    }

    /// Takes one outbox event into the open transaction; `Err` is why the relay must halt.
    fn on_outbox(&mut self, content: &[u8]) -> std::result::Result<(), String> {
        let open = self
            .open
            .as_mut()
            .ok_or("an outbox event outside a transaction")?;
        let place = ChangePlace {
            position: open.position,
            ordinal: open.ordinal,
            time: open.time,
        };
        let event = outbox::receive(
            &self.relay.events,
            content,
            place,
            self.relay.sanitizer.source(),
        )?;
        open.ordinal += 1;
        open.changes.push(event);
        Ok(())
    }

    /// Sanitizes one change into the open transaction; `Err` is why the relay must halt.
    fn on_change(&mut self, message: Message) -> std::result::Result<(), String> {
        let (relation, kind, tuple): (u32, ChangeKind, Tuple) = match message {
            Message::Relation(relation) => {
                let bound = self.bind(&relation);
                self.relations.insert(relation.id, Arc::new(bound));
                return Ok(());
            }
            Message::Insert { relation, new } => (relation, ChangeKind::Created, new),
            Message::Update { relation, new, old } => {
                // A key changed: the old key's row is gone from where a chunk saw it.
                if let (Some(old), Some(chunk)) = (&old, &mut self.chunk) {
                    if let Some(Ok(table)) = self.relations.get(&relation).map(|b| b.as_ref()) {
                        chunk.supersede(table, old);
                    }
                }
                (relation, ChangeKind::Updated, new)
            }
            Message::Delete { relation, old } => (relation, ChangeKind::Deleted, old),
            Message::Truncate { .. } => {
                return Err("a TRUNCATE of a captured table arrived; the relay captures row changes only (the publication should not publish truncates)".into());
            }
            Message::Other(_) => return Ok(()),
        };
        let open = self.open.as_mut().ok_or("a change outside a transaction")?;
        let bound = self
            .relations
            .get(&relation)
            .ok_or_else(|| format!("a change to relation {relation}, which was never described"))?;
        let table = bound.as_ref().as_ref().map_err(Clone::clone)?;
        let place = ChangePlace {
            position: open.position,
            ordinal: open.ordinal,
            time: open.time,
        };
        open.ordinal += 1;
        let sanitized = self.relay.sanitizer.sanitize(table, kind, &tuple, place)?;
        open.changes.push(sanitized);
        if let Some(chunk) = &mut self.chunk {
            chunk.supersede(table, &tuple);
        }
        Ok(())
    }

    fn bind(&self, relation: &Relation) -> std::result::Result<BoundTable, String> {
        let claimed = relation.namespace == self.relay.pg.schema();
        let plan = self
            .relay
            .plans
            .get(relation.name.as_str())
            .filter(|_| claimed)
            .ok_or_else(|| {
                format!(
                    "a change to table {}.{}, which no registered entity claims",
                    relation.namespace, relation.name
                )
            })?;
        match plan {
            Ok(plan) => BoundTable::bind(Arc::clone(plan), relation),
            Err(why) => Err(why.clone()),
        }
    }

    /// Starts making the batch durable, once there is room among the batches in flight
    /// (the oldest is waited for and acknowledged first); the stream goes on being read
    /// meanwhile.
    async fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let Some(first) = batch.committed.first() else {
            return Ok(());
        };
        let oldest = first.time;
        while !self.in_flight.has_room() {
            let flushed = self.in_flight.next().await?;
            self.acknowledge(flushed).await?;
        }
        let turn = self.turns.next();
        self.in_flight.push(
            Box::pin(self.relay.make_durable(batch.committed, turn)),
            oldest,
        );
        Ok(())
    }

    /// Waits for every batch in flight, acknowledging each.
    async fn settle(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            let flushed = self.in_flight.next().await?;
            self.acknowledge(flushed).await?;
        }
        Ok(())
    }

    /// Acknowledges a durable batch (they come in commit order), hands its events to
    /// in-process subscribers, and records the snapshot chunks it completes.
    async fn acknowledge(&mut self, flushed: Flushed) -> Result<()> {
        self.acked = self.acked.max(flushed.end_lsn);
        self.client.update_applied_lsn(Lsn(self.acked));
        self.last_commit = Some(flushed.last_commit);
        self.report_lag();
        for event in flushed.events {
            let _ = self.relay.durable.send(event);
        }
        for done in &flushed.chunks {
            snapshot::record(&self.relay.pg, done).await?;
            if done.finished && self.finishing == Some(done.snapshot) {
                self.finishing = None;
            }
        }
        Ok(())
    }

    /// Reads the current snapshot's next chunk between its watermarks.
    async fn read_chunk(&mut self) -> Result<()> {
        let Some(active) = &mut self.snapshot else {
            return Ok(());
        };
        self.chunk = Some(active.read_chunk(&self.relay.pg).await?);
        Ok(())
    }

    /// A watermark: the low one opens the chunk's window; at the high one the chunk's rows
    /// left become snapshot events of its transaction.
    async fn on_watermark(&mut self, content: &[u8]) -> Result<()> {
        let Some(chunk) = &mut self.chunk else {
            return Ok(());
        };
        if !matches!(chunk.mark(content), Mark::High) {
            return Ok(());
        }
        let (rows, done) = self.chunk.take().expect("a chunk is being read").finish();
        let Some(active) = self.snapshot.take() else {
            return Ok(());
        };
        let Some(open) = self.open.as_mut() else {
            return Err(Error::new(
                ErrorKind::DataCorruption,
                "a snapshot watermark outside a transaction",
            ));
        };
        let (changes_before, ordinal_before) = (open.changes.len(), open.ordinal);
        for row in &rows {
            let place = ChangePlace {
                position: open.position,
                ordinal: open.ordinal,
                time: open.time,
            };
            match self
                .relay
                .sanitizer
                .sanitize(&active.table, ChangeKind::Snapshot, row, place)
            {
                Ok(event) => {
                    open.ordinal += 1;
                    open.changes.push(event);
                }
                // A row that cannot be sent ends the snapshot, not the stream: nothing of
                // this chunk goes out.
                Err(reason) => {
                    open.changes.truncate(changes_before);
                    open.ordinal = ordinal_before;
                    snapshot::fail(&self.relay.pg, active.id, &reason).await?;
                    return Ok(());
                }
            }
        }
        if done.finished {
            self.finishing = Some(active.id);
        } else {
            self.snapshot = Some(active);
        }
        open.chunk = Some(done);
        Ok(())
    }
}

impl Relay {
    /// Makes committed transactions durable: tokens in the vault and entries in the ledger,
    /// then the events in every sink at once.
    async fn make_durable(&self, committed: Vec<Committed>, turn: PublishTurn) -> Result<Flushed> {
        let last = committed.last().expect("a batch is never empty");
        let (end_lsn, last_commit) = (last.end_lsn, last.time);
        let chunks = committed.iter().filter_map(|c| c.chunk.clone()).collect();
        let changes: Vec<&Sanitized> = committed.iter().flat_map(|c| &c.changes).collect();
        let entries: Vec<(&crate::ChangeEvent, &[Redaction])> = changes
            .iter()
            .map(|s| (&s.event, s.redactions.as_slice()))
            .collect();
        // Neither needs the other; both come before any sink sees the events.
        let (tokens, ledger) =
            tokio::join!(self.keep_tokens(&changes), self.ledger.record(&entries));
        tokens?;
        ledger?;
        let events: Vec<&crate::ChangeEvent> = changes.iter().map(|s| &s.event).collect();
        try_join_all(self.sinks.iter().map(|sink| sink.write(&events, &turn))).await?;
        let (mut stripped, mut tokenized) = (0, 0);
        for r in changes.iter().flat_map(|s| &s.redactions) {
            match r {
                Redaction::Stripped { .. } => stripped += 1,
                Redaction::Tokenized { .. } => tokenized += 1,
            }
        }
        self.metrics
            .count_cdc_events(events.len() as u64, stripped, tokenized);
        Ok(Flushed {
            end_lsn,
            last_commit,
            chunks,
            events: if self.durable.receiver_count() > 0 {
                events.into_iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }
    async fn keep_tokens(&self, changes: &[&Sanitized]) -> Result<()> {
        let fresh: Vec<(&str, &str, &str)> = {
            let known = self.known_tokens.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = HashSet::new();
            changes
                .iter()
                .flat_map(|s| &s.vault)
                .filter(|v| !known.contains(&v.token) && seen.insert(v.token.as_str()))
                .map(|v| (v.kind, v.value.as_str(), v.token.as_str()))
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        self.vault.keep_many(&fresh).await?;
        let mut known = self.known_tokens.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() + fresh.len() > KNOWN_TOKENS_MAX {
            known.clear();
        }
        known.extend(fresh.iter().map(|(_, _, t)| (*t).to_owned()));
        Ok(())
    }
}
