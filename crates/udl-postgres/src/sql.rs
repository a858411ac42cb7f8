//! SQL text built from entity metadata, with every value as a bind parameter.

use std::fmt::Write as _;

use udl_core::{
    Direction, EntityMeta, Error, FieldMeta, Filter, Result, SortKey, Value, ValueKind,
};

/// A statement under construction: SQL text plus its parameters, in order.
#[derive(Default)]
pub struct Sql {
    /// The statement text, placeholders numbered in order.
    pub text: String,
    /// Each placeholder's value, with the kind it is bound as.
    pub params: Vec<(ValueKind, Value)>,
}

/// Quotes an identifier. Identifiers only ever come from entity metadata, but quoting keeps
/// reserved words (`user`, `order`) and case intact.
pub fn ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    push_ident(&mut quoted, name);
    quoted
}

/// Appends `name` quoted as an identifier.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Comma-separated quoted column list of every field, in declaration order.
pub fn column_list(entity: &EntityMeta) -> String {
    entity
        .fields
        .iter()
        .map(|f| ident(f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses values PostgreSQL cannot store: text and JSON strings containing NUL.
pub fn check_storable(entity: &EntityMeta, field: &FieldMeta, value: &Value) -> Result<()> {
    let has_nul = match value {
        Value::Text(s) => s.contains('\0'),
        Value::Json(j) => json_has_nul(j),
        _ => false,
    };
    if has_nul {
        return Err(Error::invalid(format!(
            "entity {}: field {} contains a NUL character, which PostgreSQL cannot store",
            entity.name, field.name
        )));
    }
    Ok(())
}

fn json_has_nul(j: &serde_json::Value) -> bool {
    match j {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        _ => false,
    }
}

impl Sql {
    /// Starts a statement with `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Appends literal SQL.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds a parameter without writing its placeholder (for prepared statement text).
    pub fn bind(&mut self, entity: &EntityMeta, field: &FieldMeta, value: Value) -> Result<()> {
        check_storable(entity, field, &value)?;
        self.params.push((field.kind, value));
        Ok(())
    }

    /// Appends a placeholder for `value`, checked storable for `field`.
    pub fn param(&mut self, entity: &EntityMeta, field: &FieldMeta, value: Value) -> Result<()> {
        check_storable(entity, field, &value)?;
        self.params.push((field.kind, value));
        let _ = write!(self.text, "${}", self.params.len());
        Ok(())
    }

    /// Appends the SQL form of `filter`, following udl's neutral filter semantics.
    pub fn filter(&mut self, entity: &EntityMeta, filter: &Filter) -> Result<()> {
        match filter {
            Filter::All => {
                self.push("TRUE");
            }
            Filter::Eq(name, Value::Null) | Filter::IsNull(name) => {
                self.column(entity, name)?;
                self.push(" IS NULL");
            }
            Filter::Ne(name, Value::Null) => {
                self.column(entity, name)?;
                self.push(" IS NOT NULL");
            }
            Filter::Eq(name, v) => self.compare(entity, name, "=", v)?,
            Filter::Ne(name, v) => self.compare(entity, name, "IS DISTINCT FROM", v)?,
            Filter::Lt(name, v) => self.compare(entity, name, "<", v)?,
            Filter::Lte(name, v) => self.compare(entity, name, "<=", v)?,
            Filter::Gt(name, v) => self.compare(entity, name, ">", v)?,
            Filter::Gte(name, v) => self.compare(entity, name, ">=", v)?,
            Filter::In(name, values) => self.one_of(entity, name, values)?,
            Filter::Prefix(name, prefix) => {
                let field = self.column(entity, name)?;
                self.push(" LIKE ");
                self.param(entity, field, Value::Text(like_prefix(prefix)))?;
                self.push(" ESCAPE '\\'");
            }
            Filter::And(parts) => self.join(entity, parts, " AND ", "TRUE")?,
            Filter::Or(parts) => self.join(entity, parts, " OR ", "FALSE")?,
            Filter::Not(inner) => {
                // SQL's NOT of an unknown (null) comparison is unknown; udl's is true.
                self.push("NOT COALESCE((");
                self.filter(entity, inner)?;
                self.push("), FALSE)");
            }
        }
        Ok(())
    }

    /// Appends `ORDER BY` for `sort`; nulls are the smallest value.
    /// (An index on a nullable sort column should say `NULLS FIRST` for ascending use.)
    pub fn order_by(&mut self, entity: &EntityMeta, sort: &[SortKey]) -> Result<()> {
        for (i, key) in sort.iter().enumerate() {
            self.push(if i == 0 { " ORDER BY " } else { ", " });
            let field = self.column(entity, &key.field)?;
            // The NULLS clause is only written where nulls can occur: on a NOT NULL column it
            // would stop PostgreSQL from reading an ordinary index in order.
            self.push(match (key.direction, field.nullable) {
                (Direction::Asc, true) => " ASC NULLS FIRST",
                (Direction::Desc, true) => " DESC NULLS LAST",
                (Direction::Asc, false) => " ASC",
                (Direction::Desc, false) => " DESC",
            });
        }
        Ok(())
    }

    /// Appends the quoted column of `name`, taken from the entity, never from the caller.
    fn column(&mut self, entity: &EntityMeta, name: &str) -> Result<&'static FieldMeta> {
        let field = entity.require_field(name)?;
        push_ident(&mut self.text, field.name);
        Ok(field)
    }

    fn compare(&mut self, entity: &EntityMeta, name: &str, op: &str, v: &Value) -> Result<()> {
        let field = self.column(entity, name)?;
        let _ = write!(self.text, " {op} ");
        self.param(entity, field, v.clone())
    }

    fn one_of(&mut self, entity: &EntityMeta, name: &str, values: &[Value]) -> Result<()> {
        let (nulls, values): (Vec<&Value>, Vec<&Value>) = values.iter().partition(|v| v.is_null());
        if values.is_empty() && nulls.is_empty() {
            self.push("FALSE");
            return Ok(());
        }
        self.push("(");
        if !values.is_empty() {
            let field = self.column(entity, name)?;
            self.push(" IN (");
            for (i, v) in values.into_iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.param(entity, field, v.clone())?;
            }
            self.push(")");
            if !nulls.is_empty() {
                self.push(" OR ");
            }
        }
        if !nulls.is_empty() {
            self.column(entity, name)?;
            self.push(" IS NULL");
        }
        self.push(")");
        Ok(())
    }

    fn join(
        &mut self,
        entity: &EntityMeta,
        parts: &[Filter],
        sep: &str,
        empty: &str,
    ) -> Result<()> {
        if parts.is_empty() {
            self.push(empty);
            return Ok(());
        }
        self.push("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.push(sep);
            }
            self.filter(entity, part)?;
        }
        self.push(")");
        Ok(())
    }
}

/// A LIKE pattern matching strings that start with `prefix` literally.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_core::{field, FieldMeta};

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
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn values_become_parameters() {
        let mut sql = Sql::default();
        let f = field("title")
            .eq("x'; DROP TABLE notes; --")
            .and(field("score").is_in([1_i64, 2]).not());
        sql.filter(&NOTES, &f).unwrap();
        assert_eq!(
            sql.text,
            "(\"title\" = $1 AND NOT COALESCE(((\"score\" IN ($2, $3))), FALSE))"
        );
        assert_eq!(sql.params.len(), 3);
    }

    #[test]
    fn prefix_escapes_wildcards() {
        assert_eq!(like_prefix("50%_a\\"), "50\\%\\_a\\\\%");
    }

    #[test]
    fn nul_is_refused() {
        let mut sql = Sql::default();
        let err = sql.filter(&NOTES, &field("title").eq("a\0b")).unwrap_err();
        assert_eq!(err.kind(), udl_core::ErrorKind::InvalidInput);
    }
}
