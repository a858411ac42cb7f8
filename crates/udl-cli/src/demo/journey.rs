//! The demo's journey through the gateway: a clinician and a patient, consent, a session, a
//! therapy note with PHI, document chunks and a retrieval, a cached read, analytics, a read
//! refused for want of consent, and a break-glass read. Every value is fake.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use udl_gateway::dev_issuer::{DevIssuer, TokenRequest};
use uuid::Uuid;

use super::http::{send, Reply};

/// One step as the terminal shows it.
pub struct Step {
    /// Whether it went as it should.
    pub ok: bool,
    /// What happened.
    pub what: String,
    /// How long the gateway took.
    pub took: Duration,
}

/// The people and the steps taken so far.
pub struct Journey<'a> {
    address: String,
    service_token: String,
    issuer: &'a DevIssuer,
    /// The fake patient.
    pub patient: String,
    clinician: String,
    stranger: String,
    /// Steps, in order.
    pub steps: Vec<Step>,
}

const NOW: &str = "2026-12-01T10:00:00Z";
/// The note's PHI, checked to be ciphertext at rest.
pub const NOTE_TEXT: &str = "Fake note: sleep improving; practising box breathing before bed.";

impl<'a> Journey<'a> {
    /// A journey through the gateway at `address`, as the service holding `service_token`.
    pub fn new(address: String, service_token: String, issuer: &'a DevIssuer) -> Self {
        Journey {
            address,
            service_token,
            issuer,
            patient: Uuid::new_v4().to_string(),
            clinician: Uuid::new_v4().to_string(),
            stranger: Uuid::new_v4().to_string(),
            steps: Vec::new(),
        }
    }

    /// The headers of a request by `sub` as `role` for `purpose` about the patient.
    fn caller(
        &self,
        sub: &str,
        role: &str,
        purpose: &str,
        break_glass: bool,
    ) -> Vec<(&'static str, String)> {
        let roles = [role];
        let request = TokenRequest {
            break_glass,
            ..TokenRequest::new(sub, &roles)
        };
        vec![
            ("x-udl-service-token", self.service_token.clone()),
            (
                "authorization",
                format!("Bearer {}", self.issuer.token(&request).0),
            ),
            ("x-udl-purpose", purpose.to_owned()),
            ("x-udl-patient", self.patient.clone()),
        ]
    }

    fn as_patient(&self) -> Vec<(&'static str, String)> {
        self.caller(&self.patient, "patient", "patient_request", false)
    }

