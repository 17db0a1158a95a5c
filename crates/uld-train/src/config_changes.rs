//! The settings a resumed run changed: a run started again with another
//! configuration carries on with the new one, and says what differs from
//! the `config.toml` it had.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::config::TrainConfig;

/// One setting, named by its dotted key as `--set` names it, whose value
/// differs between two configurations (in TOML syntax; `None` where a
/// configuration has no such key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingChange {
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl fmt::Display for SettingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        write!(
            f,
            "{} {} -> {}",
            self.key,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// The settings whose values differ between `before` and `after`, in key
/// order.
pub fn setting_changes(before: &TrainConfig, after: &TrainConfig) -> Vec<SettingChange> {
    let (before, after) = (settings(before), settings(after));
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| SettingChange {
            key: key.clone(),
            before: before.get(key).cloned(),
            after: after.get(key).cloned(),
        })
        .collect()
}

/// Every leaf setting of `config` by dotted key (arrays are one setting).
fn settings(config: &TrainConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // A training config always converts (it serialises to TOML already).
    if let Ok(value) = toml::Value::try_from(config) {
        flatten("", &value, &mut out);
    }
    out
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_changed_setting_by_its_set_key() {
        let before = TrainConfig::small();
        let mut after = before.clone();
        after
            .set_all(["precision=bf16", "eval_from=2000", "loader.batch_size=8"])
            .unwrap_or_else(|e| panic!("{e}"));
        let changes: Vec<String> = setting_changes(&before, &after)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                "eval_from 1000 -> 2000",
                "loader.batch_size 4 -> 8",
                "precision \"fp32\" -> \"bf16\"",
            ]
        );
        assert!(setting_changes(&before, &before).is_empty());
    }
}
