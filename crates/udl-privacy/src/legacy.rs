//! Plaintext left from before a field was encrypted, sealed in place. PostgreSQL migration 10
//! moved the users' e-mail addresses to `users.email_plaintext`; this seals each one into
//! `email` and its blind index and empties the plaintext column in the same statement.

use udl_core::{Entity as _, Error, ErrorKind, Result, StoreKind, ValidChanges, Value};
use udl_postgres::models::User;
use udl_postgres::PgStore;
use uuid::Uuid;

use crate::field_keys::FieldKeys;
use crate::sealing::Sealer;

/// Seals every address still in `users.email_plaintext`, `batch` rows at a time; `progress`
/// hears the running count after each batch. Returns how many were sealed. A row whose
/// address is already taken by a sealed account fails the run with a `Conflict` naming the
/// user id (never the address), leaving that row as it was.
pub async fn seal_plaintext_emails(
    pg: &PgStore,
    keys: &FieldKeys,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let sealer = Sealer::new(keys, StoreKind::Postgres.name(), User::meta())?;
    let mut sealed = 0;
    loop {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, email_plaintext FROM users WHERE email_plaintext IS NOT NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::try_from(batch.max(1)).unwrap_or(i64::MAX))
        .fetch_all(pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "read plaintext e-mails"))?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for (id, email) in rows {
            let changes = ValidChanges {
                sets: vec![("email", Value::Text(email))],
                expected_version: None,
            };
            let stored = sealer.seal_changes(&Value::Uuid(id), &changes)?;
            let column = |name: &str| match stored.sets.iter().find(|(n, _)| *n == name) {
                Some((_, Value::Bytes(bytes))) => Ok(bytes.clone()),
                _ => Err(Error::new(ErrorKind::Internal, "sealing gave no bytes")),
            };
            sqlx::query(
                "UPDATE users SET email = $2, email_bidx = $3, email_plaintext = NULL, \
                 version = version + 1 WHERE id = $1",
            )
            .bind(id)
            .bind(column("email")?)
            .bind(column("email_bidx")?)
            .execute(pg.pool())
            .await
            .map_err(|e| {
                match udl_postgres::classify(&e, "seal a plaintext e-mail") {
                    conflict if conflict.kind() == ErrorKind::Conflict => Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "user {id}: another account already has this e-mail address; \
                         resolve the duplicate and run again"
                        ),
                    )
                    .with_store(StoreKind::Postgres),
                    other => other,
                }
            })?;
            sealed += 1;
        }
        progress(sealed);
    }
}

/// How many addresses are still in `users.email_plaintext`.
pub async fn count_plaintext_emails(pg: &PgStore) -> Result<u64> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email_plaintext IS NOT NULL")
            .fetch_one(pg.pool())
            .await
            .map_err(|e| udl_postgres::classify(&e, "count plaintext e-mails"))?;
    Ok(count.unsigned_abs())
}