    /// Sends one request; the step passes when the status is `expect`.
    async fn call(
        &mut self,
        what: impl Into<String>,
        expect: u16,
        (method, path): (&str, &str),
        headers: &[(&'static str, String)],
        body: Option<Json>,
    ) -> Option<Reply> {
        let started = Instant::now();
        let reply = send(&self.address, method, path, headers, body.as_ref()).await;
        let took = started.elapsed();
        let mut what = what.into();
        let ok = match &reply {
            Ok(r) if r.status == expect => true,
            Ok(r) => {
                what = format!(
                    "{what} (expected {expect}, got {}: {})",
                    r.status, r.body["detail"]
                );
                false
            }
            Err(e) => {
                what = format!("{what} ({e})");
                false
            }
        };
        self.steps.push(Step { ok, what, took });
        reply.ok().filter(|_| ok)
    }

    /// Walks the whole journey; `cache_reads` then says how the cached reads were served.
    pub async fn walk(&mut self) -> Option<String> {
        let patient = self.patient.clone();
        for (id, role) in [
            (self.patient.clone(), "patient"),
            (self.clinician.clone(), "clinician"),
        ] {
            let user = json!({"id": id, "email": format!("fake-{role}@example.test"),
                "display_name": format!("Fake {role}"), "role": role, "status": "active",
                "created_at": NOW, "updated_at": NOW, "version": 1});
            let headers = self.as_patient();
            self.call(
                format!("{role} account created (e-mail and name sealed: PII)"),
                201,
                ("POST", "/v1/users"),
                &headers,
                Some(user),
            )
            .await;
        }
        let consent = json!({"id": Uuid::new_v4(), "patient_id": patient, "grantee_id": self.clinician,
            "grantee_role": null, "purpose": "treatment", "scope": "all", "granted_at": NOW,
            "expires_at": null, "revoked_at": null, "version": 1});
        let headers = self.as_patient();
        self.call(
            "patient consented to treatment by the clinician",
            201,
            ("POST", "/v1/consent_records"),
            &headers,
            Some(consent),
        )
        .await;
        self.call(
            "patient signed in: a session in Redis",
            201,
            ("POST", "/v1/sessions"),
            &headers,
            Some(json!({"data": {"device": "fake-phone"}})),
        )
        .await;

        let note_id = Uuid::new_v4().to_string();
        let note = json!({"id": note_id, "patient_id": patient, "title": "Fake weekly check-in",
            "messages": [{"role": "clinician", "text": NOTE_TEXT, "at": NOW}], "status": "active",
            "started_at": NOW, "updated_at": NOW, "version": 1});
        self.call(
            "therapy note with PHI written (sealed in MongoDB)",
            201,
            ("POST", "/v1/conversations"),
            &headers,
            Some(note),
        )
        .await;

        let chunks = [
            (
                "Box breathing: in for four, hold for four.",
                [0.9, 0.1, 0.0],
            ),
            ("Sleep hygiene: same bedtime every night.", [0.1, 0.9, 0.1]),
            ("Grounding: name five things you can see.", [0.2, 0.1, 0.9]),
        ];
        for (n, (text, embedding)) in chunks.iter().enumerate() {
            let chunk = json!({"id": Uuid::new_v4(), "document_id": Uuid::nil(), "chunk_index": n,
                "text": text, "embedding": embedding, "embedding_model": "fake-3d", "dimension": 3,
                "content_type": "playbook", "metadata": {}, "source_media_asset_id": null, "created_at": NOW});
            self.call(
                format!("document chunk {} with its embedding stored", n + 1),
                201,
                ("POST", "/v1/document_chunks"),
                &headers,
                Some(chunk),
            )
            .await;
        }
        let search = json!({"field": "embedding", "vector": [0.15, 0.95, 0.05], "k": 1,
            "filter": {"content_type": {"eq": "playbook"}}});
        let clinician = self.clinician.clone();
        let treating = self.caller(&clinician, "clinician", "treatment", false);
        if let Some(found) = self
            .call(
                "retrieval for \"trouble sleeping\"",
                200,
                ("POST", "/v1/document_chunks:nearest"),
                &treating,
                Some(search),
            )
            .await
        {
            let top = &found.body["items"][0];
            if let Some(step) = self.steps.last_mut() {
                step.what = format!(
                    "retrieval for \"trouble sleeping\": {} ({:.2})",
                    top["record"]["text"],
                    top["score"].as_f64().unwrap_or(0.0)
                );
            }
        }

        let content_id = Uuid::new_v4().to_string();
        let content = json!({"id": content_id, "slug": "box-breathing", "title": "Box breathing",
            "kind": "playbook", "body": "Breathe in for four counts.", "steps": [], "tags": ["anxiety"],
            "content_version": 1, "published": true, "updated_at": NOW, "version": 1});
        self.call(
            "playbook published (declared cache = l1_l2)",
            201,
            ("POST", "/v1/therapeutic_content"),
            &treating,
            Some(content),
        )
        .await;
        let path = format!("/v1/therapeutic_content/{content_id}");
        for n in 1..=3 {
            self.call(
                format!("playbook read {n} of 3"),
                200,
                ("GET", &path),
                &treating,
                None,
            )
            .await;
        }

        let events = json!({"stream": "demo_app_usage", "events": [
            {"at": NOW, "attributes": {"screen": "journal", "action": "open"}},
            {"at": NOW, "attributes": {"screen": "playbook", "action": "complete"}}]});
        self.call(
            "2 usage events recorded for analytics (ScyllaDB)",
            202,
            ("POST", "/v1/analytics/events"),
            &treating,
            Some(events),
        )
        .await;

        let note_path = format!("/v1/conversations/{note_id}");
        self.call(
            "clinician read the note under the patient's consent (audited)",
            200,
            ("GET", &note_path),
            &treating,
            None,
        )
        .await;
        let stranger = self.stranger.clone();
        let unrelated = self.caller(&stranger, "clinician", "treatment", false);
        self.call(
            "another clinician, without consent, was refused: 403 (audited)",
            403,
            ("GET", &note_path),
            &unrelated,
            None,
        )
        .await;
        let emergency = self.caller(&stranger, "clinician", "emergency", true);
        self.call(
            "the same clinician's break-glass read was allowed and flagged (audited)",
            200,
            ("GET", &note_path),
            &emergency,
            None,
        )
        .await;
        Some(note_id)
    }
}
