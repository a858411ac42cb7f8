//! Entities: typed models, their fields, and each field's sensitivity declared once.

use crate::cache_policy::CachePolicy;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::store_kind::StoreKind;
use crate::value::{FieldValue, ValueKind};

/// Field names udl keeps for what it stores beside an entity's fields (a MongoDB document's
/// expiry, say); no entity may declare one.
pub const RESERVED_PREFIX: &str = "_udl";

/// How sensitive a field's content is. Everything downstream (encryption, masking, audit,
/// cache eligibility, exports) reads this declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensitivity {
    /// Safe to show anyone.
    Public,
    /// Internal to the platform but not personal.
    Internal,
    /// Personally identifiable information.
    Pii,
    /// Protected health information (HIPAA).
    Phi,
}

/// How a masked field is shown to humans and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskRule {
    /// Replaced entirely.
    Full,
    /// Only the last four characters kept.
    Last4,
    /// For e-mail addresses: only the domain kept.
    EmailDomain,
    /// A short keyed hash, stable for correlation but unreadable.
    Hash,
}

/// What to do with a field beyond storing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Handling {
    /// Encrypt at rest. The derive sets it for every PII and PHI field that does not declare
    /// [`Handling::plaintext`].
    pub encrypt: bool,
    /// Why a PII or PHI field is stored in the clear (`#[udl(plaintext = "similarity search")]`):
    /// sensitive fields are sealed unless they say why not.
    pub plaintext: Option<&'static str>,
    /// Replace by a deterministic token where it leaves its store.
    pub tokenize: bool,
    /// How to mask it for humans and logs; `None` means shown as is.
    pub mask: Option<MaskRule>,
    /// Leave it out of exports.
    pub drop_from_export: bool,
    /// For an encrypted field that must be found by equality: how its blind index normalises
    /// values. Equality filters on the field then use the index.
    pub blind_index: Option<BlindIndexRule>,
    /// Set by the privacy layer on the stored form of an encrypted field: the store holds
    /// ciphertext here, never the value.
    pub sealed: bool,
}

impl Handling {
    /// No special handling.
    pub const NONE: Handling = Handling {
        encrypt: false,
        plaintext: None,
        tokenize: false,
        mask: None,
        drop_from_export: false,
        blind_index: None,
        sealed: false,
    };
}

/// How a blind index normalises a value before keying it: values equal after normalising
/// find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlindIndexRule {
    /// As given.
    Exact,
    /// Surrounding whitespace removed, lower case (emails, user names).
    CaseInsensitive,
    /// Digits only, keeping a leading `+` (phone numbers).
    Phone,
}

/// One field of an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMeta {
    /// Field (and column/attribute) name.
    pub name: &'static str,
    /// Value kind.
    pub kind: ValueKind,
    /// Whether it may be null.
    pub nullable: bool,
    /// Sensitivity, explicit or defaulted.
    pub sensitivity: Sensitivity,
    /// Whether `sensitivity` was declared rather than defaulted.
    pub classified: bool,
    /// Extra handling.
    pub handling: Handling,
}

impl FieldMeta {
    /// An unclassified field of Rust type `T` (defaults to [`Sensitivity::Internal`]).
    pub const fn of<T: FieldValue>(name: &'static str) -> Self {
        FieldMeta {
            name,
            kind: T::KIND,
            nullable: T::NULLABLE,
            sensitivity: Sensitivity::Internal,
            classified: false,
            handling: Handling::NONE,
        }
    }

    /// The same field with a declared sensitivity.
    pub const fn classified(mut self, sensitivity: Sensitivity) -> Self {
        self.sensitivity = sensitivity;
        self.classified = true;
        self
    }

    /// The same field with extra handling.
    pub const fn handled(mut self, handling: Handling) -> Self {
        self.handling = handling;
        self
    }
}

/// Everything a backend needs to know about an entity.
#[derive(Debug, PartialEq, Eq)]
pub struct EntityMeta {
    /// Table or collection name.
    pub name: &'static str,
    /// Fields in declaration order.
    pub fields: &'static [FieldMeta],
    /// Name of the id field.
    pub id_field: &'static str,
    /// Name of the optimistic-concurrency version field, if any.
    pub version_field: Option<&'static str>,
    /// Secondary indexes the store should maintain.
    pub indexes: &'static [IndexMeta],
    /// Fields choosing the partition in stores that partition by key (ScyllaDB); empty means
    /// the id alone. `#[udl(partition_key = "conversation_id, month")]`.
    pub partition_key: &'static [&'static str],
    /// Fields ordering rows within a partition, ascending in the table.
    /// `#[udl(clustering_key = "sent_at, id")]`.
    pub clustering_key: &'static [&'static str],
    /// The store the entity lives in (`#[udl(store = "postgres")]`); `None` for entities that
    /// are placed by the caller (test fixtures, generic tools).
    pub store: Option<StoreKind>,
    /// Where its records may be cached (`#[udl(cache = "l1_l2")]`); nothing by default.
    pub cache: CachePolicy,
}

