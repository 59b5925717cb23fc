#include <gtest/gtest.h>

#include "test_util.h"

namespace shredkv {
namespace {

TEST(MapGrowthTest, OneMebibyteMapGrowsToHoldHundredMebibytesOfEvents) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.initial_map_size = 1u << 20;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto id = (*store)->CreatePerson({{"email", "big@x.org"}});
  ASSERT_TRUE(id.ok());
  const std::string blob(4096, 'p');
  constexpr int kEvents = 25600;  // 25,600 × 4 KiB = 100 MiB of properties
  constexpr int kPerBatch = 512;
  for (int done = 0; done < kEvents; done += kPerBatch) {
    WriteBatch batch;
    for (int i = done; i < done + kPerBatch; ++i) {
      batch.AppendEvent(*id, Event{"blob", i, {{"payload", Value::Bytes(blob)}}, {}});
    }
    Status s = (*store)->Write(batch);
    ASSERT_TRUE(s.ok()) << "at event " << done << ": " << s.ToString();
  }
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->events, static_cast<std::uint64_t>(kEvents));
  EXPECT_GE(stats->data_map_bytes, 100u << 20);
  EXPECT_GE(stats->data_file_bytes, 100u << 20);
  // Everything is readable back.
  int n = 0;
  auto it = (*store)->ScanEvents(*id, {});
  for (; it->Valid(); it->Next()) {
    ASSERT_EQ(it->value().properties.at("payload").as_bytes().size(), blob.size());
    ++n;
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(n, kEvents);
}

TEST(MapGrowthTest, MaxMapSizeGivesStoreFullAndKeepsEarlierData) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.initial_map_size = 1u << 20;
  o.max_map_size = 4u << 20;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto id = (*store)->CreatePerson({{"email", "full@x.org"}}, {{"name", "Full"}});
  ASSERT_TRUE(id.ok());
  Status last;
  int written = 0;
  for (int i = 0; i < 200 && last.ok(); ++i) {
    last = (*store)->AppendEvent(*id, Event{"e", i, {{"p", Value::Bytes(std::string(64 << 10, 'x'))}}, {}});
    if (last.ok()) ++written;
  }
  EXPECT_TRUE(last.IsStoreFull()) << last.ToString();
  EXPECT_EQ((*store)->GetProfile(*id)->at("name").as_string(), "Full");
  EXPECT_EQ((*store)->Stats()->events, static_cast<std::uint64_t>(written));
}

}  // namespace
}  // namespace shredkv
