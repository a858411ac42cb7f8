//! Change data capture on the real PostgreSQL and Cassandra: rows written through udl reach
//! ScyllaDB's `ce_events` as sanitized CloudEvents (public and internal fields as they are,
//! tokenized fields as vault tokens, everything else left out), each with a sealed
//! redaction-ledger entry; no canary reaches ScyllaDB, the logs or the metrics; and a column
//! the entity does not declare halts the relay before the change that carries it, until a
//! relay that declares it takes over.

use std::time::Duration;

use udl::sync::RelayState;
use udl::{AccessContext, Changes, DataLayer, Entity, Purpose, RelaySinks, Role};
use udl_testkit::wait;
use uuid::Uuid;

use crate::capture_kit::*;
use crate::common;
use common::*;

/// A therapy session as PostgreSQL keeps it: what each field's declaration does to it on its
/// way to analytics is the point of these tests.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "therapy_sessions", store = "postgres")]
pub struct TherapySession {
    #[udl(id, internal)]
    pub id: Uuid,
    /// Joinable in analytics, never readable there: sealed here, tokenized there.
    #[udl(phi, tokenize)]
    pub patient_ref: String,
    #[udl(public)]
    pub topic: String,
    #[udl(phi)]
    pub notes: String,
    #[udl(pii, blind_index = "case_insensitive")]
    pub email: String,
    #[udl(internal, no_export)]
    pub room_code: String,
    #[udl(internal)]
    pub minutes: i64,
    #[udl(version, internal)]
    pub version: i64,
}

/// The same table once it has gained `mood`: what a deployment declaring it runs.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "therapy_sessions", store = "postgres")]
pub struct TherapySessionWithMood {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(phi, tokenize)]
    pub patient_ref: String,
    #[udl(public)]
    pub topic: String,
    #[udl(phi)]
    pub notes: String,
    #[udl(pii, blind_index = "case_insensitive")]
    pub email: String,
    #[udl(internal, no_export)]
    pub room_code: String,
    #[udl(internal)]
    pub minutes: i64,
    #[udl(version, internal)]
    pub version: i64,
    #[udl(internal)]
    pub mood: Option<String>,
}

const SESSIONS_DDL: &str = "CREATE TABLE therapy_sessions (
    id UUID PRIMARY KEY, patient_ref BYTEA NOT NULL, topic TEXT NOT NULL, notes BYTEA NOT NULL,
    email BYTEA NOT NULL, email_bidx BYTEA NOT NULL, room_code TEXT NOT NULL,
    minutes BIGINT NOT NULL, version BIGINT NOT NULL)";

pub(crate) fn session(canary: &str, n: i64) -> TherapySession {
    TherapySession {
        id: Uuid::new_v4(),
        patient_ref: format!("{canary}-patient-{n}"),
        topic: format!("topic-{n}"),
        notes: format!("{canary} fake session notes {n}"),
        email: format!("{canary}.p{n}@example.test"),
        room_code: format!("{canary}-room-{n}"),
        minutes: 30 + n,
        version: 1,
    }
}

pub(crate) async fn world_with_sessions() -> World {
    let w = world(true).await;
    sqlx::query(SESSIONS_DDL)
        .execute(w.data.postgres().unwrap().pool())
        .await
        .unwrap();
    w
}

