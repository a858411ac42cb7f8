//! Bounds on what a caller may send a store besides records: filter values, how many of them,
//! and record ids. A hostile or careless caller must not be able to make a store work for
//! seconds (and so open its breaker for everyone) with a megabyte-long `starts_with`.

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::value::Value;

/// The bounds one store's calls are checked against before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Largest filter value or record id, in bytes (text and bytes by length, JSON as text).
    pub max_value_bytes: usize,
    /// Most values in one filter, `in` lists included.
    pub max_values: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_value_bytes: 4096,
            max_values: 1000,
        }
    }
}

impl QueryLimits {
    /// Checks every value of `filter`; the error names the field and the bound, never the value.
    pub fn check_filter(&self, filter: &Filter) -> Result<()> {
        let mut values = 0;
        self.walk(filter, &mut values)
    }

    /// Checks a record id.
    pub fn check_id(&self, id: &Value) -> Result<()> {
        let size = id.encoded_len();
        if size > self.max_value_bytes {
            return Err(Error::invalid(format!(
                "record id is {size} bytes, more than the {} allowed (max_filter_value_bytes)",
                self.max_value_bytes
            )));
        }
        Ok(())
    }

    fn walk(&self, filter: &Filter, values: &mut usize) -> Result<()> {
        match filter {
            Filter::All | Filter::IsNull(_) => Ok(()),
            Filter::Eq(n, v)
            | Filter::Ne(n, v)
            | Filter::Lt(n, v)
            | Filter::Lte(n, v)
            | Filter::Gt(n, v)
            | Filter::Gte(n, v) => self.value(n, v.encoded_len(), values),
            Filter::Prefix(n, prefix) => self.value(n, prefix.len(), values),
            Filter::In(n, vs) => vs
                .iter()
                .try_for_each(|v| self.value(n, v.encoded_len(), values)),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(|f| self.walk(f, values)),
            Filter::Not(f) => self.walk(f, values),
        }
    }

    fn value(&self, field: &str, size: usize, values: &mut usize) -> Result<()> {
        *values += 1;
        if *values > self.max_values {
            return Err(Error::invalid(format!(
                "filter has more than {} values (max_filter_values)",
                self.max_values
            )));
        }
        if size > self.max_value_bytes {
            return Err(Error::invalid(format!(
                "filter value for field {field} is {size} bytes, more than the {} allowed \
                 (max_filter_value_bytes)",
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::field;

    const SMALL: QueryLimits = QueryLimits {
        max_value_bytes: 8,
        max_values: 3,
    };

    #[test]
    fn values_within_the_bounds_pass() {
        let f = field("title")
            .starts_with("12345678")
            .and(field("tag").is_in(["a", "b"]));
        assert!(SMALL.check_filter(&f).is_ok());
    }

    #[test]
    fn an_oversized_value_is_refused_naming_the_field_and_the_bound_not_the_value() {
        let f = field("status")
            .eq("ok")
            .and(field("title").starts_with("fake-canary-value").not());
        let e = SMALL.check_filter(&f).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.message().contains("field title is 17 bytes"), "{e}");
        assert!(e.message().contains("8 allowed"), "{e}");
        assert!(!e.to_string().contains("canary"), "{e}");
    }

    #[test]
    fn too_many_values_are_refused_in_lists_and_across_terms() {
        let list = field("tag").is_in(["a", "b", "c", "d"]);
        assert!(SMALL.check_filter(&list).is_err());
        let spread = field("a")
            .eq(1)
            .and(field("b").eq(2))
            .or(field("c").eq(3).and(field("d").eq(4)));
        let e = SMALL.check_filter(&spread).unwrap_err();
        assert!(e.message().contains("more than 3 values"), "{e}");
    }

    #[test]
    fn ids_are_bounded_too() {
        assert!(SMALL.check_id(&Value::Text("12345678".into())).is_ok());
        assert!(SMALL.check_id(&Value::Text("123456789".into())).is_err());
        assert!(SMALL.check_id(&Value::Int(7)).is_ok());
    }
}
