//! Code generation for `#[derive(Entity)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attrs::{entity_attrs, field_attrs, FieldAttrs};

struct Field<'a> {
    ident: &'a Ident,
    ty: &'a Type,
    attrs: FieldAttrs,
}

pub fn entity(input: &DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "an Entity cannot be generic",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "Entity can only be derived for structs",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(name, "Entity needs named fields"));
    };
    let attrs = entity_attrs(&input.attrs)?;
    let table = attrs
        .table
        .ok_or_else(|| syn::Error::new_spanned(name, "missing #[udl(table = \"...\")]"))?;
    let krate = attrs
        .krate
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(::udl));

    let fields = named
        .named
        .iter()
        .map(|f| {
            Ok(Field {
                ident: f.ident.as_ref().expect("named field"),
                ty: &f.ty,
                attrs: field_attrs(&f.attrs)?,
            })
        })
        .collect::<syn::Result<Vec<_>>>()?;

    check_classification(&fields)?;
    let id = single(&fields, name, "id", |a| a.id)?
        .ok_or_else(|| syn::Error::new_spanned(name, "one field needs #[udl(id)]"))?;
    let version = single(&fields, name, "version", |a| a.version)?;

    let id_ident = id.ident;
    let id_ty = id.ty;
    let id_name = id_ident.to_string();
    let version_name = match version {
        Some(v) => {
            let n = v.ident.to_string();
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    let field_metas = fields.iter().map(|f| field_meta(&krate, f));
    let mut indexes = Vec::new();
    for index in &attrs.indexes {
        if let Some(unknown) = index
            .fields
            .iter()
            .find(|n| !fields.iter().any(|f| f.ident == n.as_str()))
        {
            return Err(syn::Error::new_spanned(
                &index.name,
                format!("index field `{unknown}` is not a field of this struct"),
            ));
        }
        let (index_name, index_fields, unique) = (&index.name, &index.fields, index.unique);
        indexes.push(quote!(#krate::IndexMeta { name: #index_name, fields: &[#(#index_fields),*], unique: #unique }));
    }
    let key_fields = |declared: &Option<syn::LitStr>| -> syn::Result<Vec<String>> {
        let Some(list) = declared else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = list
            .value()
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        match names
            .iter()
            .find(|n| !fields.iter().any(|f| f.ident == n.as_str()))
        {
            Some(unknown) => Err(syn::Error::new_spanned(
                list,
                format!("key field `{unknown}` is not a field of this struct"),
            )),
            None => Ok(names),
        }
    };
    let partition_key = key_fields(&attrs.partition_key)?;
    let clustering_key = key_fields(&attrs.clustering_key)?;
    check_sensitive_keys(&fields, &partition_key, &clustering_key)?;
    let store = match attrs.store {
        Some(name) => quote!(::core::option::Option::Some(#krate::StoreKind::named(#name))),
        None => quote!(::core::option::Option::None),
    };
    let cache_tiers = format_ident!("{}", attrs.cache.unwrap_or("None"));
    let cache_ttl = match attrs.cache_ttl {
        Some(secs) => {
            quote!(::core::option::Option::Some(::core::time::Duration::from_secs(#secs)))
        }
        None => quote!(::core::option::Option::None),
    };
    let to_record = fields.iter().map(|f| {
        let ident = f.ident;
        let n = ident.to_string();
        quote!(record.push(#n, #krate::FieldValue::into_value(self.#ident));)
    });
    // Fields are read in declaration order, the order `into_ordered` yields them in.
    let from_record = fields.iter().map(|f| {
        let ident = f.ident;
        let ty = f.ty;
        quote!(#ident: values.next_field::<#ty>()?,)
    });
    let debug_fields = fields.iter().map(|f| {
        let ident = f.ident;
        let n = ident.to_string();
        match (f.attrs.sensitivity, f.attrs.mask) {
            // A declared mask shows what the rule keeps (the last four, the domain, ...).
            (Some("pii") | Some("phi"), Some(rule)) => {
                let rule = format_ident!("{}", rule);
                quote!(.field(#n, &#krate::mask_value(
                    #krate::MaskRule::#rule,
                    &#krate::FieldValue::into_value(::core::clone::Clone::clone(&self.#ident)),
                )))
            }
            (Some("pii") | Some("phi"), None) => quote!(.field(#n, &#krate::REDACTED)),
            _ => quote!(.field(#n, &self.#ident)),
        }
    });
    let n_fields = fields.len();
    let name_str = name.to_string();

    Ok(quote! {
        impl #krate::Entity for #name {
            type Id = #id_ty;

            fn meta() -> &'static #krate::EntityMeta {
                static META: #krate::EntityMeta = #krate::EntityMeta {
                    name: #table,
                    fields: &[#(#field_metas),*],
                    id_field: #id_name,
                    version_field: #version_name,
                    indexes: &[#(#indexes),*],
                    partition_key: &[#(#partition_key),*],
                    clustering_key: &[#(#clustering_key),*],
                    store: #store,
                    cache: #krate::CachePolicy {
                        tiers: #krate::CacheTiers::#cache_tiers,
                        ttl: #cache_ttl,
                    },
                };
                &META
            }

            fn id(&self) -> Self::Id {
                ::core::clone::Clone::clone(&self.#id_ident)
            }

            fn into_record(self) -> #krate::Record {
                let mut record = #krate::Record::with_capacity(#n_fields);
                #(#to_record)*
                record
            }

            fn from_record(record: #krate::Record) -> #krate::Result<Self> {
                let mut values = record.into_ordered(<Self as #krate::Entity>::meta());
                ::core::result::Result::Ok(#name { #(#from_record)* })
            }
        }

        /// PII and PHI fields are shown masked by their rule, or as `<redacted>`.
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_str) #(#debug_fields)* .finish()
            }
        }
    })
}

fn field_meta(krate: &TokenStream, f: &Field) -> TokenStream {
    let ty = f.ty;
    let n = f.ident.to_string();
    let mut meta = quote!(#krate::FieldMeta::of::<#ty>(#n));
    if let Some(s) = f.attrs.sensitivity {
        let variant = match s {
            "public" => quote!(Public),
            "internal" => quote!(Internal),
            "pii" => quote!(Pii),
            _ => quote!(Phi),
        };
        meta = quote!(#meta.classified(#krate::Sensitivity::#variant));
    }
    let a = &f.attrs;
    // Sensitive means sealed unless the field says why not.
    let encrypt = a.encrypt || (is_sensitive(a) && a.plaintext.is_none());
    if encrypt
        || a.plaintext.is_some()
        || a.mask.is_some()
        || a.blind_index.is_some()
        || a.tokenize.is_some()
        || a.no_export
    {
        let option = |path: TokenStream, variant: Option<&str>| match variant {
            Some(v) => {
                let v = format_ident!("{}", v);
                quote!(::core::option::Option::Some(#krate::#path::#v))
            }
            None => quote!(::core::option::Option::None),
        };
        let mask = option(quote!(MaskRule), a.mask);
        let tokenize = a.tokenize.is_some();
        let no_export = a.no_export;
        let blind_index = option(quote!(BlindIndexRule), a.blind_index);
        let plaintext = match &a.plaintext {
            Some(reason) => quote!(::core::option::Option::Some(#reason)),
            None => quote!(::core::option::Option::None),
        };
        meta = quote!(#meta.handled(#krate::Handling {
            encrypt: #encrypt,
            plaintext: #plaintext,
            tokenize: #tokenize,
            mask: #mask,
            drop_from_export: #no_export,
            blind_index: #blind_index,
            sealed: false,
        }));
    }
    meta
}

fn is_sensitive(attrs: &FieldAttrs) -> bool {
    matches!(attrs.sensitivity, Some("pii") | Some("phi"))
}

/// A PII- or PHI-bearing entity must classify every field: refuse to compile otherwise.
fn check_classification(fields: &[Field]) -> syn::Result<()> {
    if !fields.iter().any(|f| is_sensitive(&f.attrs)) {
        return Ok(());
    }
    let mut errors = fields
        .iter()
        .filter(|f| f.attrs.sensitivity.is_none())
        .map(|f| {
            syn::Error::new_spanned(
                f.ident,
                "this entity holds PII or PHI, so every field must be classified: add one of \
                 #[udl(public)], #[udl(internal)], #[udl(pii)], #[udl(phi)]",
            )
        });
    combined(&mut errors)
}

/// The id, version and key fields cannot be encrypted (stores look records up by them): a
/// sensitive one must say why it is stored in the clear.
fn check_sensitive_keys(
    fields: &[Field],
    partition_key: &[String],
    clustering_key: &[String],
) -> syn::Result<()> {
    let mut errors = fields
        .iter()
        .filter(|f| {
            let name = f.ident.to_string();
            (f.attrs.id
                || f.attrs.version
                || partition_key.contains(&name)
                || clustering_key.contains(&name))
                && is_sensitive(&f.attrs)
                && f.attrs.plaintext.is_none()
        })
        .map(|f| {
            syn::Error::new_spanned(
                f.ident,
                "PII and PHI are encrypted at rest, but the id, version and key fields cannot \
                 be: declare why this one is stored in the clear, #[udl(plaintext = \"...\")]",
            )
        });
    combined(&mut errors)
}

fn combined(errors: &mut impl Iterator<Item = syn::Error>) -> syn::Result<()> {
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
}

fn single<'a>(
    fields: &'a [Field<'a>],
    name: &Ident,
    what: &str,
    pick: impl Fn(&FieldAttrs) -> bool,
) -> syn::Result<Option<&'a Field<'a>>> {
    let mut found = fields.iter().filter(|f| pick(&f.attrs));
    let first = found.next();
    if found.next().is_some() {
        return Err(syn::Error::new_spanned(
            name,
            format!("only one field may be #[udl({what})]"),
        ));
    }
    Ok(first)
}
