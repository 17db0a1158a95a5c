#pragma once

namespace gloo {
namespace transport {
// Opaque: created and used by libtorch only.
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