/// A secondary index over one or more fields (ascending), declared on the entity:
/// `#[udl(index(name = "by_owner", fields = "owner, created_at", unique))]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexMeta {
    /// Index name, unique within the entity.
    pub name: &'static str,
    /// Indexed fields, in order.
    pub fields: &'static [&'static str],
    /// Whether two records may not share the indexed values.
    pub unique: bool,
}

impl EntityMeta {
    /// The field called `name`, if the entity has one.
    pub fn field(&self, name: &str) -> Option<&'static FieldMeta> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field called `name`, or `InvalidInput` naming the entity (the name is the
    /// caller's input, so it is not echoed).
    pub fn require_field(&self, name: &str) -> Result<&'static FieldMeta> {
        self.field(name)
            .ok_or_else(|| Error::invalid(format!("unknown field for entity {}", self.name)))
    }

    /// The id field.
    pub fn id(&self) -> &'static FieldMeta {
        self.field(self.id_field)
            .expect("EntityMeta::validate guarantees the id field exists")
    }

    /// The partition key fields: the declared ones, or the id.
    pub fn partition_fields(&self) -> &[&'static str] {
        if self.partition_key.is_empty() {
            std::slice::from_ref(&self.id_field)
        } else {
            self.partition_key
        }
    }

    /// Whether the id alone identifies a record in key-partitioned stores.
    pub fn keyed_by_id(&self) -> bool {
        self.partition_fields() == [self.id_field] && self.clustering_key.is_empty()
    }

    /// Whether any field holds PHI.
    pub fn has_phi(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.sensitivity == Sensitivity::Phi)
    }

    /// Whether any field holds PII or PHI: such an entity is reached only through the access
    /// policy and the audit layer.
    pub fn is_sensitive(&self) -> bool {
        self.fields
            .iter()
            .any(|f| f.sensitivity >= Sensitivity::Pii)
    }

    /// Whether a record of this form would hold PII or PHI in the clear that its declaration
    /// wants sealed: the form is the entity, not its stored form (encryption has not run).
    /// Fields that declare why they are stored in the clear (`plaintext`) do not count.
    pub fn holds_unsealed_sensitive(&self) -> bool {
        self.fields.iter().any(|f| {
            f.sensitivity >= Sensitivity::Pii
                && !f.handling.sealed
                && f.handling.plaintext.is_none()
        })
    }

    /// Whether any field is encrypted at rest (`#[udl(encrypt)]`).
    pub fn has_encrypted_fields(&self) -> bool {
        self.fields.iter().any(|f| f.handling.encrypt)
    }

    /// Checks the declaration: id and version fields exist with sensible kinds, names are
    /// unique, a PII- or PHI-bearing entity classifies every field, and each PII or PHI field
    /// is encrypted or says why not. Run at startup by every
    /// repository, so a hand-written `Entity` cannot skip what the derive enforces.
    pub fn validate(&self) -> Result<()> {
        let fail = |problem: String| Err(Error::new(crate::ErrorKind::Config, problem));
        if self.name.is_empty() || self.fields.is_empty() {
            return fail("entity must have a name and at least one field".into());
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.name.starts_with(RESERVED_PREFIX) {
                return fail(format!(
                    "entity {}: field {} starts with {RESERVED_PREFIX}, which names udl's own \
                     stored fields",
                    self.name, f.name
                ));
            }
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return fail(format!(
                    "entity {}: field {} declared twice",
                    self.name, f.name
                ));
            }
        }
        match self.field(self.id_field) {
            None => {
                return fail(format!(
                    "entity {}: id field {} missing",
                    self.name, self.id_field
                ))
            }
            Some(id) if id.nullable => {
                return fail(format!(
                    "entity {}: id field may not be optional",
                    self.name
                ))
            }
            Some(_) => {}
        }
        if let Some(v) = self.version_field {
            match self.field(v) {
                Some(f) if f.kind == ValueKind::Int && !f.nullable => {}
                _ => {
                    return fail(format!(
                        "entity {}: version field {v} must be a non-optional integer",
                        self.name
                    ))
                }
            }
        }
        let key: Vec<&str> = self
            .partition_key
            .iter()
            .chain(self.clustering_key)
            .copied()
            .collect();
        for (i, name) in key.iter().enumerate() {
            if self.field(name).is_none() || key[..i].contains(name) {
                return fail(format!(
                    "entity {}: key field {name} is unknown or named twice",
                    self.name
                ));
            }
        }
        for (i, index) in self.indexes.iter().enumerate() {
            if index.fields.is_empty() || index.fields.iter().any(|f| self.field(f).is_none()) {
                return fail(format!(
                    "entity {}: index {} must name existing fields",
                    self.name, index.name
                ));
            }
            if self.indexes[..i].iter().any(|j| j.name == index.name) {
                return fail(format!(
                    "entity {}: index {} declared twice",
                    self.name, index.name
                ));
            }
        }
        if self.is_sensitive() {
            let unclassified: Vec<_> = self
                .fields
                .iter()
                .filter(|f| !f.classified)
                .map(|f| f.name)
                .collect();
            if !unclassified.is_empty() {
                return fail(format!(
                    "entity {} holds PII or PHI, so every field must be classified; unclassified: {}",
                    self.name,
                    unclassified.join(", ")
                ));
            }
        }
        self.validate_encryption()?;
        Ok(())
    }
}

