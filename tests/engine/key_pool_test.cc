// The key pool (issue 21, "durable writes at one flush"; keys/key_store.h):
// a new person's key is committed in `keys` ahead of use, so a durable
// create is one `data` commit; the claim it records is adopted by a later
// `keys` commit. These tests hold the counts of commits, what a crash at
// every step leaves, and that rotation and erasure reach pooled keys.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "engine/store_impl.h"
#include "test_util.h"
#include "util/coding.h"

namespace shredkv {
namespace {

engine::StoreImpl& Impl(Store& s) { return *dynamic_cast<engine::StoreImpl*>(&s); }

std::uint64_t LastTxn(storage::Environment& env) {
  auto info = env.Info();
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  return info.ok() ? info->last_txn_id : 0;
}

std::uint64_t ClaimRows(Store& s) {
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

}  // namespace
}  // namespace shredkv
