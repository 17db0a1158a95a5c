//! Serde for an `Option` whose `None` is spelled as a word.
//!
//! TOML has no null, so a `None` field is left out when written; where an
//! absent key reads back as the default (`#[serde(default)]`) and the
//! default is `Some`, the `None` would not survive its own file. These
//! helpers write `None` as a word instead (`target_spacing_mm = "native"`)
//! and read the word, a value, or a JSON `null` back; an absent key still
//! means the default. Use one of the ready modules with
//! `#[serde(with = "...")]`, or make one for another word with
//! [`word_option_module!`](crate::word_option_module).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `Some(v)` as `v` and `None` as the string `word`.
pub fn serialize<T: Serialize, S: Serializer>(
    value: &Option<T>,
    serializer: S,
    word: &str,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => v.serialize(serializer),
        None => serializer.serialize_str(word),
    }
}

/// Reads `word` (or a null) as `None` and anything else as `Some(T)`.
pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
    word: &'static str,
) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_any(WordOr::<T>(word, PhantomData))
}

struct WordOr<T>(&'static str, PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for WordOr<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number or \"{}\"", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.trim().eq_ignore_ascii_case(self.0) {
            Ok(None)
        } else {
            Err(E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(Some)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize(d).map(Some)
    }
}

/// Defines a module for `#[serde(with = "...")]` whose `None` is spelled
/// `$word`, e.g. `word_option_module!(pub mod native = "native");`.
#[macro_export]
macro_rules! word_option_module {
    ($(#[$doc:meta])* $vis:vis mod $name:ident = $word:literal) => {
        $(#[$doc])*
        $vis mod $name {
            pub const WORD: &str = $word;

            pub fn serialize<T: ::serde::Serialize, S: ::serde::Serializer>(
                value: &Option<T>,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                $crate::sample::word_option::serialize(value, serializer, WORD)
            }

            pub fn deserialize<'de, T: ::serde::Deserialize<'de>, D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Option<T>, D::Error> {
                $crate::sample::word_option::deserialize(deserializer, WORD)
            }
        }
    };
}

crate::word_option_module!(
    /// `None` spelled `"native"`: the source's own pixels or slices.
    pub mod native = "native"
);
crate::word_option_module!(
    /// `None` spelled `"none"`: no limit.
    pub mod none = "none"
);

#[cfg(test)]
mod tests {
    // TOML, the format this is for, is tested with the training config in
    // uld-train (this crate does not depend on `toml`); JSON takes the same
    // paths through the visitor.
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Knobs {
        #[serde(with = "native")]
        spacing: Option<f64>,
        #[serde(with = "none")]
        side: Option<usize>,
    }

    impl Default for Knobs {
        fn default() -> Self {
            Self {
                spacing: Some(0.8),
                side: Some(512),
            }
        }
    }

    fn parse(text: &str) -> serde_json::Result<Knobs> {
        serde_json::from_str(text)
    }

    #[test]
    fn none_is_a_word_and_an_absent_key_the_default() {
        let off = Knobs {
            spacing: None,
            side: None,
        };
        let text = serde_json::to_string(&off).unwrap();
        assert_eq!(text, r#"{"spacing":"native","side":"none"}"#);
        assert_eq!(parse(&text).unwrap(), off);
        let on = Knobs {
            spacing: Some(1.5),
            side: Some(64),
        };
        assert_eq!(parse(&serde_json::to_string(&on).unwrap()).unwrap(), on);
        assert_eq!(parse("{}").unwrap(), Knobs::default());
        // An integer is a number of mm; a null is None too.
        assert_eq!(parse(r#"{"spacing": 1}"#).unwrap().spacing, Some(1.0));
        let json = parse(r#"{"spacing": null, "side": 7}"#).unwrap();
        assert_eq!((json.spacing, json.side), (None, Some(7)));
    }

    #[test]
    fn other_words_and_wrong_numbers_are_errors_naming_the_word() {
        let err = parse(r#"{"spacing": "fine"}"#).unwrap_err().to_string();
        assert!(err.contains("\"native\"") && err.contains("fine"), "{err}");
        let err = parse(r#"{"side": -3}"#).unwrap_err().to_string();
        assert!(err.contains("-3"), "{err}");
        assert!(parse(r#"{"side": 1.5}"#).is_err());
    }
}
