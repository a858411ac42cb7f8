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
    pub tokenize: bool,
    pub mask: Option<&'static str>,
    pub no_export: bool,
    /// `blind_index` or `blind_index = "exact|case_insensitive|phone"`: the rule's variant.
    pub blind_index: Option<&'static str>,
}

pub fn entity_attrs(attrs: &[Attribute]) -> syn::Result<EntityAttrs> {
    let mut out = EntityAttrs {
        table: None,
        krate: None,
        indexes: Vec::new(),
        partition_key: None,
        clustering_key: None,
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
            } else {
                return Err(meta.error(
                    "expected `table = \"...\"`, `index(...)`, `partition_key = \"...\"`, \
                     `clustering_key = \"...\"` or `crate = \"...\"`",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
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
            } else if p.is_ident("tokenize") {
                out.tokenize = true;
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
                     phi, encrypt, blind_index, tokenize, mask = \"...\" or no_export",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}
