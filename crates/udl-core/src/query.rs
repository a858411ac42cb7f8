//! Sorting and pagination, and the query a backend receives.

use crate::cursor::Cursor;
use crate::filter::Filter;

/// Sort direction. Nulls sort first ascending and last descending (as the smallest value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// One sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// Field name.
    pub field: String,
    /// Direction.
    pub direction: Direction,
}

impl SortKey {
    /// Ascending on `field`.
    pub fn asc(field: impl Into<String>) -> Self {
        SortKey {
            field: field.into(),
            direction: Direction::Asc,
        }
    }

    /// Descending on `field`.
    pub fn desc(field: impl Into<String>) -> Self {
        SortKey {
            field: field.into(),
            direction: Direction::Desc,
        }
    }
}

/// Which part of the results to return.
#[derive(Clone, Debug, PartialEq)]
pub enum Page {
    /// The first `limit` records.
    First {
        /// Maximum records returned.
        limit: usize,
    },
    /// `limit` records after skipping `offset` (needs the offset capability).
    Offset {
        /// Records skipped.
        offset: usize,
        /// Maximum records returned.
        limit: usize,
    },
    /// `limit` records after the record a previous page's cursor points at (keyset).
    After {
        /// Cursor from [`PageOf::next`].
        cursor: Cursor,
        /// Maximum records returned.
        limit: usize,
    },
}

impl Page {
    /// Largest page udl returns in one call.
    pub const MAX_LIMIT: usize = 10_000;

    /// The first `limit` records.
    pub fn first(limit: usize) -> Self {
        Page::First { limit }
    }

    /// Skip `offset`, then `limit` records.
    pub fn offset(offset: usize, limit: usize) -> Self {
        Page::Offset { offset, limit }
    }

    /// `limit` records after `cursor`.
    pub fn after(cursor: Cursor, limit: usize) -> Self {
        Page::After { cursor, limit }
    }

    /// The page size.
    pub fn limit(&self) -> usize {
        match self {
            Page::First { limit } | Page::Offset { limit, .. } | Page::After { limit, .. } => {
                *limit
            }
        }
    }
}

/// One page of results and the cursor of the next page, if there is one.
#[derive(Clone, Debug)]
pub struct PageOf<T> {
    /// The records of this page.
    pub items: Vec<T>,
    /// Pass to [`Page::after`] for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A validated query as a backend receives it. The sort always ends with the id field, so
/// the order is total and keyset pagination is exact.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Records must match this.
    pub filter: Filter,
    /// Order of results.
    pub sort: Vec<SortKey>,
    /// Maximum records returned.
    pub limit: usize,
    /// Records skipped before the first returned.
    pub offset: usize,
}
