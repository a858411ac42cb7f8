//! Change streams: every committed write to an entity's collection, by any client (another
//! udl process, a migration, `mongosh`), as the id it touched and what was done, with a resume
//! point a follower keeps so that after a restart it goes on where it stopped.
//!
//! Only ids travel, never field values (`fullDocument` is not asked for), so a follower such as
//! a cache or an index re-reads what it needs through its own stack. An entity whose id is
//! itself PII or PHI is refused: its ids would leave through here unaudited.

use futures_util::StreamExt as _;
use mongodb::bson::{self, doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::Collection;
use udl_core::{EntityMeta, Error, ErrorKind, Result, Sensitivity, StoreKind, Value};

use crate::convert::from_bson;
use crate::error::classify;
use crate::store::MongoStore;

/// What a change did to its document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new document.
    Insert,
    /// Fields of a document changed.
    Update,
    /// A document was replaced whole.
    Replace,
    /// A document was deleted (by a client or by a TTL index).
    Delete,
    /// The collection itself was dropped, renamed or invalidated: everything a follower holds
    /// of it is stale, and this feed ends.
    Collection,
}

/// One committed change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What was done.
    pub kind: ChangeKind,
    /// The id of the document it touched, as the entity declares it (`None` for
    /// [`ChangeKind::Collection`]).
    pub id: Option<Value>,
    /// Where a feed opened again continues after this change.
    pub resume: ResumePoint,
}

/// An opaque position in a collection's changes, to keep anywhere as bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint(ResumeToken);

impl ResumePoint {
    /// The position as bytes, to store.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let token = bson::to_bson(&self.0).map_err(|_| malformed())?;
        bson::to_vec(&doc! { "t": token }).map_err(|_| malformed())
    }

    /// A position stored by [`ResumePoint::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let stored: Document = bson::from_slice(bytes).map_err(|_| malformed())?;
        let token = stored.get("t").cloned().ok_or_else(malformed)?;
        bson::from_bson(token)
            .map(ResumePoint)
            .map_err(|_| malformed())
    }
}

fn malformed() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "not a MongoDB change stream resume point",
    )
    .with_store(StoreKind::MONGO)
}

/// The changes of one entity's collection, in commit order.
pub struct ChangeFeed {
    entity: &'static EntityMeta,
    stream: ChangeStream<ChangeStreamEvent<Document>>,
    ended: bool,
}

impl MongoStore {
    /// The changes committed to `entity`'s collection from now on, or after `after` (a point
    /// an earlier feed handed out). `Unsupported` on a server without change streams
    /// (FerretDB, a standalone server); `InvalidInput` for an entity whose id is PII or PHI.
    pub async fn changes(
        &self,
        entity: &'static EntityMeta,
        after: Option<&ResumePoint>,
    ) -> Result<ChangeFeed> {
        if !self.server().change_streams {
            return Err(Error::unsupported(StoreKind::MONGO, "change stream"));
        }
        if entity.id().sensitivity >= Sensitivity::Pii {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "entity {}: its id is {:?}, and change feeds hand out ids unaudited",
                    entity.name,
                    entity.id().sensitivity
                ),
            )
            .with_store(StoreKind::MONGO));
        }
        open(&self.database().collection(entity.name), entity, after).await
    }
}

/// The changes of `entity`'s collection `coll`, for udl's own followers (no check of the id's
/// classification: these ids stay in the process).
pub(crate) async fn open(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    after: Option<&ResumePoint>,
) -> Result<ChangeFeed> {
    let stream = coll
        .watch()
        .resume_after(after.map(|p| p.0.clone()))
        .await
        .map_err(|e| classify(&e, "change stream"))?;
    Ok(ChangeFeed {
        entity,
        stream,
        ended: false,
    })
}

impl ChangeFeed {
    /// The next committed change, waiting for one; `None` once the collection is gone (after
    /// its [`ChangeKind::Collection`] change). Changes of other kinds (index builds, ...) are
    /// skipped.
    pub async fn next(&mut self) -> Result<Option<Change>> {
        while !self.ended {
            let Some(event) = self.stream.next().await else {
                return Ok(None);
            };
            let event = event.map_err(|e| classify(&e, "change stream"))?;
            let kind = match event.operation_type {
                OperationType::Insert => ChangeKind::Insert,
                OperationType::Update => ChangeKind::Update,
                OperationType::Replace => ChangeKind::Replace,
                OperationType::Delete => ChangeKind::Delete,
                OperationType::Drop
                | OperationType::Rename
                | OperationType::DropDatabase
                | OperationType::Invalidate => {
                    self.ended = true;
                    ChangeKind::Collection
                }
                _ => continue,
            };
            let id = match kind {
                ChangeKind::Collection => None,
                _ => Some(self.id_of(event.document_key)?),
            };
            return Ok(Some(Change {
                kind,
                id,
                resume: ResumePoint(event.id),
            }));
        }
        Ok(None)
    }

    /// Where this feed would continue when opened again now.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        self.stream.resume_token().map(ResumePoint)
    }

    fn id_of(&self, key: Option<Document>) -> Result<Value> {
        let field = self.entity.id();
        key.and_then(|mut k| k.remove("_id"))
            .and_then(|id| from_bson(field.kind, id))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::DataCorruption,
                    format!(
                        "entity {}: a change names a document whose _id is not a {:?}",
                        self.entity.name, field.kind
                    ),
                )
                .with_store(StoreKind::MONGO)
            })
    }
}
