//! Contracts shared by every udl backend and layer. No I/O lives here.
//!
//! A typed [`Repository`] is written once over any [`RecordStore`]; backends only ever see
//! [`Record`]s described by an [`EntityMeta`], which is what lets encryption, masking, audit
//! and caching be layers that behave the same on every store.

mod backend;
mod cache_policy;
mod capability;
mod changes;
mod context;
mod cursor;
mod entity;
mod error;
mod filter;
mod layer;
mod limits;
mod mask;
mod migration;
pub mod op;
mod query;
mod record;
mod records;
mod registry;
mod repository;
mod store;
mod store_kind;
mod text_enum;
mod value;
mod vector_bytes;

pub use backend::{Backend, PoolFigures, Probe};
pub use cache_policy::{CachePolicy, CacheTiers};
pub use capability::{Capabilities, Capability};
pub use changes::{Changes, ValidChanges};
pub use context::{AccessContext, Purpose, Role};
pub use cursor::Cursor;
pub use entity::{
    BlindIndexRule, Entity, EntityMeta, FieldMeta, Handling, IndexMeta, MaskRule, Sensitivity,
};
pub use error::{Error, ErrorKind, Result};
pub use filter::{field, FieldFilter, Filter};
pub use layer::StoreLayer;
pub use limits::QueryLimits;
pub use mask::{mask_value, REDACTED};
pub use migration::{
    check_applied, check_versions, in_version_order, known_migrations, statuses, AppliedMigration,
    KnownMigration, MigrationReport, MigrationState, MigrationStatus, VersionedMigration,
};
pub use query::{Direction, Page, PageOf, Query, SortKey};
pub use record::{OrderedValues, Record};
pub use records::Records;
pub use registry::Registry;
pub use repository::Repository;
pub use store::RecordStore;
pub use store_kind::StoreKind;
pub use value::{FieldValue, Json, Value, ValueKind};
pub use vector_bytes::{put_vector, read_vector};

/// Re-exported so the derive macro's generated code and `text_enum!` can name them.
#[doc(hidden)]
pub mod __private {
    pub use chrono;
    pub use uuid;
}
