//! `#[derive(Entity)]`: declares an entity's table, id, version field and the sensitivity of
//! every field once, and generates its metadata, record conversion and a redacting `Debug`.
//!
//! ```text
//! #[derive(Entity)]
//! #[udl(table = "users")]
//! struct User {
//!     #[udl(id, internal)]          id: Uuid,
//!     #[udl(pii, encrypt, blind_index = "case_insensitive", mask = "email_domain")]
//!     email: String,
//!     #[udl(version, internal)]     version: i64,
//! }
//! ```
//! A struct with any `phi` field must classify every field (`public`, `internal`, `pii`,
//! `phi`), or it does not compile.

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
