// Analytics rows staged at ingest and materialised later
// (engine/analytics_staging.h): every reader that finds rows through a
// person sees staged rows as if materialised, erasure reaches them, and
// materialisation moves them at the documented moments only.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/aead.h"
#include "crypto/keyed_hash.h"
#include "util/coding.h"
#include "engine/analytics_staging.h"
#include "engine/data_rows.h"
#include "engine/store_impl.h"
#include "test_util.h"

namespace shredkv {
namespace {

constexpr std::int64_t kHour = 3600 * 1000;
constexpr std::int64_t kT0 = 1'700'000'000'000 - 1'700'000'000'000 % kHour;  // an hour's start

class AnalyticsStagingTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.clock = [this] { return now_.load(); };
    Reopen();
  }
  engine::StoreImpl& impl() { return *dynamic_cast<engine::StoreImpl*>(store_.get()); }

  std::uint64_t Staged() { return store_->Stats()->analytics_staged; }
  // Rows of the `analytics` table itself (materialised ones).
  std::uint64_t Materialised() {
    std::uint64_t n = 0;
    SKV_EXPECT_OK(impl().data().View([&](storage::ReadTxn& txn) -> Status {
      auto c = txn.Count(impl().tables().analytics);
      if (!c.ok()) return c.status();
      n = *c;
      return Status::OK();
    }));
    return n;
  }
  // The person's analytics rows as an export lists them: seq → row.
  std::map<std::uint64_t, AnalyticsRow> Exported(const PersonId& id) {
    std::map<std::uint64_t, AnalyticsRow> rows;
    auto it = store_->Export(id);
    for (; it->Valid(); it->Next()) {
      if (it->value().kind == ExportItem::Kind::kAnalytics) rows[it->value().analytics.seq] = it->value().analytics;
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return rows;
  }
  std::vector<AnalyticsRow> Scanned() {
    std::vector<AnalyticsRow> rows;
    auto it = store_->ScanAnalytics({});
    for (; it->Valid(); it->Next()) rows.push_back(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return rows;
  }
  PersonId PersonWithEvents(const std::string& email, int n, std::int64_t ts0) {
    const PersonId id = MakePerson(email);
    WriteBatch b;
    for (int i = 0; i < n; ++i) b.AppendEvent(id, Event{"visit", ts0 + i, {{"i", i}, {"secret", "s"}}, {"i"}});
    SKV_EXPECT_OK(store_->Write(b));
    return id;
  }

  std::atomic<std::int64_t> now_{kT0 + 10 * kHour};
};

TEST_F(AnalyticsStagingTest, IngestStagesRowsAndMaintenanceMaterialisesThoseOfEndedHours) {
  now_ = kT0 + 30 * 60 * 1000;  // half past: kT0's hour is still open
  const PersonId ann = PersonWithEvents("ann@x.org", 5, kT0 - kHour);  // the hour before: ended
  const PersonId bob = PersonWithEvents("bob@x.org", 3, kT0 + 1000);   // this hour
  EXPECT_EQ(Staged(), 8u);
  EXPECT_EQ(Materialised(), 0u);
  EXPECT_EQ(store_->Stats()->analytics_rows, 8u);  // staged rows counted
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(Staged(), 3u);  // bob's hour has not ended
  EXPECT_EQ(Materialised(), 5u);
  now_ = kT0 + kHour;  // it has now
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Materialised(), 8u);
  EXPECT_EQ(Exported(ann).size(), 5u);
  EXPECT_EQ(Exported(bob).size(), 3u);
}

TEST_F(AnalyticsStagingTest, ExportAndScanShowStagedRowsAsTheyWillBeMaterialised) {
  const PersonId ann = PersonWithEvents("ann@x.org", 20, kT0);
  ASSERT_EQ(Staged(), 20u);
  const auto staged_export = Exported(ann);
  ASSERT_EQ(staged_export.size(), 20u);
  for (const auto& [seq, row] : staged_export) {
    EXPECT_EQ(row.ts_ms, kT0);
    EXPECT_EQ(row.fields.count("secret"), 0u);  // only the declared field
  }
  // A scan materialises first (a writable open), then reads `analytics`.
  const auto scanned = Scanned();
  EXPECT_EQ(scanned.size(), 20u);
  EXPECT_EQ(Staged(), 0u);
  const auto materialised_export = Exported(ann);
  ASSERT_EQ(materialised_export.size(), 20u);
  for (const auto& [seq, row] : staged_export) {
    const AnalyticsRow& after = materialised_export.at(seq);
    EXPECT_EQ(after.anon_id, row.anon_id);
    EXPECT_EQ(after.fields, row.fields);
    EXPECT_EQ(after.ts_ms, row.ts_ms);
  }
}

TEST_F(AnalyticsStagingTest, RectifyingAStagedEventCorrectsItsStagedRow) {
  const PersonId ann = PersonWithEvents("ann@x.org", 3, kT0);
  auto events = store_->ScanEvents(ann);
  ASSERT_TRUE(events->Valid());
  const StoredEvent first = events->value();
  events.reset();
  Rectification r;
  r.events.push_back(EventCorrection{first.ts_ms, first.seq, ProfilePatch{{{"i", 99}}, {}}});
  SKV_ASSERT_OK(store_->Rectify(ann, r));
  EXPECT_EQ(Staged(), 3u);  // still staged, corrected in place
  EXPECT_EQ(Exported(ann).at(first.seq).fields.at("i").as_int64(), 99);
  std::multiset<std::int64_t> values;
  for (const AnalyticsRow& row : Scanned()) values.insert(row.fields.at("i").as_int64());
  EXPECT_EQ(values, (std::multiset<std::int64_t>{1, 2, 99}));
}

TEST_F(AnalyticsStagingTest, UnlinkingAndDeletingErasuresReachStagedRows) {
  const PersonId keep = PersonWithEvents("keep@x.org", 4, kT0);
  const PersonId unlink = PersonWithEvents("unlink@x.org", 5, kT0);
  const PersonId del = PersonWithEvents("delete@x.org", 6, kT0);
  const AnonymousId keep_anon = Exported(keep).begin()->second.anon_id;
  const AnonymousId unlink_anon = Exported(unlink).begin()->second.anon_id;
  ASSERT_EQ(Staged(), 15u);
  EraseOptions o;
  ASSERT_TRUE(store_->Erase({keep}, o).ok());
  o.analytics = AnalyticsOnErase::kUnlink;
  ASSERT_TRUE(store_->Erase({unlink}, o).ok());
  o.analytics = AnalyticsOnErase::kDelete;
  ASSERT_TRUE(store_->Erase({del}, o).ok());
  // Keep: the rows stay staged, under the person's anonymous ID. Unlink:
  // moved to `analytics` under fresh IDs. Delete: gone.
  EXPECT_EQ(Staged(), 4u);
  EXPECT_EQ(Materialised(), 5u);
  std::map<std::string, int> by_anon;
  for (const AnalyticsRow& row : Scanned()) ++by_anon[std::string(row.anon_id.view())];
  EXPECT_EQ(by_anon.size(), 1u + 5u);
  EXPECT_EQ(by_anon[std::string(keep_anon.view())], 4);
  EXPECT_EQ(by_anon.count(std::string(unlink_anon.view())), 0u);
}

TEST_F(AnalyticsStagingTest, AReadOnlyOpenScansStagedRowsWithoutWritingThem) {
  PersonWithEvents("ann@x.org", 7, kT0);
  PersonWithEvents("bob@x.org", 2, kT0 - 5 * kHour);
  ASSERT_EQ(Staged(), 9u);
  options_.read_only = true;
  options_.create_if_missing = false;
  Reopen();
  const auto scanned = Scanned();
  ASSERT_EQ(scanned.size(), 9u);
  for (std::size_t i = 1; i < scanned.size(); ++i) EXPECT_LE(scanned[i - 1].ts_ms, scanned[i].ts_ms);
  EXPECT_EQ(Staged(), 9u);
  EXPECT_EQ(Materialised(), 0u);
  auto verified = store_->Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
  EXPECT_EQ(verified->analytics_rows, 9u);
}

TEST_F(AnalyticsStagingTest, CompactionMaterialisesEverythingFirst) {
  PersonWithEvents("ann@x.org", 4, kT0 + 20 * kHour);  // an hour still to come
  ASSERT_EQ(Staged(), 4u);
  ASSERT_TRUE(store_->CompactData().ok());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Materialised(), 4u);
}

