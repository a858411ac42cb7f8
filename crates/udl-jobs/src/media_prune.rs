//! `media_rights_prune`: keeps what the platform shows within the licenses of the `media_assets`
//! registry. An active asset whose license has ended is disabled and every record citing it in
//! MongoDB (document chunks, therapeutic content) is hidden from every read (`get`, lists,
//! `nearest`); caches following those collections evict them in every process. Once the asset's
//! grace period has passed, its dependents are deleted and the asset marked removed (the row
//! stays, as the registry's record of the rights it had), with a deletion receipt. An asset whose
//! license was extended while disabled is restored, its dependents shown again.
//!
//! Every step is idempotent and picks up where a cut-off run stopped: dependents are hidden
//! before their asset is marked disabled, and deleted before it is marked removed; dependents
//! written after their asset was disabled are hidden by the next run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use udl_core::{field, Entity as _, EntityMeta, Result, StoreKind};
use udl_mongo::models::{DocumentChunk, TherapeuticContent};
use udl_mongo::MongoStore;
use udl_postgres::PgStore;
use uuid::Uuid;

use crate::job::{Counts, Job, JobRun};
use crate::retention::{DeletionReceipt, Receipts};

/// The records that cite an asset: entity, and the field holding the asset's id.
fn dependents() -> [(&'static EntityMeta, &'static str); 2] {
    [
        (DocumentChunk::meta(), "source_media_asset_id"),
        (TherapeuticContent::meta(), "media_asset_id"),
    ]
}

/// Why a dependent is hidden (kept on it, so restoring shows exactly what this asset hid).
fn hidden_reason(asset: Uuid) -> String {
    format!("media_asset:{asset}")
}

fn classify(e: sqlx::Error) -> udl_core::Error {
    udl_postgres::classify(&e, "media rights prune")
}

/// Disables, hides, restores and removes by the media rights registry.
pub struct MediaRightsPrune {
    pg: PgStore,
    mongo: MongoStore,
}

/// An asset the prune acts on.
struct Asset {
    id: Uuid,
    status: String,
}

impl MediaRightsPrune {
    /// The prune of the registry in `pg` over the dependents in `mongo`.
    pub fn new(pg: PgStore, mongo: MongoStore) -> Self {
        MediaRightsPrune { pg, mongo }
    }

