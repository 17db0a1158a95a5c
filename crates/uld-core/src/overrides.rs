//! `a.b.c=VALUE` overrides of any serialisable configuration.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// A named preset and the function that builds it.
pub type Preset<'a, T> = (&'a str, fn() -> T);

/// The preset called `name` among `presets`; an unknown name is an error
/// listing the known ones.
pub fn preset<T>(what: &str, name: &str, presets: &[Preset<'_, T>]) -> Result<T> {
    presets
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, make)| make())
        .ok_or_else(|| {
            let names: Vec<&str> = presets.iter().map(|(n, _)| *n).collect();
            Error::invalid(what, format!("`{name}` is not one of {}", names.join(", ")))
        })
}

/// A copy of `config` with the dotted field set to VALUE (TOML syntax; a bare
/// word that is not valid TOML is taken as a string). Unknown fields and
/// values of the wrong type are errors naming the assignment.
pub fn with_override<T: Serialize + DeserializeOwned>(config: &T, assignment: &str) -> Result<T> {
    with_overrides(config, [assignment])
}

/// [`with_override`] for several assignments, applied together before the
/// result is typed (so coupled fields can change in one go).
pub fn with_overrides<'a, T: Serialize + DeserializeOwned>(
    config: &T,
    assignments: impl IntoIterator<Item = &'a str>,
) -> Result<T> {
    let invalid = |m: String| Error::invalid("config override", m);
    let mut root = toml::Value::try_from(config).map_err(|e| invalid(e.to_string()))?;
    let mut all = Vec::new();
    for assignment in assignments {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| invalid(format!("`{assignment}` is not KEY=VALUE")))?;
        let key = key.trim();
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.trim().to_string()));
        let mut node = &mut root;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = node.as_table_mut().ok_or_else(|| {
                invalid(format!(
                    "`{key}`: `{}` is not a table",
                    parts[..i].join(".")
                ))
            })?;
            node = table
                .get_mut(*part)
                .ok_or_else(|| invalid(format!("`{key}`: no field `{part}`")))?;
        }
        *node = value;
        all.push(assignment);
    }
    root.try_into()
        .map_err(|e: toml::de::Error| invalid(format!("`{}`: {}", all.join(" "), e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        rate: f64,
        name: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Outer {
        steps: u64,
        inner: Inner,
    }

    fn outer() -> Outer {
        Outer {
            steps: 3,
            inner: Inner {
                rate: 0.1,
                name: "a".into(),
            },
        }
    }

    #[test]
    fn sets_nested_fields_and_parses_bare_words_as_strings() {
        let o = with_override(&outer(), "inner.rate=0.5").unwrap();
        assert_eq!(o.inner.rate, 0.5);
        let o = with_override(&o, "inner.name=hello").unwrap();
        assert_eq!(o.inner.name, "hello");
        assert_eq!(with_override(&o, "steps = 7").unwrap().steps, 7);
    }

    #[test]
    fn presets_are_picked_by_name_and_unknown_names_list_the_known_ones() {
        let presets: [Preset<'_, u8>; 2] = [("a", || 1), ("b", || 2)];
        assert_eq!(preset("thing", "b", &presets).unwrap(), 2);
        let err = preset("thing", "c", &presets).unwrap_err().to_string();
        assert_eq!(err, "invalid thing: `c` is not one of a, b");
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_named() {
        let err = with_override(&outer(), "inner.rte=0.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no field `rte`"), "{err}");
        let err = with_override(&outer(), "steps=fast")
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps=fast"), "{err}");
        assert!(with_override(&outer(), "steps").is_err());
    }
}
