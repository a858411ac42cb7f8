//! The generic record operations over MongoDB collections.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::{Collection, Database};
use udl_core::op;
use udl_core::{
    AccessContext, Capabilities, Capability, EntityMeta, Error, Filter, Query, Record, RecordStore,
    Result, StoreKind, ValidChanges, Value,
};

use crate::convert::{self, doc_key, to_bson};
use crate::error::{classify, DUPLICATE_KEY};
use crate::expiry::{self, Expiry, EXPIRES_AT};
use crate::filter;
use crate::hidden;
use crate::retained::Retained;
use crate::session::{exec, TxSession, VectorChange};
use crate::vector::{self, VectorIndexes};

/// Record operations over one database, on their own or inside one transaction.
pub struct MongoRecords {
    db: Database,
    caps: Capabilities,
    vectors: Arc<VectorIndexes>,
    expiry: Arc<Expiry>,
    /// Entities kept for a retention period from a time field of theirs.
    retained: Arc<Retained>,
    /// The transaction every operation runs in, if any.
    session: Option<Arc<TxSession>>,
}

impl MongoRecords {
    pub(crate) fn new(db: Database, caps: Capabilities, vectors: VectorIndexes) -> Self {
        MongoRecords {
            db,
            caps,
            vectors: Arc::new(vectors),
            expiry: Arc::default(),
            retained: Arc::default(),
            session: None,
        }
    }

    /// The same records inside the transaction of `session`.
    pub(crate) fn in_transaction(&self, session: Arc<TxSession>) -> Self {
        MongoRecords {
            db: self.db.clone(),
            caps: self.caps,
            vectors: Arc::clone(&self.vectors),
            expiry: Arc::clone(&self.expiry),
            retained: Arc::clone(&self.retained),
            session: Some(session),
        }
    }

    /// The entities kept for a retention period.
    pub(crate) fn retained(&self) -> &Retained {
        &self.retained
    }

    /// `doc` of `entity`, with its retention expiry when `entity` has one; makes sure of the
    /// TTL index first (outside transactions, which cannot make one).
    async fn stamped(&self, entity: &'static EntityMeta, mut doc: Document) -> Result<Document> {
        if self.retained.covers(entity) {
            if self.caps.supports(Capability::Ttl) && self.session.is_none() {
                self.expiry
                    .ensure_index(entity.name, &self.collection(entity))
                    .await?;
            }
            self.retained.stamp(entity, &mut doc);
        }
        Ok(doc)
    }

    /// The vector indexes this process keeps.
    pub(crate) fn vectors(&self) -> &VectorIndexes {
        &self.vectors
    }

    /// `err` as a udl error; inside a transaction, an error that asks for the transaction to
    /// be run again is noted.
    fn classify(&self, err: &mongodb::error::Error, op: &'static str) -> Error {
        if let Some(tx) = &self.session {
            tx.note(err);
        }
        classify(err, op)
    }

    /// Refuses what cannot run inside a transaction.
    fn outside_transactions(&self, op: &'static str) -> Result<()> {
        match self.session {
            Some(_) => Err(Error::new(
                udl_core::ErrorKind::Unsupported,
                format!("{op} is not available inside a MongoDB transaction"),
            )
            .with_store(StoreKind::MONGO)
            .with_operation(op)),
            None => Ok(()),
        }
    }

    /// Reflects a written record in the vector indexes: at once, or inside a transaction at
    /// its commit.
    fn index_upsert(&self, entity: &'static EntityMeta, record: &Record) {
        match &self.session {
            Some(tx) => tx.hold(VectorChange::Upsert(entity, record.clone())),
            None => self.vectors.upsert(entity, record),
        }
    }

    /// Removes a deleted record from the vector indexes: at once, or at the commit.
    fn index_remove(&self, entity: &'static EntityMeta, id: Bson) {
        match &self.session {
            Some(tx) => tx.hold(VectorChange::Remove(entity, id)),
            None => self.vectors.remove(entity, &id),
        }
    }

    /// `filter` on `entity`, leaving out hidden records, and expired ones where records can
    /// expire (servers with TTL indexes, and entities kept for a retention period; FerretDB
    /// refuses `create_with_ttl`, so nothing else there ever carries an expiry).
    fn live(&self, entity: &EntityMeta, filter: Document) -> Document {
        let filter = hidden::visible(filter);
        if self.caps.supports(Capability::Ttl) || self.retained.covers(entity) {
            expiry::alive(filter)
        } else {
            filter
        }
    }

