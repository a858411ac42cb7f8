//! The gateway end to end: `udl serve` with `[gateway]` against the local servers, called over
//! HTTP as the Go and Python services would, with tokens from a stand-in auth service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value as Json};
use udl_gateway::dev_issuer::{DevIssuer, TokenRequest};
use udl_testkit::fixtures::hostile_strings;
use udl_testkit::servers;

use crate::gateway_client::{send, Reply, Transport};
use crate::serve::Daemon;

/// The stand-in auth service's names, as `gateway.jwt` expects them.
const ISSUER: &str = "fake-auth";
const AUDIENCE: &str = "udl";
pub const CLINIC_TOKEN: &str = "fake-clinic-app-token-000000000000000001";
const BILLING_TOKEN: &str = "fake-billing-svc-token-00000000000000001";
/// PHI written through the gateway; it must never show in a store, a log or a metric.
const CANARY: &str = "FAKE-PHI-CANARY-7f3a9c";

/// A running gateway and what its tests need to call it and clean up.
pub struct Gateway {
    pub daemon: Daemon,
    pub issuer: DevIssuer,
    pub transport: Transport,
    schema: String,
    keyspace: Option<String>,
    mongo_database: Option<String>,
    dir: PathBuf,
}

/// The clinic app: everything, on every entity.
pub const CLINIC_APP: &str = r#"[gateway]
[gateway.services.clinic-app]
token = "fake-clinic-app-token-000000000000000001"
entities = ["*"]
operations = ["read", "list", "create", "update", "delete", "search", "sessions", "rate_limit", "cache", "analytics"]
purposes = ["treatment", "patient_request", "emergency", "operations"]
roles = ["clinician", "patient"]"#;

impl Gateway {
    /// `udl serve` over every store, its gateway configured by `gateway_toml` (the JWT section
    /// is added), migrated and connected.
    pub async fn start(gateway_toml: &str, all_stores: bool, transport: Transport) -> Gateway {
        Self::start_with(gateway_toml, all_stores, transport, &[]).await
    }

    /// As [`Gateway::start`], with `overrides` replacing variables of the same name.
    pub async fn start_with(
        gateway_toml: &str,
        all_stores: bool,
        transport: Transport,
        overrides: &[(&'static str, String)],
    ) -> Gateway {
        let schema = servers::unique_namespace("gw");
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        let issuer = DevIssuer::new(ISSUER, AUDIENCE).unwrap();
        std::fs::write(dir.join("jwks.json"), issuer.jwks()).unwrap();
        let config = format!(
            "{gateway_toml}\n\n[gateway.jwt]\nkeys_file = {:?}\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n",
            dir.join("jwks.json")
        );
        std::fs::write(dir.join("udl.toml"), config).unwrap();
        let mut env = vec![
            ("UDL_CONFIG", dir.join("udl.toml").display().to_string()),
            ("UDL__POSTGRES__URL", servers::postgres_url()),
            ("UDL__POSTGRES__SCHEMA", schema.clone()),
            ("UDL__REDIS__URL", servers::redis_url()),
            ("UDL__REDIS__KEY_PREFIX", format!("{schema}:")),
            ("UDL__PRIVACY__KEY_RING", crate::cli::FAKE_KEY_RING.into()),
            // Everything logged, so that the PHI checks on the logs mean something.
            ("UDL_LOG", "debug".into()),
        ];
        let (mut keyspace, mut mongo_database) = (None, None);
        if all_stores {
            let ks = crate::cli::migrated_keyspace();
            env.extend([
                ("UDL__MONGO__URL", servers::mongo_url()),
                ("UDL__MONGO__DATABASE", schema.clone()),
                ("UDL__SCYLLA__NODES", servers::scylla_node()),
                ("UDL__SCYLLA__KEYSPACE", ks.clone()),
                ("UDL__SCYLLA__CONSISTENCY", "one".into()),
                (
                    "UDL__SCYLLA__SPOOL_DIR",
                    dir.join("spool").display().to_string(),
                ),
            ]);
            keyspace = Some(ks);
            mongo_database = Some(schema.clone());
        }
        env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        env.extend(overrides.iter().cloned());
        let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let migrated = crate::cli::udl(&["migrate", "up"], &borrowed);
        assert_eq!(
            migrated.status.code(),
            Some(0),
            "{:?}",
            crate::cli::text(&migrated)
        );
        let daemon = Daemon::start(&env);
        let gateway = Gateway {
            daemon,
            issuer,
            transport,
            schema,
            keyspace,
            mongo_database,
            dir,
        };
        udl_testkit::wait::until("the gateway serves", Duration::from_secs(60), || async {
            let reply = gateway.call("GET", "/v1/openapi.json", &[], None).ok()?;
            (reply.status == 200).then_some(())
        })
        .await;
        gateway
    }

    /// One request, or why the connection failed.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Reply, String> {
        let body = body.map(Json::to_string);
        send(
            &self.transport,
            &self.daemon.address,
            method,
            path,
            headers,
            body.as_deref(),
        )
    }

    /// The headers of `service`'s request for `sub` acting as `role` for `purpose`.
    pub fn as_user(
        &self,
        service: &str,
        sub: &str,
        role: &str,
        purpose: &str,
    ) -> Vec<(&'static str, String)> {
        let roles = [role];
        let (token, _) = self.issuer.token(&TokenRequest::new(sub, &roles));
        vec![
            ("x-udl-service-token", service.to_owned()),
            ("authorization", format!("Bearer {token}")),
            ("x-udl-purpose", purpose.to_owned()),
        ]
    }

    /// Stops the daemon, dropping its MongoDB database and what `stop` drops.
    pub async fn stop_and_drop_mongo(self) {
        if let Some(db) = &self.mongo_database {
            let mongo = mongodb::Client::with_uri_str(servers::mongo_url())
                .await
                .unwrap();
            mongo.database(db).drop().await.unwrap();
        }
        self.stop();
    }

    /// Stops the daemon and drops its schema, keyspace and files.
    pub fn stop(self) {
        drop(self.daemon);
        let pg_drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let pg = sqlx::PgPool::connect(&servers::postgres_url())
                    .await
                    .unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(pg_drop))
                    .execute(&pg)
                    .await
                    .unwrap();
            });
        })
        .join()
        .unwrap();
        if let Some(ks) = &self.keyspace {
            crate::cli::drop_keyspace(ks);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: impl Into<String>,
) -> Vec<(&'static str, String)> {
    headers.push((name, value.into()));
    headers
}

fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Json>,
) -> Reply {
    gw.call(method, path, headers, body.as_ref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn conversation(id: &str, patient: &str, text: &str) -> Json {
    json!({
        "id": id, "patient_id": patient, "title": "fake session",
        "messages": [{"role": "patient", "text": text, "at": "2026-12-01T10:00:00Z"}],
        "status": "active", "started_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z",
        "version": 1,
    })
}

/// The tables of `schema` with a row whose text holds `needle`.
async fn tables_holding(schema: &str, needle: &str) -> Vec<String> {
    let pg = sqlx::PgPool::connect(&servers::postgres_url())
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
    )
    .bind(schema)
    .fetch_all(&pg)
    .await
    .unwrap();
    assert!(tables.len() > 5, "{tables:?}");
    let mut holding = Vec::new();
    for table in tables {
        let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" AS r WHERE r::text LIKE '%' || $1 || '%'");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(&pg)
            .await
            .unwrap();
        if n > 0 {
            holding.push(table);
        }
    }
    holding
}

async fn denied_gateway_entries(gw: &Gateway) -> i64 {
    let pg = sqlx::PgPool::connect(&servers::postgres_url())
        .await
        .unwrap();
    let sql = format!(
        "SELECT count(*) FROM \"{}\".phi_access_log WHERE outcome = 'denied' AND operation LIKE 'gateway.%'",
        gw.schema
    );
    udl_testkit::wait::until(
        "refusals reach the access log",
        Duration::from_secs(30),
        || async {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_one(&pg)
                .await
                .ok()?;
            (n > 0).then_some(n)
        },
    )
    .await
}

