//! What the connected server can do, asked once at connect (`hello`, `buildInfo`).

use mongodb::bson::{doc, Document};
use mongodb::Database;
use udl_core::Result;

use crate::error::classify;

/// Facts about the server that decide the store's capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// Version the server reports (FerretDB reports the MongoDB version it emulates).
    pub version: String,
    /// Member of a replica set or a sharded cluster: multi-document transactions work.
    pub transactions: bool,
    /// FerretDB: no transactions, TTL indexes, `$vectorSearch` or change streams.
    pub ferretdb: bool,
    /// Change streams report every write as it commits (replica sets and sharded clusters;
    /// not FerretDB, not a standalone server).
    pub change_streams: bool,
    /// TTL indexes expire documents (every MongoDB; not FerretDB).
    pub ttl_indexes: bool,
    /// Atlas Search answers (`$listSearchIndexes`), so `$vectorSearch` exists.
    pub native_vector_search: bool,
}

impl ServerInfo {
    /// Asks the server through `db`.
    pub async fn detect(db: &Database) -> Result<Self> {
        let hello = db
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| classify(&e, "connect"))?;
        let build = db
            .run_command(doc! { "buildInfo": 1 })
            .await
            .map_err(|e| classify(&e, "connect"))?;
        let mut info = Self::from_replies(&hello, &build);
        // Only Atlas (and Atlas local) knows this stage; everything else refuses it.
        info.native_vector_search = !info.ferretdb
            && db
                .run_command(doc! { "aggregate": "udl_probe", "pipeline": [{ "$listSearchIndexes": {} }], "cursor": {} })
                .await
                .is_ok();
        Ok(info)
    }

    fn from_replies(hello: &Document, build: &Document) -> Self {
        let replica_set = hello.contains_key("setName");
        let sharded = hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
        let ferretdb = build.contains_key("ferretdbVersion") || build.contains_key("ferretdb");
        ServerInfo {
            version: build.get_str("version").unwrap_or("unknown").to_owned(),
            transactions: (replica_set || sharded) && !ferretdb,
            change_streams: (replica_set || sharded) && !ferretdb,
            ferretdb,
            ttl_indexes: !ferretdb,
            native_vector_search: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_set_means_transactions_unless_ferretdb() {
        let rs = doc! { "setName": "rs0" };
        let mongo = doc! { "version": "7.0.14" };
        assert!(ServerInfo::from_replies(&rs, &mongo).transactions);
        assert!(ServerInfo::from_replies(&rs, &mongo).change_streams);
        let ferret = doc! { "version": "7.0.42", "ferretdbVersion": "v1.24.2" };
        let info = ServerInfo::from_replies(&doc! {}, &ferret);
        assert!(info.ferretdb && !info.transactions && !info.ttl_indexes && !info.change_streams);
        let standalone = ServerInfo::from_replies(&doc! {}, &mongo);
        assert!(!standalone.transactions && !standalone.change_streams);
    }
}
