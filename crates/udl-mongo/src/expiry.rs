//! Records with a time to live on MongoDB: the expiry instant in a field of udl's own, a TTL
//! index on it (the server deletes expired documents within its monitor's period), and every
//! read leaving out what has expired meanwhile, so a record is gone at its expiry exactly, as
//! on Redis and ScyllaDB.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document, RawDocument};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use udl_core::Result;

use crate::error::classify;

/// The field holding a document's expiry (never an entity's: `_udl` is reserved).
pub const EXPIRES_AT: &str = "_udl_expires_at";

/// The TTL index's name.
const INDEX: &str = "udl_expires_at";

/// The collections whose TTL index this process has made sure of.
#[derive(Default)]
pub(crate) struct Expiry {
    indexed: Mutex<HashSet<&'static str>>,
}

impl Expiry {
    /// Makes sure `coll` (of entity `name`) has the TTL index; once per process.
    pub async fn ensure_index(
        &self,
        name: &'static str,
        coll: &Collection<Document>,
    ) -> Result<()> {
        if self
            .indexed
            .lock()
            .map(|s| s.contains(name))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let options = IndexOptions::builder()
            .name(INDEX.to_owned())
            .expire_after(Duration::ZERO)
            .build();
        let model = IndexModel::builder()
            .keys(doc! { EXPIRES_AT: 1 })
            .options(options)
            .build();
        coll.create_index(model)
            .await
            .map_err(|e| classify(&e, udl_core::op::CREATE_WITH_TTL))?;
        if let Ok(mut indexed) = self.indexed.lock() {
            indexed.insert(name);
        }
        Ok(())
    }
}

/// The expiry of a record written now to live `ttl`.
pub fn expires_at(ttl: Duration) -> DateTime {
    let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_millis(
        DateTime::now()
            .timestamp_millis()
            .saturating_add(millis.max(1)),
    )
}

/// Whether `doc` (as the server sent it) carries an expiry that has passed.
pub fn has_expired(doc: &RawDocument) -> bool {
    doc.get_datetime(EXPIRES_AT)
        .is_ok_and(|at| at <= DateTime::now())
}

/// `filter`, restricted to documents that have not expired.
pub fn alive(mut filter: Document) -> Document {
    filter.insert(EXPIRES_AT, doc! { "$not": { "$lte": DateTime::now() } });
    filter
}
