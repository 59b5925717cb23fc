#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_util.h"

namespace shredkv {
namespace {

class WriteBatchTest : public test::StoreTest {};

TEST_F(WriteBatchTest, ManyOperationsForManyPeopleCommitTogether) {
  WriteBatch batch;
  PersonId a = batch.CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
  PersonId b = batch.CreatePerson({{"email", "b@x.org"}});
  batch.AppendEvent(a, Event{"signup", 1, {}, {}});
  batch.AppendEvent(b, Event{"signup", 2, {}, {}});
  batch.Put(a, "orders", "1", "x");
  batch.PatchProfile(b, ProfilePatch{{{"name", "B"}}, {}});
  batch.LinkIdentifier(b, {"phone", "+1 555 0100"});
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(store_->GetProfile(a)->at("name").as_string(), "A");
  EXPECT_EQ(store_->GetProfile(b)->at("name").as_string(), "B");
  EXPECT_EQ(*store_->Resolve({"phone", "+15550100"}), b);
  EXPECT_EQ(*store_->Get(a, "orders", "1"), "x");
  EXPECT_EQ(store_->Stats()->events, 2u);
  EXPECT_EQ(store_->Stats()->analytics_rows, 2u);
}

TEST_F(WriteBatchTest, AFailingOperationCommitsNothing) {
  PersonId existing = MakePerson("taken@x.org");
  WriteBatch batch;
  PersonId a = batch.CreatePerson({{"email", "new@x.org"}}, {{"name", "New"}});
  batch.AppendEvent(existing, Event{"e", 1, {}, {}});
  batch.CreatePerson({{"email", "taken@x.org"}});  // conflicts
  Status s = store_->Write(batch);
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
  EXPECT_NE(s.message().find("operation #2"), std::string::npos);
  EXPECT_TRUE(store_->Resolve({"email", "new@x.org"}).status().IsNotFound());
  EXPECT_TRUE(store_->GetProfile(a).status().IsNotFound());
  auto stats = store_->Stats();
  EXPECT_EQ(stats->people, 1u);
  EXPECT_EQ(stats->events, 0u);
  EXPECT_EQ(stats->analytics_rows, 0u);
}

TEST_F(WriteBatchTest, IdentifierClaimedTwiceInOneBatchConflicts) {
  WriteBatch batch;
  batch.CreatePerson({{"email", "same@x.org"}});
  batch.CreatePerson({{"email", "SAME@x.org"}});
  EXPECT_TRUE(store_->Write(batch).IsAlreadyExists());
  EXPECT_EQ(store_->Stats()->people, 0u);
}

TEST_F(WriteBatchTest, RetryingAFailedCreationSucceeds) {
  MakePerson("taken@x.org");
  WriteBatch batch;
  PersonId a = batch.CreatePerson({{"email", "a@x.org"}});
  batch.CreatePerson({{"email", "taken@x.org"}});
  EXPECT_FALSE(store_->Write(batch).ok());
  WriteBatch retry;
  PersonId a2 = retry.CreatePerson({{"email", "a@x.org"}});
  SKV_ASSERT_OK(store_->Write(retry));
  EXPECT_EQ(*store_->Resolve({"email", "a@x.org"}), a2);
  EXPECT_NE(a, a2);
}

// WriteBatch::Append (stop 41: the CLI's ingest groups lines by shard).
TEST_F(WriteBatchTest, AppendedBatchCommitsAsIfItsOperationsWereQueuedHere) {
  WriteBatch first;
  PersonId a = first.CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
  first.SetProgress("feed:1", 5);
  WriteBatch second;
  PersonId b = second.CreatePerson({{"email", "b@x.org"}});
  second.AppendEvent(b, Event{"signup", 2, {}, {}});
  second.SetProgress("feed:1", 9);
  first.Append(second);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(first.progress().size(), 2u);
  EXPECT_EQ(first.progress().back().second, 9u);
  EXPECT_EQ(second.size(), 2u);  // the source is left as it was
  SKV_ASSERT_OK(store_->Write(first));
  EXPECT_EQ(*store_->Resolve({"email", "a@x.org"}), a);
  EXPECT_EQ(*store_->Resolve({"email", "b@x.org"}), b);  // the ID second's CreatePerson returned
  EXPECT_EQ(store_->Stats()->events, 1u);
  EXPECT_EQ(*store_->ReadProgress("feed:1"), 9u);  // positions after this batch's: the last one wins
}

TEST_F(WriteBatchTest, AppendingABatchToItselfQueuesItsOperationsTwice) {
  PersonId p = MakePerson("p@x.org");
  WriteBatch batch;
  batch.AppendEvent(p, Event{"e", 1, {}, {}});
  batch.Append(batch);
  ASSERT_EQ(batch.size(), 2u);
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(store_->Stats()->events, 2u);
}

TEST_F(WriteBatchTest, EmptyBatchIsOk) { SKV_EXPECT_OK(store_->Write(WriteBatch())); }

// WriteBatch::SetProgress: a consumer's resume point in the data's commit
// (the CLI's `ingest --resume` rests on it: outside audit 35b, F3).
TEST_F(WriteBatchTest, ProgressCommitsWithTheBatchAndOutlivesAReopen) {
  EXPECT_TRUE(store_->ReadProgress("orders").status().IsNotFound());
  WriteBatch batch;
  PersonId a = batch.CreatePerson({{"email", "a@x.org"}});
  batch.AppendEvent(a, Event{"signup", 1, {}, {}});
  batch.SetProgress("orders", 10);
  batch.SetProgress("orders", 12);  // the last of a name is kept
  batch.SetProgress("other-feed:7", 3);
  EXPECT_EQ(batch.size(), 2u);  // positions are not operations
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(*store_->ReadProgress("orders"), 12u);
  EXPECT_EQ(*store_->ReadProgress("other-feed:7"), 3u);

  WriteBatch alone;  // a position alone commits
  alone.SetProgress("orders", UINT64_MAX);
  EXPECT_FALSE(alone.empty());
  SKV_ASSERT_OK(store_->Write(alone));
  alone.Clear();
  EXPECT_TRUE(alone.empty());

  Reopen();
  EXPECT_EQ(*store_->ReadProgress("orders"), UINT64_MAX);
  store_.reset();
  Options read_only = options_;
  read_only.read_only = true;
  read_only.create_if_missing = false;
  auto opened = Store::Open(read_only);
  SKV_ASSERT_OK(opened.status());
  EXPECT_EQ(*(*opened)->ReadProgress("other-feed:7"), 3u);
  auto report = (*opened)->Verify();
  SKV_ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
}

TEST_F(WriteBatchTest, AFailedBatchCommitsNotItsProgress) {
  MakePerson("taken@x.org");
  WriteBatch first;
  first.SetProgress("orders", 5);
  SKV_ASSERT_OK(store_->Write(first));
  WriteBatch batch;
  batch.CreatePerson({{"email", "new@x.org"}});
  batch.CreatePerson({{"email", "taken@x.org"}});  // conflicts
  batch.SetProgress("orders", 9);
  EXPECT_TRUE(store_->Write(batch).IsAlreadyExists());
  EXPECT_EQ(*store_->ReadProgress("orders"), 5u);
}

TEST_F(WriteBatchTest, ProgressNamesThatCouldHoldAnIdentifierAreRefused) {
  const std::string longest(64, 'n');
  for (const std::string& bad : {std::string(), std::string(65, 'n'), std::string("a@x.org"),
                                 std::string("feed/1"), std::string("two words"), std::string("caf\xc3\xa9"),
                                 std::string("nul\0byte", 8)}) {
    WriteBatch batch;
    PersonId a = batch.CreatePerson({{"email", "a@x.org"}});
    batch.SetProgress(bad, 1);
    Status s = store_->Write(batch);
    EXPECT_TRUE(s.IsInvalidArgument()) << "'" << bad << "': " << s.ToString();
    EXPECT_TRUE(store_->GetProfile(a).status().IsNotFound()) << bad;  // nothing of the batch
    EXPECT_TRUE(store_->ReadProgress(bad).status().IsInvalidArgument()) << bad;
  }
  WriteBatch ok;
  ok.SetProgress(longest, 1);
  ok.SetProgress("A-Z.a_z:0-9", 2);
  SKV_ASSERT_OK(store_->Write(ok));
  EXPECT_EQ(*store_->ReadProgress(longest), 1u);
}

TEST_F(WriteBatchTest, ConcurrentBatchesCommitTheirOwnProgress) {
  constexpr int kThreads = 4, kBatches = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const PersonId p = *store_->CreatePerson({{"email", "w" + std::to_string(t) + "@x.org"}});
      for (int k = 1; k <= kBatches; ++k) {
        WriteBatch b;  // group commit puts several of these in one transaction
        b.AppendEvent(p, Event{"e", k, {}, {}});
        b.SetProgress("writer." + std::to_string(t), static_cast<std::uint64_t>(k));
        if (!store_->Write(b).ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(*store_->ReadProgress("writer." + std::to_string(t)), kBatches);
  EXPECT_EQ(store_->Stats()->events, static_cast<std::uint64_t>(kThreads * kBatches));
}

}  // namespace
}  // namespace shredkv
