//! The one vocabulary of operation names — the names of [`crate::Repository`]'s methods — used
//! in spans, metric labels, errors and audit entries alike, whatever layer or store reports
//! them.

/// Read one record by id.
pub const GET: &str = "get";
/// Store one new record.
pub const CREATE: &str = "create";
/// Store many new records, all or nothing.
pub const CREATE_MANY: &str = "create_many";
/// Store a new record that expires by itself.
pub const CREATE_WITH_TTL: &str = "create_with_ttl";
/// Change fields of one record.
pub const UPDATE: &str = "update";
/// Remove one record.
pub const DELETE: &str = "delete";
/// Read a page of records matching a filter.
pub const LIST: &str = "list";
/// Count records matching a filter.
pub const COUNT: &str = "count";
/// Whether a record exists.
pub const EXISTS: &str = "exists";
/// Similarity search.
pub const NEAREST: &str = "nearest";
