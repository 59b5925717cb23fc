#include <gtest/gtest.h>

#include <limits>
#include <map>

#include "test_util.h"

namespace shredkv {
namespace {

class EventsTest : public test::StoreTest {
 protected:
  std::vector<StoredEvent> Scan(const PersonId& id, TimeRange range = {}) {
    std::vector<StoredEvent> out;
    auto it = store_->ScanEvents(id, range);
    for (; it->Valid(); it->Next()) out.push_back(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }
};

TEST_F(EventsTest, ScanReturnsEventsInTimeOrderWithProperties) {
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"purchase", 300, {{"amount", 9.5}, {"sku", "A1"}}, {}}));
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"login", 100, {{"ip", "10.0.0.1"}}, {}}));
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"logout", 200, {}, {}}));
  auto events = Scan(id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].name, "login");
  EXPECT_EQ(events[0].ts_ms, 100);
  EXPECT_EQ(events[0].properties.at("ip").as_string(), "10.0.0.1");
  EXPECT_EQ(events[1].name, "logout");
  EXPECT_EQ(events[2].name, "purchase");
  EXPECT_EQ(events[2].properties.at("amount").as_double(), 9.5);
}

// Stop 26's audit: names travel out of the C API and Python as C strings,
// so "purchase\0x" read as "purchase" and a profile attribute "role\0" as a
// second "role" (an imported export could show a value the profile does not
// hold under that name). A NUL in an event, property or attribute name is
// refused.
TEST_F(EventsTest, NamesWithANulByteAreInvalidArgument) {
  PersonId id = MakePerson("ann@x.org");
  const std::string nul_name("purchase\0x", 10);
  EXPECT_TRUE(store_->AppendEvent(id, Event{nul_name, 1, {}, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->AppendEvent(id, Event{"purchase", 1, {{std::string("amount\0x", 8), 2}}, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->CreatePerson({{"email", "bob@x.org"}}, {{std::string("role\0", 5), "admin"}}).status()
                  .IsInvalidArgument());
  EXPECT_TRUE(Scan(id).empty());
}

// Stop 26's audit: TimeRange's default end (INT64_MAX, "no end" in c.h) left
// out an event at INT64_MAX, and the analytics bucket of an event near
// INT64_MIN overflowed into the far future.
TEST_F(EventsTest, EventsAtTheEndsOfTimeAreScannedAndBucketedInOrder) {
  PersonId id = MakePerson("ann@x.org");
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"first", kMin, {{"n", 1}}, {"n"}}));
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"last", kMax, {{"n", 2}}, {"n"}}));
  auto events = Scan(id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].ts_ms, kMin);
  EXPECT_EQ(events[1].ts_ms, kMax);
  SKV_ASSERT_OK(store_->RunMaintenance());
  auto rows = store_->ScanAnalytics({});
  std::map<std::string, std::int64_t> bucket;
  for (; rows->Valid(); rows->Next()) bucket[rows->value().name] = rows->value().ts_ms;
  SKV_EXPECT_OK(rows->status());
  ASSERT_EQ(bucket.size(), 2u);
  EXPECT_LT(bucket.at("first"), 0) << "the earliest event's row was filed in the future";
  EXPECT_GT(bucket.at("last"), 0);
}

// Issue 16 (2): event properties and profile attributes had no size limit.
TEST_F(EventsTest, ValuesOverOneMiBAndPropertiesOverSixteenMiBAreInvalidArgument) {
  PersonId id = MakePerson("ann@x.org");
  const std::string mib(1u << 20, 'x');
  SKV_EXPECT_OK(store_->AppendEvent(id, Event{"e", 1, {{"p", mib}}, {}}));  // exactly 1 MiB: fine
  EXPECT_TRUE(store_->AppendEvent(id, Event{"e", 2, {{"p", mib + "x"}}, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->AppendEvent(id, Event{"e", 3, {{"b", Value::Bytes(mib + "x")}}, {}}).IsInvalidArgument());
  Attributes many;
  for (int i = 0; i < 17; ++i) many.emplace("p" + std::to_string(i), mib);
  EXPECT_TRUE(store_->AppendEvent(id, Event{"e", 4, many, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->PatchProfile(id, ProfilePatch{{{"bio", mib + "x"}}, {}}).IsInvalidArgument());
  EXPECT_EQ(Scan(id).size(), 1u);
}

TEST_F(EventsTest, EqualTimestampsKeepAppendOrder) {
  PersonId id = MakePerson("ann@x.org");
  for (int i = 0; i < 5; ++i) SKV_ASSERT_OK(store_->AppendEvent(id, Event{"e" + std::to_string(i), 42, {}, {}}));
  auto events = Scan(id);
  ASSERT_EQ(events.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(events[static_cast<std::size_t>(i)].name, "e" + std::to_string(i));
  for (int i = 1; i < 5; ++i) EXPECT_LT(events[static_cast<std::size_t>(i - 1)].seq, events[static_cast<std::size_t>(i)].seq);
}

TEST_F(EventsTest, TimeRangeIsHalfOpen) {
  PersonId id = MakePerson("ann@x.org");
  for (std::int64_t ts : {-10, 0, 10, 20, 30}) SKV_ASSERT_OK(store_->AppendEvent(id, Event{"e", ts, {}, {}}));
  auto events = Scan(id, TimeRange{0, 30});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.front().ts_ms, 0);
  EXPECT_EQ(events.back().ts_ms, 20);
  EXPECT_EQ(Scan(id, TimeRange{31, 100}).size(), 0u);
  EXPECT_EQ(Scan(id).size(), 5u);
}

TEST_F(EventsTest, ScanSpansManyBatchesAndOnlyThatPerson) {
  options_.iterator_batch_size = 3;
  Reopen();
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  WriteBatch batch;
  for (int i = 0; i < 100; ++i) {
    batch.AppendEvent(a, Event{"a", i, {{"i", i}}, {}});
    batch.AppendEvent(b, Event{"b", i, {}, {}});
  }
  SKV_ASSERT_OK(store_->Write(batch));
  auto events = Scan(a);
  ASSERT_EQ(events.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(events[static_cast<std::size_t>(i)].properties.at("i").as_int64(), i);
    EXPECT_EQ(events[static_cast<std::size_t>(i)].name, "a");
  }
}

TEST_F(EventsTest, SequenceSurvivesReopen) {
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"first", 5, {}, {}}));
  Reopen();
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"second", 5, {}, {}}));
  auto events = Scan(id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "first");
  EXPECT_EQ(events[1].name, "second");
}

TEST_F(EventsTest, InvalidEventsAreRejected) {
  PersonId id = MakePerson("ann@x.org");
  EXPECT_TRUE(store_->AppendEvent(id, Event{"", 1, {}, {}}).IsInvalidArgument());
  EXPECT_TRUE(store_->AppendEvent(id, Event{"e", 1, {{"a", 1}}, {"missing"}}).IsInvalidArgument());
  EXPECT_TRUE(store_->AppendEvent(PersonId(PersonId::Bytes{3}), Event{"e", 1, {}, {}}).IsNotFound());
  EXPECT_EQ(Scan(id).size(), 0u);
}

TEST_F(EventsTest, ScanOfUnknownPersonReportsNotFound) {
  auto it = store_->ScanEvents(PersonId(PersonId::Bytes{5}), {});
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsNotFound());
}

}  // namespace
}  // namespace shredkv
