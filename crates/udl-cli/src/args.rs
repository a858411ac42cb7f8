//! Checks of identifier arguments, run by the argument parser: a bad one is refused with exit
//! code 2 and one line naming the argument, before anything connects or is audited.

use udl::{AccessContext, Purpose, Role};

/// `--actor`: whoever runs the command, by the same rule as every access context (1 to 128
/// printable characters).
pub fn actor_id(text: &str) -> Result<String, String> {
    AccessContext::new(text, Role::Auditor, Purpose::Operations)
        .map(|ctx| ctx.actor().to_owned())
        .map_err(|e| e.message().to_owned())
}

/// `--patient`: a patient is a user, so its id is a user id (a UUID), kept as written since
/// the access log holds it as the caller gave it.
pub fn patient_id(text: &str) -> Result<String, String> {
    match uuid::Uuid::try_parse(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(_) => Err("expected a patient's user id (a UUID)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_ids_follow_the_access_context_rule() {
        assert_eq!(actor_id("auditor-7").as_deref(), Ok("auditor-7"));
        for bad in ["", "tab\there", &"a".repeat(129)] {
            assert!(actor_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn patient_ids_are_uuids() {
        let id = "6f1c2a8e-0000-4000-8000-00000000fa4e";
        assert_eq!(patient_id(id).as_deref(), Ok(id));
        for bad in ["", " ", "patient-1", "6f1c2a8e-0000-4000-8000"] {
            assert!(patient_id(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
