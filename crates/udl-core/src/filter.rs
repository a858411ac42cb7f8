//! The backend-neutral filter language.
//!
//! Semantics every backend follows: a comparison with a null field is false; `not` is plain
//! boolean negation of that (so `ne` matches records where the field is null); `eq(Null)` means
//! "is null"; `in` with an empty list matches nothing; `prefix` matches text literally (no
//! wildcards).

use crate::entity::EntityMeta;
use crate::error::{Error, Result};
use crate::record::check_value;
use crate::value::{Value, ValueKind};

/// A condition on records.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Matches every record.
    All,
    /// Field equals value (`Null` means "is null").
    Eq(String, Value),
    /// Field differs from value or is null.
    Ne(String, Value),
    /// Field is less than value.
    Lt(String, Value),
    /// Field is less than or equal to value.
    Lte(String, Value),
    /// Field is greater than value.
    Gt(String, Value),
    /// Field is greater than or equal to value.
    Gte(String, Value),
    /// Field equals one of the values.
    In(String, Vec<Value>),
    /// Field is null.
    IsNull(String),
    /// Text field starts with the given text.
    Prefix(String, String),
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
}

/// Starts a condition on `name`: `field("status").eq("active")`.
pub fn field(name: impl Into<String>) -> FieldFilter {
    FieldFilter(name.into())
}

/// Builder for conditions on one field.
#[derive(Clone, Debug)]
pub struct FieldFilter(String);

impl FieldFilter {
    /// Equal to.
    pub fn eq(self, v: impl Into<Value>) -> Filter {
        Filter::Eq(self.0, v.into())
    }
    /// Not equal to (or null).
    pub fn ne(self, v: impl Into<Value>) -> Filter {
        Filter::Ne(self.0, v.into())
    }
    /// Less than.
    pub fn lt(self, v: impl Into<Value>) -> Filter {
        Filter::Lt(self.0, v.into())
    }
    /// Less than or equal.
    pub fn lte(self, v: impl Into<Value>) -> Filter {
        Filter::Lte(self.0, v.into())
    }
    /// Greater than.
    pub fn gt(self, v: impl Into<Value>) -> Filter {
        Filter::Gt(self.0, v.into())
    }
    /// Greater than or equal.
    pub fn gte(self, v: impl Into<Value>) -> Filter {
        Filter::Gte(self.0, v.into())
    }
    /// One of.
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::In(self.0, values.into_iter().map(Into::into).collect())
    }
    /// Is null.
    pub fn is_null(self) -> Filter {
        Filter::IsNull(self.0)
    }
    /// Is not null.
    pub fn is_not_null(self) -> Filter {
        Filter::Not(Box::new(Filter::IsNull(self.0)))
    }
    /// Text starts with `prefix`.
    pub fn starts_with(self, prefix: impl Into<String>) -> Filter {
        Filter::Prefix(self.0, prefix.into())
    }
}

impl Filter {
    /// Both this and `other`.
    pub fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::All, f) | (f, Filter::All) => f,
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) => {
                a.push(f);
                Filter::And(a)
            }
            (f, g) => Filter::And(vec![f, g]),
        }
    }

    /// This or `other`.
    pub fn or(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::Or(mut a), f) => {
                a.push(f);
                Filter::Or(a)
            }
            (f, g) => Filter::Or(vec![f, g]),
        }
    }

    /// The negation of this filter.
    #[allow(clippy::should_implement_trait)] // `!filter` reads worse in filter chains
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// Checks every field exists on `entity` and every value fits its field's kind.
    /// Nesting is bounded so hostile input cannot exhaust the stack of a translator.
    pub fn validate(&self, entity: &EntityMeta) -> Result<()> {
        self.validate_at(entity, 0)
    }

    fn validate_at(&self, entity: &EntityMeta, depth: usize) -> Result<()> {
        const MAX_DEPTH: usize = 32;
        if depth > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "filter nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let compare = |name: &str, v: &Value| -> Result<()> {
            let f = entity.require_field(name)?;
            if f.kind == ValueKind::Vector {
                return Err(Error::invalid(format!(
                    "entity {}: vector field {} can only be searched by similarity",
                    entity.name, f.name
                )));
            }
            if v.is_null() {
                return Ok(());
            }
            let probe = crate::entity::FieldMeta {
                nullable: true,
                ..*f
            };
            check_value(entity, &probe, v)
        };
        let ordered = |name: &str, v: &Value| -> Result<()> {
            compare(name, v)?;
            if v.is_null() {
                return Err(Error::invalid("range comparison with null"));
            }
            let f = entity.require_field(name)?;
            if matches!(f.kind, ValueKind::Json | ValueKind::Bool) {
                return Err(Error::invalid(format!(
                    "entity {}: field {} cannot be compared by order",
                    entity.name, f.name
                )));
            }
            Ok(())
        };
        match self {
            Filter::All => Ok(()),
            Filter::Eq(n, v) | Filter::Ne(n, v) => compare(n, v),
            Filter::Lt(n, v) | Filter::Lte(n, v) | Filter::Gt(n, v) | Filter::Gte(n, v) => {
                ordered(n, v)
            }
            Filter::In(n, vs) => vs.iter().try_for_each(|v| compare(n, v)),
            Filter::IsNull(n) => entity.require_field(n).map(|_| ()),
            Filter::Prefix(n, _) => {
                let f = entity.require_field(n)?;
                if f.kind != ValueKind::Text {
                    return Err(Error::invalid(format!(
                        "entity {}: prefix filter needs a text field, {} is {:?}",
                        entity.name, f.name, f.kind
                    )));
                }
                Ok(())
            }
            Filter::And(fs) | Filter::Or(fs) => {
                fs.iter().try_for_each(|f| f.validate_at(entity, depth + 1))
            }
            Filter::Not(f) => f.validate_at(entity, depth + 1),
        }
    }

    /// Whether the filter uses a prefix condition anywhere.
    pub fn uses_prefix(&self) -> bool {
        match self {
            Filter::Prefix(..) => true,
            Filter::And(fs) | Filter::Or(fs) => fs.iter().any(Filter::uses_prefix),
            Filter::Not(f) => f.uses_prefix(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::FieldMeta;

    static NOTES: EntityMeta = EntityMeta {
        name: "notes",
        fields: &[
            FieldMeta::of::<i64>("id"),
            FieldMeta::of::<String>("title"),
            FieldMeta::of::<Option<i64>>("score"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: crate::CachePolicy::NONE,
    };

    #[test]
    fn unknown_field_is_invalid_input_without_echo() {
        let err = field("title; DROP TABLE notes")
            .eq("x")
            .validate(&NOTES)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(!err.to_string().contains("DROP"), "{err}");
    }

    #[test]
    fn kind_mismatch_is_refused() {
        assert!(field("score").gt("ten").validate(&NOTES).is_err());
        assert!(field("title").starts_with("a").validate(&NOTES).is_ok());
        assert!(field("score").starts_with("1").validate(&NOTES).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut f = field("score").is_null();
        for _ in 0..100 {
            f = f.not();
        }
        assert!(f.validate(&NOTES).is_err());
    }

    #[test]
    fn and_flattens_and_drops_all() {
        let f = Filter::All
            .and(field("id").eq(1_i64))
            .and(field("score").is_null());
        assert!(matches!(f, Filter::And(ref v) if v.len() == 2));
    }
}
