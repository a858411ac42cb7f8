//! Statements that depend only on the entity, built once per entity and reused, so the
//! hot paths (get, insert, delete, exists) do no SQL formatting per call.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use udl_core::EntityMeta;

use crate::sql::{column_list, ident};

/// The per-entity statements.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statement {
    /// `INSERT INTO t (all columns) VALUES ($1, ...)`.
    Insert,
    /// `SELECT all columns FROM t WHERE id = $1`.
    Fetch,
    /// `SELECT all columns FROM t WHERE ` (a filter follows).
    SelectWhere,
    /// `SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)`.
    Exists,
    /// `DELETE FROM t WHERE id = $1`.
    Delete,
}

type Cache = RwLock<HashMap<(usize, Statement), Arc<str>>>;

/// The SQL of `statement` for `entity`. Entities are `'static`, so their address is a
/// stable key.
pub fn get(entity: &'static EntityMeta, statement: Statement) -> Arc<str> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let key = (entity as *const EntityMeta as usize, statement);
    if let Some(sql) = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Arc::clone(sql);
    }
    let sql: Arc<str> = build(entity, statement).into();
    cache
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, Arc::clone(&sql));
    sql
}

fn build(entity: &EntityMeta, statement: Statement) -> String {
    let table = ident(entity.name);
    let id = ident(entity.id_field);
    match statement {
        Statement::Insert => {
            let placeholders: Vec<String> =
                (1..=entity.fields.len()).map(|i| format!("${i}")).collect();
            format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                column_list(entity),
                placeholders.join(", ")
            )
        }
        Statement::Fetch => format!(
            "SELECT {} FROM {table} WHERE {id} = $1",
            column_list(entity)
        ),
        Statement::SelectWhere => format!("SELECT {} FROM {table} WHERE ", column_list(entity)),
        Statement::Exists => format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {id} = $1)"),
        Statement::Delete => format!("DELETE FROM {table} WHERE {id} = $1"),
    }
}
