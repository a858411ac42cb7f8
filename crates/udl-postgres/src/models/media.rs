//! The `media_assets` rights registry: every piece of media the platform shows or cites
//! (therapeutic content, document sources), its license and when it ends, and the sha256 of
//! its content as registered, so a later copy can be checked against it. Registration checks
//! the hash of the content the caller supplies.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use udl_core::{text_enum, Error, Result};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// Where an asset is in its life.
    pub enum MediaStatus {
        Active => "active", Disabled => "disabled", Removed => "removed",
    }
}

/// One registered asset. Licensing metadata, not patient data: every field is internal.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "media_assets", store = "postgres")]
pub struct MediaAsset {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Where the content lives (unique).
    #[udl(internal)]
    pub uri: String,
    /// Who supplied it (publisher, author, library).
    #[udl(internal)]
    pub source: String,
    /// The license it is used under.
    #[udl(internal)]
    pub license: String,
    /// When the license ends, if it does.
    #[udl(internal)]
    pub expires_at: Option<DateTime<Utc>>,
    /// sha256 of the content as registered, lowercase hex.
    #[udl(internal)]
    pub hash: String,
    /// Active, disabled (license expired, hidden) or removed.
    #[udl(internal)]
    pub status: MediaStatus,
    /// How long a disabled asset is kept before it and its dependents are removed.
    #[udl(internal)]
    pub grace_period_secs: i64,
    /// When it was disabled, if it was.
    #[udl(internal)]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Registration time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}

/// What registering an asset takes.
#[derive(Clone, Debug)]
pub struct NewMediaAsset<'a> {
    /// Where the content lives.
    pub uri: &'a str,
    /// Who supplied it.
    pub source: &'a str,
    /// The license.
    pub license: &'a str,
    /// When the license ends, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// How long it is kept once disabled.
    pub grace_period: std::time::Duration,
    /// The content itself, hashed here.
    pub content: &'a [u8],
    /// The sha256 the caller expects the content to have (hex), if it knows it.
    pub expected_sha256: Option<&'a str>,
}

/// The sha256 of `content`, lowercase hex.
pub fn content_hash(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

impl MediaAsset {
    /// A new active asset from `new`, its hash computed from the content: `InvalidInput` when
    /// a text is empty or too long, the grace period is too long, or the content's sha256 is
    /// not the expected one (neither value is named).
    pub fn register(new: &NewMediaAsset<'_>, now: DateTime<Utc>) -> Result<MediaAsset> {
        for (what, text, max) in [
            ("uri", new.uri, 2048),
            ("source", new.source, 256),
            ("license", new.license, 256),
        ] {
            if text.trim().is_empty() || text.len() > max || text.chars().any(char::is_control) {
                return Err(Error::invalid(format!(
                    "media asset: {what} must be 1 to {max} printable characters"
                )));
            }
        }
        let grace_period_secs = i64::try_from(new.grace_period.as_secs())
            .ok()
            .filter(|s| *s <= 10 * 365 * 24 * 3600)
            .ok_or_else(|| Error::invalid("media asset: the grace period is over ten years"))?;
        let hash = content_hash(new.content);
        if let Some(expected) = new.expected_sha256 {
            let expected = expected.trim().to_ascii_lowercase();
            if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    "media asset: the expected sha256 must be 64 hexadecimal digits",
                ));
            }
            if expected != hash {
                return Err(Error::invalid(
                    "media asset: the content's sha256 is not the expected one",
                ));
            }
        }
        Ok(MediaAsset {
            id: Uuid::new_v4(),
            uri: new.uri.to_owned(),
            source: new.source.to_owned(),
            license: new.license.to_owned(),
            expires_at: new.expires_at,
            hash,
            status: MediaStatus::Active,
            grace_period_secs,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(content: &'a [u8], expected: Option<&'a str>) -> NewMediaAsset<'a> {
        NewMediaAsset {
            uri: "https://media.example.test/fake/breathing.mp4",
            source: "Fake Publisher",
            license: "CC-BY-4.0",
            expires_at: None,
            grace_period: std::time::Duration::from_secs(7 * 24 * 3600),
            content,
            expected_sha256: expected,
        }
    }

    #[test]
    fn registration_hashes_the_content_and_checks_the_expected_hash() {
        let content = b"fake media bytes";
        let asset = MediaAsset::register(&new(content, None), Utc::now()).unwrap();
        assert_eq!(asset.hash, content_hash(content));
        assert_eq!(asset.status, MediaStatus::Active);
        let upper = asset.hash.to_ascii_uppercase();
        assert!(MediaAsset::register(&new(content, Some(&upper)), Utc::now()).is_ok());
        let other = content_hash(b"other bytes");
        let err = MediaAsset::register(&new(content, Some(&other)), Utc::now()).unwrap_err();
        assert!(!err.to_string().contains(&other), "{err}");
        assert!(MediaAsset::register(&new(content, Some("xyz")), Utc::now()).is_err());
        let mut blank = new(content, None);
        blank.license = " ";
        assert!(MediaAsset::register(&blank, Utc::now()).is_err());
    }
}
