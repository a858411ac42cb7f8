//! The stored form of an entity with encrypted fields: what the store really holds. Each
//! encrypted field becomes a bytes field of ciphertext (marked `sealed`), and a field with a
//! blind index gains `<field>_bidx` beside it, which also takes its place in indexes. Backends
//! create tables from this form, and the privacy layer hands it to them instead of the entity.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use udl_core::{
    EntityMeta, Error, ErrorKind, FieldMeta, Handling, IndexMeta, Result, Sensitivity, ValueKind,
};

/// Name of the blind-index field of `field`.
pub fn blind_index_name(field: &str) -> String {
    format!("{field}_bidx")
}

/// The stored form of `entity`: `entity` itself when nothing is encrypted. Built once per
/// entity and kept for the life of the process (entities are static declarations).
pub fn stored_form(entity: &'static EntityMeta) -> Result<&'static EntityMeta> {
    if !entity.has_encrypted_fields() {
        return Ok(entity);
    }
    // Read on every operation of every encrypted entity; written once per entity.
    static FORMS: OnceLock<RwLock<HashMap<usize, &'static EntityMeta>>> = OnceLock::new();
    let forms = FORMS.get_or_init(Default::default);
    let key = entity as *const EntityMeta as usize;
    let known = forms
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .copied();
    if let Some(form) = known {
        return Ok(form);
    }
    let mut forms = forms.write().unwrap_or_else(|p| p.into_inner());
    if let Some(form) = forms.get(&key) {
        return Ok(form);
    }
    entity.validate()?;
    let form: &'static EntityMeta = Box::leak(Box::new(build(entity)?));
    form.validate()?;
    forms.insert(key, form);
    Ok(form)
}

fn build(entity: &'static EntityMeta) -> Result<EntityMeta> {
    let mut fields = Vec::with_capacity(entity.fields.len() + 2);
    let mut renamed: HashMap<&'static str, &'static str> = HashMap::new();
    for f in entity.fields {
        if !f.handling.encrypt {
            fields.push(*f);
            continue;
        }
        fields.push(FieldMeta {
            kind: ValueKind::Bytes,
            handling: Handling {
                sealed: true,
                ..f.handling
            },
            ..*f
        });
        if f.handling.blind_index.is_some() {
            let name = blind_index_name(f.name);
            if entity.field(&name).is_some() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "entity {}: field {name} is reserved for a blind index",
                        entity.name
                    ),
                ));
            }
            let name: &'static str = Box::leak(name.into_boxed_str());
            renamed.insert(f.name, name);
            fields.push(FieldMeta {
                name,
                kind: ValueKind::Bytes,
                nullable: f.nullable,
                sensitivity: Sensitivity::Internal,
                classified: true,
                handling: Handling::NONE,
            });
        }
    }
    let indexes: Vec<IndexMeta> = entity
        .indexes
        .iter()
        .map(|index| {
            let fields: Vec<&'static str> = index
                .fields
                .iter()
                .map(|f| renamed.get(f).copied().unwrap_or(f))
                .collect();
            IndexMeta {
                fields: Box::leak(fields.into_boxed_slice()),
                ..*index
            }
        })
        .collect();
    Ok(EntityMeta {
        fields: Box::leak(fields.into_boxed_slice()),
        indexes: Box::leak(indexes.into_boxed_slice()),
        ..*entity
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_core::BlindIndexRule;

    static PATIENTS: EntityMeta = EntityMeta {
        name: "patients",
        fields: &[
            FieldMeta::of::<i64>("id").classified(Sensitivity::Internal),
            FieldMeta::of::<String>("email")
                .classified(Sensitivity::Pii)
                .handled(Handling {
                    encrypt: true,
                    blind_index: Some(BlindIndexRule::CaseInsensitive),
                    ..Handling::NONE
                }),
            FieldMeta::of::<Option<String>>("notes")
                .classified(Sensitivity::Phi)
                .handled(Handling {
                    encrypt: true,
                    ..Handling::NONE
                }),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[IndexMeta {
            name: "by_email",
            fields: &["email"],
            unique: true,
        }],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn encrypted_fields_become_sealed_bytes_with_blind_indexes_taking_their_index_place() {
        let form = stored_form(&PATIENTS).unwrap();
        let names: Vec<_> = form.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["id", "email", "email_bidx", "notes"]);
        let email = form.field("email").unwrap();
        assert_eq!(email.kind, ValueKind::Bytes);
        assert!(email.handling.sealed);
        assert!(form.field("notes").unwrap().nullable);
        assert_eq!(form.indexes[0].fields, ["email_bidx"]);
        assert!(!form.holds_unsealed_sensitive());
        assert!(PATIENTS.holds_unsealed_sensitive());
        assert!(std::ptr::eq(form, stored_form(&PATIENTS).unwrap()));
    }

    static PLAIN: EntityMeta = EntityMeta {
        name: "plain",
        fields: &[FieldMeta::of::<i64>("id")],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn an_entity_without_encrypted_fields_is_its_own_stored_form() {
        assert!(std::ptr::eq(stored_form(&PLAIN).unwrap(), &PLAIN));
    }

    static ENCRYPTED_ID: EntityMeta = EntityMeta {
        name: "bad",
        fields: &[FieldMeta::of::<String>("id").handled(Handling {
            encrypt: true,
            ..Handling::NONE
        })],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn an_encrypted_id_is_refused() {
        let err = stored_form(&ENCRYPTED_ID).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("cannot be encrypted"), "{err}");
    }
}
