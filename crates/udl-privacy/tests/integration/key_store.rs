//! Data keys in the real PostgreSQL: created on first load, stored only wrapped, rotated to a
//! new version that encrypts while old versions keep decrypting.

use udl_config::StoreConfig as _;
use udl_core::ErrorKind;
use udl_postgres::PgStore;
use udl_privacy::{load_keys, rotate, FieldCipher, FieldPlace, KeyPurpose, LocalKeyRing};
use udl_testkit::servers;

const RING: &str = "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const OTHER_RING: &str = "1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

async fn migrated() -> PgStore {
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", servers::unique_namespace("k")),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
    ];
    let config =
        udl_postgres::PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let pg = match PgStore::connect(&config).await {
        Ok(pg) => pg,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    udl_postgres::models::migrator().up(&pg).await.unwrap();
    pg
}

async fn drop_schema(pg: &PgStore) {
    let sql = format!("DROP SCHEMA \"{}\" CASCADE", pg.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_are_made_once_stored_wrapped_and_rotated_without_losing_old_values() {
    let pg = migrated().await;
    let ring = LocalKeyRing::parse(RING).unwrap();
    let here = FieldPlace {
        store: "postgres",
        table: "users",
        field: "email",
        record_id: b"user-1",
    };

    let first = load_keys(&pg, &ring, KeyPurpose::Encryption).await.unwrap();
    assert_eq!(first.len(), 1);
    let sealed = FieldCipher::new(first)
        .unwrap()
        .encrypt(&here, b"fake@example.test")
        .unwrap();
    let again =
        FieldCipher::new(load_keys(&pg, &ring, KeyPurpose::Encryption).await.unwrap()).unwrap();
    assert_eq!(again.current_version(), 1, "loading again makes no new key");
    assert_eq!(again.decrypt(&here, &sealed).unwrap(), b"fake@example.test");

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM udl_data_keys")
        .fetch_all(pg.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 12 + 32 + 16, "nonce, wrapped key, tag");

    let versions = rotate_three_at_once(&pg, &ring).await;
    assert_eq!(versions.len(), 3);
    let mut distinct = versions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "concurrent rotations get distinct versions: {versions:?}"
    );

    let rotated =
        FieldCipher::new(load_keys(&pg, &ring, KeyPurpose::Encryption).await.unwrap()).unwrap();
    assert_eq!(rotated.current_version(), 4);
    assert_eq!(
        rotated.decrypt(&here, &sealed).unwrap(),
        b"fake@example.test"
    );
    let fresh = rotated.encrypt(&here, b"fake@example.test").unwrap();
    assert_eq!(FieldCipher::version_of(&fresh), Some(4));
    assert_eq!(
        load_keys(&pg, &ring, KeyPurpose::BlindIndex)
            .await
            .unwrap()
            .len(),
        1,
        "each purpose has its own keys"
    );

    let wrong = LocalKeyRing::parse(OTHER_RING).unwrap();
    let err = load_keys(&pg, &wrong, KeyPurpose::Encryption)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    drop_schema(&pg).await;
}

/// Three rotations at once.
async fn rotate_three_at_once(pg: &PgStore, ring: &LocalKeyRing) -> Vec<u32> {
    let (a, b, c) = tokio::join!(
        rotate(pg, ring, KeyPurpose::Encryption),
        rotate(pg, ring, KeyPurpose::Encryption),
        rotate(pg, ring, KeyPurpose::Encryption),
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap()]
}
