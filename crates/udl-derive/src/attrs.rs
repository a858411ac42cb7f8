//! Parsing of `#[udl(...)]` attributes on the struct and its fields.

use syn::{Attribute, LitStr, Path};

/// Struct-level options.
pub struct EntityAttrs {
    pub table: Option<LitStr>,
    pub krate: Option<Path>,
    pub indexes: Vec<IndexAttr>,
    /// `partition_key = "a, b"`.
    pub partition_key: Option<LitStr>,
    /// `clustering_key = "c, d"`.
    pub clustering_key: Option<LitStr>,
    /// `store = "postgres"`: the name of the store (its config section).
    pub store: Option<String>,
    /// `cache = "none" | "l1" | "l1_l2"`: the `CacheTiers` variant.
    pub cache: Option<&'static str>,
    /// `cache_ttl = "10m"`, in seconds.
    pub cache_ttl: Option<u64>,
}

/// `index(name = "...", fields = "a, b", unique)`.
pub struct IndexAttr {
    pub name: LitStr,
    pub fields: Vec<String>,
    pub unique: bool,
}

/// Field-level options.
#[derive(Default)]
pub struct FieldAttrs {
    pub id: bool,
    pub version: bool,
    pub sensitivity: Option<&'static str>,
    pub encrypt: bool,
    /// `plaintext = "reason"`: why a PII or PHI field is stored in the clear.
    pub plaintext: Option<LitStr>,
    pub mask: Option<&'static str>,
    /// `blind_index` or `blind_index = "exact|case_insensitive|phone"`: the rule's variant.
    pub blind_index: Option<&'static str>,
    /// `tokenize`: replaced by its vault token where it leaves its store (change events).
    pub tokenize: Option<proc_macro2::Span>,
    /// `no_export`: left out of everything that leaves its store (change events, exports).
    pub no_export: bool,
}

