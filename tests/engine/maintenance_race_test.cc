// The background maintenance thread (purge, sweep, rotation) racing user
// calls, and exports racing erasure (issue 23). Each runs under
// ThreadSanitizer in scripts/test.sh; SHREDKV_STRESS=1 multiplies threads
// and rounds (test::StressFactor) for runs outside CI.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace shredkv {
namespace {

constexpr std::int64_t kDay = 24ll * 3600 * 1000;

class MaintenanceRaceTest : public test::StoreTest {};

// Writers, readers and an eraser run while the maintenance thread purges
// erased people, sweeps expired events and rotates the epoch every few
// erasures. Nothing fails that should not, no erased person is readable
// after Erase returned, and the store verifies clean afterwards.
TEST_F(MaintenanceRaceTest, TheMaintenanceThreadRacesWritersReadersAndErasure) {
  const int stress = test::StressFactor();
  options_.background_maintenance_ms = 1;
  options_.rotate_after_erasures = 3;
  options_.rotation_batch_size = 8;
  options_.purge_budget_rows = 50;
  options_.sweep_budget_rows = 50;
  options_.retention = RetentionRules{};
  options_.retention->events["old"] = kDay;  // every "old" event is long expired
  Reopen();
  const int kStable = 30;
  const int kVictims = 10 * stress;
  std::vector<PersonId> stable, victims;
  for (int i = 0; i < kStable; ++i) stable.push_back(MakePerson("s" + std::to_string(i) + "@x.org", {{"i", i}}));
  for (int i = 0; i < kVictims; ++i) {
    victims.push_back(MakePerson("v" + std::to_string(i) + "@x.org", {{"i", i}}));
    WriteBatch b;
    for (int e = 0; e < 40; ++e) b.AppendEvent(victims.back(), Event{"old", e, {}, {}});
    SKV_ASSERT_OK(store_->Write(b));
  }
  std::vector<std::atomic<bool>> erased(static_cast<std::size_t>(kVictims));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, late_reads{0}, appended{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * stress; ++t) {
    threads.emplace_back([&, t] {  // readers
      for (int round = 0; !stop.load(); ++round) {
        const auto i = static_cast<std::size_t>((round + t) % kStable);
        auto p = store_->GetProfile(stable[i]);
        if (!p.ok() || p->at("i").as_int64() != static_cast<std::int64_t>(i)) ++failures;
        const auto v = static_cast<std::size_t>(round % kVictims);
        const bool erased_before = erased[v].load();
        auto vp = store_->GetProfile(victims[v]);
        if (vp.ok() && erased_before) ++late_reads;
        if (!vp.ok() && !vp.status().IsErased()) ++failures;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }
  std::thread writer([&] {
    const std::int64_t now = test::NowMs();
    for (int i = 0; i < 150 * stress; ++i) {
      Status s = store_->AppendEvent(stable[static_cast<std::size_t>(i % kStable)], Event{"new", now + i, {}, {}});
      s.ok() ? ++appended : ++failures;
    }
  });
  for (int v = 0; v < kVictims; ++v) {
    auto r = store_->Erase(victims[static_cast<std::size_t>(v)]);
    if (!r.ok()) ++failures;
    erased[static_cast<std::size_t>(v)].store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  writer.join();
  stop.store(true);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(late_reads.load(), 0) << "a victim was readable after its Erase returned";
  SKV_ASSERT_OK(store_->Close());  // stops the maintenance thread
  options_.background_maintenance_ms = 0;
  // One pass finishes whatever purge the thread left: under TSan with a
  // parallel ctest the thread may not have got through the victims' rows
  // before Close, and a 50-row budget left some pending (seen once).
  options_.purge_budget_rows = 1'000'000;
  Reopen();
  SKV_ASSERT_OK(store_->RunMaintenance());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending_purge, 0u);
  EXPECT_EQ(stats->events, static_cast<std::uint64_t>(appended.load()));
  EXPECT_GE(stats->key_epoch, 2u);  // the thread rotated at least once
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// Exports race the person's erasure: an export that ends OK holds every
// event, one cut short ends Erased (never OK with part of the data), and
// no export that starts after Erase returned yields anything.
TEST_F(MaintenanceRaceTest, AnExportRacingErasureIsWholeOrEndsErased) {
  const int stress = test::StressFactor();
  options_.iterator_batch_size = 16;  // many reads per export: room for the erasure to land between
  Reopen();
  constexpr int kEvents = 400;
  for (int round = 0; round < 3 * stress; ++round) {
    PersonId victim = MakePerson("x" + std::to_string(round) + "@x.org", {{"name", "X"}});
    WriteBatch b;
    for (int e = 0; e < kEvents; ++e) b.AppendEvent(victim, Event{"e", e, {{"n", e}}, {}});
    SKV_ASSERT_OK(store_->Write(b));
    std::atomic<bool> erase_returned{false}, stop{false};
    std::atomic<int> whole{0}, cut{0}, partial_ok{0}, late_items{0}, other{0}, ended_after{0};
    std::vector<std::thread> exporters;
    for (int t = 0; t < 2 * stress; ++t) {
      exporters.emplace_back([&] {
        while (!stop.load()) {
          const bool after = erase_returned.load();
          int events = 0, items = 0;
          auto it = store_->Export(victim);
          for (; it->Valid(); it->Next()) {
            ++items;
            if (it->value().kind == ExportItem::Kind::kEvent) ++events;
          }
          if (after && items > 0) ++late_items;
          if (it->status().ok()) {
            events == kEvents ? ++whole : ++partial_ok;
          } else if (it->status().IsErased()) {
            ++cut;
          } else {
            ++other;
          }
          if (after) ++ended_after;
        }
      });
    }
    while (whole.load() < 2) std::this_thread::yield();
    auto r = store_->Erase(victim);
    erase_returned.store(true);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    // Stopped once an export begun after Erase returned has ended: a 20 ms
    // sleep here let the exporters of a loaded machine start none, and
    // `cut` stayed 0 with nothing wrong.
    for (int i = 0; i < 60'000 && ended_after.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    stop.store(true);
    for (auto& th : exporters) th.join();
    EXPECT_EQ(partial_ok.load(), 0) << "an export ended OK without every event";
    EXPECT_EQ(late_items.load(), 0) << "an export that began after Erase returned yielded data";
    EXPECT_EQ(other.load(), 0);
    EXPECT_GT(cut.load(), 0);  // the exports after the erasure end Erased
  }
}

}  // namespace
}  // namespace shredkv