#[tokio::test]
async fn the_gateway_serves_entities_to_authenticated_callers_and_refuses_and_audits_the_rest() {
    let toml = format!(
        "{}\n\n[gateway.services.billing-svc]\ntoken = \"{BILLING_TOKEN}\"\nentities = [\"invoices\"]\noperations = [\"read\", \"list\"]\n\
         purposes = [\"payment\"]\nroles = [\"billing\"]\n",
        CLINIC_APP.replace("[gateway]", "[gateway]\nmax_body_bytes = 65536")
    );
    let gw = Gateway::start(&toml, true, Transport::Plain).await;
    let patient = uuid::Uuid::new_v4().to_string();
    let clinician = uuid::Uuid::new_v4().to_string();
    let stranger = uuid::Uuid::new_v4().to_string();

    // The OpenAPI document comes from the registry, classification included.
    let doc = call(&gw, "GET", "/v1/openapi.json", &[], None).json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/v1/conversations/{id}"]["get"].is_object(),
        "{doc}"
    );
    assert!(doc["paths"]["/v1/document_chunks:nearest"]["post"].is_object());
    let messages = &doc["components"]["schemas"]["conversations"]["properties"]["messages"];
    assert_eq!(messages["x-udl-sensitivity"], "phi");
    assert!(
        doc["paths"].get("/v1/phi_access_log/{id}").is_none(),
        "the access log is not served"
    );

    // Authentication: every failure is 401.
    let as_patient = with(
        gw.as_user(CLINIC_TOKEN, &patient, "patient", "patient_request"),
        "x-udl-patient",
        patient.clone(),
    );
    let probe = format!("/v1/conversations/{}", uuid::Uuid::new_v4());
    let mut no_service = as_patient.clone();
    no_service.retain(|(n, _)| *n != "x-udl-service-token");
    let mut wrong_service = no_service.clone();
    wrong_service.push((
        "x-udl-service-token",
        "fake-unknown-token-0000000000000000000".into(),
    ));
    let mut no_user = as_patient.clone();
    no_user.retain(|(n, _)| *n != "authorization");
    let roles = ["patient"];
    let expired = gw
        .issuer
        .token(&TokenRequest {
            lifetime_secs: -120,
            ..TokenRequest::new(&patient, &roles)
        })
        .0;
    let foreign = DevIssuer::new(ISSUER, AUDIENCE)
        .unwrap()
        .token(&TokenRequest::new(&patient, &roles))
        .0;
    let (revoked, revoked_jti) = gw.issuer.token(&TokenRequest::new(&patient, &roles));
    let exp = chrono::Utc::now().timestamp() + 300;
    let revocation = call(
        &gw,
        "POST",
        "/v1/revoked-tokens",
        &as_patient,
        Some(json!({"jti": revoked_jti, "exp": exp})),
    );
    assert_eq!(revocation.status, 204, "{}", revocation.body);
    let listed = call(
        &gw,
        "GET",
        &format!("/v1/revoked-tokens/{revoked_jti}"),
        &as_patient,
        None,
    );
    assert_eq!(listed.json()["revoked"], true, "{}", listed.body);
    let bearer = |token: &str| {
        let mut h = no_user.clone();
        h.push(("authorization", format!("Bearer {token}")));
        h
    };
    for (what, headers) in [
        ("no service credential", no_service),
        ("an unknown service token", wrong_service),
        ("no end-user token", no_user.clone()),
        ("an expired token", bearer(&expired)),
        ("a token signed by another key", bearer(&foreign)),
        ("a revoked token", bearer(&revoked)),
        ("a malformed token", bearer("not.a.jwt")),
    ] {
        let reply = call(&gw, "GET", &probe, &headers, None);
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }

    // Accounts (PII), then the patient consents to the clinician's treatment and writes PHI.
    for (id, role) in [(&patient, "patient"), (&clinician, "clinician")] {
        let user = json!({
            "id": id, "email": format!("fake-{id}@example.test"), "display_name": "Fake Person",
            "role": role, "status": "active", "created_at": "2026-12-01T09:00:00Z",
            "updated_at": "2026-12-01T09:00:00Z", "version": 1,
        });
        let created = call(&gw, "POST", "/v1/users", &as_patient, Some(user));
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let consent = json!({
        "id": uuid::Uuid::new_v4(), "patient_id": patient, "grantee_id": clinician, "grantee_role": null,
        "purpose": "treatment", "scope": "all", "granted_at": "2026-12-01T09:00:00Z",
        "expires_at": null, "revoked_at": null, "version": 1,
    });
    let created = call(
        &gw,
        "POST",
        "/v1/consent_records",
        &as_patient,
        Some(consent),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let note_id = uuid::Uuid::new_v4().to_string();
    let created = call(
        &gw,
        "POST",
        "/v1/conversations",
        &as_patient,
        Some(conversation(&note_id, &patient, CANARY)),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["id"], note_id.as_str());
    let duplicate = call(
        &gw,
        "POST",
        "/v1/conversations",
        &as_patient,
        Some(conversation(&note_id, &patient, "x")),
    );
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);

    // The clinician reads it under the consent; a stranger is refused unless break-glass.
    let note = format!("/v1/conversations/{note_id}");
    let treating = with(
        gw.as_user(CLINIC_TOKEN, &clinician, "clinician", "treatment"),
        "x-udl-patient",
        patient.clone(),
    );
    let read = call(&gw, "GET", &note, &treating, None);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["messages"][0]["text"], CANARY);
    assert_eq!(read.header("etag"), Some("\"1\""));
    let strange = with(
        gw.as_user(CLINIC_TOKEN, &stranger, "clinician", "treatment"),
        "x-udl-patient",
        patient.clone(),
    );
    let refused = call(&gw, "GET", &note, &strange, None);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains(CANARY));
    let emergency = with(
        gw.as_user(CLINIC_TOKEN, &stranger, "clinician", "emergency"),
        "x-udl-patient",
        patient.clone(),
    );
    assert_eq!(
        call(&gw, "GET", &note, &emergency, None).status,
        403,
        "break-glass needs the claim"
    );
    let roles = ["clinician"];
    let glass = gw
        .issuer
        .token(&TokenRequest {
            break_glass: true,
            ..TokenRequest::new(&stranger, &roles)
        })
        .0;
    let mut break_glass = emergency.clone();
    break_glass.retain(|(n, _)| *n != "authorization");
    break_glass.push(("authorization", format!("Bearer {glass}")));
    assert_eq!(call(&gw, "GET", &note, &break_glass, None).status, 200);

    // A service outside its allow-list: entity, role, purpose.
    let billing = with(
        gw.as_user(BILLING_TOKEN, &clinician, "billing", "payment"),
        "x-udl-patient",
        patient.clone(),
    );
    assert_eq!(call(&gw, "GET", &note, &billing, None).status, 403);
    let billing_as_clinician = gw.as_user(BILLING_TOKEN, &clinician, "clinician", "payment");
    assert_eq!(
        call(&gw, "GET", "/v1/invoices/1", &billing_as_clinician, None).status,
        403
    );
    let billing_for_treatment = gw.as_user(BILLING_TOKEN, &clinician, "billing", "treatment");
    assert_eq!(
        call(&gw, "GET", "/v1/invoices/1", &billing_for_treatment, None).status,
        403
    );
    let role_not_in_token = with(
        gw.as_user(CLINIC_TOKEN, &clinician, "patient", "treatment"),
        "x-udl-role",
        "clinician",
    );
    assert_eq!(
        call(&gw, "GET", &note, &role_not_in_token, None).status,
        403
    );

    // Versions: If-Match against the ETag.
    let stale = with(treating.clone(), "if-match", "\"7\"");
    let conflict = call(
        &gw,
        "PATCH",
        &note,
        &stale,
        Some(json!({"status": "closed"})),
    );
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    let fresh = with(treating.clone(), "if-match", "\"1\"");
    let patched = call(
        &gw,
        "PATCH",
        &note,
        &fresh,
        Some(json!({"status": "closed"})),
    );
    assert_eq!(patched.status, 204, "{}", patched.body);
    let read = call(&gw, "GET", &note, &treating, None);
    assert_eq!(
        (read.json()["status"].clone(), read.header("etag")),
        (json!("closed"), Some("\"2\""))
    );
    let mut replaced = conversation(&note_id, &patient, CANARY);
    replaced["title"] = json!("fake session, renamed");
    let put = call(
        &gw,
        "PUT",
        &note,
        &with(treating.clone(), "if-match", "\"2\""),
        Some(replaced),
    );
    assert_eq!(put.status, 204, "{}", put.body);
    assert_eq!(
        call(&gw, "GET", &note, &treating, None).json()["title"],
        "fake session, renamed"
    );

    // Lists, counts and cursors.
    for n in 0..4 {
        let id = uuid::Uuid::new_v4().to_string();
        let reply = call(
            &gw,
            "POST",
            "/v1/conversations",
            &as_patient,
            Some(conversation(&id, &patient, &format!("fake {n}"))),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let by_patient = json!({"patient_id": {"eq": patient}});
    let count = call(
        &gw,
        "POST",
        "/v1/conversations:count",
        &treating,
        Some(json!({"filter": by_patient})),
    );
    assert_eq!(count.json()["count"], 5, "{}", count.body);
    let active = json!({"filter": {"patient_id": {"eq": patient}, "status": {"eq": "active"}}, "sort": ["-started_at"], "limit": 3});
    let first = call(
        &gw,
        "POST",
        "/v1/conversations:list",
        &treating,
        Some(active.clone()),
    )
    .json();
    assert_eq!(first["items"].as_array().unwrap().len(), 3, "{first}");
    let mut rest = active;
    rest["cursor"] = first["next"].clone();
    let second = call(&gw, "POST", "/v1/conversations:list", &treating, Some(rest)).json();
    // The PUT above made the note active again: five in all.
    assert_eq!(second["items"].as_array().unwrap().len(), 2, "{second}");
    assert!(second["next"].is_null());

    // Similarity search over chunks with embeddings.
    for (n, embedding) in [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0]]
        .iter()
        .enumerate()
    {
        let chunk = json!({
            "id": uuid::Uuid::new_v4(), "document_id": uuid::Uuid::nil(), "chunk_index": n,
            "text": format!("fake chunk {n}"), "embedding": embedding, "embedding_model": "fake-3d",
            "dimension": 3, "content_type": "playbook", "metadata": {}, "source_media_asset_id": null,
            "created_at": "2026-12-01T10:00:00Z",
        });
        let reply = call(&gw, "POST", "/v1/document_chunks", &as_patient, Some(chunk));
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let search = json!({"field": "embedding", "vector": [1.0, 0.05, 0.0], "k": 2, "filter": {"content_type": {"eq": "playbook"}}});
    let found = call(
        &gw,
        "POST",
        "/v1/document_chunks:nearest",
        &as_patient,
        Some(search),
    )
    .json();
    let texts: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["fake chunk 0", "fake chunk 2"], "{found}");

    // Hostile values: never a 500, never echoed.
    for hostile in hostile_strings() {
        let field_name = json!({"filter": {hostile.clone(): {"eq": "x"}}});
        let value =
            json!({"filter": {"title": {"eq": hostile.clone()}, "patient_id": {"eq": patient}}});
        let kind = json!({"filter": {"started_at": {"gte": hostile.clone()}}});
        let unknown = json!({"id": uuid::Uuid::new_v4(), hostile.clone(): 1});
        for (path, body) in [
            ("/v1/conversations:list", field_name),
            ("/v1/conversations:list", value),
            ("/v1/conversations:count", kind),
            ("/v1/conversations", unknown),
        ] {
            let reply = call(&gw, "POST", path, &treating, Some(body));
            assert!(reply.status < 500, "{path}: {}", reply.body);
            if reply.status >= 400 && hostile.trim().len() > 2 {
                assert!(
                    !reply.body.contains(hostile.as_str()),
                    "{path} echoed a value: {}",
                    reply.body
                );
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let stored = call(
            &gw,
            "POST",
            "/v1/conversations",
            &as_patient,
            Some(conversation(&id, &patient, &hostile)),
        );
        assert_eq!(stored.status, 201, "{}", stored.body);
        let back = call(
            &gw,
            "GET",
            &format!("/v1/conversations/{id}"),
            &treating,
            None,
        )
        .json();
        assert_eq!(back["messages"][0]["text"], hostile.as_str());
    }
    let odd_path = call(
        &gw,
        "GET",
        "/v1/conversations/'%20OR%201=1",
        &treating,
        None,
    );
    assert_eq!(odd_path.status, 400, "{}", odd_path.body);
    let broken = Some("{\"filter\": FAKE-PHI");
    let not_json = send(
        &gw.transport,
        &gw.daemon.address,
        "POST",
        "/v1/conversations:list",
        &treating,
        broken,
    )
    .unwrap();
    assert_eq!(not_json.status, 400);
    assert!(!not_json.body.contains("FAKE-PHI"), "{}", not_json.body);
    let too_big = "x".repeat(70_000);
    let big = call(
        &gw,
        "POST",
        "/v1/conversations",
        &as_patient,
        Some(conversation(
            &uuid::Uuid::new_v4().to_string(),
            &patient,
            &too_big,
        )),
    );
    assert_eq!(
        big.status, 413,
        "bodies over gateway.max_body_bytes are refused"
    );
    assert_eq!(
        call(&gw, "GET", "/v1/no_such_entity/1", &treating, None).status,
        404
    );

    // Deletion.
    assert_eq!(call(&gw, "DELETE", &note, &as_patient, None).status, 204);
    assert_eq!(call(&gw, "GET", &note, &treating, None).status, 404);
    assert_eq!(call(&gw, "DELETE", &note, &as_patient, None).status, 404);

    // Redis structures and analytics.
    let session = call(
        &gw,
        "POST",
        "/v1/sessions",
        &as_patient,
        Some(json!({"data": {"device": "fake"}})),
    );
    assert_eq!(session.status, 201, "{}", session.body);
    let session_path = format!("/v1/sessions/{}", session.json()["id"].as_str().unwrap());
    assert_eq!(
        call(&gw, "GET", &session_path, &as_patient, None).json()["user_id"],
        patient.as_str()
    );
    assert_eq!(
        call(&gw, "DELETE", &session_path, &as_patient, None).status,
        204
    );
    assert_eq!(
        call(&gw, "GET", &session_path, &as_patient, None).status,
        404
    );
    let limit = json!({"subject": "fake-user", "limit": 1, "period_ms": 60000});
    let first = call(
        &gw,
        "POST",
        "/v1/rate-limits/check",
        &as_patient,
        Some(limit.clone()),
    )
    .json();
    let second = call(
        &gw,
        "POST",
        "/v1/rate-limits/check",
        &as_patient,
        Some(limit),
    )
    .json();
    assert_eq!(
        (first["allowed"].clone(), second["allowed"].clone()),
        (json!(true), json!(false))
    );
    let put =
        json!({"model": "fake-3d", "entries": [{"text": "fake text", "vector": [0.5, 0.25, 1.0]}]});
    assert_eq!(
        call(
            &gw,
            "POST",
            "/v1/embedding-cache/put",
            &as_patient,
            Some(put)
        )
        .status,
        204
    );
    let got = call(
        &gw,
        "POST",
        "/v1/embedding-cache/get",
        &as_patient,
        Some(json!({"model": "fake-3d", "dimension": 3, "texts": ["fake text", "other"]})),
    )
    .json();
    assert_eq!(got["vectors"], json!([[0.5, 0.25, 1.0], null]));
    let generation = json!({"model": "fake-llm", "prompt": "fake prompt", "params": {"t": 0}, "response": "fake answer", "classification": "phi"});
    let phi = call(
        &gw,
        "POST",
        "/v1/generation-cache/put",
        &as_patient,
        Some(generation.clone()),
    )
    .json();
    assert_eq!(phi["stored"], false, "a PHI response is not cached");
    let mut public = generation;
    public["classification"] = json!("public");
    assert_eq!(
        call(
            &gw,
            "POST",
            "/v1/generation-cache/put",
            &as_patient,
            Some(public.clone())
        )
        .json()["stored"],
        true
    );
    assert_eq!(
        call(
            &gw,
            "POST",
            "/v1/generation-cache/get",
            &as_patient,
            Some(public)
        )
        .json()["response"],
        "fake answer"
    );
    let events = json!({"stream": "fake_feature", "events": [{"at": "2026-12-01T10:00:00Z", "attributes": {"screen": "home"}}]});
    let appended = call(
        &gw,
        "POST",
        "/v1/analytics/events",
        &as_patient,
        Some(events),
    );
    assert_eq!(appended.status, 202, "{}", appended.body);
    let points = json!({"series": "fake_latency", "points": [{"at": "2026-12-01T10:00:00Z", "value": 12.5}]});
    assert_eq!(
        call(
            &gw,
            "POST",
            "/v1/analytics/points",
            &as_patient,
            Some(points)
        )
        .status,
        202
    );
    let billing_cache = gw.as_user(BILLING_TOKEN, &clinician, "billing", "payment");
    assert_eq!(
        call(&gw, "POST", "/v1/sessions", &billing_cache, Some(json!({}))).status,
        403
    );

    // Every refusal is in the access log; the canary is nowhere in plaintext: not in a
    // PostgreSQL table, a MongoDB document, a metric or a log line.
    assert!(denied_gateway_entries(&gw).await >= 12);
    let metrics = call(&gw, "GET", "/metrics", &[], None);
    assert!(metrics.body.contains("udl_"), "{}", metrics.body);
    assert!(!metrics.body.contains(CANARY));
    let logs = gw.daemon.logs();
    assert!(
        logs.contains("gateway refused a request"),
        "debug logs were written: {logs}"
    );
    assert!(!logs.contains(CANARY), "PHI in the logs");
    assert_eq!(
        tables_holding(&gw.schema, CANARY).await,
        Vec::<String>::new()
    );
    let mongo = mongodb::Client::with_uri_str(servers::mongo_url())
        .await
        .unwrap();
    let raw: Vec<mongodb::bson::Document> = {
        use futures_util::TryStreamExt as _;
        let collection = mongo
            .database(&gw.schema)
            .collection::<mongodb::bson::Document>("conversations");
        collection
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert!(!raw.is_empty());
    assert!(
        raw.iter().all(|d| !d.to_string().contains(CANARY)),
        "PHI at rest in the clear"
    );
    gw.stop_and_drop_mongo().await;
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate for `client_name`, in
/// `dir`, with the prefix `name`.
fn certificates(dir: &Path, name: &str, client_name: &str) {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=fake test CA",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
        ],
    );
    for (leaf, san, usage) in [
        (
            format!("{name}-server"),
            "IP:127.0.0.1".to_owned(),
            "serverAuth",
        ),
        (
            format!("{name}-client"),
            format!("DNS:{client_name}"),
            "clientAuth",
        ),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=fake leaf",
                "-keyout",
                &format!("{leaf}.key"),
                "-out",
                &format!("{leaf}.csr"),
            ],
        );
        std::fs::write(
            dir.join(format!("{leaf}.ext")),
            format!("subjectAltName={san}\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{leaf}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{leaf}.ext"),
                "-out",
                &format!("{leaf}.crt"),
            ],
        );
    }
}