/// A user, their credential and a consent, each holding canaries in its PII and PHI fields,
/// written through udl: every captured platform model with such text fields. Returns the
/// user's id.
async fn canaries_in_platform_models(w: &World, canary: &str) -> Uuid {
    use udl::postgres::models::{ConsentRecord, User, UserCredential, UserStatus};
    let now = chrono::Utc::now();
    let user = User {
        id: Uuid::new_v4(),
        email: format!("{canary}.user@example.test"),
        display_name: format!("{canary} Fake Name"),
        role: Role::Patient,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    w.data
        .repository::<User>()
        .unwrap()
        .create(&ctx(), user.clone())
        .await
        .unwrap();
    let credential = UserCredential {
        user_id: user.id,
        password_hash: format!("$argon2id$fake${canary}"),
        algorithm: "argon2id".into(),
        updated_at: now,
        version: 1,
    };
    w.data
        .repository::<UserCredential>()
        .unwrap()
        .create(&ctx(), credential)
        .await
        .unwrap();
    let consent = ConsentRecord {
        id: Uuid::new_v4(),
        patient_id: user.id,
        grantee_id: None,
        grantee_role: Some("clinician".into()),
        purpose: Purpose::Research,
        scope: format!("{canary}-scope"),
        granted_at: now,
        expires_at: None,
        revoked_at: None,
        version: 1,
    };
    w.data
        .repository::<ConsentRecord>()
        .unwrap()
        .create(&ctx(), consent)
        .await
        .unwrap();
    user.id
}

#[tokio::test]
async fn changes_reach_scylla_sanitized_with_a_sealed_ledger_and_no_canary_anywhere() {
    udl_testkit::logs::capture();
    let w = world_with_sessions().await;
    w.data.register::<TherapySession>().unwrap();
    let bus = Bus::of(&w);
    let relay = configured_relay(&w, &bus.config(&w)).await;
    assert_eq!(relay.check().await.unwrap(), Vec::<String>::new());
    let running = start(relay).await;

    let canary = canary();
    let sessions = w.data.repository::<TherapySession>().unwrap();
    let (a, b) = (session(&canary, 1), session(&canary, 2));
    sessions.create(&ctx(), a.clone()).await.unwrap();
    sessions.create(&ctx(), b.clone()).await.unwrap();
    let changes = Changes::new()
        .set("topic", "sleep")
        .set("notes", format!("{canary} revised notes"));
    assert!(sessions.update(&ctx(), &a.id, changes).await.unwrap());
    assert!(sessions.delete(&ctx(), &b.id).await.unwrap());
    let user = canaries_in_platform_models(&w, &canary).await;

    let of_a = events_of(&w.data, &a.id.to_string(), 2).await;
    let of_b = events_of(&w.data, &b.id.to_string(), 2).await;
    let of_user = events_of(&w.data, &user.to_string(), 2).await;
    let types = |events: &[Stored]| {
        events
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types(&of_a),
        ["ce.therapy_sessions.created", "ce.therapy_sessions.updated"]
    );
    assert_eq!(
        types(&of_b),
        ["ce.therapy_sessions.created", "ce.therapy_sessions.deleted"]
    );
    assert_eq!(
        types(&of_user),
        ["ce.users.created", "ce.user_credentials.created"],
        "keyed by the user"
    );
    assert!(
        of_a[0].position < of_a[1].position,
        "a row's events in commit order"
    );

    let created = of_a[0].data.as_object().unwrap();
    let mut fields: Vec<&str> = created.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["id", "minutes", "patient_ref", "topic", "version"],
        "PHI, PII, no_export fields and blind indexes are left out"
    );
    assert_eq!(created["topic"], "topic-1");
    assert_eq!(created["minutes"], 31);
    let token = created["patient_ref"].as_str().unwrap();
    let vault = w.data.token_vault().unwrap();
    assert_eq!(
        token,
        vault.token_of("patient_ref", &a.patient_ref),
        "the sealed value's token"
    );
    assert_eq!(
        of_a[1].data["patient_ref"], token,
        "the same token on every event"
    );
    assert_eq!(of_a[1].data["topic"], "sleep");
    let clinician =
        AccessContext::new("clinician-fake-cdc", Role::Clinician, Purpose::Treatment).unwrap();
    assert_eq!(
        vault.detokenize(&clinician, token).await.unwrap(),
        a.patient_ref,
        "kept in the vault"
    );
    assert_eq!(
        of_b[1].data.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id"],
        "a delete carries the key"
    );

    // The ledger says what was done to each field of each event, sealed, and reading it is
    // for auditors, audited either way.
    let ledger = w.data.redaction_ledger().unwrap();
    let auditor =
        AccessContext::new("auditor-fake-cdc", Role::Auditor, Purpose::Operations).unwrap();
    let entries = ledger
        .read(&auditor, w.data.audit_writer().unwrap(), &of_a[0].id)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].intact, "the seal matches");
    let actions: Vec<(String, String)> = entries[0]
        .actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["field"].as_str().unwrap().to_owned(),
                a["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("patient_ref", "tokenized"),
        ("notes", "stripped"),
        ("email", "stripped"),
        ("email_bidx", "stripped"),
        ("room_code", "stripped"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, a)| ((*f).into(), (*a).into()))
        .collect();
    assert_eq!(actions, expected);
    assert_eq!(entries[0].actions[0]["token"], token);
    assert!(
        entries[0].actions[1]["key_version"].is_u64(),
        "a sealed field names its key version"
    );
    // An entry edited around the triggers no longer matches its seal.
    w.tamper(format!(
        "UPDATE udl_redaction_ledger SET entries = replace(entries::text, '{token}', 'tok_forged')::jsonb"
    ))
    .await;
    let edited = ledger
        .read(&auditor, w.data.audit_writer().unwrap(), &of_a[0].id)
        .await
        .unwrap();
    assert_eq!(edited[0].actions[0]["token"], "tok_forged");
    assert!(!edited[0].intact, "the edit shows");
    let denied = ledger
        .read(&clinician, w.data.audit_writer().unwrap(), &of_a[0].id)
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), udl::ErrorKind::PermissionDenied);
    assert_eq!(
        w.entries_of(&auditor).await.len(),
        2,
        "the auditor's reads are logged"
    );
    assert_eq!(
        w.entries_of(&clinician).await.len(),
        2,
        "the refusal is logged (after the detokenize)"
    );

    running.stop().await;
    // The server's walsender ends a moment after the relay lets go of the slot.
    let slot = settings(&w).slot;
    let status =
        udl_testkit::wait::until("the slot is released", Duration::from_secs(30), || async {
            let status = udl::sync::slot::status(w.data.postgres().unwrap(), &slot)
                .await
                .unwrap();
            (!status.active).then_some(status)
        })
        .await;
    assert!(status.exists);
    assert_eq!(status.relay.unwrap().state, "stopped");

    let scylla = w.scylla_contents().await;
    assert!(
        scylla.contains("ce.therapy_sessions.created"),
        "the scan reads the events"
    );
    assert!(!scylla.contains(&canary), "no canary in ScyllaDB");
    assert!(
        scylla.contains("ce.consent_records.created")
            && scylla.contains("ce.user_credentials.created")
    );
    // The bus holds the same events, each once, as structured CloudEvents keyed by id.
    let published = bus.messages().await;
    let mut on_bus = Vec::new();
    for message in &published {
        let text = String::from_utf8(message.payload.to_vec()).unwrap();
        assert!(!text.contains(&canary), "no canary in NATS");
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = event["id"].as_str().unwrap().to_owned();
        assert_eq!(
            message.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(id.as_str())
        );
        let action = event["type"].as_str().unwrap().trim_start_matches("ce.");
        assert_eq!(message.subject.as_str(), format!("{}.{action}", bus.prefix));
        on_bus.push(id);
    }
    let in_scylla: Vec<String> = stored_events(&w.data)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(on_bus, in_scylla, "each event once, in commit order");
    bus.delete().await;

    let logs = udl_testkit::logs::captured();
    assert!(!logs.contains(&canary), "no canary in the logs");
    assert!(
        !w.data.metrics().render().contains(&canary),
        "no canary in the metrics"
    );
    assert!(w.data.metrics().render().contains("udl_cdc_events_total"));
    drop_capture(&w).await;
}