pub fn entity_attrs(attrs: &[Attribute]) -> syn::Result<EntityAttrs> {
    let mut out = EntityAttrs {
        table: None,
        krate: None,
        indexes: Vec::new(),
        partition_key: None,
        clustering_key: None,
        store: None,
        cache: None,
        cache_ttl: None,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("udl")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                out.table = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                out.krate = Some(path.parse()?);
            } else if meta.path.is_ident("index") {
                out.indexes.push(index_attr(&meta)?);
            } else if meta.path.is_ident("partition_key") {
                out.partition_key = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("clustering_key") {
                out.clustering_key = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("store") {
                out.store = Some(store_name(&meta)?);
            } else if meta.path.is_ident("cache") {
                out.cache = Some(choice(
                    &meta,
                    "cache",
                    &[("none", "None"), ("l1", "L1"), ("l1_l2", "L1L2")],
                )?);
            } else if meta.path.is_ident("cache_ttl") {
                let ttl: LitStr = meta.value()?.parse()?;
                out.cache_ttl = Some(seconds(&ttl)?);
            } else {
                return Err(meta.error(
                    "expected `table = \"...\"`, `store = \"...\"`, `cache = \"...\"`, \
                     `cache_ttl = \"...\"`, `index(...)`, `partition_key = \"...\"`, \
                     `clustering_key = \"...\"` or `crate = \"...\"`",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The value of `key = "..."`, one of `options` (written form, variant name).
/// `store = "..."`: a store's name, lower-case as its config section; which stores exist is
/// the build's business (a backend registers its own), so any such name is accepted here.
fn store_name(meta: &syn::meta::ParseNestedMeta) -> syn::Result<String> {
    let given: LitStr = meta.value()?.parse()?;
    let name = given.value();
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(name)
    } else {
        Err(syn::Error::new(
            given.span(),
            "store is a store's name as its config section is called: \"postgres\", \"mongo\", \"scylla\", ...",
        ))
    }
}

fn choice(
    meta: &syn::meta::ParseNestedMeta,
    key: &str,
    options: &[(&str, &'static str)],
) -> syn::Result<&'static str> {
    let given: LitStr = meta.value()?.parse()?;
    match options
        .iter()
        .find(|(written, _)| given.value() == *written)
    {
        Some((_, variant)) => Ok(variant),
        None => {
            let names: Vec<String> = options.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            Err(syn::Error::new(
                given.span(),
                format!("{key} must be one of {}", names.join(", ")),
            ))
        }
    }
}

/// `"90s"`, `"10m"`, `"2h"` or `"1d"`, in seconds.
fn seconds(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let bad = || {
        syn::Error::new(
            lit.span(),
            "a duration is a number and a unit: \"90s\", \"10m\", \"2h\" or \"1d\"",
        )
    };
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) | None => Err(bad()),
        Some(secs) => Ok(secs),
    }
}

fn index_attr(meta: &syn::meta::ParseNestedMeta) -> syn::Result<IndexAttr> {
    let (mut name, mut fields, mut unique) = (None, None, false);
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("name") {
            name = Some(inner.value()?.parse::<LitStr>()?);
        } else if inner.path.is_ident("fields") {
            let list: LitStr = inner.value()?.parse()?;
            fields = Some(
                list.value()
                    .split(',')
                    .map(|f| f.trim().to_owned())
                    .collect(),
            );
        } else if inner.path.is_ident("unique") {
            unique = true;
        } else {
            return Err(inner.error("expected `name = \"...\"`, `fields = \"a, b\"` or `unique`"));
        }
        Ok(())
    })?;
    match (name, fields) {
        (Some(name), Some(fields)) => Ok(IndexAttr {
            name,
            fields,
            unique,
        }),
        _ => Err(meta.error("an index needs `name = \"...\"` and `fields = \"a, b\"`")),
    }
}

pub fn field_attrs(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("udl")) {
        attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            let sensitivity = ["public", "internal", "pii", "phi"]
                .into_iter()
                .find(|s| p.is_ident(s));
            if let Some(s) = sensitivity {
                if out.sensitivity.replace(s).is_some() {
                    return Err(meta.error("field classified twice"));
                }
            } else if p.is_ident("id") {
                out.id = true;
            } else if p.is_ident("version") {
                out.version = true;
            } else if p.is_ident("encrypt") {
                out.encrypt = true;
            } else if p.is_ident("plaintext") {
                let reason: LitStr = meta.value()?.parse()?;
                if reason.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        reason.span(),
                        "plaintext needs the reason the field is stored in the clear",
                    ));
                }
                out.plaintext = Some(reason);
            } else if p.is_ident("tokenize") {
                out.tokenize = Some(syn::spanned::Spanned::span(p));
            } else if p.is_ident("no_export") {
                out.no_export = true;
            } else if p.is_ident("blind_index") {
                out.blind_index =
                    Some(if meta.input.peek(syn::Token![=]) {
                        let rule: LitStr = meta.value()?.parse()?;
                        match rule.value().as_str() {
                            "exact" => "Exact",
                            "case_insensitive" => "CaseInsensitive",
                            "phone" => "Phone",
                            _ => return Err(syn::Error::new(
                                rule.span(),
                                "blind_index must be \"exact\", \"case_insensitive\" or \"phone\"",
                            )),
                        }
                    } else {
                        "Exact"
                    });
            } else if p.is_ident("mask") {
                let rule: LitStr = meta.value()?.parse()?;
                out.mask = Some(match rule.value().as_str() {
                    "full" => "Full",
                    "last4" => "Last4",
                    "email_domain" => "EmailDomain",
                    "hash" => "Hash",
                    _ => {
                        return Err(syn::Error::new(
                            rule.span(),
                            "mask must be \"full\", \"last4\", \"email_domain\" or \"hash\"",
                        ))
                    }
                });
            } else {
                return Err(meta.error(
                    "unknown udl field option; expected id, version, public, internal, pii, \
                     phi, encrypt, plaintext = \"...\", blind_index, mask = \"...\", tokenize or \
                     no_export",
                ));
            }
            Ok(())
        })?;
    }
    if let Some(span) = out.tokenize {
        if !matches!(out.sensitivity, Some("pii") | Some("phi")) {
            return Err(syn::Error::new(
                span,
                "`tokenize` is for PII and PHI fields (others leave their store as they are)",
            ));
        }
    }
    if let Some(reason) = &out.plaintext {
        if out.encrypt {
            return Err(syn::Error::new(
                reason.span(),
                "a field is either `encrypt` or `plaintext = \"...\"`, not both",
            ));
        }
        if !matches!(out.sensitivity, Some("pii") | Some("phi")) {
            return Err(syn::Error::new(
                reason.span(),
                "`plaintext` is for PII and PHI fields (others are stored as they are)",
            ));
        }
    }
    Ok(out)
}