impl EntityMeta {
    /// PII and PHI fields are encrypted or say why not; encrypted fields must be ones the
    /// privacy layer can seal: not the id, version or a key field (stores need those in the
    /// clear), not a vector; a blind index needs encryption.
    fn validate_encryption(&self) -> Result<()> {
        for f in self.fields {
            let h = f.handling;
            let problem = if h.sealed {
                // The stored form, checked when its entity was.
                continue;
            } else if h.encrypt && h.plaintext.is_some() {
                "a field is either encrypted or stored in the clear, not both"
            } else if f.sensitivity >= Sensitivity::Pii && !h.encrypt && h.plaintext.is_none() {
                "PII and PHI are encrypted at rest unless the field says why not \
                 (#[udl(plaintext = \"reason\")])"
            } else if h.blind_index.is_some() && !h.encrypt {
                "a blind index is only for encrypted fields"
            } else if h.blind_index.is_some() && f.kind != ValueKind::Text {
                "a blind index is only for text fields"
            } else if !h.encrypt {
                continue;
            } else if f.name == self.id_field
                || Some(f.name) == self.version_field
                || self.partition_key.contains(&f.name)
                || self.clustering_key.contains(&f.name)
            {
                "the id, version and key fields cannot be encrypted; if it is sensitive, \
                 declare why it is stored in the clear (#[udl(plaintext = \"reason\")])"
            } else if f.kind == ValueKind::Vector {
                "vectors cannot be encrypted (similarity search needs them); if it is \
                 sensitive, declare it #[udl(plaintext = \"similarity search\")]"
            } else if h.blind_index.is_none()
                && self.indexes.iter().any(|i| i.fields.contains(&f.name))
            {
                "an indexed encrypted field needs a blind index"
            } else {
                continue;
            };
            return Err(Error::new(
                crate::ErrorKind::Config,
                format!("entity {}: field {}: {problem}", self.name, f.name),
            ));
        }
        Ok(())
    }
}

/// A typed model stored by udl. Usually derived: `#[derive(udl::Entity)]`.
pub trait Entity: Sized + Send + Sync + 'static {
    /// The id type.
    type Id: FieldValue + Clone + Send + Sync;

    /// The entity's metadata.
    fn meta() -> &'static EntityMeta;

    /// This record's id.
    fn id(&self) -> Self::Id;

    /// Converts into a record holding every field.
    fn into_record(self) -> Record;

    /// Converts back from a record; a missing field or a wrong kind is `DataCorruption`.
    fn from_record(record: Record) -> Result<Self>;
}

#[cfg(test)]
mod tests {
    use super::*;

    static PHI_WITH_GAP: EntityMeta = EntityMeta {
        name: "notes",
        fields: &[
            FieldMeta::of::<i64>("id").classified(Sensitivity::Internal),
            FieldMeta::of::<String>("body").classified(Sensitivity::Phi),
            FieldMeta::of::<String>("author"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: CachePolicy::NONE,
    };

    #[test]
    fn phi_entity_with_unclassified_field_is_refused() {
        let err = PHI_WITH_GAP.validate().unwrap_err();
        assert!(err.message().contains("author"), "{err}");
    }

    static BAD_VERSION: EntityMeta = EntityMeta {
        name: "things",
        fields: &[FieldMeta::of::<i64>("id"), FieldMeta::of::<String>("rev")],
        id_field: "id",
        version_field: Some("rev"),
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: CachePolicy::NONE,
    };

    #[test]
    fn version_field_must_be_an_integer() {
        assert!(BAD_VERSION.validate().is_err());
    }

    static RESERVED_NAME: EntityMeta = EntityMeta {
        name: "things",
        fields: &[
            FieldMeta::of::<i64>("id"),
            FieldMeta::of::<i64>("_udl_expires_at"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: CachePolicy::NONE,
    };

    #[test]
    fn field_names_of_udls_own_are_refused() {
        let err = RESERVED_NAME.validate().unwrap_err();
        assert!(
            err.message().contains("_udl_expires_at starts with _udl"),
            "{err}"
        );
    }
}
