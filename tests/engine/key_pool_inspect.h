// What the key pool tests look at inside a store: its implementation and
// the `key_claims` rows of `data` (architecture.md §4a).
#ifndef SHREDKV_TESTS_ENGINE_KEY_POOL_INSPECT_H_
#define SHREDKV_TESTS_ENGINE_KEY_POOL_INSPECT_H_

#include <gtest/gtest.h>

#include <cstdint>

#include "engine/store_impl.h"

namespace shredkv::test {

inline engine::StoreImpl& Impl(Store& s) { return *dynamic_cast<engine::StoreImpl*>(&s); }

// The claim rows `data` holds (a failed read fails the calling test).
inline std::uint64_t ClaimRows(Store& s) {
  engine::EngineContext& ctx = Impl(s).context();
  std::uint64_t n = 0;
  Status v = ctx.data->View([&](storage::ReadTxn& txn) {
    auto c = txn.Count(ctx.tables.key_claims);
    if (c.ok()) n = *c;
    return c.status();
  });
  EXPECT_TRUE(v.ok()) << v.ToString();
  return n;
}

}  // namespace shredkv::test

#endif  // SHREDKV_TESTS_ENGINE_KEY_POOL_INSPECT_H_
