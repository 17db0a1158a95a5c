//! Choosing the device a run uses.

use tch::Device;
use uld_core::{Error, Result};

use crate::Precision;

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

/// Whether this CPU has bf16 instructions (x86's AVX-512 BF16, Arm's
/// BF16). Without them libtorch emulates bf16 arithmetic: on an AVX2-only
/// AMD EPYC a `small` training step took 14 times as long in bf16 as in
/// fp32 (`uld bench train --set threads=1 --set precision=bf16`).
pub fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("bf16")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// A warning for a run asking for bf16 on a CPU that only emulates it
/// (`native_bf16` false); `None` where the precision runs at full speed.
pub fn slow_precision_warning(
    precision: Precision,
    device: Device,
    native_bf16: bool,
) -> Option<String> {
    (precision == Precision::Bf16 && device == Device::Cpu && !native_bf16).then(|| {
        "precision bf16 on a CPU without bf16 instructions (AVX-512 BF16): libtorch \
         emulates it, many times slower than fp32 (14x per training step on an AVX2 CPU); \
         `--set precision=fp32` runs at full speed"
            .to_string()
    })
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
    fn bf16_is_flagged_only_where_the_cpu_emulates_it() {
        let warning = slow_precision_warning(Precision::Bf16, Device::Cpu, false).unwrap();
        assert!(warning.contains("precision=fp32"), "{warning}");
        assert_eq!(
            slow_precision_warning(Precision::Bf16, Device::Cpu, true),
            None
        );
        assert_eq!(
            slow_precision_warning(Precision::Bf16, Device::Cuda(0), false),
            None
        );
        assert_eq!(
            slow_precision_warning(Precision::Fp32, Device::Cpu, false),
            None
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
