// The key pool (issue 21, "durable writes at one flush"; keys/key_store.h):
// a new person's key is committed in `keys` ahead of use, so a durable
// create is one `data` commit; the claim it records is adopted by a later
// `keys` commit. These tests hold the counts of commits, what a crash at
// every step leaves, and that rotation and erasure reach pooled keys.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <set>
#include <string>
#include <vector>

#include "engine/key_pool_inspect.h"
#include "engine/store_impl.h"
#include "test_util.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv {
namespace {

using test::Impl;

std::uint64_t LastTxn(storage::Environment& env) {
  auto info = env.Info();
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  return info.ok() ? info->last_txn_id : 0;
}

using test::ClaimRows;

class KeyPoolTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.durability = Durability::kFullSync;
    test::StoreTest::SetUp();
  }
};

// The point of the pool: after the first create (which refills it), a
// create commits `data` once and `keys` not at all.
TEST_F(KeyPoolTest, ACreateCommitsDataOnceAndKeysNotAtAll) {
  MakePerson("first@x.org", {{"i", 0}});
  keys::KeyStore& ks = Impl(*store_).key_store();
  const std::uint64_t keys_before = LastTxn(ks.environment());
  const std::uint64_t data_before = LastTxn(*Impl(*store_).context().data);
  std::vector<PersonId> people;
  for (int i = 1; i <= 20; ++i) people.push_back(MakePerson("p" + std::to_string(i) + "@x.org", {{"i", i}}));
  EXPECT_EQ(LastTxn(ks.environment()), keys_before) << "a create committed `keys`";
  EXPECT_EQ(LastTxn(*Impl(*store_).context().data), data_before + 20) << "a create is one `data` commit";
  for (const PersonId& p : people) EXPECT_TRUE(ks.ClaimForTesting(p).has_value());
  EXPECT_EQ(ClaimRows(*store_), 21u);
  // Their keys are found through the claims, also with the cache empty.
  ks.cache().Clear();
  for (int i = 1; i <= 20; ++i) {
    EXPECT_EQ(store_->GetProfile(people[static_cast<std::size_t>(i - 1)])->at("i").as_int64(), i);
  }
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// A refill adopts every claim in its own commit; the claims leave `data`
// with the next write; pool indexes are never reused.
TEST_F(KeyPoolTest, ARefillAdoptsEveryClaimAndTheNextWriteDeletesTheirRows) {
  keys::KeyStore& ks = Impl(*store_).key_store();
  WriteBatch first;
  std::vector<PersonId> early;
  for (int i = 0; i < 10; ++i) early.push_back(first.CreatePerson({{"email", "e" + std::to_string(i) + "@x.org"}}));
  SKV_ASSERT_OK(store_->Write(first));
  std::set<std::uint64_t> indexes;
  for (const PersonId& p : early) indexes.insert(ks.ClaimForTesting(p).value());
  // More people than the pool has left: one refill, which adopts the ten.
  WriteBatch second;
  std::vector<PersonId> late;
  for (int i = 0; i < 300; ++i) late.push_back(second.CreatePerson({{"email", "l" + std::to_string(i) + "@x.org"}}));
  SKV_ASSERT_OK(store_->Write(second));
  for (const PersonId& p : early) EXPECT_FALSE(ks.ClaimForTesting(p).has_value());
  auto deks = ks.CountDeks();
  ASSERT_TRUE(deks.ok());
  EXPECT_EQ(*deks, 10u) << "the adopted keys are in `deks`";
  for (const PersonId& p : late) EXPECT_TRUE(indexes.insert(ks.ClaimForTesting(p).value()).second) << "index reused";
  EXPECT_EQ(ClaimRows(*store_), 300u) << "the adopted claims went with the second write";
  ks.cache().Clear();
  EXPECT_TRUE(store_->GetPerson(early[3]).ok());
  EXPECT_TRUE(store_->GetPerson(late[299]).ok());
  // Close adopts the rest: a closed store keeps every key in `deks`.
  Reopen();
  deks = Impl(*store_).key_store().CountDeks();
  ASSERT_TRUE(deks.ok());
  EXPECT_EQ(*deks, 310u);
  EXPECT_EQ(ClaimRows(*store_), 0u);
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// Erasing a person whose key is still a claimed pool row deletes that row
// in the erase commit; the person stays erased across a reopen and the
// claim's row goes with purge.
TEST_F(KeyPoolTest, ErasingAClaimedKeyDeletesItsPoolRow) {
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  const PersonId gone = MakePerson("gone@x.org", {{"name", "G"}});
  keys::KeyStore& ks = Impl(*store_).key_store();
  const std::uint64_t index = ks.ClaimForTesting(gone).value();
  std::string pool_key;
  util::PutFixed64BE(&pool_key, index);
  ASSERT_TRUE(ks.RawRowForTesting("pool", pool_key).ok());
  ASSERT_TRUE(store_->Erase(gone).ok());
  EXPECT_TRUE(ks.RawRowForTesting("pool", pool_key).status().IsNotFound());
  EXPECT_FALSE(ks.ClaimForTesting(gone).has_value());
  EXPECT_TRUE(store_->GetProfile(gone).status().IsErased());
  ASSERT_TRUE(store_->Purge(100000).ok());
  Reopen();
  EXPECT_TRUE(store_->GetProfile(gone).status().IsErased());
  EXPECT_EQ(store_->GetProfile(kept)->at("name").as_string(), "K");
  EXPECT_EQ(ClaimRows(*store_), 0u);
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// Free pool keys outlive a rotation: they are re-wrapped with the epochs,
// so keys handed out after it (and after a reopen) still open.
TEST_F(KeyPoolTest, FreePoolKeysAreRewrappedByARotation) {
  const PersonId before = MakePerson("before@x.org", {{"name", "B"}});
  ASSERT_GT(Impl(*store_).key_store().free_pooled_keys(), 0u);
  auto r = store_->RotateEpoch();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rewrapped_keys, 1u) << "the claimed key was adopted and re-wrapped";
  EXPECT_EQ(r->destroyed_epochs, 1u);
  const PersonId after = MakePerson("after@x.org", {{"name", "A"}});  // a key from before the rotation
  Reopen();
  EXPECT_EQ(store_->GetProfile(before)->at("name").as_string(), "B");
  EXPECT_EQ(store_->GetProfile(after)->at("name").as_string(), "A");
  auto epoch = Impl(*store_).key_store().DekEpoch(after);
  ASSERT_TRUE(epoch.ok());
  EXPECT_EQ(*epoch, 2u);
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// A crash after a create's `data` commit, before any adoption: the people
// are there after the reopen (their keys found through the claims), and
// erasing one of them works as for anyone.
TEST(KeyPoolCrashTest, ClaimsCommittedBeforeACrashAreFoundAtTheNextOpen) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    for (int i = 0; i < 5; ++i) {
      if (!(*store)->CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}}, {{"i", i}}).ok()) _exit(5);
    }
    _exit(0);  // no Close: nothing adopts the claims
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(ClaimRows(**store), 5u);
  std::vector<PersonId> people;
  for (int i = 0; i < 5; ++i) {
    auto p = (*store)->Resolve({"email", "p" + std::to_string(i) + "@x.org"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_TRUE(Impl(**store).key_store().ClaimForTesting(*p).has_value());
    EXPECT_EQ((*store)->GetProfile(*p)->at("i").as_int64(), i);
    people.push_back(*p);
  }
  EXPECT_TRUE(test::VerifiesClean(**store));
  ASSERT_TRUE((*store)->Erase(people[2]).ok());
  EXPECT_EQ(ClaimRows(**store), 5u) << "the erase commit is in `keys` only";
  ASSERT_TRUE((*store)->Purge(100000).ok());
  EXPECT_EQ(ClaimRows(**store), 4u) << "purge deletes the erased person's claim";
  SKV_ASSERT_OK((*store)->Close());  // adopts the other four
  store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(ClaimRows(**store), 0u);
  EXPECT_TRUE((*store)->GetProfile(people[2]).status().IsErased());
  EXPECT_EQ((*store)->GetProfile(people[4])->at("i").as_int64(), 4);
  EXPECT_TRUE(test::VerifiesClean(**store));
}

// A crash between a pool refill and the `data` commit that would have
// claimed keys from it (the refill's own test point, and just before the
// data commit): nobody is half-created, no key is an orphan, and the keys
// never claimed are handed out again.
class KeyPoolCutShortTest : public ::testing::TestWithParam<const char*> {};

TEST_P(KeyPoolCutShortTest, UnclaimedPoolKeysAreNeitherPeopleNorOrphans) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  PersonId kept;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok());
    kept = *(*store)->CreatePerson({{"email", "kept@x.org"}}, {{"name", "K"}});
  }
  ASSERT_TRUE(test::RunChildKilledAt(GetParam(), 1, [&] {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    WriteBatch b;  // more than the pool holds: a refill first
    for (int i = 0; i < 400; ++i) b.CreatePerson({{"email", "lost" + std::to_string(i) + "@x.org"}});
    (void)(*store)->Write(b);
  }));
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  keys::KeyStore& ks = Impl(**store).key_store();
  const std::size_t free_keys = ks.free_pooled_keys();
  EXPECT_GE(free_keys, 255u);
  auto report = (*store)->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_EQ(report->orphan_keys, 0u);
  EXPECT_EQ(report->people, 1u);
  EXPECT_TRUE((*store)->Resolve({"email", "lost0@x.org"}).status().IsNotFound());
  EXPECT_EQ(ClaimRows(**store), 0u);
  // The next creation takes a key left by the cut-short write.
  const std::uint64_t keys_txn = LastTxn(ks.environment());
  auto again = (*store)->CreatePerson({{"email", "lost0@x.org"}}, {{"name", "L"}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(LastTxn(ks.environment()), keys_txn) << "no refill needed";
  EXPECT_EQ(ks.free_pooled_keys(), free_keys - 1);
  SKV_ASSERT_OK((*store)->Close());
  store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->GetProfile(*again)->at("name").as_string(), "L");
  EXPECT_EQ((*store)->GetProfile(kept)->at("name").as_string(), "K");
}

