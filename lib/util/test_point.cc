#include "util/test_point.h"

#include <atomic>

namespace shredkv::util {
namespace {
std::atomic<TestPointHook> g_hook{nullptr};
}  // namespace

void SetTestPointHook(TestPointHook hook) { g_hook.store(hook, std::memory_order_release); }

void TestPoint(std::string_view name) {
  if (TestPointHook hook = g_hook.load(std::memory_order_acquire)) hook(name);
}

}  // namespace shredkv::util
