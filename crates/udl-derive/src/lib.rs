//! `#[derive(Entity)]`: declares an entity's table, id, version field and the sensitivity of
//! every field once, and generates its metadata, record conversion and a redacting `Debug`.
//!
//! ```text
//! #[derive(Entity)]
//! #[udl(table = "users", store = "postgres", cache = "l1_l2", cache_ttl = "10m")]
//! struct User {
//!     #[udl(id, internal)]          id: Uuid,
//!     #[udl(pii, blind_index = "case_insensitive", mask = "email_domain")]
//!     email: String,                // sealed at rest: every PII and PHI field is
//!     #[udl(phi, plaintext = "similarity search")]
//!     embedding: Vec<f32>,          // ... unless it says why not
//!     #[udl(version, internal)]     version: i64,
//! }
//! ```
//! A struct with any `pii` or `phi` field must classify every field (`public`, `internal`,
//! `pii`, `phi`), or it does not compile. The generated code names the `udl` facade; crates
//! below it say `#[udl(crate = "udl_core")]`.

mod attrs;
mod expand;

use proc_macro::TokenStream;

/// Derives `udl_core::Entity` and a `Debug` that hides PII and PHI values.
#[proc_macro_derive(Entity, attributes(udl))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::entity(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
