//! `udl media`: the `media_assets` rights registry. `register` hashes the content file it is
//! given (and checks it against `--sha256` when given), `list` prints the registry as a table,
//! `show` one asset by id or URI.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use udl::postgres::models::{MediaAsset, MediaStatus, NewMediaAsset};
use udl::{
    field, AccessContext, DataLayer, Error, ErrorKind, Filter, Page, Repository, Result, SortKey,
    UdlConfig,
};

/// Who the registry's changes are made as: the command itself (the registry holds no PII).
fn ctx() -> AccessContext {
    AccessContext::system("udl-media")
}

async fn registry<T>(
    config: &UdlConfig,
    work: impl AsyncFnOnce(&Repository<MediaAsset>) -> Result<T>,
) -> Result<T> {
    let data = DataLayer::connect(config).await?;
    crate::commands::closing(data, async |data| {
        work(&data.repository::<MediaAsset>()?).await
    })
    .await
}

/// What `udl media register` was given.
pub struct Registration<'a> {
    /// Where the content lives.
    pub uri: &'a str,
    /// Who supplied it.
    pub source: &'a str,
    /// The license.
    pub license: &'a str,
    /// When the license ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// How long it is kept once disabled.
    pub grace: std::time::Duration,
    /// The content, to hash.
    pub file: &'a Path,
    /// The sha256 the content must have.
    pub sha256: Option<&'a str>,
}

/// `udl media register`.
pub async fn register(config: &UdlConfig, r: Registration<'_>) -> Result<ExitCode> {
    let content = std::fs::read(r.file).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the content file: {}", e.kind()),
        )
    })?;
    let asset = MediaAsset::register(
        &NewMediaAsset {
            uri: r.uri,
            source: r.source,
            license: r.license,
            expires_at: r.expires_at,
            grace_period: r.grace,
            content: &content,
            expected_sha256: r.sha256,
        },
        Utc::now(),
    )?;
    let id = registry(config, async |assets| {
        assets.create(&ctx(), asset.clone()).await
    })
    .await?;
    println!("registered {id}");
    print_asset(&asset);
    Ok(ExitCode::SUCCESS)
}

/// `udl media list`.
pub async fn list(config: &UdlConfig, status: Option<&str>) -> Result<ExitCode> {
    let filter = match status {
        None => Filter::All,
        Some(s) => {
            let status = MediaStatus::from_text(s).ok_or_else(|| {
                Error::new(ErrorKind::Config, "--status is active, disabled or removed")
            })?;
            field("status").eq(status)
        }
    };
    let assets = registry(config, async |assets| {
        let mut all = Vec::new();
        let mut page = Page::first(500);
        loop {
            let found = assets
                .list(&ctx(), &filter, &[SortKey::asc("uri")], page)
                .await?;
            all.extend(found.items);
            match found.next {
                Some(cursor) => page = Page::after(cursor, 500),
                None => return Ok(all),
            }
        }
    })
    .await?;
    println!(
        "{:<36}  {:<8}  {:<20}  {:<16}  uri",
        "id", "status", "license", "expires"
    );
    for a in &assets {
        println!(
            "{:<36}  {:<8}  {:<20}  {:<16}  {}",
            a.id,
            a.status.as_str(),
            a.license,
            a.expires_at.map_or("never".to_owned(), |t| t
                .format("%Y-%m-%d %H:%M")
                .to_string()),
            a.uri
        );
    }
    println!("{} asset(s)", assets.len());
    Ok(ExitCode::SUCCESS)
}

/// `udl media show ID|URI`.
pub async fn show(config: &UdlConfig, which: &str) -> Result<ExitCode> {
    let found = registry(config, async |assets| match uuid::Uuid::try_parse(which) {
        Ok(id) => assets.get(&ctx(), &id).await,
        Err(_) => {
            let page = assets
                .list(&ctx(), &field("uri").eq(which), &[], Page::first(1))
                .await?;
            Ok(page.items.into_iter().next())
        }
    })
    .await?;
    match found {
        Some(asset) => {
            print_asset(&asset);
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Error::new(
            ErrorKind::NotFound,
            "no media asset with that id or uri",
        )),
    }
}

fn print_asset(a: &MediaAsset) {
    let time = |t: Option<DateTime<Utc>>| t.map_or("never".to_owned(), |t| t.to_rfc3339());
    println!("id:           {}", a.id);
    println!("uri:          {}", a.uri);
    println!("source:       {}", a.source);
    println!("license:      {}", a.license);
    println!("expires at:   {}", time(a.expires_at));
    println!("sha256:       {}", a.hash);
    println!("status:       {}", a.status.as_str());
    println!(
        "grace period: {}",
        humantime::format_duration(std::time::Duration::from_secs(
            a.grace_period_secs.max(0) as u64
        ))
    );
    println!("disabled at:  {}", time(a.disabled_at));
    println!("registered:   {}", a.created_at.to_rfc3339());
}