// Review finding: one staging key for the store's life would seal a row per
// event, more than AES-GCM's random 96-bit nonces allow under one key. Each
// 2^30 sequence numbers get their own key (generation 0's is the original).
TEST(AnalyticsStagingKeysTest, EachGenerationOfTwoToTheThirtyEventsHasItsOwnKey) {
  test::TempDir dir;
  storage::EnvOptions o;
  o.path = dir.Sub("env");
  o.tables = {"staged", "analytics"};
  o.create = true;
  auto env = storage::Environment::Open(o);
  ASSERT_TRUE(env.ok());
  auto index_key = crypto::SecretKey::Random();
  ASSERT_TRUE(index_key.ok());
  const engine::AnalyticsStaging staging((*env)->table("staged"), (*env)->table("analytics"), *index_key,
                                         crypto::CipherId::kXChaCha20Poly1305);
  const std::uint64_t seqs[] = {5, (1ull << 30) + 5, (5ull << 30) + 5};
  const std::string akey = codec::AnalyticsKey(0, std::string(codec::kAnalyticsRowIdSize, 'r'));
  engine::AnalyticsStaging::Scratch scratch;
  SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
    for (std::uint64_t seq : seqs) {
      if (Status s = staging.Stage(txn, seq, akey, "payload", &scratch); !s.ok()) return s;
    }
    return Status::OK();
  }));
  auto key_of = [&](std::uint64_t g) {
    std::string gb;
    util::PutFixed64BE(&gb, g);
    const std::string bytes = g == 0 ? crypto::KeyedHash(*index_key, 32, {"analytics-staging"})
                                     : crypto::KeyedHash(*index_key, 32, {"analytics-staging", gb});
    return std::move(crypto::SecretKey::FromBytes(bytes)).value();
  };
  SKV_ASSERT_OK((*env)->View([&](storage::ReadTxn& txn) -> Status {
    for (std::uint64_t seq : seqs) {
      engine::StagedRow row;
      EXPECT_TRUE(staging.Find(txn, seq, &row).ok()) << seq;
      std::string k;
      util::PutFixed64BE(&k, seq);
      std::string_view value;
      if (Status g = txn.Get((*env)->table("staged"), k, &value); !g.ok()) return g;
      std::string plain;
      EXPECT_TRUE(codec::OpenRow(key_of(seq >> 30), codec::TableId::kAnalyticsStaged, k, value, &plain).ok()) << seq;
      if (seq >> 30 != 0) {
        EXPECT_TRUE(codec::OpenRow(key_of(0), codec::TableId::kAnalyticsStaged, k, value, &plain).IsAuthenticationFailed());
      }
    }
    return Status::OK();
  }));
}

