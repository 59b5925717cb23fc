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
  EXPECT_EQ(rows[0].ts_ms, 1000);
  EXPECT_EQ(rows[0].fields, (Attributes{{"amount", 12.5}, {"currency", "EUR"}}));
}

TEST_F(AnalyticsTest, FiltersByNameAndTimeAcrossBatches) {
  options_.iterator_batch_size = 2;
  Reopen();
  PersonId a = MakePerson("a@x.org");
  PersonId b = MakePerson("b@x.org");
  WriteBatch batch;
  for (int i = 0; i < 50; ++i) {
    batch.AppendEvent(i % 2 ? a : b, Event{i % 5 == 0 ? "rare" : "common", i * 10, {}, {}});
  }
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(Scan({}).size(), 50u);
  auto rare = Scan(AnalyticsQuery{{}, std::string("rare")});
  ASSERT_EQ(rare.size(), 10u);
  for (std::size_t i = 1; i < rare.size(); ++i) EXPECT_LT(rare[i - 1].ts_ms, rare[i].ts_ms);
  auto window = Scan(AnalyticsQuery{TimeRange{100, 200}, std::nullopt});
  ASSERT_EQ(window.size(), 10u);
  EXPECT_EQ(window.front().ts_ms, 100);
  EXPECT_EQ(window.back().ts_ms, 190);
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
  EXPECT_EQ(rows[0].ts_ms, 500);
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
