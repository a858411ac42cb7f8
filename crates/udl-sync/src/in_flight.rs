//! Batches on their way to being durable: several are written at once (the ledger and the
//! sinks are round trips, and the stream goes on being read meanwhile), and they are handed
//! back strictly in the order they were started, so acknowledgements stay in commit order.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
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
