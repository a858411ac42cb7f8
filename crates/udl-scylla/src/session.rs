//! The session handle that the record store and the store's typed APIs run on: the driver's
//! caching session and the keyspace, with statement preparation. It knows nothing of the
//! store built around it, as PostgreSQL's records sit over an executor.

use std::sync::Arc;

use scylla::client::caching_session::CachingSession;
use scylla::statement::prepared::PreparedStatement;
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::classify;

/// A ScyllaDB session in one keyspace.
#[derive(Clone)]
pub struct ScyllaSession {
    session: Arc<CachingSession>,
    keyspace: String,
}

impl ScyllaSession {
    pub(crate) fn new(session: Arc<CachingSession>, keyspace: String) -> Self {
        ScyllaSession { session, keyspace }
    }

    /// The driver's session (with its prepared-statement cache).
    pub fn session(&self) -> &CachingSession {
        &self.session
    }

    /// The keyspace udl's tables live in.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Prepares `cql`; owners keep the statement and execute it as often as they like.
    pub async fn prepare(&self, cql: String) -> Result<PreparedStatement> {
        self.session
            .get_session()
            .prepare(cql)
            .await
            .map_err(|e| match classify(&e.into(), "prepare") {
                // udl prepares only its own statements: a refusal means the tables they name
                // are missing or differ, which a migration fixes.
                refused if refused.kind() == ErrorKind::InvalidInput => Error::new(
                    ErrorKind::Config,
                    format!(
                        "ScyllaDB refused a statement udl prepares: a table it uses is missing or differs in keyspace {} (run `udl migrate up`)",
                        self.keyspace
                    ),
                )
                .with_store(StoreKind::SCYLLA)
                .with_operation("prepare"),
                other => other,
            })
    }
}
