//! Re-encryption after a key rotation: every value an older data key sealed is sealed again
//! with the newest, in batches, in id order. Only values under older versions are touched, so
//! a run that stops part-way (a crash, a deploy) is finished by running it again.

use std::sync::Arc;

use udl_core::{
    field, AccessContext, EntityMeta, Filter, Query, Record, RecordStore, Result, SortKey,
    StoreKind, ValidChanges, Value,
};

use crate::field_keys::FieldKeys;
use crate::sealing::Sealer;

/// What a re-encryption run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reencrypted {
    /// Records read.
    pub scanned: u64,
    /// Records sealed again with the newest key.
    pub resealed: u64,
    /// Records changed by someone else meanwhile (their new values use the newest key).
    pub skipped: u64,
}

/// Seals every value of `entity`'s encrypted fields in `store` (below the privacy layers, as
/// stored) that an older key version sealed again with the newest key in `keys`, `batch`
/// records at a time; `progress` hears the running totals after each batch. With a version
/// field, a record changed meanwhile is skipped rather than overwritten.
pub async fn reencrypt(
    store: &Arc<dyn RecordStore>,
    keys: &FieldKeys,
    entity: &'static EntityMeta,
    batch: usize,
    mut progress: impl FnMut(Reencrypted),
) -> Result<Reencrypted> {
    let ctx = AccessContext::system("key-rotation");
    let sealer = Sealer::new(keys, store.kind().name(), entity)?;
    let form = sealer.form;
    let batch = batch.max(1);
    let mut done = Reencrypted::default();
    let mut filter = Filter::All;
    loop {
        let query = Query {
            filter: filter.clone(),
            sort: vec![SortKey::asc(entity.id_field)],
            limit: batch,
            offset: 0,
        };
        let records = store.list(&ctx, form, &query).await?;
        let Some(last) = records.last().and_then(|r| r.get(entity.id_field)) else {
            break;
        };
        // Keyset pagination on the id: the next batch starts after this one's last record.
        filter = field(entity.id_field).gt(last.clone());
        for record in &records {
            done.scanned += 1;
            let sets = sealer.resealed(record)?;
            if sets.is_empty() {
                continue;
            }
            let id = record.get(entity.id_field).cloned().unwrap_or(Value::Null);
            let expected_version = match entity.version_field.and_then(|v| record.get(v)) {
                Some(Value::Int(version)) => Some(*version),
                _ => None,
            };
            let changes = ValidChanges {
                sets,
                expected_version,
            };
            if store.update(&ctx, form, &id, &changes).await? {
                done.resealed += 1;
            } else {
                done.skipped += 1;
            }
        }
        progress(done);
        if records.len() < batch {
            break;
        }
    }
    Ok(done)
}

/// What rewrites a record of `entity` as `store` holds it: the record with every value an older
/// key version sealed sealed again with the newest in `keys`, or `None` when every value is
/// current. For stores re-encrypted by rewriting whole records (ScyllaDB's `rewrite_all`); made
/// once per run, so every record is sealed with the same key.
pub fn resealer<'a>(
    keys: &'a FieldKeys,
    store: StoreKind,
    entity: &'static EntityMeta,
) -> Result<impl Fn(&Record) -> Result<Option<Record>> + 'a> {
    let sealer = Sealer::new(keys, store.name(), entity)?;
    Ok(move |stored: &Record| {
        let sets = sealer.resealed(stored)?;
        if sets.is_empty() {
            return Ok(None);
        }
        let mut record = stored.clone();
        for (field, value) in sets {
            record.set(field, value);
        }
        Ok(Some(record))
    })
}
