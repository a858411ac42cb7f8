//! Which database a store is: the one name every layer, metric and message uses for it.

use std::fmt;

/// Which database a store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// PostgreSQL.
    Postgres,
    /// MongoDB (FerretDB in tests).
    Mongo,
    /// Redis.
    Redis,
    /// ScyllaDB (Apache Cassandra in tests).
    Scylla,
    /// The in-process store used for unit tests of generic code.
    Memory,
}

impl StoreKind {
    /// Lower-case name used in messages, metrics and config keys.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Mongo => "mongo",
            StoreKind::Redis => "redis",
            StoreKind::Scylla => "scylla",
            StoreKind::Memory => "memory",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
