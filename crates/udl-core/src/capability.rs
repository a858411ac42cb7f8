//! What a backend can do, declared once per store and checked before each call.

/// One thing a store may or may not be able to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Multi-statement atomic transactions.
    Transactions,
    /// Records that expire by themselves.
    Ttl,
    /// Filters on fields other than the key.
    SecondaryFilters,
    /// Ordering by arbitrary fields.
    Sorting,
    /// Skipping a number of records (offset pagination).
    OffsetPagination,
    /// Counting records matching a filter without reading them.
    Count,
    /// Efficient bulk insert.
    BulkInsert,
    /// Nearest-neighbour search over vectors.
    VectorSearch,
    /// String prefix filters.
    PrefixFilter,
    /// Seals fields marked `encrypt` before they reach the database (the privacy layer), so
    /// entities with such fields may be stored through it.
    FieldEncryption,
    /// Puts every access to a PII- or PHI-bearing entity to the access policy and records it
    /// in the audit log (the privacy layer), so such entities may be reached through it.
    AccessAudit,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: &'static [Capability] = &[
        Capability::Transactions,
        Capability::Ttl,
        Capability::SecondaryFilters,
        Capability::Sorting,
        Capability::OffsetPagination,
        Capability::Count,
        Capability::BulkInsert,
        Capability::VectorSearch,
        Capability::PrefixFilter,
        Capability::FieldEncryption,
        Capability::AccessAudit,
    ];

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// A set of [`Capability`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities(u32);

impl Capabilities {
    /// No capability at all.
    pub const NONE: Capabilities = Capabilities(0);

    /// The set holding exactly `caps`.
    pub const fn of(caps: &[Capability]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < caps.len() {
            bits |= caps[i].bit();
            i += 1;
        }
        Capabilities(bits)
    }

    /// Whether `cap` is in the set.
    pub const fn supports(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// This set plus `cap`.
    pub const fn with(self, cap: Capability) -> Self {
        Capabilities(self.0 | cap.bit())
    }

    /// This set without `cap`.
    pub const fn without(self, cap: Capability) -> Self {
        Capabilities(self.0 & !cap.bit())
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(Capability::ALL.iter().filter(|c| self.supports(**c)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let caps = Capabilities::of(&[Capability::Ttl, Capability::Count]);
        assert!(caps.supports(Capability::Ttl));
        assert!(!caps.supports(Capability::VectorSearch));
        assert!(!caps.without(Capability::Ttl).supports(Capability::Ttl));
        assert!(caps
            .with(Capability::VectorSearch)
            .supports(Capability::VectorSearch));
    }
}
