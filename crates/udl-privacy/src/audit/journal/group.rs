//! Group commit on the accessing tasks themselves. The first access to find no batch being
//! written leads: it writes and syncs every entry waiting, its own included. Accesses that
//! arrive meanwhile wait; once the leader has answered them, the first still waiting leads the
//! next batch. There is no journal thread: a thread of its own cost every batch two hand-offs
//! (a wake to the thread, and one back to each access), and on a small machine those cost
//! more than the sync's own work.
//!
//! The write and sync block the leading task's worker thread while they last (about 0.1 ms on
//! a local disk). One task leads at a time, so a stalled disk holds one worker; the others go
//! on, and the accesses waiting on it fail at their timeout.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use udl_postgres::models::PhiAccessLogEntry;

use super::append::{Appender, Refusal, UNWRITABLE};
use super::{JournalConfig, ShipQueue};

/// The journal as accesses reach it.
pub(crate) struct GroupJournal {
    waiting: Mutex<Waiting>,
    appender: Mutex<Appender>,
}

/// The entries waiting for the next batch, and whether an access is leading one now.
#[derive(Default)]
struct Waiting {
    entries: Vec<(PhiAccessLogEntry, oneshot::Sender<Turn>)>,
    leading: bool,
}

/// What a waiting access is told.
enum Turn {
    /// Its entry was in a batch: durable, or refused.
    Done(Result<(), Refusal>),
    /// It leads the next batch, with its entry given back.
    Lead(Box<PhiAccessLogEntry>),
}

/// A waiting access's side; if the access gives up after being told to lead, it still leads
/// (blocking, as it is dropped), so the accesses behind it are not left without a leader.
struct Follower<'a> {
    journal: &'a GroupJournal,
    turn: Option<oneshot::Receiver<Turn>>,
}

impl Drop for Follower<'_> {
    fn drop(&mut self) {
        if let Some(mut turn) = self.turn.take() {
            turn.close();
            if let Ok(Turn::Lead(entry)) = turn.try_recv() {
                let _ = self.journal.lead(*entry);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupJournal {
    /// Journals under `config.dir`, handing what was synced to `queue`; the first batch
    /// makes the first journal.
    pub(crate) fn new(config: JournalConfig, queue: Arc<ShipQueue>) -> Self {
        GroupJournal {
            waiting: Mutex::default(),
            appender: Mutex::new(Appender::new(config, queue)),
        }
    }

    /// Returns once `entry` is durable, or refused.
    pub(crate) async fn append(&self, entry: PhiAccessLogEntry) -> Result<(), Refusal> {
        let turn = {
            let mut waiting = lock(&self.waiting);
            if waiting.leading {
                let (tell, turn) = oneshot::channel();
                waiting.entries.push((entry, tell));
                turn
            } else {
                waiting.leading = true;
                drop(waiting);
                return self.lead(entry);
            }
        };
        let mut follower = Follower {
            journal: self,
            turn: Some(turn),
        };
        let told = follower.turn.as_mut().expect("set above").await;
        follower.turn = None;
        match told {
            Ok(Turn::Done(outcome)) => outcome,
            Ok(Turn::Lead(entry)) => self.lead(*entry),
            // The leader went away without answering (it panicked).
            Err(_) => Err(UNWRITABLE),
        }
    }

    /// Writes `own` and every entry waiting as one batch, answers their accesses, and hands
    /// the lead to the first access still waiting; `own`'s outcome.
    fn lead(&self, own: PhiAccessLogEntry) -> Result<(), Refusal> {
        let mut own = Some(own);
        let mut own_outcome = None;
        loop {
            let batch = std::mem::take(&mut lock(&self.waiting).entries);
            let (mut entries, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            if let Some(entry) = own.take() {
                entries.insert(0, entry);
            }
            let mut appender = lock(&self.appender);
            let outcome = appender.commit(entries);
            for waiter in waiters {
                // A waiter that gave up has already failed its access.
                let _ = waiter.send(Turn::Done(outcome));
            }
            appender.grow_ahead();
            drop(appender);
            let outcome = *own_outcome.get_or_insert(outcome);
            if self.hand_over() {
                return outcome;
            }
            // Only entries of accesses that gave up wait: they are written all the same.
        }
    }

    /// Hands the lead to the first access still waiting, or gives it up when none waits;
    /// `false` when only entries of accesses that gave up wait (the caller writes them).
    fn hand_over(&self) -> bool {
        let mut waiting = lock(&self.waiting);
        loop {
            if waiting.entries.is_empty() {
                waiting.leading = false;
                return true;
            }
            let Some(next) = waiting.entries.iter().position(|(_, t)| !t.is_closed()) else {
                return false;
            };
            let (entry, tell) = waiting.entries.remove(next);
            let Err(Turn::Lead(entry)) = tell.send(Turn::Lead(Box::new(entry))) else {
                return true;
            };
            // It gave up just now: its entry waits with the others.
            let (gone, _) = oneshot::channel();
            waiting.entries.insert(next, (*entry, gone));
        }
    }
}
