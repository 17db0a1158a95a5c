//! Checkpoints: the student, the teacher (when there is one), the optimiser
//! state and the run's progress, written atomically so an interrupted run
//! always finds its last complete checkpoint.
//!
//! A run directory holds `ckpt-<step>.safetensors` (tensors named
//! `model.*`, `teacher.*`, `optim.*`), `ckpt-<step>.json` (progress and any
//! metadata the trainer keeps) and `latest.json`, which names the newest
//! complete checkpoint and is written last. Every file is written
//! atomically and synced; after a checkpoint is complete, all but the newest
//! `keep` are removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tch::{Tensor, nn::VarStore};
use uld_core::{Error, Location, Result, write_atomically, write_atomically_via};

use crate::optim::Optimizer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Latest {
    step: u64,
    tensors: String,
    meta: String,
}

/// What a loaded checkpoint restored.
#[derive(Debug)]
pub struct Restored<M> {
    pub step: u64,
    pub meta: M,
}

fn tensors_name(step: u64) -> String {
    format!("ckpt-{step:08}.safetensors")
}

/// Writes named tensors as a safetensors file, atomically and synced.
pub fn write_tensors(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    write_atomically_via(path, |tmp| {
        Tensor::write_safetensors(named, tmp).map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Saves a checkpoint for `step` and returns the tensors file's path. Of
/// the checkpoints before it, the newest `keep - 1` stay; later ones (left
/// by a run this one restarted) are never touched.
pub fn save_checkpoint(
    dir: &Path,
    keep: usize,
    step: u64,
    model: &VarStore,
    teacher: Option<&VarStore>,
    optimizer: &Optimizer,
    meta: &impl Serialize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut named: Vec<(String, Tensor)> = prefixed("model", model.variables());
    if let Some(teacher) = teacher {
        named.extend(prefixed("teacher", teacher.variables()));
    }
    named.extend(
        optimizer
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    let tensors = dir.join(tensors_name(step));
    write_tensors(&tensors, &named)?;

    let meta_name = meta_name(step);
    write_atomically(&dir.join(&meta_name), |w| {
        serde_json::to_writer_pretty(w, meta).map_err(std::io::Error::other)
    })?;
    let latest = Latest {
        step,
        tensors: tensors_name(step),
        meta: meta_name,
    };
    write_atomically(&dir.join("latest.json"), |w| {
        serde_json::to_writer_pretty(w, &latest).map_err(std::io::Error::other)
    })?;
    prune(dir, step, keep.max(1))?;
    Ok(tensors)
}

fn meta_name(step: u64) -> String {
    format!("ckpt-{step:08}.json")
}

/// The steps of the checkpoints in `dir`, oldest first (a tensors file
/// counts; its metadata may be missing if a run stopped between the two).
pub fn checkpoint_steps(dir: &Path) -> Result<Vec<u64>> {
    let mut steps: Vec<u64> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let name = name.to_str()?;
            name.strip_prefix("ckpt-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .collect();
    steps.sort_unstable();
    Ok(steps)
}

/// Removes the checkpoints before `step` but the newest `keep - 1`, and the
/// temporary files of interrupted writes before `step`. The metadata goes
/// first: a tensors file without it is never named by `latest.json`.
fn prune(dir: &Path, step: u64, keep: usize) -> Result<()> {
    let older: Vec<u64> = checkpoint_steps(dir)?
        .into_iter()
        .filter(|&s| s < step)
        .collect();
    let mut doomed: Vec<PathBuf> = older[..older.len().saturating_sub(keep - 1)]
        .iter()
        .flat_map(|&s| [dir.join(meta_name(s)), dir.join(tensors_name(s))])
        .collect();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let temporary_step = name
            .strip_prefix(".ckpt-")
            .filter(|rest| rest.contains(".tmp"))
            .and_then(|rest| rest.split('.').next()?.parse::<u64>().ok());
        if temporary_step.is_some_and(|s| s < step) {
            doomed.push(dir.join(name.as_ref()));
        }
    }
    for path in doomed {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&path, e));
            }
            _ => {}
        }
    }
    Ok(())
}

fn prefixed(
    prefix: &str,
    vars: std::collections::HashMap<String, Tensor>,
) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The step of the newest complete checkpoint in `dir`, if any.
pub fn latest_step(dir: &Path) -> Result<Option<u64>> {
    Ok(read_latest(dir)?.map(|l| l.step))
}

fn read_latest(dir: &Path) -> Result<Option<Latest>> {
    let path = dir.join("latest.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::data(
            Location::file(&path),
            format!("not a checkpoint index: {e}"),
        )
    })
}

/// Loads the newest checkpoint into the given stores and optimiser.
pub fn load_latest<M: DeserializeOwned>(
    dir: &Path,
    model: &mut VarStore,
    teacher: Option<&mut VarStore>,
    optimizer: Option<&mut Optimizer>,
) -> Result<Option<Restored<M>>> {
    let Some(latest) = read_latest(dir)? else {
        return Ok(None);
    };
    let path = dir.join(&latest.tensors);
    let bad = |message: String| Error::data(Location::file(&path), message);
    let named =
        Tensor::read_safetensors(&path).map_err(|e| bad(format!("cannot read tensors: {e}")))?;
    restore(model, "model", &named).map_err(&bad)?;
    if let Some(teacher) = teacher {
        restore(teacher, "teacher", &named).map_err(&bad)?;
    }
    if let Some(optimizer) = optimizer {
        let state: Vec<(String, Tensor)> = named
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("optim.")
                    .map(|n| (n.to_string(), t.shallow_clone()))
            })
            .collect();
        optimizer.load_state(&state).map_err(&bad)?;
    }
    let meta_path = dir.join(&latest.meta);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let meta = serde_json::from_str(&text).map_err(|e| {
        Error::data(
            Location::file(&meta_path),
            format!("bad checkpoint metadata: {e}"),
        )
    })?;
    Ok(Some(Restored {
        step: latest.step,
        meta,
    }))
}

/// Copies `prefix.*` tensors (or, for an empty prefix, unprefixed ones)
/// into the store's variables of the same names.
pub fn restore(
    vs: &mut VarStore,
    prefix: &str,
    named: &[(String, Tensor)],
) -> std::result::Result<(), String> {
    let strip = |n: &'_ str| -> Option<String> {
        if prefix.is_empty() {
            Some(n.to_string())
        } else {
            Some(n.strip_prefix(prefix)?.strip_prefix('.')?.to_string())
        }
    };
    let by_name: std::collections::HashMap<String, &Tensor> = named
        .iter()
        .filter_map(|(n, t)| Some((strip(n)?, t)))
        .collect();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = by_name
                .get(&name)
                .ok_or_else(|| format!("no tensor `{prefix}.{name}`"))?;
            if src.size() != var.size() {
                return Err(format!(
                    "`{prefix}.{name}` has shape {:?}, the model expects {:?}",
                    src.size(),
                    var.size()
                ));
            }
            var.copy_(src);
        }
        Ok(())
    })
}

/// The names of the tensors a checkpoint file holds.
pub fn tensor_names(path: &Path) -> Result<Vec<String>> {
    let named = Tensor::read_safetensors(path)
        .map_err(|e| Error::data(Location::file(path), format!("cannot read tensors: {e}")))?;
    Ok(named.into_iter().map(|(n, _)| n).collect())
}

/// The tensors file of the newest complete checkpoint in `dir`, if any.
pub fn latest_tensors(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(read_latest(dir)?.map(|l| dir.join(l.tensors)))
}
