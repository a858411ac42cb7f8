//! Who is calling: the service (client certificate or service token), the end user (a signed
//! JWT, not revoked), and what they state (role, purpose, patient, request id, idempotency
//! key). The [`AccessContext`] is built from these alone, and every refusal is written to the
//! PHI access log before it is answered.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use udl::config::ServiceAccess;
use udl::postgres::models::AccessOutcome;
use udl::redis::{Admission, RateLimit};
use udl::{AccessContext, Purpose, Role};

use crate::jwt::Claims;
use crate::problem::Problem;
use crate::state::{Gateway, Ready};
use crate::tls::ClientCertificateNames;

/// Header carrying a service's token when it does not present a client certificate.
pub const SERVICE_TOKEN: &str = "x-udl-service-token";
/// Header stating the purpose of use (`treatment`, `payment`, ...); required.
pub const PURPOSE: &str = "x-udl-purpose";
/// Header choosing one of the token's roles when it has several.
pub const ROLE: &str = "x-udl-role";
/// Header naming the patient whose data the request concerns.
pub const PATIENT: &str = "x-udl-patient";
/// Header carrying the caller's request id (echoed back).
pub const REQUEST_ID: &str = "x-request-id";
/// Header making a write safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// An authenticated request: the service, the end user's claims and the access context.
pub struct Caller {
    /// The calling service.
    pub service: ServiceAccess,
    /// What the end user's token says.
    pub claims: Claims,
    /// The context every store call of this request runs under.
    pub ctx: AccessContext,
}

impl Caller {
    /// Refuses (403, audited) unless the service may use `operation` on `entity`.
    pub async fn allow(
        &self,
        gateway: &Gateway,
        operation: &str,
        entity: &str,
    ) -> Result<(), Problem> {
        if self.service.allows(operation, entity) {
            return Ok(());
        }
        let why = format!("service {} may not {operation} {entity}", self.service.name);
        Err(gateway
            .refuse(&self.ctx, entity, operation, Problem::forbidden(why))
            .await)
    }
}