#[tokio::test]
async fn an_undeclared_column_halts_the_relay_until_a_declaring_relay_takes_over() {
    let w = world_with_sessions().await;
    w.data.register::<TherapySession>().unwrap();
    let mut running = start(configured_relay(&w, &config_of(&w)).await).await;
    let canary = canary();
    let sessions = w.data.repository::<TherapySession>().unwrap();
    let before = session(&canary, 1);
    sessions.create(&ctx(), before.clone()).await.unwrap();
    events_of(&w.data, &before.id.to_string(), 1).await;

    let pg = w.data.postgres().unwrap();
    sqlx::query("ALTER TABLE therapy_sessions ADD COLUMN mood TEXT")
        .execute(pg.pool())
        .await
        .unwrap();
    let after = session(&canary, 2);
    sessions.create(&ctx(), after.clone()).await.unwrap();
    let halted = running
        .reaches("the relay halts", |s| matches!(s, RelayState::Halted(_)))
        .await;
    let RelayState::Halted(reason) = halted else {
        unreachable!()
    };
    assert!(reason.contains("column mood"), "{reason}");
    assert!(!reason.contains(&canary), "{reason}");
    let status = udl::sync::slot::status(pg, &settings(&w).slot)
        .await
        .unwrap();
    let report = status.relay.unwrap();
    assert_eq!(
        (report.state.as_str(), report.reason.as_deref()),
        ("halted", Some(reason.as_str()))
    );
    assert!(
        stored_events(&w.data)
            .await
            .iter()
            .all(|e| e.subject != Some(after.id.to_string())),
        "nothing of the change that carries the column is sent"
    );
    running.stop().await;

    // A process whose entity declares the column resumes from the change that halted.
    let declaring = DataLayer::connect(&config_of(&w)).await.unwrap();
    declaring.register::<TherapySessionWithMood>().unwrap();
    let relay = declaring
        .change_relay(&config_of(&w), settings(&w), RelaySinks::Configured)
        .await
        .unwrap();
    assert_eq!(relay.check().await.unwrap(), Vec::<String>::new());
    let running = start(relay).await;
    let resumed = events_of(&w.data, &after.id.to_string(), 1).await;
    assert_eq!(resumed[0].event_type, "ce.therapy_sessions.created");
    assert!(resumed[0].data["mood"].is_null(), "{}", resumed[0].data);
    running.stop().await;
    drop_capture(&w).await;
}