INSTANTIATE_TEST_SUITE_P(Points, KeyPoolCutShortTest,
                         ::testing::Values("pool.after_refill", "create.before_data_commit"));

// Review of the pool: with `Durability::kNoSync` the `keys` environment is
// MDB_NOMETASYNC, so a refill's adoption commit is durable only at its
// sync. A process killed between the two left an adoption the page cache
// showed and the disk did not have; the next open took the claim for
// stale and deleted it from `data`, and a power loss after that lost the
// person's key (shown by the review by putting back the `keys` meta pages
// as last synced). The open now flushes `keys` before it deletes a stale
// claim: the child is killed before the adoption's sync, and the reopen
// must sync before the deletion, then read the person.
std::vector<std::string> g_points;
void RecordPoint(std::string_view name) {
  if (name == "keys.synced" || name == "pool.before_stale_claims_delete") g_points.emplace_back(name);
}

TEST(KeyPoolCrashTest, AStaleClaimIsDeletedOnlyOnceItsAdoptionIsOnDisk) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kNoSync;
  const std::string id_file = dir.Sub("x.id");
  ASSERT_TRUE(test::RunChildKilledAt("pool.before_refill_sync", 2, [&] {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    auto x = (*store)->CreatePerson({{"email", "x@x.org"}}, {{"name", "X"}});  // refill 1; X claims
    if (!x.ok()) _exit(5);
    test::WriteFile(id_file, std::string(x->view()));
    WriteBatch b;  // refill 2 adopts X's key; killed before its sync
    for (int i = 0; i < 300; ++i) b.CreatePerson({{"email", "p" + std::to_string(i) + "@x.org"}});
    (void)(*store)->Write(b);
  }));
  const std::string raw_id = test::ReadFile(id_file);
  ASSERT_EQ(raw_id.size(), PersonId::kSize);
  PersonId::Bytes bytes;
  std::memcpy(bytes.data(), raw_id.data(), bytes.size());
  const PersonId x(bytes);
  g_points.clear();
  util::SetTestPointHook(&RecordPoint);
  auto store = Store::Open(o);
  util::SetTestPointHook(nullptr);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_EQ(g_points.size(), 2u) << "the open found no stale claim to delete";
  EXPECT_EQ(g_points[0], "keys.synced") << "a claim was deleted before its adoption was synced";
  EXPECT_EQ(g_points[1], "pool.before_stale_claims_delete");
  EXPECT_EQ(ClaimRows(**store), 0u);
  EXPECT_EQ((*store)->GetProfile(x)->at("name").as_string(), "X");
  EXPECT_TRUE(Impl(**store).key_store().ClaimForTesting(x) == std::nullopt);
  EXPECT_TRUE(test::VerifiesClean(**store));
}

