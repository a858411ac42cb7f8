//! Versioned MongoDB migrations: collections, indexes, validators and data transforms,
//! checksummed, recorded in `udl_migrations`, applied under a lock document.
//!
//! Without transactions a failed migration can leave some of its steps applied; every step
//! is idempotent (existing collections and indexes are left as they are), so running `up`
//! again after fixing the cause completes it.

use std::borrow::Cow;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use sha2::{Digest, Sha256};
use udl_core::{
    check_applied, in_version_order, known_migrations, statuses, AppliedMigration, Entity, Error,
    ErrorKind, MigrationReport, MigrationStatus, Result, StoreKind, VersionedMigration,
};

use crate::convert::doc_key;
use crate::error::classify;
use crate::lock::MigrationLock;
use crate::store::MongoStore;

const RECORDS: &str = "udl_migrations";
/// Server code for "collection already exists".
const NAMESPACE_EXISTS: i32 = 48;

/// One step of a migration.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create a collection, with a `$jsonSchema` validator where the server supports them.
    CreateCollection {
        /// Collection name.
        collection: String,
        /// Validator document, if any.
        validator: Option<Document>,
    },
    /// Create an index (ascending keys) unless it exists.
    CreateIndex {
        /// Collection name.
        collection: String,
        /// Index name.
        name: String,
        /// Keys, e.g. `{ "document_id": 1, "chunk_index": 1 }`.
        keys: Document,
        /// Unique index.
        unique: bool,
    },
    /// Drop an index.
    DropIndex {
        /// Collection name.
        collection: String,
        /// Index name.
        name: String,
    },
    /// Transform data server-side: `updateMany(filter, update)`.
    UpdateMany {
        /// Collection name.
        collection: String,
        /// Which documents.
        filter: Document,
        /// The update (operators or pipeline).
        update: Document,
    },
}

impl Step {
    /// The collection of entity `T`.
    pub fn collection_of<T: Entity>() -> Step {
        Step::CreateCollection {
            collection: T::meta().name.to_owned(),
            validator: None,
        }
    }

    /// The indexes entity `T` declares.
    pub fn indexes_of<T: Entity>() -> Vec<Step> {
        let meta = T::meta();
        meta.indexes
            .iter()
            .map(|index| Step::CreateIndex {
                collection: meta.name.to_owned(),
                name: index.name.to_owned(),
                keys: index
                    .fields
                    .iter()
                    .map(|f| (doc_key(meta, f).to_owned(), Bson::Int32(1)))
                    .collect(),
                unique: index.unique,
            })
            .collect()
    }

    /// A canonical description, for the checksum.
    fn describe(&self) -> Document {
        match self {
            Step::CreateCollection {
                collection,
                validator,
            } => {
                doc! { "create": collection, "validator": validator.clone().map_or(Bson::Null, Bson::Document) }
            }
            Step::CreateIndex {
                collection,
                name,
                keys,
                unique,
            } => {
                doc! { "createIndex": collection, "name": name, "keys": keys.clone(), "unique": unique }
            }
            Step::DropIndex { collection, name } => doc! { "dropIndex": collection, "name": name },
            Step::UpdateMany {
                collection,
                filter,
                update,
            } => {
                doc! { "updateMany": collection, "filter": filter.clone(), "update": update.clone() }
            }
        }
    }

    async fn apply(&self, store: &MongoStore) -> std::result::Result<(), mongodb::error::Error> {
        let db = store.database();
        match self {
            Step::CreateCollection {
                collection,
                validator,
            } => {
                let mut create = db.create_collection(collection);
                // FerretDB has no validators; the collection is still created.
                if let (Some(v), false) = (validator, store.server().ferretdb) {
                    create = create.validator(v.clone());
                }
                match create.await {
                    Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == NAMESPACE_EXISTS) => {
                        Ok(())
                    }
                    other => other,
                }
            }
            Step::CreateIndex {
                collection,
                name,
                keys,
                unique,
            } => {
                let options = IndexOptions::builder()
                    .name(name.clone())
                    .unique(*unique)
                    .build();
                let model = IndexModel::builder()
                    .keys(keys.clone())
                    .options(options)
                    .build();
                db.collection::<Document>(collection)
                    .create_index(model)
                    .await
                    .map(|_| ())
            }
            Step::DropIndex { collection, name } => {
                db.collection::<Document>(collection).drop_index(name).await
            }
            Step::UpdateMany {
                collection,
                filter,
                update,
            } => db
                .collection::<Document>(collection)
                .update_many(filter.clone(), update.clone())
                .await
                .map(|_| ()),
        }
    }
}

