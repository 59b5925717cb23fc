#include "util/fork_generation.h"

#include <pthread.h>

#include <atomic>
#include <mutex>

namespace shredkv::util {
namespace {

std::atomic<std::uint64_t> g_generation{0};

void OnForkChild() { g_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

void InstallForkHandler() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, &OnForkChild); });
}

std::uint64_t ForkGeneration() {
  InstallForkHandler();
  return g_generation.load(std::memory_order_relaxed);
}

}  // namespace shredkv::util
