//! Sessions with sliding expiry, JWT revocation, and "log out everywhere".
//!
//! Validation fails closed: when Redis cannot be asked, a session is treated as invalid and
//! a token as revoked. User ids are hashed in keys, since they can identify patients.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::classify;
use crate::store::RedisStore;

/// A live session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Session id (random, 256 bits, hex).
    pub id: String,
    /// The user it belongs to.
    pub user_id: String,
    /// Application data.
    pub data: serde_json::Value,
}

/// Session and token state in Redis.
#[derive(Clone)]
pub struct SessionStore {
    store: RedisStore,
    idle: Duration,
}

impl SessionStore {
    /// Sessions expiring after `idle` without use.
    pub fn new(store: RedisStore, idle: Duration) -> Self {
        SessionStore { store, idle }
    }

    fn session_key(&self, id: &str) -> String {
        self.store.key(&format!("sess:{id}"))
    }

    fn user_key(&self, user_id: &str) -> String {
        self.store
            .digest_key("user-sess:", &Sha256::digest(user_id.as_bytes()).into())
    }

    pub(crate) fn revoked_key(&self, jti: &str) -> String {
        self.store
            .digest_key("jwt-revoked:", &Sha256::digest(jti.as_bytes()).into())
    }

    /// Starts a session for `user_id`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.create")
    )]
    pub async fn create(&self, user_id: &str, data: serde_json::Value) -> Result<Session> {
        self.store
            .meter()
            .measure("sessions.create", async move {
                let id = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                let value = serde_json::json!({ "user": user_id, "data": data }).to_string();
                let idle_ms = self.idle.as_millis() as u64;
                let mut conn = self.store.connection();
                // Listed under the user first, then created: a session can never exist without
                // "log out everywhere" finding it. (Two commands, not MULTI: in a cluster the two
                // keys live on different nodes.)
                redis::cmd("SADD")
                    .arg(self.user_key(user_id))
                    .arg(&id)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "session create"))?;
                redis::cmd("SET")
                    .arg(self.session_key(&id))
                    .arg(value)
                    .arg("PX")
                    .arg(idle_ms)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "session create"))?;
                Ok(Session {
                    id,
                    user_id: user_id.to_owned(),
                    data,
                })
            })
            .await
    }

    /// The session, sliding its expiry; `None` when unknown, expired, or Redis cannot be
    /// asked (fail closed).
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.validate")
    )]
    pub async fn validate(&self, id: &str) -> Result<Option<Session>> {
        self.store
            .meter()
            .measure("sessions.validate", async move {
            let mut conn = self.store.connection();
            let reply: std::result::Result<Option<String>, _> = redis::cmd("GETEX")
                .arg(self.session_key(id))
                .arg("PX")
                .arg(self.idle.as_millis() as u64)
                .query_async(&mut conn)
                .await;
            let raw = match reply {
                Ok(raw) => raw,
                Err(e) => {
                    let error = classify(&e, "session validate");
                    if error.is_temporary() {
                        tracing::warn!(error = %error, "session store unreachable; session treated as invalid");
                        return Ok(None);
                    }
                    return Err(error);
                }
            };
            let Some(raw) = raw else { return Ok(None) };
            let parsed: serde_json::Value = serde_json::from_str(&raw).map_err(|_| corrupt())?;
            let user_id = parsed
                .get("user")
                .and_then(|u| u.as_str())
                .ok_or_else(corrupt)?;
            Ok(Some(Session {
                id: id.to_owned(),
                user_id: user_id.to_owned(),
                data: parsed
                    .get("data")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            }))
            })
            .await
    }

    /// Ends one session.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.destroy")
    )]
    pub async fn destroy(&self, session: &Session) -> Result<()> {
        self.store
            .meter()
            .measure("sessions.destroy", async move {
                let mut conn = self.store.connection();
                // The session goes first; a leftover id in the user's list is harmless.
                redis::cmd("DEL")
                    .arg(self.session_key(&session.id))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "session destroy"))?;
                redis::cmd("SREM")
                    .arg(self.user_key(&session.user_id))
                    .arg(&session.id)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "session destroy"))
            })
            .await
    }

    /// Ends every session of `user_id`; returns how many were live.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.logout_everywhere")
    )]
    pub async fn logout_everywhere(&self, user_id: &str) -> Result<u64> {
        self.store
            .meter()
            .measure("sessions.logout_everywhere", async move {
                let mut conn = self.store.connection();
                let ids: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(self.user_key(user_id))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "logout everywhere"))?;
                if ids.is_empty() {
                    return Ok(0);
                }
                let keys: Vec<String> = ids.iter().map(|id| self.session_key(id)).collect();
                let deleted: u64 = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "logout everywhere"))?;
                // Only the ids ended here: a session started meanwhile stays listed.
                redis::cmd("SREM")
                    .arg(self.user_key(user_id))
                    .arg(&ids)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "logout everywhere"))?;
                Ok(deleted)
            })
            .await
    }

    /// Revokes the token `jti` until it would have expired anyway (`exp`).
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.revoke_token")
    )]
    pub async fn revoke_token(&self, jti: &str, exp: DateTime<Utc>) -> Result<()> {
        self.store
            .meter()
            .measure("sessions.revoke_token", async move {
                let remaining = (exp - Utc::now()).num_milliseconds();
                if remaining <= 0 {
                    return Ok(());
                }
                let mut conn = self.store.connection();
                redis::cmd("SET")
                    .arg(self.revoked_key(jti))
                    .arg(1)
                    .arg("PX")
                    .arg(remaining)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "token revoke"))
            })
            .await
    }

    /// Whether `jti` is revoked; `true` when Redis cannot be asked (fail closed).
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "sessions.is_revoked")
    )]
    pub async fn is_revoked(&self, jti: &str) -> Result<bool> {
        self.store
            .meter()
            .measure("sessions.is_revoked", async move {
            let mut conn = self.store.connection();
            let reply: std::result::Result<bool, _> = redis::cmd("EXISTS")
                .arg(self.revoked_key(jti))
                .query_async(&mut conn)
                .await;
            match reply {
                Ok(revoked) => Ok(revoked),
                Err(e) => {
                    let error = classify(&e, "token check");
                    if error.is_temporary() {
                        tracing::warn!(error = %error, "revocation list unreachable; token treated as revoked");
                        return Ok(true);
                    }
                    Err(error)
                }
            }
            })
            .await
    }
}

fn corrupt() -> Error {
    Error::new(ErrorKind::DataCorruption, "stored session is malformed")
        .with_store(StoreKind::REDIS)
        .with_operation("session validate")
}
