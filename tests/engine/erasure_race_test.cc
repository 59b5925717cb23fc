// Erase racing with readers and writers: once Erase has returned, no read
// that starts succeeds (the DEK cache cannot resurrect a shredded key), and
// an ingest running alongside loses nothing of anyone else.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "test_util.h"

namespace shredkv {
namespace {

class ErasureRaceTest : public test::StoreTest {
 protected:
  // Reopens the store fully synced (erasures then group-commit) with 64
  // people g0..g63@x.org.
  std::vector<PersonId> SyncedStoreWith64People() {
    options_.durability = Durability::kFullSync;
    Reopen();
    std::vector<PersonId> people;
    for (int i = 0; i < 64; ++i) people.push_back(MakePerson("g" + std::to_string(i) + "@x.org", {{"i", i}}));
    return people;
  }
};

TEST_F(ErasureRaceTest, NoReadSucceedsAfterEraseReturns) {
  for (int round = 0; round < 5 * test::StressFactor(); ++round) {
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

// 16 threads erase 4 people each, durably, so erasures are group-committed.
// The fourth erasure of thread t names the person that thread t erased
// first (even t) or that thread t-1 erases first (odd t): two requests for
// one person, of which exactly one may succeed, wherever each lands (the
// same group or not), and the loser must not sink its group.
//
// The one unexplained failure of this test (issue 23) was the test's own
// race: it assumed request "g-<t>-0" of every thread succeeded, but an odd
// thread that runs ahead erases thread t-1's first person before thread
// t-1 does; "g-<t-1>-0" is then Erased (correctly) and has no receipt, and
// the receipt check failed. `hold_back_even_threads` forces that order.
void ConcurrentErasures(Store& store, const std::vector<PersonId>& people,
                        bool hold_back_even_threads) {
  constexpr int kThreads = 16;
  std::mutex mu;
  std::map<std::string, std::size_t> succeeded;  // request id → person index
  std::map<std::string, std::size_t> lost;       // Erased: someone else erased the person first
  std::atomic<int> other{0};
  std::atomic<int> odd_done{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      if (hold_back_even_threads && th % 2 == 0) {
        while (odd_done.load() < kThreads / 2) std::this_thread::yield();
      }
      for (int i = 0; i < 4; ++i) {
        const std::size_t target =
            static_cast<std::size_t>(i == 3 ? (th % 2 == 0 ? th : th - 1) * 4 : th * 4 + i);
        const std::string request = "g-" + std::to_string(th) + "-" + std::to_string(i);
        auto r = store.Erase(people[target], EraseOptions{request, false, {}});
        std::lock_guard lock(mu);
        if (r.ok()) {
          succeeded.emplace(request, target);
        } else if (r.status().IsErased()) {
          lost.emplace(request, target);
        } else {
          ++other;
        }
      }
      if (th % 2 == 1) ++odd_done;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(succeeded.size() + lost.size(), static_cast<std::size_t>(kThreads * 4));
  // Each of the 48 people erased exactly once.
  std::map<std::size_t, int> erasures_of;
  for (const auto& [request, target] : succeeded) ++erasures_of[target];
  EXPECT_EQ(erasures_of.size(), static_cast<std::size_t>(kThreads * 3));
  for (const auto& [target, n] : erasures_of) EXPECT_EQ(n, 1) << "person " << target;
  EXPECT_EQ(store.Stats()->erased, succeeded.size());
  for (const auto& [request, target] : succeeded) {
    auto receipt = store.GetErasure(request);
    ASSERT_TRUE(receipt.ok()) << request << ": " << receipt.status().ToString();
    EXPECT_EQ(receipt->audit_hash.size(), 64u);
    EXPECT_TRUE(store.GetProfile(people[target]).status().IsErased());
  }
  for (const auto& [request, target] : lost) {
    EXPECT_TRUE(store.GetErasure(request).status().IsNotFound()) << request;
    EXPECT_EQ(erasures_of.count(target), 1u) << request;
  }
  for (int th = 0; th < kThreads; ++th) {
    EXPECT_TRUE(store.GetProfile(people[static_cast<std::size_t>(th * 4 + 3)]).ok());
  }
  EXPECT_TRUE(store.VerifyAuditLog()->intact);
}

TEST_F(ErasureRaceTest, ConcurrentErasuresAreGroupCommittedAndIsolated) {
  const std::vector<PersonId> people = SyncedStoreWith64People();
  ConcurrentErasures(*store_, people, /*hold_back_even_threads=*/false);
}

// The order behind the one failure: every odd thread erases its neighbour's
// first person before the neighbour asks to. The neighbour's request is
// Erased and gets no receipt; the person has the odd thread's.
TEST_F(ErasureRaceTest, WhenTheSecondRequestForAPersonWinsTheFirstIsErasedWithoutAReceipt) {
  const std::vector<PersonId> people = SyncedStoreWith64People();
  ConcurrentErasures(*store_, people, /*hold_back_even_threads=*/true);
  for (int th = 0; th < 16; th += 2) {
    const std::string first = "g-" + std::to_string(th) + "-0";
    EXPECT_TRUE(store_->GetErasure(first).status().IsNotFound()) << first;
    EXPECT_TRUE(store_->GetErasure("g-" + std::to_string(th + 1) + "-3").ok());
  }
}

}  // namespace
}  // namespace shredkv
