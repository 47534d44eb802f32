//! Registry codes as open enums (as smoltcp's `enum_with_unknown!`): a value
//! this implementation does not know is `Unknown(n)`, a value to answer or
//! log, not a parse failure.

macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr => $text:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value RFC 2661 does not define.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
        impl $name {
            /// The name RFC 2661 gives this value (`None` for an unknown one).
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Unknown(_) => None,
                }
            }
        }
        impl core::fmt::Display for $name {
            /// The RFC's name and the number, e.g. `Host Name (7)`.
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let n: $ty = (*self).into();
                match self.name() {
                    Some(text) => write!(f, "{text} ({n})"),
                    None => write!(f, "unknown ({n})"),
                }
            }
        }
    };
}
