// KeyClaims (lib/sharding/key_claims.h): shared and exclusive claims on
// keys, the order between a waiting exclusive claim and new shared ones,
// and a thread that would wait for itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "sharding/key_claims.h"
#include "test_util.h"

namespace shredkv::sharding {
namespace {

using Mode = KeyClaims::Mode;

// TryClaim of `keys` in `mode` on a thread of its own: whether it was
// granted (and released again at once).
bool GrantedElsewhere(KeyClaims& claims, std::vector<std::string> keys, Mode mode) {
  bool granted = false;
  std::thread t([&] {
    auto r = claims.TryClaim(std::move(keys), mode, "keys");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    granted = r->has_value();
  });
  t.join();
  return granted;
}

void WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(done()) << "not reached in 30 s";
}

TEST(KeyClaimsTest, SharedClaimsOnAKeyCoexist) {
  KeyClaims claims;
  auto a = claims.Claim({"a"}, Mode::kShared, "keys");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(GrantedElsewhere(claims, {"a", "b"}, Mode::kShared));
  EXPECT_FALSE(GrantedElsewhere(claims, {"a"}, Mode::kExclusive));
  a->Release();
  EXPECT_TRUE(GrantedElsewhere(claims, {"a"}, Mode::kExclusive));
}

TEST(KeyClaimsTest, AnExclusiveClaimExcludesEveryOtherClaimOnItsKeysOnly) {
  KeyClaims claims;
  auto held = claims.Claim({"a", "b", "a"}, Mode::kExclusive, "keys");
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(GrantedElsewhere(claims, {"a"}, Mode::kShared));
  EXPECT_FALSE(GrantedElsewhere(claims, {"b", "c"}, Mode::kExclusive));
  EXPECT_TRUE(GrantedElsewhere(claims, {"c"}, Mode::kExclusive));
  {
    KeyClaims::Held moved = std::move(*held);  // the claim moves with its Held
    EXPECT_FALSE(GrantedElsewhere(claims, {"b"}, Mode::kShared));
  }
  EXPECT_TRUE(GrantedElsewhere(claims, {"a", "b"}, Mode::kShared));
}

// A waiting exclusive claim (an erasure) is not starved by a stream of
// shared ones (writers): once it waits, new shared claims on its keys wait
// behind it — except those of a thread that holds claims already, which
// could be the very claims it waits for.
TEST(KeyClaimsTest, NewSharedClaimsWaitBehindAWaitingExclusiveOne) {
  KeyClaims claims;
  auto reader = claims.Claim({"a"}, Mode::kShared, "keys");
  ASSERT_TRUE(reader.ok());

  std::atomic<bool> exclusive_granted{false};
  std::thread eraser([&] {
    auto e = claims.Claim({"a", "b"}, Mode::kExclusive, "keys");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    exclusive_granted = true;
  });
  WaitFor([&] { return claims.exclusive_waiters() == 1; });
  EXPECT_FALSE(exclusive_granted.load());
  EXPECT_FALSE(GrantedElsewhere(claims, {"a"}, Mode::kShared)) << "a new shared claim passed the waiting erasure";
  EXPECT_FALSE(GrantedElsewhere(claims, {"b"}, Mode::kShared)) << "a new shared claim passed the waiting erasure";
  EXPECT_TRUE(GrantedElsewhere(claims, {"c"}, Mode::kShared)) << "an unrelated key waited";

  // The thread that holds "a" shared may take it again: it must not wait
  // for the erasure that waits for it.
  auto again = claims.TryClaim({"a", "b"}, Mode::kShared, "keys");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->has_value());
  again->reset();

  reader->Release();
  eraser.join();
  EXPECT_TRUE(exclusive_granted.load());
  EXPECT_EQ(claims.exclusive_waiters(), 0u);
  EXPECT_TRUE(GrantedElsewhere(claims, {"a", "b"}, Mode::kShared)) << "the erasure's claim was not released";
}

// Waits that could never end are FailedPrecondition at once, and take
// nothing: a listener called on the erasing thread that calls back on the
// same people.
TEST(KeyClaimsTest, AThreadNeverWaitsForItsOwnClaims) {
  KeyClaims claims;
  auto exclusive = claims.Claim({"a"}, Mode::kExclusive, "one of these people");
  ASSERT_TRUE(exclusive.ok());
  auto shared_again = claims.Claim({"a"}, Mode::kShared, "one of these people");
  EXPECT_TRUE(shared_again.status().IsFailedPrecondition()) << shared_again.status().ToString();
  EXPECT_NE(shared_again.status().message().find("one of these people"), std::string::npos);
  EXPECT_TRUE(claims.Claim({"b", "a"}, Mode::kExclusive, "keys").status().IsFailedPrecondition());
  EXPECT_TRUE(GrantedElsewhere(claims, {"b"}, Mode::kExclusive)) << "a refused claim kept a key";

  auto shared = claims.Claim({"c"}, Mode::kShared, "keys");
  ASSERT_TRUE(shared.ok());
  EXPECT_TRUE(claims.Claim({"c"}, Mode::kExclusive, "keys").status().IsFailedPrecondition());
  auto shared_twice = claims.TryClaim({"c"}, Mode::kShared, "keys");
  ASSERT_TRUE(shared_twice.ok());
  EXPECT_TRUE(shared_twice->has_value());
  shared_twice->reset();
  EXPECT_FALSE(GrantedElsewhere(claims, {"c"}, Mode::kExclusive)) << "releasing one of two shared claims freed the key";
  shared->Release();
  EXPECT_TRUE(GrantedElsewhere(claims, {"c"}, Mode::kExclusive));
}

// Many threads taking overlapping claims in both modes: an exclusive
// holder is never beside any other holder of its keys.
TEST(KeyClaimsTest, ExclusiveHoldersAreAloneUnderContention) {
  KeyClaims claims;
  std::atomic<int> holders[3] = {0, 0, 0};  // >= 1000: an exclusive holder
  std::atomic<bool> violated{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const int k1 = (t + i) % 3, k2 = (t * 7 + i * 3) % 3;
        std::vector<int> keys = {k1};
        if (k2 != k1) keys.push_back(k2);
        const bool exclusive = (i + t) % 4 == 0;
        std::vector<std::string> names;
        for (int k : keys) names.push_back(std::to_string(k));
        auto held = claims.Claim(names, exclusive ? Mode::kExclusive : Mode::kShared, "keys");
        ASSERT_TRUE(held.ok());
        const int add = exclusive ? 1000 : 1;
        for (int k : keys) {
          const int before = holders[k].fetch_add(add);
          if (before >= 1000 || (exclusive && before != 0)) violated = true;
        }
        std::this_thread::yield();
        for (int k : keys) holders[k].fetch_sub(add);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(violated.load());
  EXPECT_EQ(claims.exclusive_waiters(), 0u);
}

}  // namespace
}  // namespace shredkv::sharding
