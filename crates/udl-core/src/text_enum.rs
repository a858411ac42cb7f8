//! `text_enum!`: a Rust enum stored as text, usable as an entity field.

/// Declares an enum stored as a fixed set of text values.
///
/// ```
/// udl_core::text_enum! {
///     /// Subscription state.
///     pub enum Status { Active => "active", Cancelled => "cancelled" }
/// }
/// assert_eq!(Status::Active.as_str(), "active");
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* #[doc = concat!("Stored as `", $text, "`.")] $variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The variant stored as `text`, if any.
            pub fn from_text(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl $crate::FieldValue for $name {
            const KIND: $crate::ValueKind = $crate::ValueKind::Text;
            fn into_value(self) -> $crate::Value {
                $crate::Value::Text(self.as_str().to_owned())
            }
            fn from_value(value: $crate::Value) -> $crate::Result<Self> {
                let text = <String as $crate::FieldValue>::from_value(value)?;
                $name::from_text(&text).ok_or_else(|| {
                    $crate::Error::invalid(concat!("not a valid ", stringify!($name)))
                })
            }
        }

        impl From<$name> for $crate::Value {
            fn from(v: $name) -> $crate::Value {
                $crate::FieldValue::into_value(v)
            }
        }
    };
}
