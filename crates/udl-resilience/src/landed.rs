//! Whether a stored record is the one a create sent, so that a repeated create meeting a
//! conflict with its own earlier attempt can report success.

use udl_core::{EntityMeta, Record, Value};

/// Whether `stored` holds every field of `sent` (absent counts as null). Instants compare at
/// millisecond precision, the coarsest any store keeps.
pub(crate) fn is_what_was_sent(entity: &EntityMeta, sent: &Record, stored: &Record) -> bool {
    entity.fields.iter().all(|f| {
        let a = sent.get(f.name).unwrap_or(&Value::Null);
        let b = stored.get(f.name).unwrap_or(&Value::Null);
        match (a, b) {
            (Value::Timestamp(a), Value::Timestamp(b)) => {
                a.timestamp_millis() == b.timestamp_millis()
            }
            _ => a == b,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use udl_core::{CachePolicy, FieldMeta};

    static NOTE: EntityMeta = EntityMeta {
        name: "note",
        fields: &[
            FieldMeta::of::<i64>("id"),
            FieldMeta::of::<Option<String>>("title"),
            FieldMeta::of::<chrono::DateTime<Utc>>("at"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: CachePolicy::NONE,
    };

    fn record(title: Option<&str>, nanos: u32) -> Record {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(i64::from(nanos));
        let mut r = Record::with_capacity(3);
        r.set("id", Value::Int(1));
        if let Some(t) = title {
            r.set("title", Value::Text(t.into()));
        }
        r.set("at", Value::Timestamp(at));
        r
    }

    #[test]
    fn the_same_record_at_a_coarser_precision_is_what_was_sent() {
        let sent = record(Some("fake"), 123_456);
        assert!(is_what_was_sent(&NOTE, &sent, &record(Some("fake"), 0)));
        let mut stored = record(None, 0);
        stored.set("title", Value::Null);
        assert!(is_what_was_sent(&NOTE, &record(None, 0), &stored));
    }

    #[test]
    fn another_writers_record_under_the_same_id_is_not() {
        let sent = record(Some("fake"), 0);
        assert!(!is_what_was_sent(&NOTE, &sent, &record(Some("other"), 0)));
        assert!(!is_what_was_sent(
            &NOTE,
            &sent,
            &record(Some("fake"), 2_000_000)
        ));
        assert!(!is_what_was_sent(&NOTE, &sent, &record(None, 0)));
    }
}
