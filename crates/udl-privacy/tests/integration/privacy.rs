//! Field encryption and blind indexes: values open only where they were written, tampering is
//! caught, rotated-away keys still decrypt old values, and wrapped keys round-trip.

use udl_core::{BlindIndexRule, ErrorKind};
use udl_privacy::{BlindIndex, DataKey, FieldCipher, FieldPlace, KeyProvider as _, LocalKeyRing};

const CANARY: &str = "CANARY-PHI fake diagnosis: seasonal allergies";

fn place<'a>(field: &'a str, id: &'a [u8]) -> FieldPlace<'a> {
    FieldPlace {
        store: "postgres",
        table: "session_notes",
        field,
        record_id: id,
    }
}

fn cipher(versions: &[(u32, &DataKey)]) -> FieldCipher {
    FieldCipher::new(versions.iter().map(|(v, k)| (*v, (*k).clone()))).unwrap()
}

#[test]
fn a_value_opens_where_it_was_written_and_only_there() {
    let key = DataKey::generate().unwrap();
    let c = cipher(&[(1, &key)]);
    let sealed = c
        .encrypt(&place("body", b"note-1"), CANARY.as_bytes())
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("CANARY"));
    assert_eq!(
        c.decrypt(&place("body", b"note-1"), &sealed).unwrap(),
        CANARY.as_bytes()
    );
    let again = c
        .encrypt(&place("body", b"note-1"), CANARY.as_bytes())
        .unwrap();
    assert_ne!(sealed, again, "a fresh nonce per value");

    for (elsewhere, what) in [
        (place("body", b"note-2"), "another record"),
        (place("summary", b"note-1"), "another field"),
        (
            FieldPlace {
                table: "chat_messages",
                ..place("body", b"note-1")
            },
            "another table",
        ),
        (
            FieldPlace {
                store: "mongo",
                ..place("body", b"note-1")
            },
            "another store",
        ),
    ] {
        let err = c.decrypt(&elsewhere, &sealed).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DataCorruption, "{what}");
        assert!(!err.to_string().contains("CANARY"), "{err}");
    }
}

#[test]
fn every_flipped_bit_is_caught() {
    let key = DataKey::generate().unwrap();
    let c = cipher(&[(1, &key)]);
    let here = place("body", b"note-1");
    let sealed = c.encrypt(&here, b"fake value").unwrap();
    for byte in 0..sealed.len() {
        let mut altered = sealed.clone();
        altered[byte] ^= 0x01;
        assert!(c.decrypt(&here, &altered).is_err(), "bit in byte {byte}");
    }
    assert!(c.decrypt(&here, &sealed[..sealed.len() - 1]).is_err());
    assert!(c.decrypt(&here, b"").is_err());
}

#[test]
fn new_values_use_the_newest_key_and_old_ones_still_open() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let here = place("body", b"note-1");
    let before = cipher(&[(1, &old)]).encrypt(&here, b"fake old").unwrap();
    let rotated = cipher(&[(1, &old), (2, &new)]);
    assert_eq!(rotated.current_version(), 2);
    let after = rotated.encrypt(&here, b"fake new").unwrap();
    assert_eq!(FieldCipher::version_of(&before), Some(1));
    assert_eq!(FieldCipher::version_of(&after), Some(2));
    assert_eq!(rotated.decrypt(&here, &before).unwrap(), b"fake old");
    assert_eq!(rotated.decrypt(&here, &after).unwrap(), b"fake new");

    let retired = cipher(&[(2, &new)]);
    let err = retired.decrypt(&here, &before).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("version 1"), "{err}");
}

#[tokio::test]
async fn data_keys_are_wrapped_by_the_newest_ring_key_and_unwrapped_by_any() {
    let ring_v1 = LocalKeyRing::parse("1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    let data_key = DataKey::generate().unwrap();
    let wrapped = ring_v1.wrap(&data_key).await.unwrap();
    assert_eq!(wrapped.kek_version, 1);

    let ring_v2 = LocalKeyRing::parse(
        "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, 2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    )
    .unwrap();
    let unwrapped = ring_v2.unwrap(&wrapped).await.unwrap();
    let here = place("body", b"note-1");
    let sealed = cipher(&[(1, &data_key)]).encrypt(&here, b"fake").unwrap();
    assert_eq!(
        cipher(&[(1, &unwrapped)]).decrypt(&here, &sealed).unwrap(),
        b"fake"
    );
    assert_eq!(ring_v2.wrap(&data_key).await.unwrap().kek_version, 2);

    let mut tampered = wrapped.clone();
    tampered.bytes[20] ^= 1;
    assert_eq!(
        ring_v2.unwrap(&tampered).await.unwrap_err().kind(),
        ErrorKind::DataCorruption
    );
    assert!(!format!("{data_key:?} {ring_v2:?}").contains("AAAA"));
}

#[test]
fn a_bad_key_ring_is_refused_without_quoting_it() {
    for text in [
        "",
        "1:not-base64!",
        "x:AAAA",
        "1:AAAA",
        "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let err = LocalKeyRing::parse(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{text:?}");
        assert!(text.is_empty() || !err.to_string().contains(text), "{err}");
    }
}

#[test]
fn blind_indexes_match_after_normalising_and_differ_by_field_and_key() {
    let key = DataKey::generate().unwrap();
    let index = BlindIndex::new(&key);
    let email = |v| index.of("users", "email", v, BlindIndexRule::CaseInsensitive);
    assert_eq!(
        email(" Fake.Patient@Example.test "),
        email("fake.patient@example.test")
    );
    assert_ne!(
        email("fake.patient@example.test"),
        email("other@example.test")
    );
    assert_ne!(
        email("fake.patient@example.test"),
        index.of(
            "users",
            "recovery_email",
            "fake.patient@example.test",
            BlindIndexRule::CaseInsensitive
        ),
        "one value in two fields gives unrelated indexes"
    );
    let phone = |v| index.of("users", "phone", v, BlindIndexRule::Phone);
    assert_eq!(phone("+1 (555) 010-0199"), phone("+15550100199"));
    let other = BlindIndex::new(&DataKey::generate().unwrap());
    assert_ne!(
        other.of(
            "users",
            "email",
            "fake.patient@example.test",
            BlindIndexRule::CaseInsensitive
        ),
        email("fake.patient@example.test")
    );
}

#[test]
fn the_hash_mask_is_keyed_stable_and_unreadable() {
    use udl_core::{MaskRule, Value};
    let masker = udl_privacy::Masker::new(&DataKey::generate().unwrap());
    let mrn = Value::Text("FAKE-MRN-0042".into());
    let shown = masker.mask(MaskRule::Hash, &mrn);
    assert!(shown.starts_with('#') && shown.len() == 13, "{shown}");
    assert!(!shown.contains("0042"));
    assert_eq!(
        shown,
        masker.mask(MaskRule::Hash, &mrn),
        "stable for correlation"
    );
    let other_key = udl_privacy::Masker::new(&DataKey::generate().unwrap());
    assert_ne!(shown, other_key.mask(MaskRule::Hash, &mrn), "keyed");
    assert_eq!(
        masker.mask(
            MaskRule::EmailDomain,
            &Value::Text("fake@example.test".into())
        ),
        "***@example.test"
    );
}
