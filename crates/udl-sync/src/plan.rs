//! What the relay does with each column of a captured table, read from the entity's
//! declaration alone: public and internal fields pass, PII and PHI fields declared `tokenize`
//! become vault tokens, every other PII or PHI field, `no_export` fields and blind indexes
//! are stripped. A table whose declaration cannot say (an unclassified field, a column it
//! does not declare, a column type the relay cannot read) has no plan but a reason to halt.

use std::sync::OnceLock;

use udl_core::{EntityMeta, FieldMeta, Handling, Sensitivity};

use crate::column_value;
use crate::pgoutput::Relation;

/// What happens to one field on its way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Sent as is.
    Pass,
    /// Replaced by its vault token (opened first when the store holds it sealed).
    Tokenize,
    /// Left out.
    Strip(StripReason),
}

/// Why a field is left out, as the redaction ledger records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StripReason {
    /// PII or PHI without `tokenize`.
    Sensitive,
    /// Declared `no_export`.
    NoExport,
    /// A blind index beside an encrypted field.
    BlindIndex,
    /// A column of values written before their field was sealed, waiting to be sealed.
    LegacyPlaintext,
}

impl StripReason {
    /// The ledger's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            StripReason::Sensitive => "sensitive",
            StripReason::NoExport => "no_export",
            StripReason::BlindIndex => "blind_index",
            StripReason::LegacyPlaintext => "legacy_plaintext",
        }
    }
}

/// One field of the stored form and its treatment.
#[derive(Clone, Copy, Debug)]
pub struct PlannedField {
    /// The field as stored (a sealed field is bytes here).
    pub stored: &'static FieldMeta,
    /// The field as declared (its kind once opened); `None` for a blind index.
    pub declared: Option<&'static FieldMeta>,
    /// What happens to it.
    pub treatment: Treatment,
}

/// The plan for one entity.
#[derive(Debug)]
pub struct EntityPlan {
    /// The entity as declared.
    pub entity: &'static EntityMeta,
    /// Its fields as stored, in stored order.
    pub fields: Vec<PlannedField>,
}

/// The `<field>_plaintext` columns the platform's migrations left (values from before their
/// field was sealed), by table: always stripped. Made once per process.
fn legacy_columns() -> &'static [(&'static str, FieldMeta)] {
    static COLUMNS: OnceLock<Vec<(&'static str, FieldMeta)>> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        udl_privacy::plaintext_columns()
            .iter()
            .filter_map(|c| {
                let field = c.entity.field(c.field)?;
                let name: &'static str = Box::leak(c.column().into_boxed_str());
                let column = FieldMeta {
                    name,
                    nullable: true,
                    handling: Handling::NONE,
                    ..*field
                };
                Some((c.entity.name, column))
            })
            .collect()
    })
}

/// `Err` naming the fields of `entity` whose sensitivity is not declared: nothing of such an
/// entity leaves its store.
pub(crate) fn require_classified(entity: &EntityMeta) -> Result<(), String> {
    let unclassified: Vec<&str> = entity
        .fields
        .iter()
        .filter(|f| !f.classified)
        .map(|f| f.name)
        .collect();
    if unclassified.is_empty() {
        return Ok(());
    }
    Err(format!(
        "entity {} has unclassified fields ({}): declare each one's sensitivity before anything of it leaves its store",
        entity.name,
        unclassified.join(", ")
    ))
}

/// The treatment `field` (as declared) asks for.
pub(crate) fn treatment_of(field: &FieldMeta) -> Treatment {
    if field.handling.drop_from_export {
        return Treatment::Strip(StripReason::NoExport);
    }
    match field.sensitivity {
        Sensitivity::Public | Sensitivity::Internal => Treatment::Pass,
        Sensitivity::Pii | Sensitivity::Phi if field.handling.tokenize => Treatment::Tokenize,
        Sensitivity::Pii | Sensitivity::Phi => Treatment::Strip(StripReason::Sensitive),
    }
}

impl EntityPlan {
    /// The plan for `entity`, or why there cannot be one.
    pub fn new(entity: &'static EntityMeta) -> Result<Self, String> {
        require_classified(entity)?;
        let form = udl_privacy::stored_form(entity).map_err(|e| e.to_string())?;
        let legacy = legacy_columns()
            .iter()
            .filter(|(table, _)| *table == entity.name)
            .map(|(_, column)| PlannedField {
                stored: column,
                declared: None,
                treatment: Treatment::Strip(StripReason::LegacyPlaintext),
            });
        let fields = form
            .fields
            .iter()
            .map(|stored| {
                let declared = entity.field(stored.name);
                let treatment = match declared {
                    Some(f) => treatment_of(f),
                    None => Treatment::Strip(StripReason::BlindIndex),
                };
                PlannedField {
                    stored,
                    declared,
                    treatment,
                }
            })
            .chain(legacy)
            .collect();
        Ok(EntityPlan { entity, fields })
    }

