#pragma once
#include <chrono>

namespace gloo {
// Opaque: uld only holds contexts through libtorch's process group.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
