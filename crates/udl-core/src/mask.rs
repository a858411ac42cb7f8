//! Masking: how a classified value is shown to humans and logs.

use crate::entity::MaskRule;
use crate::value::Value;

/// What a value hidden entirely looks like.
pub const REDACTED: &str = "<redacted>";

impl MaskRule {
    /// The masked form of `text`. `Hash` needs a key (the privacy layer has it), so without one
    /// it hides everything; so do the other rules when too little would stay hidden.
    pub fn apply(self, text: &str) -> String {
        match self {
            MaskRule::Full | MaskRule::Hash => REDACTED.to_owned(),
            MaskRule::Last4 => {
                let chars = text.chars().count();
                if chars <= 8 {
                    return REDACTED.to_owned();
                }
                let last4: String = text.chars().skip(chars - 4).collect();
                format!("***{last4}")
            }
            MaskRule::EmailDomain => match text.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                    format!("***@{domain}")
                }
                _ => REDACTED.to_owned(),
            },
        }
    }
}

/// `value` masked by `rule` (`null` stays `null`: it reveals nothing).
pub fn mask_value(rule: MaskRule, value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Text(text) => rule.apply(text),
        other => rule.apply(&other.to_json().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_keeps_only_what_it_names() {
        assert_eq!(MaskRule::Full.apply("fake diagnosis"), REDACTED);
        assert_eq!(MaskRule::Last4.apply("+1 555 010 0199"), "***0199");
        assert_eq!(
            MaskRule::Last4.apply("12345678"),
            REDACTED,
            "too short to show any"
        );
        assert_eq!(
            MaskRule::EmailDomain.apply("fake.patient@example.test"),
            "***@example.test"
        );
        assert_eq!(MaskRule::EmailDomain.apply("not an email"), REDACTED);
        assert_eq!(MaskRule::Hash.apply("fake"), REDACTED, "no key here");
        assert_eq!(
            mask_value(MaskRule::Last4, &Value::Int(9_876_543_210)),
            "***3210"
        );
        assert_eq!(mask_value(MaskRule::Full, &Value::Null), "null");
    }
}
