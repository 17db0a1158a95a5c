//! Choosing the device a run uses.

use tch::Device;
use uld_core::{Error, Result};

/// `cpu`, `cuda` (the first GPU) or `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device> {
    match name.trim() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                Error::invalid("device", format!("`{other}` is not cpu, cuda or cuda:N"))
            }),
    }
}

/// Sets libtorch's intra-op CPU threads to a run's `threads`; 0 keeps
/// libtorch's default (one per core).
pub fn use_threads(threads: i32) {
    if threads > 0 {
        tch::set_num_threads(threads);
    }
}

/// The device, checked to exist on this machine.
pub fn open_device(name: &str) -> Result<Device> {
    let device = parse_device(name)?;
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count();
        if index as i64 >= count {
            return Err(Error::invalid(
                "device",
                format!("`{name}` asked for, but this machine has {count} usable CUDA device(s)"),
            ));
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda").unwrap(), Device::Cuda(0));
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        assert!(
            parse_device("gpu")
                .unwrap_err()
                .to_string()
                .contains("`gpu`")
        );
    }

    #[test]
    fn cuda_on_a_machine_without_one_is_a_clear_error() {
        if tch::Cuda::device_count() == 0 {
            let err = open_device("cuda").unwrap_err().to_string();
            assert!(err.contains("0 usable CUDA"), "{err}");
        }
    }
}
