//! The integration tests, as one test binary: every test binary links all of the crate's
//! dependencies, so one per crate keeps the build's disk use and link time small.

mod access_policy;
mod audit;
mod audit_journal;
mod bypass;
mod cache_follows_changes;
mod capture_kit;
mod change_capture;
mod change_history;
mod chat_archive;
mod common;
mod conformance_stacks;
mod data_layer;
mod field_encryption;
mod interaction_retention;
mod key_rotation;
mod masking;
mod media_prune;
mod outbox;
mod shipped_models;
mod snapshot;
mod token_vault;
