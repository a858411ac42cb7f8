//! The conformance suite: one set of behaviours every backend must show on its real server.
//!
//! A backend instantiates it with [`conformance_suite!`](crate::conformance_suite), giving a
//! function that builds a fresh [`Harness`] (its own namespace, the `conformance_notes` table
//! or collection created). Each case becomes one test. The cases live in one file per topic;
//! [`conformance_cases!`](crate::conformance_cases) lists them all, and a test checks that the
//! list and the topic files name the same cases.

mod bulk;
mod crud;
mod filters;
mod ordering;
mod refusals;
mod strings;
mod support;
mod vectors;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use udl_core::RecordStore;

pub use bulk::*;
pub use crud::*;
pub use filters::*;
pub use ordering::*;
pub use refusals::*;
pub use strings::*;
pub use vectors::*;

/// What every topic file uses.
mod prelude {
    pub(super) use std::sync::Arc;
    pub(super) use std::time::Duration;

    pub(super) use udl_core::{
        field, AccessContext, Capability, Changes, Entity, ErrorKind, Filter, Page, Purpose,
        Repository, Role, SortKey, StoreKind, Value,
    };

    pub(super) use super::support::*;
    pub(super) use super::Subject;
    pub(super) use crate::fixtures::{hostile_strings, note, notes, Note};
}

/// What a case gets: the store under test and what it declares about itself.
pub struct Subject {
    /// The store, with an empty `conformance_notes` table or collection.
    pub store: Arc<dyn RecordStore>,
    /// Whether the store cannot hold NUL characters in text (PostgreSQL cannot).
    pub refuses_nul_in_text: bool,
}

/// A backend's test fixture: one isolated namespace, cleaned up by `teardown`.
pub trait Harness: Sized {
    /// The subject the cases run against.
    fn subject(&self) -> Subject;
    /// Removes the namespace and everything in it.
    fn teardown(self) -> impl Future<Output = ()>;
}

/// Runs one case and tears the harness down, even when the case panics.
pub async fn run<H, F, Fut>(harness: H, case: F)
where
    H: Harness,
    F: FnOnce(Subject) -> Fut,
    Fut: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(case(harness.subject()))
        .catch_unwind()
        .await;
    harness.teardown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Calls `$then! { $args... case, case, ... }` with every conformance case's name: the one
/// list of cases.
#[macro_export]
macro_rules! conformance_cases {
    ($then:path { $($args:tt)* }) => {
        $then! {
            $($args)*
            create_then_get_round_trips_every_kind,
            get_of_missing_id_is_none_and_required_is_not_found,
            duplicate_id_is_a_permanent_conflict,
            update_sets_only_named_fields_and_bumps_version,
            update_of_missing_id_reports_no_match,
            stale_version_is_a_conflict,
            delete_reports_whether_it_matched,
            count_and_exists,
            filter_eq_and_ne,
            filter_ranges,
            filter_in,
            filter_null_checks,
            filter_boolean_logic,
            filter_prefix_is_literal,
            sort_ascending_descending_and_nulls,
            limit_and_offset_pages,
            keyset_pages_cover_everything_once,
            bad_cursor_is_invalid_input,
            unknown_fields_are_invalid_input,
            wrong_value_kind_is_invalid_input,
            capability_refusals_name_store_and_operation,
            hostile_strings_round_trip_and_match,
            one_megabyte_string_round_trips,
            nul_in_text_is_refused_or_kept,
            create_many_is_all_or_nothing,
            nearest_returns_the_most_similar_records
        }
    };
}

/// Instantiates every conformance case as a `#[tokio::test]`, each with a fresh harness from
/// `$setup` (an async fn returning a [`Harness`]). The backend's crate needs `tokio` as a
/// dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_cases!($crate::conformance_suite { @cases $setup; });
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::conformance::run($setup().await, $crate::conformance::$case).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` of the topic files, which is what a case is.
    fn cases_in_files() -> Vec<String> {
        let files = [
            include_str!("bulk.rs"),
            include_str!("crud.rs"),
            include_str!("filters.rs"),
            include_str!("ordering.rs"),
            include_str!("refusals.rs"),
            include_str!("strings.rs"),
            include_str!("vectors.rs"),
        ];
        let mut names: Vec<String> = files
            .iter()
            .flat_map(|file| file.lines())
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .map(|rest| rest.split('(').next().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    }

    macro_rules! listed {
        ($($case:ident),* $(,)?) => {
            fn listed() -> Vec<String> {
                vec![$(stringify!($case).to_owned()),*]
            }
        };
    }
    crate::conformance_cases!(listed {});

    #[test]
    fn the_case_list_names_every_case_in_the_topic_files() {
        let mut listed = listed();
        listed.sort();
        assert_eq!(listed, cases_in_files());
    }
}
