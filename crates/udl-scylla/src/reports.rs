//! Historical reports: aggregates precomputed per period (day, week, month) and kept by
//! (report, period), newest first, so a dashboard reads finished numbers instead of raw data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use scylla::statement::prepared::PreparedStatement;
use udl_core::Result;

use crate::error::classify;
use crate::store::ScyllaStore;
use crate::timeseries::{check_series, check_time, invalid};

/// Most figures in one report row.
const MAX_FIGURES: usize = 256;

/// The span one report row covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A calendar day (UTC).
    Day,
    /// An ISO week starting Monday (UTC).
    Week,
    /// A calendar month (UTC).
    Month,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// One period's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    /// Start of the period.
    pub period_start: DateTime<Utc>,
    /// Figure name → value.
    pub figures: BTreeMap<String, f64>,
}

/// Precomputed aggregates in `report_aggregates`.
#[derive(Clone)]
pub struct Reports {
    store: ScyllaStore,
    upsert: PreparedStatement,
    select: PreparedStatement,
}

impl Reports {
    /// Prepares the statements.
    pub async fn new(store: &ScyllaStore) -> Result<Self> {
        let ks = store.keyspace();
        Ok(Reports {
            upsert: store
                .prepare(format!(
                    "INSERT INTO \"{ks}\".report_aggregates (report, period, period_start, figures) \
                     VALUES (?, ?, ?, ?)"
                ))
                .await?,
            select: store
                .prepare(format!(
                    "SELECT period_start, figures FROM \"{ks}\".report_aggregates \
                     WHERE report = ? AND period = ? AND period_start >= ? AND period_start < ?"
                ))
                .await?,
            store: store.clone(),
        })
    }

    /// Stores (or replaces) the figures of `report` for the period starting at `start`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "reports.put")
    )]
    pub async fn put(
        &self,
        report: &str,
        period: Period,
        start: DateTime<Utc>,
        figures: &BTreeMap<String, f64>,
    ) -> Result<()> {
        self.store
            .meter()
            .measure("reports.put", async move {
                check_series(report)?;
                check_time(start)?;
                if figures.len() > MAX_FIGURES || figures.values().any(|v| !v.is_finite()) {
                    return Err(invalid(format!(
                        "a report row holds at most {MAX_FIGURES} finite figures"
                    )));
                }
                self.store
                    .session()
                    .get_session()
                    .execute_unpaged(&self.upsert, (report, period.name(), start, figures))
                    .await
                    .map(drop)
                    .map_err(|e| classify(&e, "report put"))
            })
            .await
    }

    /// Rows of `report` for periods starting in `[from, to)`, newest first.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "reports.range")
    )]
    pub async fn range(
        &self,
        report: &str,
        period: Period,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>> {
        self.store
            .meter()
            .measure("reports.range", async move {
                check_series(report)?;
                check_time(from)?;
                check_time(to)?;
                let mut rows = Vec::new();
                let values = (report, period.name(), from, to);
                self.store
                    .scan(
                        &self.select,
                        &values,
                        "report read",
                        |(period_start, figures): (_, Option<BTreeMap<String, f64>>)| {
                            let figures = figures.unwrap_or_default();
                            rows.push(ReportRow {
                                period_start,
                                figures,
                            });
                            true
                        },
                    )
                    .await?;
                Ok(rows)
            })
            .await
    }
}
