//! Which database a store is: the one name every layer, metric and message uses for it.

use std::fmt;

/// Which database a store is, by the name its config section, metrics and messages use.
/// Open: a backend outside this crate names its own (`StoreKind::named("sqlite")`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKind(&'static str);

impl StoreKind {
    /// PostgreSQL.
    pub const POSTGRES: StoreKind = StoreKind("postgres");
    /// MongoDB (FerretDB in tests).
    pub const MONGO: StoreKind = StoreKind("mongo");
    /// Redis.
    pub const REDIS: StoreKind = StoreKind("redis");
    /// ScyllaDB (Apache Cassandra in tests).
    pub const SCYLLA: StoreKind = StoreKind("scylla");
    /// The in-process store used for unit tests of generic code.
    pub const MEMORY: StoreKind = StoreKind("memory");

    /// The store called `name`: lower-case, as its config section is named.
    pub const fn named(name: &'static str) -> Self {
        StoreKind(name)
    }

    /// Lower-case name used in messages, metrics and config keys.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