/// A cached PostgreSQL entity (a user's plan, as the platform caches it).
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "cached_plans", store = "postgres", cache = "l1_l2")]
pub struct CachedPlan {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(public)]
    pub plan: String,
    #[udl(version, internal)]
    pub version: i64,
}

/// Well under the L1 TTL (30 s) and L2 TTL (10 min): a read that is fresh within it came
/// through the relay's invalidation, not an expiry.
const INVALIDATED_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_update_made_around_udl_evicts_the_record_from_another_processs_cache() {
    let w = world(true).await;
    sqlx::raw_sql(
        "CREATE TABLE cached_plans (id UUID PRIMARY KEY, plan TEXT NOT NULL, version BIGINT NOT NULL)",
    )
    .execute(w.data.postgres().unwrap().pool())
    .await
    .unwrap();
    w.data.register::<CachedPlan>().unwrap();
    let relay = configured_relay(&w, &config_of(&w)).await;
    let running = start(relay).await;

    // Another udl instance: its own L1, the shared Redis L2, invalidations over Redis.
    let other = DataLayer::connect(&config_of(&w)).await.unwrap();
    other.register::<CachedPlan>().unwrap();
    let ctx = AccessContext::system("cache-invalidation-test");
    let plans = other.repository::<CachedPlan>().unwrap();
    let plan = CachedPlan {
        id: Uuid::new_v4(),
        plan: "fake-basic".into(),
        version: 1,
    };
    plans.create(&ctx, plan.clone()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            plans.get_required(&ctx, &plan.id).await.unwrap().plan,
            "fake-basic"
        );
    }
    let cached = other.cache_stats(udl::StoreKind::POSTGRES).unwrap();
    assert!(cached.l1_hits >= 1, "the second read came from L1");

    // As psql would: around udl, straight into PostgreSQL.
    sqlx::query(
        "UPDATE cached_plans SET plan = 'fake-premium', version = version + 1 WHERE id = $1",
    )
    .bind(plan.id)
    .execute(w.data.postgres().unwrap().pool())
    .await
    .unwrap();
    wait::until(
        "the other process to stop serving the old plan",
        INVALIDATED_WITHIN,
        || async {
            let now = plans.get_required(&ctx, &plan.id).await.unwrap().plan;
            (now == "fake-premium").then_some(())
        },
    )
    .await;

    running.stop().await;
    other.shutdown(Duration::from_secs(1)).await;
    drop_capture(&w).await;
}

