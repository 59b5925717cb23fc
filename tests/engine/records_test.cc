#include <gtest/gtest.h>

#include "test_util.h"

namespace shredkv {
namespace {

class RecordsTest : public test::StoreTest {
 protected:
  std::vector<Record> Scan(const PersonId& id, const std::string& coll, const std::string& prefix = "") {
    std::vector<Record> out;
    auto it = store_->ScanRecords(id, coll, prefix);
    for (; it->Valid(); it->Next()) out.push_back(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }
};

TEST_F(RecordsTest, PutGetOverwriteDelete) {
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Put(id, "orders", "42", "two books"));
  EXPECT_EQ(*store_->Get(id, "orders", "42"), "two books");
  SKV_ASSERT_OK(store_->Put(id, "orders", "42", "three books"));
  EXPECT_EQ(*store_->Get(id, "orders", "42"), "three books");
  SKV_ASSERT_OK(store_->Delete(id, "orders", "42"));
  EXPECT_TRUE(store_->Get(id, "orders", "42").status().IsNotFound());
  SKV_EXPECT_OK(store_->Delete(id, "orders", "42"));  // absent: OK
}

TEST_F(RecordsTest, CollectionsAndPeopleAreSeparate) {
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  SKV_ASSERT_OK(store_->Put(a, "orders", "1", "a-order"));
  SKV_ASSERT_OK(store_->Put(a, "notes", "1", "a-note"));
  SKV_ASSERT_OK(store_->Put(b, "orders", "1", "b-order"));
  EXPECT_EQ(*store_->Get(a, "orders", "1"), "a-order");
  EXPECT_EQ(*store_->Get(a, "notes", "1"), "a-note");
  EXPECT_EQ(*store_->Get(b, "orders", "1"), "b-order");
  EXPECT_TRUE(store_->Get(b, "notes", "1").status().IsNotFound());
}

TEST_F(RecordsTest, PrefixScanIsInKeyOrderAcrossBatches) {
  options_.iterator_batch_size = 2;
  Reopen();
  PersonId id = MakePerson("ann@x.org");
  for (const char* k : {"2024-03", "2023-12", "2024-01", "2024-02", "2025-01"}) {
    SKV_ASSERT_OK(store_->Put(id, "orders", k, std::string("v") + k));
  }
  SKV_ASSERT_OK(store_->Put(id, "notes", "2024-xx", "not an order"));
  auto r2024 = Scan(id, "orders", "2024-");
  ASSERT_EQ(r2024.size(), 3u);
  EXPECT_EQ(r2024[0].key, "2024-01");
  EXPECT_EQ(r2024[1].key, "2024-02");
  EXPECT_EQ(r2024[2].key, "2024-03");
  EXPECT_EQ(r2024[2].value, "v2024-03");
  EXPECT_EQ(r2024[2].collection, "orders");
  EXPECT_EQ(Scan(id, "orders").size(), 5u);
  EXPECT_EQ(Scan(id, "orders", "1999").size(), 0u);
}

TEST_F(RecordsTest, BinaryKeysAndValuesRoundTrip) {
  PersonId id = MakePerson("ann@x.org");
  const std::string key("\0k\xff", 3), value("\0\x01\x02\xfe", 4);
  SKV_ASSERT_OK(store_->Put(id, "bin", key, value));
  EXPECT_EQ(*store_->Get(id, "bin", key), value);
}

TEST_F(RecordsTest, LimitsAreEnforced) {
  PersonId id = MakePerson("ann@x.org");
  EXPECT_TRUE(store_->Put(id, "", "k", "v").IsInvalidArgument());
  EXPECT_TRUE(store_->Put(id, "c", "", "v").IsInvalidArgument());
  EXPECT_TRUE(store_->Put(id, "c", std::string(1025, 'k'), "v").IsInvalidArgument());
  EXPECT_TRUE(store_->Put(id, "c", "k", std::string((16u << 20) + 1, 'v')).IsInvalidArgument());
  EXPECT_TRUE(store_->Put(PersonId(PersonId::Bytes{4}), "c", "k", "v").IsNotFound());
}

}  // namespace
}  // namespace shredkv