    /// The field the relation's column `name` holds.
    pub fn field(&self, name: &str) -> Option<(usize, &PlannedField)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.stored.name == name)
    }

    /// For each column of `relation`, the index of its field in this plan; or why the
    /// table does not match its declaration (a column not declared, a type that cannot
    /// hold the field). Every declared field need not be present (a column added later).
    pub fn bind(&self, relation: &Relation) -> Result<Vec<usize>, String> {
        relation
            .columns
            .iter()
            .map(|column| {
                let (i, field) = self.field(&column.name).ok_or_else(|| {
                    format!(
                        "table {}.{} has a column {} that entity {} does not declare: declare it (with its sensitivity) or drop it",
                        relation.namespace, relation.name, column.name, self.entity.name
                    )
                })?;
                if !column_value::readable(field.stored.kind, column.type_oid) {
                    return Err(format!(
                        "column {} of table {}.{} has type oid {}, which cannot hold field {} ({:?})",
                        column.name,
                        relation.namespace,
                        relation.name,
                        column.type_oid,
                        field.stored.name,
                        field.stored.kind
                    ));
                }
                Ok(i)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::RelationColumn;
    use udl_core::{BlindIndexRule, CachePolicy, Handling, StoreKind};

    const fn sensitive(name: &'static str, s: Sensitivity, handling: Handling) -> FieldMeta {
        FieldMeta::of::<String>(name)
            .classified(s)
            .handled(handling)
    }

    static FIELDS: [FieldMeta; 6] = [
        FieldMeta::of::<i64>("id").classified(Sensitivity::Internal),
        FieldMeta::of::<String>("topic").classified(Sensitivity::Public),
        sensitive(
            "patient_ref",
            Sensitivity::Phi,
            Handling {
                tokenize: true,
                plaintext: Some("a reference"),
                ..Handling::NONE
            },
        ),
        sensitive(
            "email",
            Sensitivity::Pii,
            Handling {
                encrypt: true,
                blind_index: Some(BlindIndexRule::CaseInsensitive),
                ..Handling::NONE
            },
        ),
        sensitive(
            "notes",
            Sensitivity::Phi,
            Handling {
                encrypt: true,
                ..Handling::NONE
            },
        ),
        FieldMeta::of::<String>("room")
            .classified(Sensitivity::Internal)
            .handled(Handling {
                drop_from_export: true,
                ..Handling::NONE
            }),
    ];

    static ENTITY: EntityMeta = EntityMeta {
        name: "sessions",
        fields: &FIELDS,
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: Some(StoreKind::POSTGRES),
        cache: CachePolicy::NONE,
    };

    fn treatments(plan: &EntityPlan) -> Vec<(&str, Treatment)> {
        plan.fields
            .iter()
            .map(|f| (f.stored.name, f.treatment))
            .collect()
    }

    #[test]
    fn each_field_is_treated_as_declared() {
        let plan = EntityPlan::new(&ENTITY).unwrap();
        assert_eq!(
            treatments(&plan),
            vec![
                ("id", Treatment::Pass),
                ("topic", Treatment::Pass),
                ("patient_ref", Treatment::Tokenize),
                ("email", Treatment::Strip(StripReason::Sensitive)),
                ("email_bidx", Treatment::Strip(StripReason::BlindIndex)),
                ("notes", Treatment::Strip(StripReason::Sensitive)),
                ("room", Treatment::Strip(StripReason::NoExport)),
            ]
        );
    }

    #[test]
    fn an_unclassified_field_leaves_no_plan() {
        static LOOSE: [FieldMeta; 2] = [
            FieldMeta::of::<i64>("id").classified(Sensitivity::Internal),
            FieldMeta::of::<String>("note"),
        ];
        static E: EntityMeta = EntityMeta {
            fields: &LOOSE,
            ..ENTITY
        };
        let why = EntityPlan::new(&E).unwrap_err();
        assert!(why.contains("unclassified fields (note)"), "{why}");
    }

    #[test]
    fn binding_refuses_undeclared_columns_and_foreign_types() {
        let plan = EntityPlan::new(&ENTITY).unwrap();
        let column = |name: &str, type_oid| RelationColumn {
            name: name.into(),
            type_oid,
            key: false,
        };
        let relation = |columns| Relation {
            id: 1,
            namespace: "app".into(),
            name: "sessions".into(),
            columns,
        };
        assert_eq!(
            plan.bind(&relation(vec![column("topic", 25), column("id", 20)]))
                .unwrap(),
            vec![1, 0]
        );
        let why = plan
            .bind(&relation(vec![column("id", 20), column("mood", 25)]))
            .unwrap_err();
        assert!(
            why.contains("column mood that entity sessions does not declare"),
            "{why}"
        );
        let why = plan.bind(&relation(vec![column("id", 1700)])).unwrap_err();
        assert!(why.contains("type oid 1700"), "{why}");
    }
}
