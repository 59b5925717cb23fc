#include <gtest/gtest.h>

#include "test_util.h"

namespace shredkv {
namespace {

class AnalyticsTest : public test::StoreTest {
 protected:
  std::vector<AnalyticsRow> Scan(const AnalyticsQuery& q) {
    std::vector<AnalyticsRow> out;
    auto it = store_->ScanAnalytics(q);
    for (; it->Valid(); it->Next()) out.push_back(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }
};

TEST_F(AnalyticsTest, RowCarriesAnonymousIdAndOnlyDeclaredFields) {
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(
      id, Event{"purchase", 1000, {{"amount", 12.5}, {"currency", "EUR"}, {"address", "Main St 1"}},
                {"amount", "currency"}}));
  auto rows = Scan({});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].anon_id, store_->GetPerson(id)->anon_id);
  EXPECT_NE(rows[0].anon_id.bytes(), id.bytes());
  EXPECT_EQ(rows[0].name, "purchase");
  EXPECT_EQ(rows[0].ts_ms, 0);  // the event's hour: 1000 ms floored to 0
  EXPECT_EQ(rows[0].seq, 0u);   // no analytics row names its event
  EXPECT_EQ(rows[0].fields, (Attributes{{"amount", 12.5}, {"currency", "EUR"}}));
}

TEST_F(AnalyticsTest, RowTimeIsTheEventTimeFlooredToTheStoreGranularity) {
  constexpr std::int64_t kHour = 3600 * 1000;
  PersonId id = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"a", 5 * kHour + 59 * 60 * 1000, {}, {}}));
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"b", -1, {}, {}}));  // before 1970: floors down
  auto rows = Scan({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].name, "b");
  EXPECT_EQ(rows[0].ts_ms, -kHour);
  EXPECT_EQ(rows[1].ts_ms, 5 * kHour);

  // The granularity is fixed when the store is made: a later open with
  // another value keeps the stored one.
  options_.analytics_time_granularity_ms = 1000;
  Reopen();
  SKV_ASSERT_OK(store_->AppendEvent(id, Event{"c", 7 * kHour + 1500, {}, {}}));
  rows = Scan(AnalyticsQuery{{}, std::string("c")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].ts_ms, 7 * kHour);
  EXPECT_TRUE(store_->Stats()->analytics_rows == 3u);

  options_.analytics_time_granularity_ms = 999;
  store_.reset();
  auto refused = Store::Open(options_);
  EXPECT_TRUE(refused.status().IsInvalidArgument()) << refused.status().ToString();
}

TEST_F(AnalyticsTest, FiltersByNameAndTimeAcrossBatches) {
  options_ = test::TestOptions(dir_.Sub("fine"));  // a new store: the granularity is fixed at creation
  options_.iterator_batch_size = 2;
  options_.analytics_time_granularity_ms = 1000;  // one event a bucket
  Reopen();
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  WriteBatch batch;
  for (int i = 0; i < 50; ++i) {
    batch.AppendEvent(i % 2 ? a : b, Event{i % 5 == 0 ? "rare" : "common", i * 1000, {}, {}});
  }
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(Scan({}).size(), 50u);
  auto rare = Scan(AnalyticsQuery{{}, std::string("rare")});
  ASSERT_EQ(rare.size(), 10u);
  for (std::size_t i = 1; i < rare.size(); ++i) EXPECT_LT(rare[i - 1].ts_ms, rare[i].ts_ms);
  auto window = Scan(AnalyticsQuery{TimeRange{10000, 20000}, std::nullopt});
  ASSERT_EQ(window.size(), 10u);
  EXPECT_EQ(window.front().ts_ms, 10000);
  EXPECT_EQ(window.back().ts_ms, 19000);
  EXPECT_EQ(Scan(AnalyticsQuery{TimeRange{0, 1000}, std::string("none")}).size(), 0u);
}

TEST_F(AnalyticsTest, RareNameFarAwayIsStillFound) {
  options_.iterator_batch_size = 1;  // forces many empty batches before the match
  Reopen();
  PersonId a = MakePerson("a@x.org");
  WriteBatch batch;
  for (int i = 0; i < 200; ++i) batch.AppendEvent(a, Event{"noise", i, {}, {}});
  batch.AppendEvent(a, Event{"needle", 500, {}, {}});
  SKV_ASSERT_OK(store_->Write(batch));
  auto rows = Scan(AnalyticsQuery{{}, std::string("needle")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].ts_ms, 0);  // 500 ms, in the hour from 0
}

TEST_F(AnalyticsTest, EachPersonHasOneStableAnonymousId) {
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  for (int i = 0; i < 3; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(a, Event{"e", i, {}, {}}));
    SKV_ASSERT_OK(store_->AppendEvent(b, Event{"e", i, {}, {}}));
  }
  const AnonymousId anon_a = store_->GetPerson(a)->anon_id;
  const AnonymousId anon_b = store_->GetPerson(b)->anon_id;
  int na = 0, nb = 0;
  for (const auto& row : Scan({})) {
    if (row.anon_id == anon_a) ++na;
    if (row.anon_id == anon_b) ++nb;
  }
  EXPECT_EQ(na, 3);
  EXPECT_EQ(nb, 3);
}

}  // namespace
}  // namespace shredkv
