//! Keeps a vector index true to its collection's change feed, so writes made by other
//! processes (another udl, a migration, `mongosh`) reach this process's searches within the
//! feed's lag. Each changed id is read again (its vector only) and put in the index or taken
//! out of it; the index's position advances past a change only once it is applied, so a feed
//! opened again after a failure replays whatever was not.

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::Collection;
use udl_core::{EntityMeta, Result, Value};

use super::index::VectorIndex;
use super::indexes::key_of;
use super::{stored_vector, OP};
use crate::changes::{self, Change, ChangeFeed, ChangeKind, ResumePoint};
use crate::convert::{doc_key, to_bson};
use crate::error::classify;

/// Longest pause between two attempts to open the feed again.
const MOST_PAUSE: Duration = Duration::from_secs(5);

/// One index and the collection field it follows.
pub(super) struct Follower {
    pub coll: Collection<Document>,
    pub entity: &'static EntityMeta,
    pub field: &'static str,
    pub index: Arc<VectorIndex>,
}

impl Follower {
    /// Applies `feed` and the feeds opened after it until the index can no longer be kept
    /// current (the collection went away, or the feed lost its place in the oplog); then
    /// `lost` is called, so the next search builds the index again.
    pub async fn run(self, mut feed: Option<ChangeFeed>, lost: impl FnOnce()) {
        let mut pause = Duration::from_millis(100);
        loop {
            if let Some(mut open) = feed.take() {
                pause = Duration::from_millis(100);
                loop {
                    match open.next().await {
                        // Dropped or renamed: nothing in the index is true any more.
                        Ok(Some(change)) if change.kind == ChangeKind::Collection => return lost(),
                        Ok(Some(change)) => match self.apply(&change).await {
                            Ok(()) => match change.resume.to_bytes() {
                                Ok(position) => self.index.advance_to(position),
                                Err(_) => return lost(),
                            },
                            Err(e) => {
                                // Not applied: the feed opened again replays it.
                                tracing::warn!(collection = self.entity.name, error = %e, "vector index could not read a changed document; following again");
                                break;
                            }
                        },
                        Ok(None) => return lost(),
                        Err(e) => {
                            tracing::warn!(collection = self.entity.name, error = %e, "vector index change feed failed; opening it again");
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MOST_PAUSE);
            let Some(after) = self
                .index
                .position()
                .and_then(|bytes| ResumePoint::from_bytes(&bytes).ok())
            else {
                return lost();
            };
            match changes::open(&self.coll, self.entity, Some(&after)).await {
                Ok(open) => feed = Some(open),
                Err(e) if !e.is_temporary() => {
                    tracing::warn!(collection = self.entity.name, error = %e, "vector index change feed lost its place; the index will be built again");
                    return lost();
                }
                Err(e) => {
                    tracing::warn!(collection = self.entity.name, error = %e, "vector index change feed could not be opened; trying again");
                }
            }
        }
    }

    async fn apply(&self, change: &Change) -> Result<()> {
        let Some(id) = &change.id else {
            return Ok(());
        };
        let id = self.stored_id(id)?;
        let key = key_of(&id);
        if change.kind == ChangeKind::Delete {
            self.index.remove(&key);
            return Ok(());
        }
        let field = doc_key(self.entity, self.field);
        let mut projection = doc! { "_id": 1 };
        projection.insert(field, 1);
        let found = self
            .coll
            .find_one(doc! { "_id": id })
            .projection(projection)
            .await
            .map_err(|e| classify(&e, OP))?;
        match found.and_then(|doc| stored_vector(&doc, field)) {
            Some(vector) => {
                self.index.insert_many(vec![(key, vector)]);
            }
            None => self.index.remove(&key),
        }
        Ok(())
    }

    fn stored_id(&self, id: &Value) -> Result<mongodb::bson::Bson> {
        to_bson(self.entity, self.entity.id(), id.clone())
    }
}