/// One migration: a version, a name and its steps.
#[derive(Clone, Debug, PartialEq)]
pub struct MongoMigration {
    /// Positive, unique, applied in ascending order.
    pub version: i64,
    /// Short name shown in status listings.
    pub name: Cow<'static, str>,
    /// Steps, applied in order.
    pub steps: Vec<Step>,
}

impl MongoMigration {
    /// A migration.
    pub fn new(version: i64, name: impl Into<Cow<'static, str>>, steps: Vec<Step>) -> Self {
        MongoMigration {
            version,
            name: name.into(),
            steps,
        }
    }
}

impl VersionedMigration for MongoMigration {
    fn version(&self) -> i64 {
        self.version
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the steps' canonical BSON, hex encoded.
    fn checksum(&self) -> String {
        let described: Vec<Bson> = self
            .steps
            .iter()
            .map(|s| Bson::Document(s.describe()))
            .collect();
        let mut bytes = Vec::new();
        // Encoding a document of documents cannot fail.
        let _ = doc! { "steps": described }.to_writer(&mut bytes);
        hex::encode(Sha256::digest(&bytes))
    }
}

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::MONGO)
        .with_operation("migrate")
}

/// An ordered set of MongoDB migrations for one database.
#[derive(Clone, Debug)]
pub struct MongoMigrator {
    migrations: Vec<MongoMigration>,
}

impl MongoMigrator {
    /// A migrator over `migrations`; versions must be positive and unique.
    pub fn new(migrations: Vec<MongoMigration>) -> Result<Self> {
        Ok(MongoMigrator {
            migrations: in_version_order(migrations, StoreKind::MONGO)?,
        })
    }

    /// Applies every pending migration while holding the lock document, so concurrent
    /// runners wait and then find nothing left to do. Refuses to run when an applied
    /// migration was edited or is unknown to this build.
    pub async fn up(&self, store: &MongoStore) -> Result<MigrationReport> {
        let lock = MigrationLock::acquire(store.database()).await?;
        let outcome = self.apply_locked(store).await;
        lock.release().await;
        outcome
    }

    async fn apply_locked(&self, store: &MongoStore) -> Result<MigrationReport> {
        let applied = read_applied(store).await?;
        check_applied(&known_migrations(&self.migrations), &applied)
            .map_err(|e| e.with_store(StoreKind::MONGO).with_operation("migrate"))?;
        let mut report = MigrationReport {
            applied: vec![],
            already_applied: applied.len(),
        };
        let records = store.database().collection::<Document>(RECORDS);
        for m in self
            .migrations
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
        {
            for step in &m.steps {
                step.apply(store).await.map_err(|e| {
                    let inner = classify(&e, "migrate");
                    fail(
                        inner.kind(),
                        format!(
                            "migration {} ({}) failed: {}",
                            m.version,
                            m.name,
                            inner.message()
                        ),
                    )
                })?;
            }
            records
                .insert_one(doc! {
                    "_id": m.version,
                    "name": m.name.as_ref(),
                    "checksum": m.checksum(),
                    "applied_at": mongodb::bson::DateTime::now(),
                })
                .await
                .map_err(|e| classify(&e, "migrate"))?;
            report.applied.push(m.version);
        }
        Ok(report)
    }

    /// Every migration known here or applied there, with its state.
    pub async fn status(&self, store: &MongoStore) -> Result<Vec<MigrationStatus>> {
        let applied = read_applied(store).await?;
        Ok(statuses(&known_migrations(&self.migrations), &applied))
    }
}

async fn read_applied(store: &MongoStore) -> Result<Vec<AppliedMigration>> {
    use futures_util::TryStreamExt as _;
    let cursor = store
        .database()
        .collection::<Document>(RECORDS)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .map_err(|e| classify(&e, "migrate"))?;
    let docs: Vec<Document> = cursor
        .try_collect()
        .await
        .map_err(|e| classify(&e, "migrate"))?;
    docs.into_iter()
        .map(|d| {
            let bad = || {
                fail(
                    ErrorKind::DataCorruption,
                    "udl_migrations holds a malformed record".into(),
                )
            };
            Ok(AppliedMigration {
                version: d
                    .get_i64("_id")
                    .or_else(|_| d.get_i32("_id").map(i64::from))
                    .map_err(|_| bad())?,
                name: d.get_str("name").map_err(|_| bad())?.to_owned(),
                checksum: d.get_str("checksum").map_err(|_| bad())?.to_owned(),
                at: chrono::DateTime::from_timestamp_millis(
                    d.get_datetime("applied_at")
                        .map_err(|_| bad())?
                        .timestamp_millis(),
                )
                .ok_or_else(bad)?,
            })
        })
        .collect()
}