#[tokio::test]
async fn with_mutual_tls_a_listed_client_certificate_identifies_the_service_and_others_fail_the_handshake(
) {
    let dir = std::env::temp_dir().join(servers::unique_namespace("gw_tls"));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir, "good", "rag.services.fake");
    certificates(&dir, "rogue", "rag.services.fake");
    let p = |f: &str| dir.join(f);
    let toml = format!(
        "[gateway]\n[gateway.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n\n\
         [gateway.services.rag]\ncertificate_name = \"rag.services.fake\"\nentities = [\"app_config\"]\n\
         operations = [\"read\", \"create\"]\npurposes = [\"operations\"]\nroles = [\"clinician\"]\n",
        p("good-server.crt"), p("good-server.key"), p("good-ca.crt")
    );
    let trusted = Transport::tls(
        &p("good-ca.crt"),
        Some((&p("good-client.crt"), &p("good-client.key"))),
    );
    let gw = Gateway::start(&toml, false, trusted).await;
    let mut headers = gw.as_user("", "fake-clinician-1", "clinician", "operations");
    headers.retain(|(n, _)| *n != "x-udl-service-token");
    let entry = json!({"key": "gw.tls.fake", "value": {"on": true}, "description": null, "updated_at": "2026-12-01T10:00:00Z", "version": 1});
    let created = call(&gw, "POST", "/v1/app_config", &headers, Some(entry));
    assert_eq!(
        created.status, 201,
        "the certificate alone identifies the service: {}",
        created.body
    );
    assert_eq!(
        call(&gw, "GET", "/v1/app_config/gw.tls.fake", &headers, None).json()["value"],
        json!({"on": true})
    );
    assert_eq!(
        call(&gw, "DELETE", "/v1/app_config/gw.tls.fake", &headers, None).status,
        403,
        "not in its operations"
    );

    let address = gw.daemon.address.clone();
    let rogue = Transport::tls(
        &p("good-ca.crt"),
        Some((&p("rogue-client.crt"), &p("rogue-client.key"))),
    );
    let anonymous = Transport::tls(&p("good-ca.crt"), None);
    for (what, transport) in [
        ("a certificate of another CA", rogue),
        ("no certificate", anonymous),
    ] {
        let outcome = send(&transport, &address, "GET", "/v1/openapi.json", &[], None);
        assert!(outcome.is_err(), "{what} got an answer: {outcome:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    gw.stop();
}

#[tokio::test]
async fn the_gateway_answers_503_with_retry_after_when_at_capacity_or_a_store_is_down() {
    let mongo = udl_testkit::toxiproxy::Proxy::to("127.0.0.1:27017");
    let mongo_url = format!("mongodb://{}/?directConnection=true", mongo.listen());
    let toml = CLINIC_APP.replace("[gateway]", "[gateway]\nmax_in_flight = 1");
    // Short store timeouts and an early breaker, so a lost MongoDB shows within seconds.
    let overrides = [
        ("UDL__MONGO__URL", mongo_url),
        ("UDL__MONGO__RESILIENCE__TIMEOUT", "2s".to_owned()),
        ("UDL__MONGO__RESILIENCE__READ_ATTEMPTS", "1".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_FAILURES", "2".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_OPEN_FOR", "2s".to_owned()),
    ];
    let gw = Gateway::start_with(&toml, true, Transport::Plain, &overrides).await;
    let patient = uuid::Uuid::new_v4().to_string();
    let as_patient = with(
        gw.as_user(CLINIC_TOKEN, &patient, "patient", "patient_request"),
        "x-udl-patient",
        patient.clone(),
    );
    let note_id = uuid::Uuid::new_v4().to_string();
    let user = json!({"id": patient, "email": "fake-p@example.test", "display_name": "Fake", "role": "patient",
        "status": "active", "created_at": "2026-12-01T09:00:00Z", "updated_at": "2026-12-01T09:00:00Z", "version": 1});
    assert_eq!(
        call(&gw, "POST", "/v1/users", &as_patient, Some(user)).status,
        201
    );
    let created = call(
        &gw,
        "POST",
        "/v1/conversations",
        &as_patient,
        Some(conversation(&note_id, &patient, "fake")),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let note = format!("/v1/conversations/{note_id}");

    // Two reads at once while MongoDB answers slowly: one is served, the other refused.
    mongo.add_latency(800);
    let (a, b) = std::thread::scope(|scope| {
        let first = scope.spawn(|| call(&gw, "GET", &note, &as_patient, None));
        let second = scope.spawn(|| call(&gw, "GET", &note, &as_patient, None));
        (first.join().unwrap(), second.join().unwrap())
    });
    mongo.remove_latency();
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503], "{} / {}", a.body, b.body);
    let busy = if a.status == 503 { &a } else { &b };
    assert_eq!(busy.header("retry-after"), Some("1"), "{busy:?}");

    // MongoDB gone: timeouts (504) until its breaker opens, then 503 with Retry-After at once;
    // never a 500.
    mongo.set_enabled(false);
    let mut answers = Vec::new();
    let down = loop {
        let reply = call(&gw, "GET", &note, &as_patient, None);
        answers.push(reply.status);
        if reply.status == 503 || answers.len() == 6 {
            break reply;
        }
        assert_eq!(reply.status, 504, "{}", reply.body);
    };
    assert_eq!(down.status, 503, "answers: {answers:?}: {}", down.body);
    assert!(down.header("retry-after").is_some(), "{down:?}");
    assert_eq!(down.json()["kind"], "unavailable");
    mongo.set_enabled(true);
    udl_testkit::wait::until("MongoDB serves again", Duration::from_secs(60), || async {
        (call(&gw, "GET", &note, &as_patient, None).status == 200).then_some(())
    })
    .await;
    gw.stop_and_drop_mongo().await;
}