    async fn assets(&self, sql: &'static str, now: DateTime<Utc>) -> Result<Vec<Asset>> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(sql)
            .bind(now)
            .fetch_all(self.pg.pool())
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(id, status)| Asset { id, status })
            .collect())
    }

    /// Marks asset `id` as `to` (from `from`), at `now`.
    async fn mark(&self, id: Uuid, from: &str, to: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE media_assets SET status = $3, updated_at = $4, version = version + 1,
                 disabled_at = CASE WHEN $3 = 'disabled' THEN $4
                                    WHEN $3 = 'active' THEN NULL ELSE disabled_at END
             WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(self.pg.pool())
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// Dependents of `asset` (hidden or not).
    async fn count_dependents(&self, asset: Uuid) -> Result<u64> {
        let mut n = 0;
        for (entity, by) in dependents() {
            n += self
                .mongo
                .count_matching_unaudited(entity, &field(by).eq(asset))
                .await?;
        }
        Ok(n)
    }

    /// Step 1: hides what cites an expired or disabled asset, and disables the expired ones.
    async fn disable(&self, run: &JobRun, counts: &mut Counts) -> Result<()> {
        let assets = self
            .assets(
                "SELECT id, status FROM media_assets
                 WHERE (status = 'active' AND expires_at <= $1) OR status = 'disabled'
                 ORDER BY id",
                run.now,
            )
            .await?;
        let total = assets.len() as u64;
        for (done, asset) in assets.iter().enumerate() {
            run.progress.advanced("disable", done as u64, Some(total));
            let newly = asset.status == "active";
            if run.dry_run {
                if newly {
                    *counts.entry("dependents_hidden".into()).or_default() +=
                        self.count_dependents(asset.id).await?;
                }
            } else {
                for (entity, by) in dependents() {
                    *counts.entry("dependents_hidden".into()).or_default() += self
                        .mongo
                        .hide_matching_unaudited(
                            entity,
                            &field(by).eq(asset.id),
                            &hidden_reason(asset.id),
                        )
                        .await?;
                }
                if newly {
                    self.mark(asset.id, "active", "disabled", run.now).await?;
                }
            }
            if newly {
                *counts.entry("assets_disabled".into()).or_default() += 1;
            }
        }
        run.progress.advanced("disable", total, Some(total));
        Ok(())
    }

    /// Step 2: restores disabled assets whose license was extended, showing their dependents.
    async fn restore(&self, run: &JobRun, counts: &mut Counts) -> Result<()> {
        let assets = self
            .assets(
                "SELECT id, status FROM media_assets
                 WHERE status = 'disabled' AND (expires_at IS NULL OR expires_at > $1)
                 ORDER BY id",
                run.now,
            )
            .await?;
        for asset in assets {
            *counts.entry("assets_restored".into()).or_default() += 1;
            if run.dry_run {
                continue;
            }
            for (entity, _) in dependents() {
                *counts.entry("dependents_restored".into()).or_default() += self
                    .mongo
                    .unhide_unaudited(entity, &hidden_reason(asset.id))
                    .await?;
            }
            self.mark(asset.id, "disabled", "active", run.now).await?;
        }
        Ok(())
    }

    /// Step 3: removes disabled assets past their grace period, deleting their dependents.
    async fn remove(&self, run: &JobRun, counts: &mut Counts) -> Result<()> {
        let assets = self
            .assets(
                "SELECT id, status FROM media_assets
                 WHERE status = 'disabled' AND (expires_at IS NULL OR expires_at <= $1)
                   AND disabled_at + grace_period_secs * INTERVAL '1 second' <= $1
                 ORDER BY id",
                run.now,
            )
            .await?;
        let total = assets.len() as u64;
        let mut deleted: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut removed = Vec::new();
        for (done, asset) in assets.iter().enumerate() {
            run.progress.advanced("remove", done as u64, Some(total));
            for (entity, by) in dependents() {
                let filter = field(by).eq(asset.id);
                let n = if run.dry_run {
                    self.mongo.count_matching_unaudited(entity, &filter).await?
                } else {
                    self.mongo
                        .delete_matching_unaudited(entity, &filter)
                        .await?
                };
                *deleted.entry(entity.name).or_default() += n;
            }
            if !run.dry_run {
                self.mark(asset.id, "disabled", "removed", run.now).await?;
            }
            removed.push(asset.id.to_string());
        }
        run.progress.advanced("remove", total, Some(total));
        let total_deleted: u64 = deleted.values().sum();
        counts.insert("assets_removed".into(), removed.len() as u64);
        counts.insert("dependents_deleted".into(), total_deleted);
        if !run.dry_run && !removed.is_empty() {
            let receipt = DeletionReceipt {
                id: Uuid::new_v4(),
                recorded_at: Utc::now(),
                job: format!("media_rights_prune/{}", run.id),
                data_class: "media_dependents".into(),
                store: StoreKind::MONGO.name().into(),
                policy: "media_assets: removed after the license ended and the grace period passed"
                    .into(),
                range_from: None,
                range_to: Some(run.now),
                deleted: i64::try_from(total_deleted).unwrap_or(i64::MAX),
                held_back: 0,
                holds: Vec::new(),
                detail: serde_json::json!({ "assets": removed, "deleted_by_entity": deleted }),
            };
            Receipts::write(&self.pg, &receipt).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Job for MediaRightsPrune {
    fn name(&self) -> &'static str {
        "media_rights_prune"
    }

    fn description(&self) -> &'static str {
        "disables media whose license ended and hides what cites it; removes both after the grace period"
    }

    async fn run(&self, run: &JobRun) -> Result<Counts> {
        let mut counts: Counts = [
            "assets_disabled",
            "dependents_hidden",
            "assets_restored",
            "dependents_restored",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), 0))
        .collect();
        self.restore(run, &mut counts).await?;
        self.disable(run, &mut counts).await?;
        self.remove(run, &mut counts).await?;
        Ok(counts)
    }
}