    /// Inserts `doc`; a duplicate key held only by an expired document the server has not
    /// deleted yet is removed and the insert made again, since that record is gone.
    async fn insert_doc(
        &self,
        entity: &'static EntityMeta,
        doc: Document,
        op: &'static str,
    ) -> Result<()> {
        let coll = self.collection(entity);
        let first = exec!(self, coll.insert_one(doc.clone()));
        let Err(err) = first else {
            return Ok(());
        };
        if self.session.is_some() {
            // The failed write ended the transaction: nothing more can be tried in it.
            return Err(self.classify(&err, op));
        }
        let duplicate = matches!(
            err.kind.as_ref(),
            mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w))
                if w.code == DUPLICATE_KEY
        );
        if duplicate && self.caps.supports(Capability::Ttl) {
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            let expired =
                doc! { "_id": id, EXPIRES_AT: { "$lte": mongodb::bson::DateTime::now() } };
            let removed = coll
                .delete_one(expired)
                .await
                .map_err(|e| classify(&e, op))?;
            if removed.deleted_count == 1 {
                return coll
                    .insert_one(doc)
                    .await
                    .map(drop)
                    .map_err(|e| classify(&e, op));
            }
        }
        Err(classify(&err, op))
    }

    fn collection(&self, entity: &EntityMeta) -> Collection<Document> {
        self.db.collection(entity.name)
    }

    /// The collection read as the server's bytes, converted to records in place.
    fn raw_collection(&self, entity: &EntityMeta) -> Collection<RawDocumentBuf> {
        self.db.collection(entity.name)
    }

    fn by_id(entity: &EntityMeta, id: &Value) -> Result<Document> {
        Ok(doc! { "_id": to_bson(entity, entity.id(), id.clone())? })
    }
}

fn refused(op: &'static str) -> impl Fn(Error) -> Error {
    move |e| e.with_store(StoreKind::MONGO).with_operation(op)
}

