// The part of torch.distributed's c10d that uld uses, behind a C interface:
// a TCPStore rendezvous, a Gloo process group, in-place sum all-reduce,
// broadcast and barrier. Every entry point catches all C++ exceptions and
// reports them as a message, so none crosses into Rust.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

void report(char* err, size_t len, const char* what) {
  if (err == nullptr || len == 0) return;
  std::strncpy(err, what, len - 1);
  err[len - 1] = '\0';
}

template <typename F>
int guarded(char* err, size_t len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    report(err, len, e.what());
  } catch (...) {
    report(err, len, "unknown C++ exception");
  }
  return 1;
}

}  // namespace

extern "C" {

// Joins the group `world` processes form through the TCPStore that rank 0
// serves at host:port; null on failure, with the reason in `err`. Gloo
// binds to the network interface `interface` when it is not empty, else to
// the address `address` when that is not empty, else to the address this
// machine's hostname resolves to (loopback when it resolves to none).
void* uld_c10d_init(const char* host, int port, int rank, int world,
                    long long timeout_ms, const char* interface,
                    const char* address, char* err, size_t err_len) {
  Group* group = nullptr;
  guarded(err, err_len, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = rank == 0;
    options.numWorkers = world;
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    if (*interface != '\0') {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (*address != '\0') {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address));
    } else {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo);
    group = new Group{store, backend};
  });
  return group;
}

void uld_c10d_free(void* group) { delete static_cast<Group*>(group); }

// Sums `tensor` (an at::Tensor*) over the group, in place.
int uld_c10d_all_reduce_sum(void* group, void* tensor, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    static_cast<Group*>(group)->backend->allreduce(tensors)->wait();
  });
}

// Overwrites `tensor` with rank `root`'s.
int uld_c10d_broadcast(void* group, void* tensor, int root, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    static_cast<Group*>(group)->backend->broadcast(tensors, options)->wait();
  });
}

int uld_c10d_barrier(void* group, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { static_cast<Group*>(group)->backend->barrier()->wait(); });
}

}  // extern "C"
