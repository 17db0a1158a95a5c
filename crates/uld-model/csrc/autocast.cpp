// Autocast with a chosen dtype on a chosen device. tch 0.24 switches only
// CUDA autocast on and off (through an API libtorch 2.11 deprecates) and
// leaves its dtype at fp16; these calls reach bf16, and CPU autocast.
// No C++ exception crosses into Rust: failures return false.

#include <ATen/autocast_mode.h>

namespace {

bool device_type(int device, c10::DeviceType* out) {
  switch (device) {
    case 0: *out = c10::DeviceType::CPU; return true;
    case 1: *out = c10::DeviceType::CUDA; return true;
    default: return false;
  }
}

bool scalar_type(int dtype, c10::ScalarType* out) {
  switch (dtype) {
    case 0: *out = c10::ScalarType::Half; return true;
    case 1: *out = c10::ScalarType::BFloat16; return true;
    default: return false;
  }
}

int dtype_code(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Half: return 0;
    case c10::ScalarType::BFloat16: return 1;
    default: return -1;
  }
}

}  // namespace

extern "C" {

// Enters an autocast region: enables autocast on `device` (0 CPU, 1 CUDA)
// with `dtype` (0 fp16, 1 bf16). The previous state is written to
// `was_enabled` and `was_dtype` for uld_autocast_exit.
bool uld_autocast_enter(int device, int dtype, bool* was_enabled, int* was_dtype) {
  try {
    c10::DeviceType d;
    c10::ScalarType t;
    if (!device_type(device, &d) || !scalar_type(dtype, &t)) return false;
    *was_enabled = at::autocast::is_autocast_enabled(d);
    *was_dtype = dtype_code(at::autocast::get_autocast_dtype(d));
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::set_autocast_dtype(d, t);
    at::autocast::increment_nesting();
    return true;
  } catch (...) {
    return false;
  }
}

// Leaves the region uld_autocast_enter opened, restoring the previous
// state; the cast-weight cache is cleared when the outermost region ends.
bool uld_autocast_exit(int device, bool was_enabled, int was_dtype) {
  try {
    c10::DeviceType d;
    if (!device_type(device, &d)) return false;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(d, was_enabled);
    c10::ScalarType t;
    if (scalar_type(was_dtype, &t)) at::autocast::set_autocast_dtype(d, t);
    return true;
  } catch (...) {
    return false;
  }
}

}  // extern "C"
