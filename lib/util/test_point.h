// Named points in the engine where a test can inject a crash (kill the
// process) to check recovery, in the spirit of LevelDB's fault-injection
// seams. In production no hook is installed and a test point costs one
// relaxed atomic load.
// Thread safety: SetTestPointHook is for test setup, before concurrent use.
#ifndef SHREDKV_UTIL_TEST_POINT_H_
#define SHREDKV_UTIL_TEST_POINT_H_

#include <string_view>

namespace shredkv::util {

using TestPointHook = void (*)(std::string_view name);

// Installs (or with nullptr removes) the process-wide hook.
void SetTestPointHook(TestPointHook hook);

// Calls the hook, if any, with `name`.
void TestPoint(std::string_view name);

}  // namespace shredkv::util

#endif  // SHREDKV_UTIL_TEST_POINT_H_
