//! CQL text built from entity metadata: table DDL, and WHERE clauses for the filters a
//! partitioned table can serve (the whole partition key by equality, then clustering columns
//! in order, the last one optionally by range). Anything else is refused, never run with
//! `ALLOW FILTERING`: that scans the cluster.

use scylla::value::CqlValue;
use udl_core::{
    Direction, EntityMeta, Error, FieldMeta, Filter, Result, SortKey, StoreKind, Value, ValueKind,
};

use crate::values::to_cql;

/// The CQL type of a field kind.
fn column_type(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "boolean",
        ValueKind::Int => "bigint",
        ValueKind::Float => "double",
        ValueKind::Text | ValueKind::Json => "text",
        ValueKind::Bytes => "blob",
        ValueKind::Uuid => "uuid",
        ValueKind::Timestamp => "timestamp",
        ValueKind::Date => "date",
        ValueKind::Vector => "list<float>",
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE TABLE IF NOT EXISTS {keyspace}."<name>" (...)` for `entity`, keyed as it declares
/// (partition key, else the id; clustering columns ascending). For use in a migration.
pub fn create_table(entity: &EntityMeta) -> String {
    let columns: Vec<String> = entity
        .fields
        .iter()
        .map(|f| format!("\"{}\" {}", f.name, column_type(f.kind)))
        .collect();
    let mut key = format!("({})", quoted(entity.partition_fields()));
    if !entity.clustering_key.is_empty() {
        key = format!("{key}, {}", quoted(entity.clustering_key));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {{keyspace}}.\"{}\" ({}, PRIMARY KEY ({key}))",
        entity.name,
        columns.join(", ")
    )
}

/// The quoted column list of `entity`, in field order.
pub fn columns(entity: &EntityMeta) -> String {
    let names: Vec<&str> = entity.fields.iter().map(|f| f.name).collect();
    quoted(&names)
}

/// A WHERE clause (with its leading space, or empty) and its bound values.
pub struct Where {
    /// ` WHERE "a" = ? AND ...`.
    pub clause: String,
    /// One value per placeholder.
    pub values: Vec<Option<CqlValue>>,
    /// Fields restricted to a single value (their order cannot matter).
    fixed: Vec<String>,
    /// Whether a partition key field is restricted to several values.
    many_partitions: bool,
}

fn refuse(entity: &EntityMeta, operation: &'static str) -> Error {
    Error::new(
        udl_core::ErrorKind::Unsupported,
        format!(
            "ScyllaDB serves {} by its partition key ({}) with equality{}; this {operation} needs \
             another access path (ALLOW FILTERING is never used)",
            entity.name,
            entity.partition_fields().join(", "),
            if entity.clustering_key.is_empty() {
                String::new()
            } else {
                format!(
                    ", then clustering columns in order ({}), the last by range",
                    entity.clustering_key.join(", ")
                )
            }
        ),
    )
    .with_store(StoreKind::SCYLLA)
    .with_operation(operation)
}

fn flatten<'f>(filter: &'f Filter, out: &mut Vec<&'f Filter>) {
    match filter {
        Filter::All => {}
        Filter::And(parts) => parts.iter().for_each(|p| flatten(p, out)),
        leaf => out.push(leaf),
    }
}

/// Clustering columns with the values a slice compares them to, and its operator.
type Slice<'f> = (Vec<&'static FieldMeta>, Vec<&'f Value>, &'static str);

/// A keyset cursor's resume condition, as core builds it: alternatives
/// `And[Eq(k1), .., Eq(k(i-1)), beyond(ki)]` where `beyond` is `Gt` (ascending) or `Lt`, possibly
/// or'ed with `IsNull` (descending; clustering columns are never null). Over a prefix of the
/// clustering columns, all in one direction, that is one CQL slice `(k1, .., kn) > (v1, .., vn)`.
fn keyset_slice<'f>(entity: &EntityMeta, alternatives: &'f [Filter]) -> Option<Slice<'f>> {
    let beyond = |f: &'f Filter| -> Option<(&'f String, &'f Value, &'static str)> {
        match f {
            Filter::Gt(n, v) => Some((n, v, ">")),
            Filter::Lt(n, v) => Some((n, v, "<")),
            Filter::Or(parts) => match parts.as_slice() {
                [Filter::Lt(n, v), Filter::IsNull(m)] if n == m => Some((n, v, "<")),
                _ => None,
            },
            _ => None,
        }
    };
    let (mut fields, mut values, mut direction) = (Vec::new(), Vec::new(), None);
    for (i, alternative) in alternatives.iter().enumerate() {
        let Filter::And(terms) = alternative else {
            return None;
        };
        let (last, earlier) = terms.split_last()?;
        let fixed_prefix = earlier.len() == i
            && earlier.iter().zip(&values).zip(&fields).all(|((t, v), f): ((&Filter, &&Value), &&FieldMeta)| {
                matches!(t, Filter::Eq(n, w) if n == f.name && w == *v)
            });
        let (name, value, op) = beyond(last)?;
        if !fixed_prefix || entity.clustering_key.get(i) != Some(&name.as_str()) {
            return None;
        }
        if direction.is_some_and(|d| d != op) {
            return None;
        }
        direction = Some(op);
        fields.push(entity.field(name)?);
        values.push(value);
    }
    Some((fields, values, direction?))
}

/// The WHERE clause serving `filter` on `entity`, or `Unsupported` naming the key it needs.
pub fn where_clause(
    entity: &EntityMeta,
    filter: &Filter,
    operation: &'static str,
) -> Result<Where> {
    let mut terms = Vec::new();
    flatten(filter, &mut terms);
    let mut out = Where {
        clause: String::new(),
        values: Vec::new(),
        fixed: Vec::new(),
        many_partitions: false,
    };
    let mut conditions = Vec::new();
    // Each partition field needs a term; the loop below refuses any that is not equality.
    let has_term = |name: &str| {
        terms.iter().any(|t| match t {
            Filter::Eq(n, _) | Filter::In(n, _) => n == name,
            _ => false,
        })
    };
    if !entity.partition_fields().iter().all(|f| has_term(f)) {
        return Err(refuse(entity, operation));
    }
    // How far the clustering prefix goes, and whether a range has ended it.
    let mut ranged_at: Option<usize> = None;
    for term in &terms {
        let (name, op, value) = match term {
            Filter::Eq(n, v) if *v != Value::Null => (n, "=", v),
            Filter::Lt(n, v) => (n, "<", v),
            Filter::Lte(n, v) => (n, "<=", v),
            Filter::Gt(n, v) => (n, ">", v),
            Filter::Gte(n, v) => (n, ">=", v),
            Filter::Or(alternatives) => {
                let (names, values, op) =
                    keyset_slice(entity, alternatives).ok_or_else(|| refuse(entity, operation))?;
                let columns: Vec<&str> = names.iter().map(|f| f.name).collect();
                let marks = vec!["?"; names.len()].join(", ");
                conditions.push(format!("({}) {op} ({marks})", quoted(&columns)));
                for (field, value) in names.iter().zip(values) {
                    out.values.push(to_cql(field, value)?);
                }
                continue;
            }
            Filter::In(n, vs)
                if !vs.is_empty() && entity.partition_fields().contains(&n.as_str()) =>
            {
                let field = entity.require_field(n)?;
                let list = vs
                    .iter()
                    .map(|v| to_cql(field, v).map(|c| c.unwrap_or(CqlValue::Empty)))
                    .collect::<Result<Vec<_>>>()?;
                out.many_partitions |= vs.len() > 1;
                if vs.len() == 1 {
                    out.fixed.push(n.clone());
                }
                conditions.push(format!("\"{}\" IN ?", field.name));
                out.values.push(Some(CqlValue::List(list)));
                continue;
            }
            _ => return Err(refuse(entity, operation)),
        };
        let field = entity.require_field(name)?;
        let is_partition = entity.partition_fields().contains(&field.name);
        let position = entity.clustering_key.iter().position(|c| *c == field.name);
        match (is_partition, position, op) {
            (true, _, "=") => out.fixed.push(name.clone()),
            (false, Some(i), op) => {
                // Every earlier clustering column must be fixed, and nothing may follow a range.
                let prefix_fixed = entity.clustering_key[..i].iter().all(|c| {
                    terms
                        .iter()
                        .any(|t| matches!(t, Filter::Eq(n, _) if n == c))
                });
                if !prefix_fixed || ranged_at.is_some_and(|r| r != i) {
                    return Err(refuse(entity, operation));
                }
                if op == "=" {
                    out.fixed.push(name.clone());
                } else {
                    ranged_at = Some(i);
                }
            }
            _ => return Err(refuse(entity, operation)),
        }
        conditions.push(format!("\"{}\" {op} ?", field.name));
        out.values.push(to_cql(field, value)?);
    }
    if let Some(r) = ranged_at {
        let later_fixed = entity.clustering_key[r + 1..]
            .iter()
            .any(|c| out.fixed.iter().any(|f| f == c));
        if later_fixed {
            return Err(refuse(entity, operation));
        }
    }
    if !conditions.is_empty() {
        out.clause = format!(" WHERE {}", conditions.join(" AND "));
    }
    Ok(out)
}

/// ` ORDER BY ...` (or empty) giving `sort` within the restricted partition, or
/// `Unsupported`: only the clustering order, or its reverse, can be served.
pub fn order_by(entity: &EntityMeta, sort: &[SortKey], restricted: &Where) -> Result<String> {
    let mut next = 0;
    let mut direction: Option<Direction> = None;
    for key in sort {
        if restricted.fixed.contains(&key.field) {
            continue; // a single value: its order cannot matter
        }
        let all_ordered = next == entity.clustering_key.len();
        match entity.clustering_key.get(next) {
            Some(c) if *c == key.field && direction.is_none_or(|d| d == key.direction) => {
                direction = Some(key.direction);
                next += 1;
            }
            // The primary key already orders rows completely; later keys change nothing.
            _ if all_ordered && !restricted.many_partitions => {}
            _ => return Err(refuse(entity, "sort")),
        }
    }
    if next > 0 && restricted.many_partitions {
        return Err(refuse(entity, "sort across several partitions"));
    }
    Ok(match direction {
        Some(Direction::Desc) => format!(" ORDER BY \"{}\" DESC", entity.clustering_key[0]),
        _ => String::new(),
    })
}