// Review finding: a staged row that does not open must not stop every write
// once the staging reaches its bound; it stays for Verify to report.
TEST_F(AnalyticsStagingTest, ADamagedStagedRowDoesNotStopWritesAtTheBound) {
  const PersonId ann = MakePerson("ann@x.org");
  constexpr std::uint64_t kBatch = 16384;
  std::uint64_t written = 0;
  auto write = [&] {
    WriteBatch b;
    for (std::uint64_t i = 0; i < kBatch; ++i) b.AppendEvent(ann, Event{"e", kT0 + static_cast<std::int64_t>(written + i), {}, {}});
    written += kBatch;
    return store_->Write(b);
  };
  while (written + kBatch < engine::kMaxStagedAnalyticsRows) SKV_ASSERT_OK(write());
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  {
    storage::EnvOptions o;
    o.path = dir_.Sub("data");
    o.tables = {"analytics_staged"};
    auto env = storage::Environment::Open(o);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    SKV_ASSERT_OK((*env)->Update([&](storage::WriteTxn& txn) -> Status {
      const storage::Table t = (*env)->table("analytics_staged");
      auto c = txn.OpenCursor(t);
      if (!c.ok()) return c.status();
      if (Status m = (*c)->SeekToFirst(); !m.ok()) return m;
      std::string key((*c)->key()), value((*c)->value());
      value.back() = static_cast<char>(value.back() ^ 1);
      c->reset();
      return txn.Put(t, key, value);
    }));
  }
  Reopen();
  SKV_ASSERT_OK(write());  // crosses the bound
  EXPECT_EQ(Staged(), 1u);  // the damaged row, kept
  EXPECT_EQ(Materialised(), written - 1);
  EXPECT_TRUE(store_->RunMaintenance().IsAuthenticationFailed());  // maintenance reports it
}