#[async_trait]
impl RecordStore for MongoRecords {
    fn kind(&self) -> StoreKind {
        StoreKind::MONGO
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn insert(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        let indexed = self.vectors.tracks(entity).then(|| record.clone());
        let doc = convert::document(entity, record).map_err(refused(op::CREATE))?;
        let doc = self.stamped(entity, doc).await?;
        self.insert_doc(entity, doc, op::CREATE).await?;
        if let Some(record) = indexed {
            self.index_upsert(entity, &record);
        }
        Ok(())
    }

    /// The record with an expiry field and the collection's TTL index: gone for reads at
    /// `ttl` exactly, deleted by the server within its TTL monitor's period.
    async fn insert_with_ttl(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let op = op::CREATE_WITH_TTL;
        if !self.caps.supports(Capability::Ttl) {
            return Err(Error::unsupported(StoreKind::MONGO, op));
        }
        // Its TTL index may need making, which a transaction cannot do.
        self.outside_transactions(op)?;
        self.expiry
            .ensure_index(entity.name, &self.collection(entity))
            .await?;
        let indexed = self.vectors.tracks(entity).then(|| record.clone());
        let mut doc = convert::document(entity, record).map_err(refused(op))?;
        doc.insert(EXPIRES_AT, expiry::expires_at(ttl));
        self.insert_doc(entity, doc, op).await?;
        if let Some(record) = indexed {
            self.vectors.upsert(entity, &record);
        }
        Ok(())
    }

    /// Unordered `insert_many`. Inside a transaction a failed batch ends the transaction, so
    /// none of it is kept; without one, a failed batch is undone by deleting the documents it
    /// did insert, so nothing stays half-written. The error lists which documents were refused.
    async fn insert_many(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        let op = op::CREATE_MANY;
        let indexed = if self.vectors.tracks(entity) {
            records.clone()
        } else {
            Vec::new()
        };
        let mut docs = records
            .into_iter()
            .map(|r| convert::document(entity, r))
            .collect::<Result<Vec<_>>>()
            .map_err(refused(op))?;
        if self.retained.covers(entity) {
            for doc in &mut docs {
                *doc = self.stamped(entity, std::mem::take(doc)).await?;
            }
        }
        let ids: Vec<Bson> = docs
            .iter()
            .map(|d| d.get("_id").cloned().unwrap_or(Bson::Null))
            .collect();
        let total = docs.len() as u64;
        let coll = self.collection(entity);
        let err = match exec!(self, coll.insert_many(docs).ordered(false)) {
            Ok(_) => {
                for record in &indexed {
                    self.index_upsert(entity, record);
                }
                return Ok(total);
            }
            Err(err) => err,
        };
        let failed: Vec<usize> = match err.kind.as_ref() {
            mongodb::error::ErrorKind::InsertMany(many) => many
                .write_errors
                .iter()
                .flatten()
                .map(|w| w.index)
                .collect(),
            _ => (0..ids.len()).collect(),
        };
        let written: Vec<Bson> = ids
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !failed.contains(i))
            .map(|(_, id)| id)
            .collect();
        if !written.is_empty() && self.session.is_none() {
            coll.delete_many(doc! { "_id": { "$in": written } })
                .await
                .map_err(|e| classify(&e, op))?;
        }
        let classified = self.classify(&err, op);
        let shown: Vec<String> = failed.iter().take(10).map(ToString::to_string).collect();
        Err(Error::new(
            classified.kind(),
            format!(
                "{} of {total} documents refused (indices {}{}): {}; nothing was kept",
                failed.len(),
                shown.join(", "),
                if failed.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                },
                classified.message()
            ),
        )
        .temporary(classified.is_temporary())
        .with_store(StoreKind::MONGO)
        .with_operation(op))
    }

    async fn fetch(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        // By `_id` alone, which the server answers on its fastest path; expiry is checked here.
        let filter = Self::by_id(entity, id).map_err(refused("get"))?;
        let coll = self.raw_collection(entity);
        let found = exec!(self, coll.find_one(filter)).map_err(|e| self.classify(&e, "get"))?;
        found
            .filter(|d| !expiry::has_expired(d) && !hidden::is_hidden(d))
            .map(|d| convert::raw_record(entity, &d).map_err(refused("get")))
            .transpose()
    }

    async fn update(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        let op = "update";
        let mut filter = self.live(entity, Self::by_id(entity, id).map_err(refused(op))?);
        let mut set = Document::new();
        for (name, value) in &changes.sets {
            let field = entity.require_field(name)?;
            set.insert(
                doc_key(entity, name),
                to_bson(entity, field, value.clone()).map_err(refused(op))?,
            );
        }
        let mut update = doc! { "$set": set };
        if let Some(version) = entity.version_field {
            update.insert("$inc", doc! { version: 1_i64 });
            if let Some(expected) = changes.expected_version {
                filter.insert(version, expected);
            }
        }
        let coll = self.collection(entity);
        let done =
            exec!(self, coll.update_one(filter, update)).map_err(|e| self.classify(&e, op))?;
        if done.matched_count > 0 {
            if self.vectors.tracks(entity) {
                let mut changed = Record::with_capacity(changes.sets.len() + 1);
                changed.push(entity.id_field, id.clone());
                for (name, value) in &changes.sets {
                    changed.push(name, value.clone());
                }
                self.index_upsert(entity, &changed);
            }
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let filter = self.live(entity, Self::by_id(entity, id).map_err(refused("delete"))?);
        let coll = self.collection(entity);
        let done = exec!(self, coll.delete_one(filter)).map_err(|e| self.classify(&e, "delete"))?;
        if done.deleted_count > 0 && self.vectors.tracks(entity) {
            let id = to_bson(entity, entity.id(), id.clone()).map_err(refused("delete"))?;
            self.index_remove(entity, id);
        }
        Ok(done.deleted_count > 0)
    }

    async fn list(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        let op = "list";
        let filter = self.live(
            entity,
            filter::query(entity, &query.filter).map_err(refused(op))?,
        );
        let sort = filter::sort(entity, &query.sort).map_err(refused(op))?;
        let coll = self.raw_collection(entity);
        let find = coll
            .find(filter)
            .sort(sort)
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .skip(query.offset as u64);
        let docs: Vec<RawDocumentBuf> = match &self.session {
            Some(tx) => {
                let mut session = tx.session.lock().await;
                let read = async {
                    let mut cursor = find.session(&mut *session).await?;
                    cursor.stream(&mut session).try_collect().await
                };
                crate::session::bounded(tx.call_timeout, read)
                    .await
                    .map_err(|e| self.classify(&e, op))?
            }
            None => find
                .await
                .map_err(|e| classify(&e, op))?
                .try_collect()
                .await
                .map_err(|e| classify(&e, op))?,
        };
        docs.iter()
            .map(|d| convert::raw_record(entity, d).map_err(refused(op)))
            .collect()
    }

    async fn count(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let query = self.live(
            entity,
            filter::query(entity, filter).map_err(refused("count"))?,
        );
        let coll = self.collection(entity);
        exec!(self, coll.count_documents(query)).map_err(|e| self.classify(&e, "count"))
    }

    async fn nearest(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        field: &'static str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        // Its index is built from, and answers about, committed data only.
        self.outside_transactions(op::NEAREST)?;
        vector::nearest(
            &self.vectors,
            &self.collection(entity),
            entity,
            field,
            vector,
            k,
            self.live(
                entity,
                filter::query(entity, prefilter).map_err(refused(op::NEAREST))?,
            ),
        )
        .await
    }

    async fn exists(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        if !self.caps.supports(Capability::Ttl) {
            let filter = self.live(entity, Self::by_id(entity, id).map_err(refused("exists"))?);
            let coll = self.collection(entity);
            let n = exec!(self, coll.count_documents(filter).limit(1))
                .map_err(|e| self.classify(&e, "exists"))?;
            return Ok(n > 0);
        }
        // By `_id` alone (the server's fastest path), reading only the expiry and the mark.
        let coll = self.raw_collection(entity);
        let by_id = Self::by_id(entity, id).map_err(refused("exists"))?;
        let found = exec!(
            self,
            coll.find_one(by_id)
                .projection(doc! { EXPIRES_AT: 1, hidden::HIDDEN_BY: 1 })
        )
        .map_err(|e| self.classify(&e, "exists"))?;
        Ok(found.is_some_and(|d| !expiry::has_expired(&d) && !hidden::is_hidden(&d)))
    }
}