// Review of the pool: writers creating people in groups (some batches
// failing), an eraser, rotations and readers of live people at once. A
// reader once read a pool row just before a rotation re-wrapped it and
// destroyed its epoch ("names unknown epoch 1") — 2 runs in 12 of this
// shape — and a reader racing an adoption could read neither row. Every
// read of a live person must succeed; no key is shared; the store reopens
// whole.
TEST(KeyPoolConcurrencyTest, CreatesErasuresRotationsAndReadersTogether) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.dek_cache_capacity = 8;  // readers go to the rows, not the cache
  auto opened = Store::Open(o);
  ASSERT_TRUE(opened.ok());
  Store& s = **opened;
  std::mutex mu;
  std::vector<PersonId> live, erased;
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0}, unexpected{0};
  const int rounds = 60 * test::StressFactor();
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < rounds; ++i) {
        WriteBatch b;
        std::vector<PersonId> ids;
        for (int k = 0; k < 1 + (i % 7); ++k) {
          ids.push_back(b.CreatePerson({{"email", "w" + std::to_string(w) + "-" + std::to_string(i) + "-" +
                                                      std::to_string(k) + "@x.org"}},
                                       {{"n", i}}));
        }
        if (i % 5 == 0) b.CreatePerson({{"email", "dup@x.org"}});  // fails after the first: keys go back
        Status st = s.Write(b);
        if (st.ok()) {
          std::lock_guard l(mu);
          live.insert(live.end(), ids.begin(), ids.end());
        } else if (!st.IsAlreadyExists()) {
          ++unexpected;
        }
      }
    });
  }
  workers.emplace_back([&] {  // the eraser
    for (int i = 0; i < rounds / 3; ++i) {
      PersonId p;
      {
        std::lock_guard l(mu);
        if (live.size() < 10) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          continue;
        }
        p = live.back();
        live.pop_back();
        erased.push_back(p);
      }
      if (!s.Erase(p).ok()) ++unexpected;
    }
  });
  workers.emplace_back([&] {  // rotations
    for (int i = 0; i < 3; ++i) {
      if (!s.RotateEpoch().ok()) ++unexpected;
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        PersonId p;
        {
          std::lock_guard l(mu);
          if (live.size() < 20) continue;
          p = live[live.size() / 2];
        }
        auto g = s.GetProfile(p);
        if (!g.ok() && !g.status().IsErased()) {
          ++read_errors;
          ADD_FAILURE() << g.status().ToString();
        }
      }
    });
  }
  for (std::thread& t : workers) t.join();
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(read_errors.load(), 0);
  std::set<std::string> keys;
  for (const PersonId& p : live) {
    auto dek = Impl(s).key_store().GetDek(p);
    ASSERT_TRUE(dek.ok()) << dek.status().ToString();
    EXPECT_TRUE(keys.insert(std::string((*dek)->view())).second) << "a key shared by two people";
  }
  SKV_ASSERT_OK(s.Close());
  opened = Store::Open(o);
  ASSERT_TRUE(opened.ok());
  for (const PersonId& p : live) ASSERT_TRUE((*opened)->GetProfile(p).ok());
  for (const PersonId& p : erased) EXPECT_TRUE((*opened)->GetProfile(p).status().IsErased());
  EXPECT_EQ(ClaimRows(**opened), 0u);
  EXPECT_TRUE(test::VerifiesClean(**opened));
}

// A restored copy drops the free pool keys a backup brought (backups made
// before they left them out): DropFreePool deletes them in one commit.
TEST_F(KeyPoolTest, DroppingTheFreePoolLeavesClaimedKeysAlone) {
  const PersonId kept = MakePerson("kept@x.org", {{"name", "K"}});
  keys::KeyStore& ks = Impl(*store_).key_store();
  const std::size_t free_keys = ks.free_pooled_keys();
  ASSERT_GT(free_keys, 0u);
  auto dropped = ks.DropFreePool();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(*dropped, free_keys);
  EXPECT_EQ(ks.free_pooled_keys(), 0u);
  Reopen();
  EXPECT_EQ(Impl(*store_).key_store().free_pooled_keys(), 0u) << "a dropped pool row came back";
  EXPECT_EQ(store_->GetProfile(kept)->at("name").as_string(), "K");
  const PersonId next = MakePerson("next@x.org", {{"name", "N"}});  // a refill
  EXPECT_EQ(store_->GetProfile(next)->at("name").as_string(), "N");
}

}  // namespace
}  // namespace shredkv
