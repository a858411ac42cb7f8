//! `udl keys rotate`: a new field-encryption key version, then every stored value sealed under
//! an older version sealed again with it, store by store, with a progress bar and a final count.

use std::process::ExitCode;

use udl::privacy::{reencrypt, resealer, FieldKeys, KeyPurpose, LocalKeyRing, Reencrypted};
use udl::{
    AccessContext, DataLayer, EntityMeta, Error, ErrorKind, Filter, Result, StoreKind, UdlConfig,
};

use crate::progress_bar::ProgressBar;

/// Adds a field-encryption key version (unless `resume`: finishing an interrupted run), seals
/// plaintext left from before encryption (users' e-mails and names, relationship kinds, the
/// first chat archive's messages),
/// and re-encrypts every model's older values, `batch` records at a time.
pub async fn rotate(config: &UdlConfig, resume: bool, batch: usize) -> Result<ExitCode> {
    let privacy = config.privacy.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "key rotation needs [privacy] (privacy.key_ring_file)",
        )
    })?;
    let ring = std::sync::Arc::new(LocalKeyRing::parse(privacy.key_ring.expose())?);
    if !resume {
        let pg = crate::audit::postgres_store(config).await?;
        let version = udl::privacy::rotate(&pg, ring.as_ref(), KeyPurpose::Encryption).await?;
        println!("field-encryption key version {version} added; new values use it now");
    }
    // Connected and loaded after the rotation, so the newest version is the one values are
    // sealed with.
    let data = DataLayer::connect(config).await?;
    crate::commands::closing(data, async |data| reencrypt_all(data, ring, batch).await).await
}

/// Seals legacy plaintext and re-encrypts every stored value under the newest key version.
async fn reencrypt_all(
    data: &DataLayer,
    ring: std::sync::Arc<LocalKeyRing>,
    batch: usize,
) -> Result<ExitCode> {
    let pg = data.postgres()?;
    let keys = FieldKeys::load(pg, ring).await?;
    let version = keys.cipher().current_version();

    let mut sealed = 0;
    for column in udl::privacy::plaintext_columns() {
        let legacy = ProgressBar {
            label: format!("{column} (postgres)"),
            total: Some(udl::privacy::count_plaintext(pg, column).await?),
        };
        let done =
            udl::privacy::seal_plaintext(pg, &keys, column, batch, |n| legacy.show(n)).await?;
        legacy.finish(done);
        sealed += done;
    }
    let archived = match data.scylla() {
        Ok(_) => {
            let bar = ProgressBar {
                label: "chat_archive, plaintext (scylla)".into(),
                total: None,
            };
            let ctx = AccessContext::system("key-rotation");
            let batch = i32::try_from(batch).unwrap_or(i32::MAX);
            let archive = data.chat_archive()?;
            let moved = archive.move_plaintext(&ctx, batch, |n| bar.show(n)).await?;
            bar.finish(moved);
            moved
        }
        Err(_) => 0,
    };

    let mut total = Reencrypted::default();
    let mut left_out = Vec::new();
    for (kind, entity) in encrypted_models(data) {
        let Ok(records) = data.unaudited_records(kind) else {
            left_out.push(format!("{} ({kind}: not configured)", entity.name));
            continue;
        };
        let done = reencrypt_model(data, &keys, (kind, entity), records, batch).await?;
        total.scanned += done.scanned;
        total.resealed += done.resealed;
        total.skipped += done.skipped;
    }
    println!(
        "re-encrypted {} records with key version {version} ({} scanned, {} changed meanwhile \
         and already current; plaintext sealed: {sealed} values, {archived} archived messages)",
        total.resealed, total.scanned, total.skipped
    );
    for model in &left_out {
        println!("not re-encrypted: {model}");
    }
    if sealed > 0 {
        eprintln!(
            "note: PostgreSQL keeps the old plaintext row versions until `VACUUM FULL users, \
             patient_relationships` rewrites the tables (and in WAL and backups until they age \
             out)"
        );
    }
    if archived > 0 {
        eprintln!(
            "note: with auto_snapshot on, the truncated chat_archive stays in a snapshot on each \
             node until `nodetool clearsnapshot` removes it"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The registered models with encrypted fields, with their stores, and the platform's models
/// of stores that are not configured (listed as not re-encrypted).
fn encrypted_models(data: &DataLayer) -> Vec<(StoreKind, &'static EntityMeta)> {
    let mut models: Vec<&'static EntityMeta> = data.registry().entities();
    for unconfigured in udl::postgres::models::entities()
        .into_iter()
        .chain(udl::mongo::models::entities())
        .chain(udl::scylla::models::entities())
    {
        if !models.iter().any(|m| std::ptr::eq(*m, unconfigured)) {
            models.push(unconfigured);
        }
    }
    models
        .into_iter()
        .filter(|m| m.has_encrypted_fields())
        .filter_map(|m| m.store.map(|store| (store, m)))
        .collect()
}

/// Re-encrypts one model's older values: PostgreSQL and MongoDB in id-ordered batches,
/// ScyllaDB (which serves records by key) by a full scan that rewrites whole rows.
async fn reencrypt_model(
    data: &DataLayer,
    keys: &FieldKeys,
    (kind, entity): (StoreKind, &'static EntityMeta),
    records: std::sync::Arc<dyn udl::RecordStore>,
    batch: usize,
) -> Result<Reencrypted> {
    let label = format!("{} ({kind})", entity.name);
    if kind == StoreKind::SCYLLA {
        let bar = ProgressBar { label, total: None };
        let reseal = resealer(keys, kind, entity)?;
        let (scanned, resealed) = data
            .scylla()?
            .table_records()
            .rewrite_all(
                udl::privacy::stored_form(entity)?,
                i32::try_from(batch).unwrap_or(i32::MAX),
                reseal,
                |read| bar.show(read),
            )
            .await?;
        bar.finish(scanned);
        Ok(Reencrypted {
            scanned,
            resealed,
            skipped: 0,
        })
    } else {
        let form = udl::privacy::stored_form(entity)?;
        let ctx = AccessContext::system("key-rotation");
        let bar = ProgressBar {
            label,
            total: Some(records.count(&ctx, form, &Filter::All).await?),
        };
        let done = reencrypt(&records, keys, entity, batch, |d| bar.show(d.scanned)).await?;
        bar.finish(done.scanned);
        Ok(done)
    }
}