#[tokio::test]
async fn the_user_plans_projection_follows_subscriptions_idempotently() {
    use udl::postgres::models::{Subscription, SubscriptionStatus, User, UserStatus};
    use udl::redis::{PlanChange, UserPlan, UserPlans};
    let w = world(true).await;
    let mut vars = w.vars.clone();
    vars.push(("UDL__CDC__PROJECTIONS".into(), "user_plans".into()));
    let config = udl::config::from_sources(None, vars).unwrap();
    let relay = configured_relay(&w, &config).await;
    let running = start(relay).await;

    let ctx = AccessContext::system("projection-test");
    let (user, subscription) = (Uuid::new_v4(), Uuid::new_v4());
    let now = chrono::Utc::now();
    w.data
        .repository::<User>()
        .unwrap()
        .create(
            &ctx,
            User {
                id: user,
                email: format!("fake-{user}@example.test"),
                display_name: "Fake Subscriber".into(),
                role: Role::Patient,
                status: UserStatus::Active,
                created_at: now,
                updated_at: now,
                version: 1,
            },
        )
        .await
        .unwrap();
    w.data
        .repository::<Subscription>()
        .unwrap()
        .create(
            &ctx,
            Subscription {
                id: subscription,
                user_id: user,
                plan: "fake-basic".into(),
                status: SubscriptionStatus::Active,
                current_period_start: now,
                current_period_end: now + chrono::Duration::days(30),
                cancel_at: None,
                external_ref: None,
                created_at: now,
                version: 1,
            },
        )
        .await
        .unwrap();

    let plans = UserPlans::new(w.data.redis().unwrap().clone());
    let plan_is = |want: Option<&'static str>| {
        let plans = plans.clone();
        async move {
            let plan = plans.get(&user.to_string()).await.unwrap();
            (plan.as_ref().map(|p| p.plan.as_str()) == want).then_some(plan)
        }
    };
    let within = Duration::from_secs(30);
    let basic = wait::until("the new plan in Redis", within, || {
        plan_is(Some("fake-basic"))
    })
    .await
    .unwrap();
    assert_eq!(basic.status, "active");
    assert_eq!(basic.subscription_id, subscription.to_string());

    // Changed around udl, as a billing job with psql would.
    let pg = w.data.postgres().unwrap().pool();
    sqlx::query("UPDATE subscriptions SET plan = 'fake-premium' WHERE id = $1")
        .bind(subscription)
        .execute(pg)
        .await
        .unwrap();
    wait::until("the changed plan in Redis", within, || {
        plan_is(Some("fake-premium"))
    })
    .await;

    // A replayed (older) change changes nothing.
    let stale = PlanChange::Set {
        event_id: "0000000000000001-00000".into(),
        user_id: user.to_string(),
        plan: UserPlan {
            plan: "fake-stale".into(),
            ..basic
        },
    };
    plans.apply(&[stale]).await.unwrap();
    let kept = plans.get(&user.to_string()).await.unwrap().unwrap();
    assert_eq!(kept.plan, "fake-premium", "an older event does not win");

    sqlx::query("DELETE FROM subscriptions WHERE id = $1")
        .bind(subscription)
        .execute(pg)
        .await
        .unwrap();
    wait::until("the removed plan gone from Redis", within, || async {
        plans
            .get(&user.to_string())
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(w
        .data
        .metrics()
        .render()
        .contains("udl_projection_lag_seconds{projection=\"user_plans\"}"));

    running.stop().await;
    drop_capture(&w).await;
}

#[tokio::test]
async fn a_large_event_reaches_the_sinks_and_one_the_bus_cannot_take_halts_the_relay() {
    let w = world_with_sessions().await;
    w.data.register::<TherapySession>().unwrap();
    let bus = Bus::of(&w);
    let relay = configured_relay(&w, &bus.config(&w)).await;
    let mut running = start(relay).await;
    let sessions = w.data.repository::<TherapySession>().unwrap();

    // 200 KB of public text: past any batch limit of ScyllaDB, within NATS's 1 MB.
    let mut large = session("fake-large", 1);
    large.topic = "t".repeat(200_000);
    sessions.create(&ctx(), large.clone()).await.unwrap();
    let stored = events_of(&w.data, &large.id.to_string(), 1).await;
    assert_eq!(
        stored[0].data["topic"].as_str().map(str::len),
        Some(200_000)
    );

    // 1.2 MB: the bus refuses it for good, so the relay halts saying why, before the slot
    // moves past it.
    let mut too_large = session("fake-too-large", 2);
    too_large.topic = "t".repeat(1_200_000);
    sessions.create(&ctx(), too_large).await.unwrap();
    let halted = running
        .reaches("halted", |s| matches!(s, RelayState::Halted(_)))
        .await;
    let RelayState::Halted(reason) = halted else {
        unreachable!()
    };
    assert!(
        reason.contains("larger than the NATS server takes"),
        "{reason}"
    );
    assert!(!reason.contains("ttt"), "no value in the reason");

    running.stop().await;
    let published = bus.messages().await;
    assert_eq!(published.len(), 1, "only the event the bus could take");
    bus.delete().await;
    drop_capture(&w).await;
}
