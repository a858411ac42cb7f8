//! The token vault: deterministic tokens for PHI that must be joinable without being readable
//! (a patient id in analytics). A token is a keyed HMAC of the kind and value, so the same value
//! always gets the same token and nothing about the value can be read from it; the original is
//! kept in PostgreSQL (`udl_token_vault`) encrypted and bound to its token. Detokenizing needs
//! an `AccessContext` whose role and purpose the access policy allows, and every attempt, allowed or
//! denied, is recorded in the PHI access log (fail closed: the value is returned only once its
//! entry is durable).

use std::sync::Arc;

use udl_core::{AccessContext, BlindIndexRule, Error, ErrorKind, Result, StoreKind};
use udl_postgres::models::AccessOutcome;
use udl_postgres::PgStore;

use crate::audit::{new_entry, AuditWriter};
use crate::cipher::FieldPlace;
use crate::field_keys::FieldKeys;
use crate::policy::{ConsentPolicy, Decision};

const TABLE: &str = "udl_token_vault";
const PREFIX: &str = "tok_";

/// Makes tokens and, for allowed callers, turns them back into values.
pub struct TokenVault {
    pg: PgStore,
    keys: Arc<FieldKeys>,
    audit: Arc<AuditWriter>,
    policy: Arc<ConsentPolicy>,
}

impl TokenVault {
    /// A vault in `pg`, detokenizing for whom `policy` allows and recording it with `audit`.
    pub fn new(
        pg: PgStore,
        keys: Arc<FieldKeys>,
        audit: Arc<AuditWriter>,
        policy: Arc<ConsentPolicy>,
    ) -> Self {
        TokenVault {
            pg,
            keys,
            audit,
            policy,
        }
    }

    fn place<'a>(kind: &'a str, token: &'a str) -> FieldPlace<'a> {
        FieldPlace {
            store: StoreKind::POSTGRES.name(),
            table: TABLE,
            field: kind,
            record_id: token.as_bytes(),
        }
    }

    /// The token of `value` of kind `kind` (`"patient_id"`, ...), kept in the vault.
    pub async fn tokenize(&self, kind: &str, value: &str) -> Result<String> {
        let token = self.token_of(kind, value);
        self.keep_many(&[(kind, value, token.as_str())]).await?;
        Ok(token)
    }

    /// The token `value` of kind `kind` has (or will have once kept), computed without
    /// touching the vault: a keyed hash, the same in every process.
    pub fn token_of(&self, kind: &str, value: &str) -> String {
        let digest = self
            .keys
            .index
            .of(TABLE, kind, value, BlindIndexRule::Exact);
        format!("{PREFIX}{}", hex::encode(&digest[..20]))
    }

    /// Whether `text` has the form of a token (it may not be in the vault).
    pub fn looks_like_token(text: &str) -> bool {
        text.strip_prefix(PREFIX)
            .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Keeps `(kind, value, token)` entries (tokens from [`TokenVault::token_of`]) in the
    /// vault with one statement; entries already kept are left as they are.
    pub async fn keep_many(&self, entries: &[(&str, &str, &str)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let cipher = self.keys.cipher();
        let mut tokens = Vec::with_capacity(entries.len());
        let mut kinds = Vec::with_capacity(entries.len());
        let mut sealed = Vec::with_capacity(entries.len());
        for (kind, value, token) in entries {
            sealed.push(cipher.encrypt(&Self::place(kind, token), value.as_bytes())?);
            tokens.push(*token);
            kinds.push(*kind);
        }
        sqlx::query(
            "INSERT INTO udl_token_vault (token, kind, sealed)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])
             ON CONFLICT (token) DO NOTHING",
        )
        .bind(tokens)
        .bind(kinds)
        .bind(sealed)
        .execute(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "tokenize"))?;
        Ok(())
    }

    /// The value behind `token`, for a caller whose role and purpose are allowed; every
    /// attempt is audited, and a denial is `PermissionDenied`.
    pub async fn detokenize(&self, ctx: &AccessContext, token: &str) -> Result<String> {
        let mut entry = new_entry(ctx, TABLE, "detokenize", AccessOutcome::Allowed);
        entry.record_ids = serde_json::json!([token]);
        if let Decision::Denied(reason) = self.policy.may_detokenize(ctx) {
            entry.outcome = AccessOutcome::Denied;
            self.audit.append(entry).await?;
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "role {} for purpose {}: {reason}",
                    ctx.role().as_str(),
                    ctx.purpose().as_str()
                ),
            ));
        }
        let found: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT kind, sealed FROM udl_token_vault WHERE token = $1")
                .bind(token)
                .fetch_optional(self.pg.pool())
                .await
                .map_err(|e| udl_postgres::classify(&e, "detokenize"))?;
        let Some((kind, sealed)) = found else {
            entry.outcome = AccessOutcome::Error;
            self.audit.append(entry).await?;
            return Err(Error::new(
                ErrorKind::NotFound,
                "no such token in the vault",
            ));
        };
        let value = self
            .keys
            .cipher()
            .decrypt(&Self::place(&kind, token), &sealed)?;
        let value = String::from_utf8(value)
            .map_err(|_| Error::new(ErrorKind::DataCorruption, "a vault entry is not text"))?;
        entry.fields = serde_json::json!([kind]);
        if kind == "patient_id" {
            entry.patient_id = Some(value.clone());
        }
        self.audit.append(entry).await?;
        Ok(value)
    }
}