TEST_F(AnalyticsStagingTest, TheWritePathMaterialisesWhenTheStagingReachesItsBound) {
  const PersonId ann = MakePerson("ann@x.org");
  constexpr std::uint64_t kBound = engine::kMaxStagedAnalyticsRows;
  constexpr std::uint64_t kBatch = 16384;
  std::uint64_t written = 0;
  while (written + kBatch < kBound) {
    WriteBatch b;
    for (std::uint64_t i = 0; i < kBatch; ++i) b.AppendEvent(ann, Event{"e", kT0 + static_cast<std::int64_t>(written + i), {}, {}});
    SKV_ASSERT_OK(store_->Write(b));
    written += kBatch;
  }
  EXPECT_EQ(Staged(), written);
  EXPECT_EQ(Materialised(), 0u);
  WriteBatch b;  // crosses the bound: everything is materialised in its transaction
  for (std::uint64_t i = 0; i < kBatch; ++i) b.AppendEvent(ann, Event{"e", kT0 + static_cast<std::int64_t>(written + i), {}, {}});
  SKV_ASSERT_OK(store_->Write(b));
  written += kBatch;
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Materialised(), written);
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

// The analytics layout (engine/analytics_link.h, format.md §5.4): grouped
// for new stores; a format-3 store whose data meta has no layout row keeps
// the ungrouped keys it was written with.
class AnalyticsLayoutTest : public AnalyticsStagingTest {
 protected:
  // The anonymous IDs of the materialised rows, in key order.
  std::vector<AnonymousId> AnonInKeyOrder() {
    std::vector<AnonymousId> out;
    auto it = store_->ScanAnalytics({});
    for (; it->Valid(); it->Next()) out.push_back(it->value().anon_id);
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }
  // Writes `n` events for each person, alternating people, one batch each.
  void Interleave(const std::vector<PersonId>& people, int n) {
    for (int i = 0; i < n; ++i) {
      for (const PersonId& p : people) SKV_ASSERT_OK(store_->AppendEvent(p, Event{"visit", kT0 + i, {{"i", i}}, {"i"}}));
    }
  }
};

TEST_F(AnalyticsLayoutTest, ANewStoreKeepsAPersonsRowsOfABucketTogether) {
  EXPECT_EQ(impl().context().analytics_layout, engine::AnalyticsLayout::kGrouped);
  const std::vector<PersonId> people{MakePerson("a@x.org"), MakePerson("b@x.org"), MakePerson("c@x.org")};
  Interleave(people, 30);
  SKV_ASSERT_OK(store_->RunMaintenance());  // the hour has ended: materialised
  ASSERT_EQ(Materialised(), 90u);
  const auto anon = AnonInKeyOrder();
  ASSERT_EQ(anon.size(), 90u);
  std::size_t runs = 1;
  for (std::size_t i = 1; i < anon.size(); ++i) runs += anon[i] != anon[i - 1] ? 1u : 0u;
  EXPECT_EQ(runs, 3u);  // one run of rows a person, though their writes alternated
  Reopen();
  EXPECT_EQ(impl().context().analytics_layout, engine::AnalyticsLayout::kGrouped);
  for (const PersonId& p : people) EXPECT_EQ(Exported(p).size(), 30u);
}

TEST_F(AnalyticsLayoutTest, AStoreWithoutALayoutRowKeepsTheUngroupedKeys) {
  // A format-3 store made before the layout was recorded: no meta row, keys
  // built the ungrouped way.
  impl().context().analytics_layout = engine::AnalyticsLayout::kUngrouped;
  SKV_ASSERT_OK(impl().data().Update([&](storage::WriteTxn& txn) {
    return txn.Delete(impl().tables().meta, engine::kAnalyticsLayoutKey);
  }));
  const std::vector<PersonId> people{MakePerson("a@x.org"), MakePerson("b@x.org")};
  Interleave(people, 30);
  SKV_ASSERT_OK(store_->RunMaintenance());
  ASSERT_EQ(Materialised(), 60u);
  const auto anon = AnonInKeyOrder();
  std::size_t runs = 1;
  for (std::size_t i = 1; i < anon.size(); ++i) runs += anon[i] != anon[i - 1] ? 1u : 0u;
  EXPECT_GT(runs, 10u);  // spread over the bucket
  Reopen();
  EXPECT_EQ(impl().context().analytics_layout, engine::AnalyticsLayout::kUngrouped);
  for (const PersonId& p : people) EXPECT_EQ(Exported(p).size(), 30u);
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
  // Erasure still reaches the rows through the ungrouped keys: unlinked,
  // each gets a fresh anonymous ID.
  EraseOptions o;
  o.analytics = AnalyticsOnErase::kUnlink;
  ASSERT_TRUE(store_->Erase(people[0], o).ok());
  std::set<AnonymousId> distinct;
  for (const AnonymousId& a : AnonInKeyOrder()) distinct.insert(a);
  EXPECT_EQ(distinct.size(), 31u);  // 30 unlinked rows and the other person
}

}  // namespace
}  // namespace shredkv
