//! MongoDB: udl's repository against the raw `mongodb` driver on the same client and pool.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::Collection;
use udl::mongo::MongoStore;
use udl::{Repository, Result};
use udl_testkit::servers;
use uuid::Uuid;

use crate::fixture::{ctx, list_owner_page, row, BenchRow, RawRow, CONCURRENCY, OWNERS};
use crate::measure::{header, scenario, Plan};

const SEEDED: usize = 10_000;

fn uuid_bson(id: Uuid) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: id.as_bytes().to_vec(),
    })
}

/// The document a raw driver user would write for a row.
fn raw_document(r: BenchRow) -> Document {
    doc! {
        "_id": uuid_bson(r.id),
        "owner": r.owner,
        "active": r.active,
        "score": r.score,
        "payload": r.payload,
        "created_at": mongodb::bson::DateTime::from_millis(r.created_at.timestamp_millis()),
        "version": r.version,
    }
}

/// A raw driver user's decoding of a stored row.
fn decode(d: &Document) -> Option<RawRow> {
    let id = match d.get("_id")? {
        Bson::Binary(b) => Uuid::from_slice(&b.bytes).ok()?,
        _ => return None,
    };
    Some(RawRow {
        id,
        owner: d.get_str("owner").ok()?.to_owned(),
        active: d.get_bool("active").ok()?,
        score: d.get_f64("score").ok()?,
        payload: d.get_str("payload").ok()?.to_owned(),
        created_at: DateTime::<Utc>::from_timestamp_millis(
            d.get_datetime("created_at").ok()?.timestamp_millis(),
        )?,
        version: d.get_i64("version").ok()?,
    })
}

/// Runs every MongoDB scenario and prints its line.
pub async fn run(plan: &Plan) -> Result<()> {
    let database = servers::unique_namespace("bench");
    let vars = [
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", database),
        ("UDL__MONGO__POOL__MIN", CONCURRENCY.to_string()),
        ("UDL__MONGO__POOL__MAX", CONCURRENCY.to_string()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let store = MongoStore::connect(
        config
            .store::<udl::mongo::MongoConfig>()
            .expect("mongo configured"),
    )
    .await?;
    let outcome = scenarios(&store, plan).await;
    let _ = store.database().drop().await;
    outcome
}

async fn scenarios(store: &MongoStore, plan: &Plan) -> Result<()> {
    let repo: Repository<BenchRow> = store.repository()?;
    let raw: Collection<Document> = store.database().collection("bench_events");
    let seeded: Vec<BenchRow> = (0..SEEDED).map(row).collect();
    let ids: Arc<Vec<Uuid>> = Arc::new(seeded.iter().map(|r| r.id).collect());
    repo.create_many(ctx(), seeded).await?;

    println!("mongo ({}): {CONCURRENCY} tasks on one client pool of {CONCURRENCY}, {}s per side per round, {} rounds",
        if store.server().ferretdb { "FerretDB" } else { "MongoDB" }, plan.window.as_secs(), plan.rounds);
    header();

    let (udl_repo, udl_ids, raw_coll, raw_ids) = (
        repo.clone(),
        Arc::clone(&ids),
        raw.clone(),
        Arc::clone(&ids),
    );
    scenario(
        plan,
        "get_by_id",
        move |i| {
            let (repo, ids) = (udl_repo.clone(), Arc::clone(&udl_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                assert!(repo.get(ctx(), &id).await.expect("udl get").is_some());
            }
        },
        move |i| {
            let (raw, ids) = (raw_coll.clone(), Arc::clone(&raw_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                let found = raw
                    .find_one(doc! { "_id": uuid_bson(id) })
                    .await
                    .expect("raw get");
                assert!(found.as_ref().and_then(decode).is_some());
            }
        },
    )
    .await;

    let (udl_repo, raw_coll) = (repo.clone(), raw.clone());
    scenario(
        plan,
        "insert_one",
        move |i| {
            let repo = udl_repo.clone();
            async move {
                repo.create(ctx(), row(i as usize))
                    .await
                    .expect("udl insert");
            }
        },
        move |i| {
            let raw = raw_coll.clone();
            async move {
                raw.insert_one(raw_document(row(i as usize)))
                    .await
                    .expect("raw insert");
            }
        },
    )
    .await;

    // The index a raw driver user would make for this query; udl's list uses it too.
    let index = mongodb::IndexModel::builder()
        .keys(doc! { "owner": 1, "active": 1, "_id": 1 })
        .build();
    raw.create_index(index)
        .await
        .map_err(|e| udl::mongo::classify(&e, "bench"))?;
    let (udl_repo, raw_coll) = (repo.clone(), raw.clone());
    scenario(
        plan,
        "list_filter2_limit50",
        move |i| {
            let repo = udl_repo.clone();
            async move { list_owner_page(&repo, i).await }
        },
        move |i| {
            let raw = raw_coll.clone();
            async move {
                let owner = format!("owner-{}", i as usize % OWNERS);
                let docs: Vec<Document> = raw
                    .find(doc! { "owner": owner, "active": true })
                    .sort(doc! { "_id": 1 })
                    .limit(51)
                    .await
                    .expect("raw list")
                    .try_collect()
                    .await
                    .expect("raw list");
                let mut page: Vec<RawRow> = docs.iter().filter_map(decode).collect();
                page.truncate(50);
                assert_eq!(page.len(), 50);
            }
        },
    )
    .await;
    Ok(())
}
