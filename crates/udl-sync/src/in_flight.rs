//! Batches on their way to being durable: several are written at once (the ledger and the
//! sinks are round trips, and the stream goes on being read meanwhile), and they are handed
//! back strictly in the order they were started, so acknowledgements stay in commit order.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use tokio::sync::watch;
use udl_core::Result;

use crate::ChangeEvent;

/// Most batches being made durable at once.
pub(crate) const MAX_IN_FLIGHT: usize = 3;

/// A batch made durable.
pub(crate) struct Flushed {
    /// The stream may be acknowledged up to here.
    pub end_lsn: u64,
    /// Commit time of its last transaction.
    pub last_commit: DateTime<Utc>,
    /// Its events, for in-process subscribers (empty when there are none).
    pub events: Vec<ChangeEvent>,
    /// The snapshot chunks it completes.
    pub chunks: Vec<crate::snapshot::ChunkDone>,
}

/// A batch on its way to being durable.
pub(crate) type Flushing<'r> = Pin<Box<dyn Future<Output = Result<Flushed>> + Send + 'r>>;

/// The batches in flight, oldest first.
#[derive(Default)]
pub(crate) struct InFlight<'r> {
    batches: FuturesOrdered<Flushing<'r>>,
    /// Each batch's oldest commit time, in the same order.
    oldest: VecDeque<DateTime<Utc>>,
}

impl<'r> InFlight<'r> {
    /// Starts `batch`, whose oldest commit is `oldest`.
    pub fn push(&mut self, batch: Flushing<'r>, oldest: DateTime<Utc>) {
        self.batches.push_back(batch);
        self.oldest.push_back(oldest);
    }

    /// Whether another batch may start.
    pub fn has_room(&self) -> bool {
        self.batches.len() < MAX_IN_FLIGHT
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Oldest commit time of anything in flight.
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        self.oldest.front().copied()
    }

    /// The oldest batch, once it is durable; never completes when nothing is in flight.
    pub async fn next(&mut self) -> Result<Flushed> {
        match self.batches.next().await {
            Some(flushed) => {
                self.oldest.pop_front();
                flushed
            }
            None => std::future::pending().await,
        }
    }
}

/// A batch's place in the order batches publish in (a bus delivers in publish order): its
/// turn comes once every earlier batch of the streaming session has sent its events.
#[derive(Clone)]
pub(crate) struct PublishTurn {
    seq: u64,
    sent: Arc<watch::Sender<u64>>,
}

impl PublishTurn {
    /// Waits for every earlier batch to have sent.
    pub async fn wait(&self) {
        let mut sent = self.sent.subscribe();
        let _ = sent.wait_for(|n| *n >= self.seq).await;
    }

    /// This batch has sent: the next may.
    pub fn done(&self) {
        self.sent.send_if_modified(|n| {
            let mine = *n == self.seq;
            if mine {
                *n += 1;
            }
            mine
        });
    }
}

/// Hands out publish turns in the order batches are started.
pub(crate) struct PublishTurns {
    next: u64,
    sent: Arc<watch::Sender<u64>>,
}

impl Default for PublishTurns {
    fn default() -> Self {
        PublishTurns {
            next: 0,
            sent: Arc::new(watch::channel(0).0),
        }
    }
}

impl PublishTurns {
    /// The next batch's turn.
    pub fn next(&mut self) -> PublishTurn {
        self.next += 1;
        PublishTurn {
            seq: self.next - 1,
            sent: Arc::clone(&self.sent),
        }
    }
}
