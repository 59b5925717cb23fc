#include <gtest/gtest.h>

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

TEST_F(WriteBatchTest, EmptyBatchIsOk) { SKV_EXPECT_OK(store_->Write(WriteBatch())); }

}  // namespace
}  // namespace shredkv
