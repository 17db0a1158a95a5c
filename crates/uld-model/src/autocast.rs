//! Mixed-precision regions: libtorch's autocast with a chosen dtype (fp16
//! or bf16) on CPU or CUDA, through the small C++ shim in
//! `csrc/autocast.cpp` (tch 0.24 only switches CUDA autocast, in fp16).

use tch::Device;

unsafe extern "C" {
    fn uld_autocast_enter(
        device: i32,
        dtype: i32,
        was_enabled: *mut bool,
        was_dtype: *mut i32,
    ) -> bool;
    fn uld_autocast_exit(device: i32, was_enabled: bool, was_dtype: i32) -> bool;
}

/// The reduced-precision dtypes autocast can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutocastKind {
    Fp16,
    Bf16,
}

impl AutocastKind {
    fn code(self) -> i32 {
        match self {
            Self::Fp16 => 0,
            Self::Bf16 => 1,
        }
    }
}

fn device_code(device: Device) -> i32 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// Runs `f` with autocast on `device` in `kind`; the previous autocast
/// state is restored afterwards (also when `f` panics).
pub fn with_autocast<T>(device: Device, kind: AutocastKind, f: impl FnOnce() -> T) -> T {
    struct Region {
        device: i32,
        was_enabled: bool,
        was_dtype: i32,
    }
    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: plain values; the shim catches every C++ exception.
            let ok = unsafe { uld_autocast_exit(self.device, self.was_enabled, self.was_dtype) };
            debug_assert!(ok, "leaving an autocast region failed");
        }
    }
    let device = device_code(device);
    let (mut was_enabled, mut was_dtype) = (false, -1);
    // SAFETY: the out-pointers are valid locals; the shim catches every C++ exception.
    let entered =
        unsafe { uld_autocast_enter(device, kind.code(), &mut was_enabled, &mut was_dtype) };
    assert!(entered, "libtorch refused to enter an autocast region");
    let _region = Region {
        device,
        was_enabled,
        was_dtype,
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn conv_output_kind() -> Kind {
        let x = Tensor::ones([1, 2, 8, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([3, 2, 3, 3], (Kind::Float, Device::Cpu));
        x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
            .kind()
    }

    #[test]
    fn cpu_autocast_runs_convolutions_in_the_chosen_dtype_and_restores_fp32() {
        assert_eq!(conv_output_kind(), Kind::Float);
        let inside = with_autocast(Device::Cpu, AutocastKind::Bf16, conv_output_kind);
        assert_eq!(inside, Kind::BFloat16);
        let nested = with_autocast(Device::Cpu, AutocastKind::Bf16, || {
            with_autocast(Device::Cpu, AutocastKind::Fp16, conv_output_kind)
        });
        assert_eq!(nested, Kind::Half);
        assert_eq!(conv_output_kind(), Kind::Float, "autocast is off again");
    }
}