#[tokio::test]
async fn rate_limits_answer_429_and_an_unreachable_revocation_list_refuses_every_request() {
    let mut redis = udl_testkit::private_redis::PrivateRedis::start().await;
    let toml = CLINIC_APP.replace(
        "roles = [\"clinician\", \"patient\"]",
        "roles = [\"clinician\", \"patient\"]\nrequests_per_minute = 3",
    );
    let gw = Gateway::start_with(
        &toml,
        false,
        Transport::Plain,
        &[("UDL__REDIS__URL", redis.url.clone())],
    )
    .await;
    let headers = gw.as_user(CLINIC_TOKEN, "fake-clinician-7", "clinician", "operations");
    let path = "/v1/app_config/gw.fake.missing";
    let statuses: Vec<u16> = (0..4)
        .map(|_| call(&gw, "GET", path, &headers, None).status)
        .collect();
    assert_eq!(
        statuses,
        [404, 404, 404, 429],
        "the fourth request of the minute is over the limit"
    );
    let limited = call(&gw, "GET", path, &headers, None);
    assert_eq!(limited.json()["kind"], "rate_limited");
    let wait: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // Without Redis the token's revocation cannot be checked: refused, never served.
    redis.stop();
    let refused = call(&gw, "GET", path, &headers, None);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    gw.stop();
}
