//! Import of ImageNet backbones from PyTorch state dicts with torchvision's
//! ResNet key names (`conv1.weight`, `bn1.running_mean`,
//! `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, ...).
//!
//! Files: `.safetensors`, or `.pth`/`.pt`/`.bin` as `torch.save` writes them
//! (a zip pickle of a dict of tensors; libtorch reads it with
//! `torch::jit::_load_parameters`, tch's `Tensor::loadz_multi`). Keys may
//! carry a `module.` or `backbone.body.` prefix. The first convolution is
//! adapted to `3 * G` input slices by repeating the RGB kernel `G` times and
//! dividing by `G`, so `G` copies of an image give the RGB response. With
//! GroupNorm the BatchNorm affine parameters load into the GroupNorm ones
//! and the running statistics are unused.

use std::collections::HashMap;
use std::path::Path;

use tch::{Tensor, nn};
use uld_core::{Error, Location, Result};

/// What an import used and left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Model parameters set from the file.
    pub loaded: Vec<String>,
    /// File keys no parameter took (e.g. `fc.*`, `num_batches_tracked`).
    pub unused: Vec<String>,
}

/// Every tensor of a state-dict file, keyed by name.
pub fn read_state_dict(path: &Path) -> Result<HashMap<String, Tensor>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let read = match ext {
        "safetensors" => Tensor::read_safetensors(path),
        "pth" | "pt" | "bin" => Tensor::loadz_multi(path),
        other => {
            return Err(Error::data(
                Location::file(path),
                format!(
                    "unknown weight file type `.{other}`: expected .pth, .pt, .bin or .safetensors"
                ),
            ));
        }
    };
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let tensors = read.map_err(|e| {
        Error::data(
            Location::file(path),
            format!("not a readable state dict: {e}"),
        )
    })?;
    Ok(tensors.into_iter().collect())
}

fn strip_prefix(key: &str) -> &str {
    let key = key.strip_prefix("module.").unwrap_or(key);
    key.strip_prefix("backbone.body.").unwrap_or(key)
}

/// Loads a torchvision ResNet state dict into the variables under `prefix`
/// (`"backbone"` for a [`crate::FcosDetector`] built at the root). Every
/// variable there must be in the file with the same shape (the first
/// convolution's input channels excepted), so a wrong depth or width is an
/// error naming the key, not a partly random backbone.
pub fn load_torchvision_resnet(
    vs: &nn::VarStore,
    prefix: &str,
    path: &Path,
) -> Result<ImportReport> {
    let file: HashMap<String, Tensor> = read_state_dict(path)?
        .into_iter()
        .map(|(k, v)| (strip_prefix(&k).to_string(), v))
        .collect();
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, t)| {
            let key = name.strip_prefix(prefix)?.strip_prefix('.')?.to_string();
            Some((key, t))
        })
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    if vars.is_empty() {
        return Err(Error::invalid(
            "pretrained import",
            format!("the model has no variables under `{prefix}`"),
        ));
    }
    let at = |key: &str| Location::file(path).field(key);
    let mut report = ImportReport::default();
    for (key, mut var) in vars {
        let src = file.get(&key).ok_or_else(|| {
            Error::data(
                at(&key),
                "missing: the model's backbone has this parameter, the file does not",
            )
        })?;
        let src = if key == "conv1.weight" {
            adapt_first_conv(src, &var.size()).map_err(|m| Error::data(at(&key), m))?
        } else {
            src.shallow_clone()
        };
        if src.size() != var.size() {
            return Err(Error::data(
                at(&key),
                format!(
                    "shape {:?} in the file, {:?} in the model (another depth or width?)",
                    src.size(),
                    var.size()
                ),
            ));
        }
        tch::no_grad(|| var.copy_(&src.to_kind(var.kind()).to_device(var.device())));
        report.loaded.push(format!("{prefix}.{key}"));
    }
    let used: std::collections::HashSet<&str> = report
        .loaded
        .iter()
        .map(|k| &k[prefix.len() + 1..])
        .collect();
    report.unused = file
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .cloned()
        .collect();
    report.unused.sort();
    Ok(report)
}

/// The RGB stem kernel `[O, 3, k, k]` for `want = [O, 3G, k, k]`: repeated
/// `G` times along the input channels and divided by `G`.
pub fn adapt_first_conv(src: &Tensor, want: &[i64]) -> std::result::Result<Tensor, String> {
    let have = src.size();
    if have.len() != 4 || want.len() != 4 || have[0] != want[0] || have[2..] != want[2..] {
        return Err(format!("shape {have:?} in the file, {want:?} in the model"));
    }
    if have[1] == want[1] {
        return Ok(src.shallow_clone());
    }
    if have[1] != 3 || want[1] % 3 != 0 {
        return Err(format!(
            "cannot adapt {} input channels to {}",
            have[1], want[1]
        ));
    }
    let g = want[1] / 3;
    Ok(src.repeat([1, g, 1, 1]) / g as f64)
}
