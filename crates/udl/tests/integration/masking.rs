//! The derived `Debug` shows classified fields masked by their declared rule.

use udl::Entity;

#[derive(Entity, Clone, PartialEq)]
#[udl(table = "patients")]
struct Patient {
    #[udl(id, internal)]
    id: uuid::Uuid,
    #[udl(pii, mask = "email_domain")]
    email: String,
    #[udl(pii, mask = "last4")]
    phone: Option<String>,
    #[udl(phi, mask = "hash")]
    mrn: String,
    #[udl(phi)]
    diagnosis: String,
    #[udl(internal)]
    plan: String,
}

#[test]
fn debug_masks_each_field_by_its_rule() {
    let patient = Patient {
        id: uuid::Uuid::nil(),
        email: "fake.patient@example.test".into(),
        phone: Some("+1 555 010 0199".into()),
        mrn: "FAKE-MRN-0042".into(),
        diagnosis: "CANARY fake diagnosis".into(),
        plan: "basic".into(),
    };
    let shown = format!("{patient:?}");
    assert!(shown.contains(r#"email: "***@example.test""#), "{shown}");
    assert!(shown.contains(r#"phone: "***0199""#), "{shown}");
    assert!(
        shown.contains(r#"mrn: "<redacted>""#),
        "a hash needs the privacy key: {shown}"
    );
    assert!(shown.contains(r#"diagnosis: "<redacted>""#), "{shown}");
    assert!(shown.contains(r#"plan: "basic""#), "{shown}");
    for secret in ["fake.patient", "555 010", "FAKE-MRN", "CANARY"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    let no_phone = Patient {
        phone: None,
        ..patient
    };
    assert!(format!("{no_phone:?}").contains("phone: \"null\""));
}
