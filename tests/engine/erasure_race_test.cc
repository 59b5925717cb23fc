// Erase racing with readers and writers: once Erase has returned, no read
// that starts succeeds (the DEK cache cannot resurrect a shredded key), and
// an ingest running alongside loses nothing of anyone else.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace shredkv {
namespace {

class ErasureRaceTest : public test::StoreTest {};

TEST_F(ErasureRaceTest, NoReadSucceedsAfterEraseReturns) {
  for (int round = 0; round < 5; ++round) {
    PersonId victim = MakePerson("victim" + std::to_string(round) + "@x.org", {{"name", "V"}});
    SKV_ASSERT_OK(store_->AppendEvent(victim, Event{"e", 1, {}, {}}));
    SKV_ASSERT_OK(store_->Put(victim, "c", "k", "v"));
    std::atomic<bool> erase_returned{false};
    std::atomic<bool> stop{false};
    std::atomic<int> late_successes{0};
    std::atomic<int> early_successes{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
      readers.emplace_back([&, t] {
        while (!stop.load()) {
          const bool after = erase_returned.load();
          bool ok = false;
          switch (t % 4) {
            case 0: ok = store_->GetProfile(victim).ok(); break;
            case 1: ok = store_->Get(victim, "c", "k").ok(); break;
            case 2: {
              auto it = store_->ScanEvents(victim, {});
              ok = it->Valid();
              break;
            }
            default: ok = store_->GetPerson(victim).ok(); break;
          }
          if (ok) (after ? late_successes : early_successes)++;
        }
      });
    }
    while (early_successes.load() < 20) std::this_thread::yield();
    auto r = store_->Erase(victim);
    erase_returned.store(true);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    stop.store(true);
    for (auto& th : readers) th.join();
    EXPECT_EQ(late_successes.load(), 0) << "round " << round;
    EXPECT_GT(early_successes.load(), 0);
  }
}

TEST_F(ErasureRaceTest, EraseDuringBatchIngestLosesNothingOfOthers) {
  std::vector<PersonId> people;
  for (int i = 0; i < 20; ++i) people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
  std::atomic<bool> stop{false};
  std::atomic<int> batches_ok{0};
  std::atomic<int> unexpected{0};
  std::thread ingest([&] {
    for (int b = 0; b < 200 && !stop.load(); ++b) {
      WriteBatch batch;
      for (std::size_t i = 1; i < people.size(); ++i) batch.AppendEvent(people[i], Event{"tick", b, {}, {}});
      Status s = store_->Write(batch);
      if (s.ok()) {
        ++batches_ok;
      } else {
        ++unexpected;
      }
      // Writes to the victim fail once it is erased, and only then.
      Status v = store_->AppendEvent(people[0], Event{"tick", b, {}, {}});
      if (!v.ok() && !v.IsErased()) ++unexpected;
    }
  });
  while (batches_ok.load() < 20) std::this_thread::yield();
  ASSERT_TRUE(store_->Erase(people[0]).ok());
  ingest.join();
  EXPECT_EQ(unexpected.load(), 0);
  for (std::size_t i = 1; i < people.size(); ++i) {
    int n = 0;
    for (auto it = store_->ScanEvents(people[i], {}); it->Valid(); it->Next()) ++n;
    EXPECT_EQ(n, batches_ok.load());
  }
  EXPECT_TRUE(store_->GetProfile(people[0]).status().IsErased());
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

TEST_F(ErasureRaceTest, ConcurrentErasuresAreGroupCommittedAndIsolated) {
  options_.durability = Durability::kFullSync;
  Reopen();
  constexpr int kThreads = 16;
  std::vector<PersonId> people;
  for (int i = 0; i < kThreads * 4; ++i) people.push_back(MakePerson("g" + std::to_string(i) + "@x.org", {{"i", i}}));
  // Every fourth erasure targets someone another thread erases too: exactly
  // one of the two may succeed, and the failure must not sink the group.
  std::atomic<int> ok{0}, already{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        const std::size_t target = static_cast<std::size_t>(i == 3 ? (t % 2 == 0 ? t : t - 1) * 4 : t * 4 + i);
        auto r = store_->Erase(people[target], EraseOptions{"g-" + std::to_string(t) + "-" + std::to_string(i), false, {}});
        if (r.ok()) {
          ++ok;
        } else if (r.status().IsErased()) {
          ++already;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load() + already.load(), kThreads * 4);
  EXPECT_EQ(store_->Stats()->erased, static_cast<std::uint64_t>(ok.load()));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(store_->GetProfile(people[static_cast<std::size_t>(t * 4 + i)]).status().IsErased());
    }
    auto receipt = store_->GetErasure("g-" + std::to_string(t) + "-0");
    ASSERT_TRUE(receipt.ok());
    EXPECT_EQ(receipt->audit_hash.size(), 64u);
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(store_->GetProfile(people[static_cast<std::size_t>(t * 4 + 3)]).ok());
  }
  EXPECT_TRUE(store_->VerifyAuditLog()->intact);
}

}  // namespace
}  // namespace shredkv
