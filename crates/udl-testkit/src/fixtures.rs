//! The entity the conformance suite stores, and obviously fake data for it.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use udl_derive::Entity;
use uuid::Uuid;

/// A note with one field of every kind. Nothing in it is sensitive: the suite checks what
/// every store must do with records (the privacy layers have tests of their own), and every
/// field is still classified.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "conformance_notes", cache = "l1_l2")]
pub struct Note {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Owner handle.
    #[udl(internal)]
    pub owner: String,
    /// Title.
    #[udl(internal)]
    pub title: String,
    /// Free text.
    #[udl(internal)]
    pub body: String,
    /// Integer for ordering and range filters.
    #[udl(internal)]
    pub rank: i64,
    /// Optional float, null in some records.
    #[udl(internal)]
    pub score: Option<f64>,
    /// Flag.
    #[udl(internal)]
    pub active: bool,
    /// Optional text.
    #[udl(internal)]
    pub tag: Option<String>,
    /// JSON document.
    #[udl(internal)]
    pub attrs: serde_json::Value,
    /// Timestamp (millisecond precision, what every store keeps).
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    /// Optional date.
    #[udl(internal)]
    pub due_on: Option<NaiveDate>,
    /// Optional bytes.
    #[udl(internal)]
    pub blob: Option<Vec<u8>>,
    /// Optional vector (embedding).
    #[udl(internal)]
    pub embedding: Option<Vec<f32>>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}

/// The conformance entity's fields as (name, portable type) pairs, for backends that create
/// its table or collection.
pub const NOTE_FIELDS: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("owner", "text"),
    ("title", "text"),
    ("body", "text"),
    ("rank", "int"),
    ("score", "float"),
    ("active", "bool"),
    ("tag", "text"),
    ("attrs", "json"),
    ("created_at", "timestamp"),
    ("due_on", "date"),
    ("blob", "bytes"),
    ("embedding", "vector"),
    ("version", "int"),
];

/// PostgreSQL table of [`Note`].
pub const NOTES_POSTGRES_DDL: &str = "CREATE TABLE conformance_notes (
    id UUID PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    rank BIGINT NOT NULL, score DOUBLE PRECISION, active BOOLEAN NOT NULL, tag TEXT,
    attrs JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL, due_on DATE, blob BYTEA, embedding REAL[],
    version BIGINT NOT NULL)";

/// A note numbered `n` with fake, deterministic content.
pub fn note(n: i64) -> Note {
    Note {
        id: Uuid::new_v4(),
        owner: format!("owner-{}", n % 3),
        title: format!("title {n:04}"),
        body: format!("fake body text {n}"),
        rank: n,
        score: if n % 4 == 0 {
            None
        } else {
            Some((n % 5) as f64 * 1.5)
        },
        active: n % 2 == 0,
        tag: if n % 3 == 0 {
            None
        } else {
            Some(format!("tag-{}", n % 2))
        },
        attrs: serde_json::json!({"n": n, "nested": {"list": [1, "two", null]}}),
        created_at: Utc
            .timestamp_opt(1_750_000_000 + n * 3600, 123_000_000)
            .unwrap(),
        due_on: NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.checked_add_days(chrono::Days::new(n as u64))),
        blob: if n % 2 == 0 {
            Some(vec![0, 1, 2, 255, n as u8])
        } else {
            None
        },
        embedding: if n % 2 == 0 {
            Some(vec![n as f32 * 0.25, -1.5, 3.0e-8])
        } else {
            None
        },
        version: 1,
    }
}

/// Notes numbered `0..count`.
pub fn notes(count: i64) -> Vec<Note> {
    (0..count).map(note).collect()
}

/// Strings that have broken data layers before: quotes, statement separators, comments,
/// wildcards, escapes and Unicode edge cases.
pub fn hostile_strings() -> Vec<String> {
    [
        "O'Brien",
        "\"double\" and 'single' quotes",
        "'; DROP TABLE conformance_notes; --",
        "' OR '1'='1",
        "/* comment */ SELECT 1; -- trailing",
        "back\\slash \\x00 \\N \\.",
        "100% _match_ [a-z]* $where {$gt: 1}",
        "tab\tnew\nline\rcarriage",
        "👩‍⚕️ zwj sequence, 🇺🇸 flag, emoji 😀",
        "مرحبا بالعالم RTL \u{202E}override",
        "e\u{301} combining, \u{200B}zero width, \u{FEFF}bom",
        "\u{10FFFF} highest code point, \u{FFFD} replacement",
        "日本語のテキスト",
        "",
        " leading and trailing spaces ",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}
