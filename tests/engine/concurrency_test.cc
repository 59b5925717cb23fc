// Many threads on one Store: readers and writers on different and shared
// people. Run under ThreadSanitizer with SHREDKV_SANITIZE=thread.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace shredkv {
namespace {

class ConcurrencyTest : public test::StoreTest {};

TEST_F(ConcurrencyTest, ParallelWritersAndReadersSeeConsistentPeople) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 60;
  std::vector<PersonId> shared_people;
  for (int i = 0; i < 4; ++i) shared_people.push_back(MakePerson("shared" + std::to_string(i) + "@x.org"));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string email = "t" + std::to_string(t) + "-" + std::to_string(i) + "@x.org";
        auto id = store_->CreatePerson({{"email", email}}, {{"i", i}});
        if (!id.ok()) { ++failures; continue; }
        if (!store_->AppendEvent(shared_people[static_cast<std::size_t>(i) % 4], Event{"tick", i, {}, {}}).ok()) ++failures;
        auto r = store_->Resolve({"email", email});
        if (!r.ok() || *r != *id) ++failures;
        auto p = store_->GetProfile(*id);
        if (!p.ok() || p->at("i").as_int64() != i) ++failures;
        auto it = store_->ScanEvents(shared_people[static_cast<std::size_t>(t) % 4], {});
        for (; it->Valid(); it->Next()) {}
        if (!it->status().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->people, static_cast<std::uint64_t>(4 + kThreads * kPerThread));
  EXPECT_EQ(stats->events, static_cast<std::uint64_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace shredkv