impl FromRequestParts<std::sync::Arc<Gateway>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &std::sync::Arc<Gateway>,
    ) -> Result<Self, Problem> {
        gateway.authenticate(parts).await
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Digest a token is compared by, so comparing takes the same time whatever matches.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Gateway {
    /// Records a refusal in the access log (best effort: a refusal stands even when the log
    /// cannot be reached) and hands the problem back.
    pub async fn refuse(
        &self,
        ctx: &AccessContext,
        entity: &str,
        operation: &str,
        problem: Problem,
    ) -> Problem {
        if let Some(data) = self.data() {
            if let Ok(writer) = data.audit_writer() {
                let operation = format!("gateway.{operation}");
                let entry =
                    udl::privacy::audit::new_entry(ctx, entity, &operation, AccessOutcome::Denied);
                if let Err(e) = writer.append(entry).await {
                    tracing::warn!(error = %e, "a gateway refusal could not be audited");
                }
            }
        }
        tracing::info!(
            status = problem.status().as_u16(),
            entity,
            operation,
            "gateway refused a request"
        );
        problem
    }

    async fn refuse_unauthenticated(&self, who: &str, problem: Problem) -> Problem {
        let ctx = AccessContext::new(who, Role::Service, Purpose::Operations)
            .unwrap_or_else(|_| AccessContext::system("gateway"));
        self.refuse(&ctx, "gateway", "authenticate", problem).await
    }

    fn service_of(&self, parts: &Parts) -> Option<&ServiceAccess> {
        if let Some(names) = parts.extensions.get::<ClientCertificateNames>() {
            let by_certificate = self.services.iter().find(|s| {
                s.access
                    .certificate_name
                    .as_ref()
                    .is_some_and(|n| names.0.iter().any(|c| c == n))
            });
            if let Some(s) = by_certificate {
                return Some(&s.access);
            }
        }
        let digest = token_digest(header(&parts.headers, SERVICE_TOKEN)?);
        self.services
            .iter()
            .find(|s| {
                s.token_digest
                    .as_ref()
                    .is_some_and(|d| same_digest(d, &digest))
            })
            .map(|s| &s.access)
    }

    /// Authenticates the request and builds its access context.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Caller, Problem> {
        let ready = self.ready()?;
        let Some(service) = self.service_of(parts).cloned() else {
            let problem = Problem::unauthenticated(
                "present a client certificate or an x-udl-service-token udl knows",
            );
            return Err(self
                .refuse_unauthenticated("unknown-service", problem)
                .await);
        };
        let service_actor = format!("service:{}", service.name);
        let token = header(&parts.headers, "authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            let problem =
                Problem::unauthenticated("an end-user token (Authorization: Bearer) is required");
            return Err(self.refuse_unauthenticated(&service_actor, problem).await);
        };
        let claims = match self.verifier.verify(token, chrono::Utc::now().timestamp()) {
            Ok(claims) => claims,
            Err(e) => {
                let problem = Problem::unauthenticated(e.message());
                return Err(self.refuse_unauthenticated(&service_actor, problem).await);
            }
        };
        match self.admit(ready, &service, &claims).await? {
            Admission::Admitted => {}
            Admission::Revoked => {
                let problem = Problem::unauthenticated("the token is revoked");
                return Err(self.refuse_unauthenticated(&service_actor, problem).await);
            }
            Admission::ServiceLimited(wait) | Admission::ActorLimited(wait) => {
                return Err(Problem::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; slow down",
                )
                .retry_after(wait));
            }
        }
        self.context(parts, service, claims).await
    }

    async fn context(
        &self,
        parts: &Parts,
        service: ServiceAccess,
        claims: Claims,
    ) -> Result<Caller, Problem> {
        let headers = &parts.headers;
        let role_name = match header(headers, ROLE) {
            Some(role) => role.to_owned(),
            None if claims.roles.len() == 1 => claims.roles[0].clone(),
            None => {
                return Err(Problem::bad_request(
                    "the token has several roles; choose one with x-udl-role",
                ))
            }
        };
        let role = Role::from_text(&role_name)
            .ok_or_else(|| Problem::bad_request("x-udl-role is not a known role"))?;
        let stated = header(headers, PURPOSE).ok_or_else(|| {
            Problem::bad_request("x-udl-purpose is required (treatment, payment, ...)")
        })?;
        let purpose = Purpose::from_text(stated)
            .ok_or_else(|| Problem::bad_request("x-udl-purpose is not a known purpose of use"))?;
        let mut ctx =
            AccessContext::new(claims.sub.clone(), role, purpose).map_err(Problem::from)?;
        if let Some(patient) = header(headers, PATIENT) {
            ctx = ctx.for_patient(patient).map_err(Problem::from)?;
        }
        if let Some(id) = header(headers, REQUEST_ID) {
            ctx = ctx.with_request_id(id).map_err(Problem::from)?;
        }
        if let Some(key) = header(headers, IDEMPOTENCY_KEY) {
            ctx = ctx.with_idempotency_key(key).map_err(Problem::from)?;
        }
        let refusal = if !claims.roles.contains(&role_name) {
            Some("the token does not grant that role".to_owned())
        } else if !service.roles.iter().any(|r| *r == role.as_str()) {
            Some(format!(
                "service {} may not act for that role",
                service.name
            ))
        } else if !service.purposes.iter().any(|p| *p == purpose.as_str()) {
            Some(format!(
                "service {} may not state that purpose",
                service.name
            ))
        } else if purpose == Purpose::Emergency && !claims.break_glass {
            Some("emergency access needs a token with the break_glass claim".to_owned())
        } else {
            None
        };
        if let Some(why) = refusal {
            return Err(self
                .refuse(&ctx, "gateway", "authorize", Problem::forbidden(why))
                .await);
        }
        Ok(Caller {
            service,
            claims,
            ctx,
        })
    }

    /// The service's and the end user's rate limits and the token's revocation, in one
    /// round trip to Redis. Fail closed: when Redis cannot be asked, the request is refused.
    async fn admit(
        &self,
        ready: &Ready,
        service: &ServiceAccess,
        claims: &Claims,
    ) -> Result<Admission, Problem> {
        let per_minute = |limit: u32| RateLimit {
            limit,
            period: Duration::from_secs(60),
        };
        ready
            .admissions
            .admit(
                &format!("gw:svc:{}", service.name),
                per_minute(service.requests_per_minute),
                &format!("gw:actor:{}", hex_digest(&claims.sub)),
                per_minute(self.config.actor_requests_per_minute),
                &claims.jti,
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the revocation list cannot be read; refusing");
                Problem::busy(
                    "the token cannot be checked right now",
                    Duration::from_secs(1),
                )
            })
    }
}

/// A subject's id in rate-limit keys, so a patient's id never lands in Redis as it is.
fn hex_digest(text: &str) -> String {
    token_digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
