// Retention (storage limitation by time): rules per event name, collection
// and analytics, the read filters (injected clock), the sweep through the
// time index, its audit entry and stats, crash resumption, and the cost of a
// sweep over a store where nothing expires.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "codec/sealed.h"
#include "engine/store_impl.h"
#include "test_util.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv {
namespace {

constexpr std::int64_t kDay = 24ll * 3600 * 1000;
constexpr std::int64_t kT0 = 1'700'000'000'000;  // a fixed "now" for the injected clock

std::vector<StoredEvent> Events(Store& store, const PersonId& id) {
  std::vector<StoredEvent> out;
  auto it = store.ScanEvents(id);
  for (; it->Valid(); it->Next()) out.push_back(it->value());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::vector<Record> Records(Store& store, const PersonId& id, const std::string& collection) {
  std::vector<Record> out;
  auto it = store.ScanRecords(id, collection);
  for (; it->Valid(); it->Next()) out.push_back(it->value());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::vector<AnalyticsRow> Analytics(Store& store) {
  std::vector<AnalyticsRow> out;
  auto it = store.ScanAnalytics({});
  for (; it->Valid(); it->Next()) out.push_back(it->value());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::vector<ExportItem> ExportAll(Store& store, const PersonId& id) {
  std::vector<ExportItem> out;
  auto it = store.Export(id);
  for (; it->Valid(); it->Next()) out.push_back(it->value());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::size_t CountKind(const std::vector<ExportItem>& items, ExportItem::Kind kind) {
  std::size_t n = 0;
  for (const ExportItem& i : items) n += i.kind == kind ? 1 : 0;
  return n;
}

// Entries of a data table (through the engine, for the index tests).
std::uint64_t TableEntries(Store& store, storage::Table engine::DataTables::*table) {
  auto* impl = dynamic_cast<engine::StoreImpl*>(&store);
  std::uint64_t n = 0;
  Status s = impl->data().View([&](storage::ReadTxn& txn) -> Status {
    auto c = txn.Count(impl->tables().*table);
    if (!c.ok()) return c.status();
    n = *c;
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return n;
}

// The counts of the last audit entry of kind sweep (6), or {-1,-1}.
std::pair<std::int64_t, std::int64_t> LastSweepAudit(Store& store) {
  auto* impl = dynamic_cast<engine::StoreImpl*>(&store);
  std::pair<std::int64_t, std::int64_t> out{-1, -1};
  Status s = impl->data().View([&](storage::ReadTxn& txn) -> Status {
    auto cursor = txn.OpenCursor(impl->tables().audit);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    for (Status m = c.SeekToFirst(); m.ok() && c.Valid(); m = c.Next()) {
      std::string_view payload;
      if (Status o = codec::OpenPlain(codec::TableId::kAudit, c.key(), c.value(), &payload); !o.ok()) return o;
      // entry := u8(kind) ordered(time) lp(request id = "") count1 count2 u8(mode) ‖ hashes
      if (payload.size() < 1 + 8 + 1 + 16 || payload[0] != 6 || payload[9] != 0) continue;
      out = {static_cast<std::int64_t>(util::DecodeFixed64BE(payload.data() + 10)),
             static_cast<std::int64_t>(util::DecodeFixed64BE(payload.data() + 18))};
    }
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class RetentionTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.clock = [this] { return now_.load(); };
    Reopen();
  }

  std::atomic<std::int64_t> now_{kT0};
};

TEST_F(RetentionTest, EventJustInsideTheWindowIsReadAndJustOutsideIsNot) {
  RetentionRules rules;
  rules.events["page_view"] = 30 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  const std::int64_t cutoff = kT0 - 30 * kDay;
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", cutoff, {{"url", "/a"}}, {}}));      // age = 30 d
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", cutoff + 1, {{"url", "/b"}}, {}}));  // 1 ms younger
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"purchase", cutoff - kDay, {{"sku", "x"}}, {}}));  // no rule: kept

  auto events = Events(*store_, ann);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "purchase");
  EXPECT_EQ(events[1].ts_ms, cutoff + 1);
  // A lease reads through the same filter.
  auto lease = store_->AcquireLease(ann, "analytics");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  std::size_t leased = 0;
  for (auto it = (*lease)->ScanEvents(); it->Valid(); it->Next()) ++leased;
  EXPECT_EQ(leased, 2u);
  lease->reset();

  // One ms later the younger one is out too.
  now_ = kT0 + 1;
  events = Events(*store_, ann);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].name, "purchase");
  EXPECT_EQ(store_->Stats()->expired_pending, 2u);
}

TEST_F(RetentionTest, RecordExpiresByItsLastWriteTime) {
  RetentionRules rules;
  rules.collections["orders"] = 1000;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Put(ann, "orders", "o1", "v1"));
  SKV_ASSERT_OK(store_->Put(ann, "notes", "n1", "kept"));

  now_ = kT0 + 999;  // just inside
  EXPECT_EQ(*store_->Get(ann, "orders", "o1"), "v1");
  EXPECT_EQ(Records(*store_, ann, "orders").size(), 1u);

  now_ = kT0 + 1000;  // just outside
  EXPECT_TRUE(store_->Get(ann, "orders", "o1").status().IsNotFound());
  EXPECT_TRUE(Records(*store_, ann, "orders").empty());
  EXPECT_EQ(*store_->Get(ann, "notes", "n1"), "kept");

  // A rewrite is a new write: its window starts again, and the old index
  // entry is gone (one entry per record; none for "notes", which has no
  // rule: data format 4).
  SKV_ASSERT_OK(store_->Put(ann, "orders", "o1", "v2"));
  EXPECT_EQ(*store_->Get(ann, "orders", "o1"), "v2");
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 1u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  SKV_ASSERT_OK(store_->Delete(ann, "orders", "o1"));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 0u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 0u);
}

TEST_F(RetentionTest, AnalyticsRowsAreKeptLongerThanTheirEvents) {
  RetentionRules rules;
  rules.events["page_view"] = 10 * kDay;
  rules.analytics = 365 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  // One event an hour: analytics rows keep only the hour (their expiry
  // counts from it).
  constexpr std::int64_t kHour = 3600 * 1000;
  const std::int64_t t0 = kT0 - kT0 % kHour;
  for (int i = 0; i < 5; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", t0 + i * kHour, {{"url", "/p"}, {"n", i}}, {"n"}}));
  }
  now_ = kT0 + 20 * kDay;
  EXPECT_TRUE(Events(*store_, ann).empty());
  EXPECT_EQ(Analytics(*store_).size(), 5u);

  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 5u);
  EXPECT_EQ(swept->analytics_deleted, 0u);
  EXPECT_EQ(store_->Stats()->events, 0u);
  EXPECT_EQ(Analytics(*store_).size(), 5u);

  now_ = t0 + 365 * kDay + 2 * kHour;  // rows of hours 0, 1, 2 are a year old
  EXPECT_EQ(Analytics(*store_).size(), 2u);
  swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->analytics_deleted, 3u);
  EXPECT_EQ(store_->Stats()->analytics_rows, 2u);
  EXPECT_EQ(LastSweepAudit(*store_), (std::pair<std::int64_t, std::int64_t>{0, 3}));
}

// Outside audit 35a, F2: writes treated expired items that the sweep had
// not removed yet as still there. Rectify of an expired event re-sealed it
// and wrote a notice naming the properties whose value changed (an oracle
// on the expired value); Delete of a record past its collection's rule or
// its own expiry wrote a record.delete notice. Now the correction is
// NotFound (with an unknown event's message) and the deletes write no
// notice; they do delete (review of stop 35, R1: a row left for the sweep
// came back when the rule was lifted first).
TEST_F(RetentionTest, WritesSeeExpiredItemsAsReadersDo) {
  RetentionRules rules;
  rules.events["page_view"] = 30 * kDay;
  rules.collections["orders"] = 30 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", kT0, {{"amount", Value(std::int64_t{5})}}, {}}));
  const auto events = Events(*store_, ann);
  ASSERT_EQ(events.size(), 1u);
  SKV_ASSERT_OK(store_->Put(ann, "orders", "o1", "order"));
  Record own;
  own.collection = "notes";
  own.key = "n1";
  own.value = "note";
  own.metadata.expires_ms = kT0 + kDay;
  WriteBatch b;
  b.Put(ann, own);
  SKV_ASSERT_OK(store_->Write(b));
  auto before = store_->ReadFeed(100);
  ASSERT_TRUE(before.ok());

  now_ = kT0 + 31 * kDay;  // the event and both records are past their time
  Rectification fix;
  fix.events.push_back(EventCorrection{events[0].ts_ms, events[0].seq, ProfilePatch{{{"amount", Value(std::int64_t{8})}}, {}}});
  Status r = store_->Rectify(ann, fix);
  EXPECT_TRUE(r.IsNotFound()) << r.ToString();
  WriteBatch in_batch;
  in_batch.Rectify(ann, fix);
  EXPECT_TRUE(store_->Write(in_batch).IsNotFound());
  SKV_EXPECT_OK(store_->Delete(ann, "orders", "o1"));
  SKV_EXPECT_OK(store_->Delete(ann, "notes", "n1"));
  auto after = store_->ReadFeed(100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), before->size()) << "a write on expired items wrote a notice: "
                                           << (after->empty() ? "" : after->back().names.front());

  EXPECT_EQ(r.message().find("retention"), std::string::npos) << "the message tells an expired event is stored";

  // The rules lifted: the event still has its old value; the deleted
  // record stays deleted. The sweep (rules back) deletes the event only.
  SKV_ASSERT_OK(store_->SetRetention({}));
  const auto kept = Events(*store_, ann);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].properties.at("amount").as_int64(), 5);
  EXPECT_TRUE(store_->Get(ann, "orders", "o1").status().IsNotFound());
  SKV_ASSERT_OK(store_->SetRetention(rules));
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 1u);
  EXPECT_EQ(swept->records_deleted, 0u);
}

// Outside audit 35a, F3: expired_pending left out analytics rows still
// staged (not yet moved to the analytics table): 0 was reported while the
// sweep then deleted them.
TEST_F(RetentionTest, ExpiredPendingCountsStagedAnalyticsRows) {
  RetentionRules rules;
  rules.analytics = 365 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 10; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", kT0 - 400 * kDay + i, {}, {}}));
  }
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->analytics_staged, 10u) << "the rows must still be staged for this test";
  EXPECT_EQ(stats->expired_pending, 10u);
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->analytics_deleted, 10u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
}

// Outside audit 35a, F4: with the clock within a rule's max age of
// INT64_MIN the cutoff saturated at INT64_MIN, so an event at INT64_MIN
// counted as expired although younger than the rule: hidden, then deleted.
TEST_F(RetentionTest, NothingExpiresWhileTheClockIsWithinTheMaxAgeOfTheEarliestTime) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  RetentionRules rules;
  rules.events["e"] = 10;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  now_ = kMin + 5;
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", kMin, {}, {}}));      // age 5 ms
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", kMin + 1, {}, {}}));  // age 4 ms
  EXPECT_EQ(Events(*store_, ann).size(), 2u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 0u);
  now_ = kMin + 10;  // the first is 10 ms old now: expired, the second not
  const auto left = Events(*store_, ann);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].ts_ms, kMin + 1);
}

TEST_F(RetentionTest, ExportLeavesOutExpiredItemsBeforeAndAfterTheSweep) {
  RetentionRules rules;
  rules.events["page_view"] = kDay;
  rules.collections["cart"] = kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", kT0 - 2 * kDay, {{"url", "/old"}}, {"url"}}));
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"page_view", kT0 + 1, {{"url", "/new"}}, {"url"}}));
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"signup", kT0 - 100 * kDay, {}, {}}));
  SKV_ASSERT_OK(store_->Put(ann, "cart", "c1", "old cart"));
  SKV_ASSERT_OK(store_->Put(ann, "profile_extra", "k", "kept"));
  now_ = kT0 + kDay / 2;
  SKV_ASSERT_OK(store_->Put(ann, "cart", "c2", "new cart"));
  now_ = kT0 + kDay;  // c1 (written at kT0) and /old are out; /new, c2 and signup in

  for (int round = 0; round < 2; ++round) {
    auto items = ExportAll(*store_, ann);
    EXPECT_EQ(CountKind(items, ExportItem::Kind::kEvent), 2u) << round;
    EXPECT_EQ(CountKind(items, ExportItem::Kind::kRecord), 2u) << round;
    // The analytics row of the expired event is not the person's any more.
    EXPECT_EQ(CountKind(items, ExportItem::Kind::kAnalytics), 2u) << round;
    for (const ExportItem& i : items) {
      if (i.kind == ExportItem::Kind::kEvent && i.event.name == "page_view") {
        EXPECT_EQ(i.event.properties.at("url").as_string(), "/new");
      }
      if (i.kind == ExportItem::Kind::kRecord) {
        EXPECT_NE(i.record.value, "old cart");
      }
    }
    if (round == 0) {
      auto swept = store_->Sweep(1000);
      ASSERT_TRUE(swept.ok()) << swept.status().ToString();
      EXPECT_EQ(swept->events_deleted, 1u);
      EXPECT_EQ(swept->records_deleted, 1u);
    }
  }
}

TEST_F(RetentionTest, RulesChangeOnAnOpenStoreAndAreStored) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"click", kT0 - 10 * kDay, {}, {}}));
  EXPECT_EQ(Events(*store_, ann).size(), 1u);

  RetentionRules rules;
  rules.events["click"] = 7 * kDay;
  rules.analytics = 90 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  EXPECT_TRUE(Events(*store_, ann).empty());  // at once, before any sweep
  EXPECT_EQ(*store_->GetRetention(), rules);
  // A compaction (which reopens the data environment) keeps them in force.
  ASSERT_TRUE(store_->CompactData().ok());
  EXPECT_EQ(*store_->GetRetention(), rules);
  EXPECT_TRUE(Events(*store_, ann).empty());

  // Stored: a reopen without Options::retention applies them.
  Reopen();
  EXPECT_EQ(*store_->GetRetention(), rules);
  EXPECT_TRUE(Events(*store_, ann).empty());

  // Options::retention replaces them at open; a longer rule shows the
  // not-yet-swept event again (the sweep had not removed it).
  RetentionRules longer;
  longer.events["click"] = 30 * kDay;
  options_.retention = longer;
  Reopen();
  EXPECT_EQ(*store_->GetRetention(), longer);
  EXPECT_EQ(Events(*store_, ann).size(), 1u);
  options_.retention.reset();
  Reopen();
  EXPECT_EQ(*store_->GetRetention(), longer);

  // Invalid rules change nothing.
  RetentionRules bad;
  bad.events["click"] = 0;
  EXPECT_TRUE(store_->SetRetention(bad).IsInvalidArgument());
  bad.events.clear();
  bad.collections[""] = 5;
  EXPECT_TRUE(store_->SetRetention(bad).IsInvalidArgument());
  bad.collections.clear();
  bad.analytics = -1;
  EXPECT_TRUE(store_->SetRetention(bad).IsInvalidArgument());
  EXPECT_EQ(*store_->GetRetention(), longer);
}

TEST_F(RetentionTest, SweepRunsInBoundedBatchesWithBudgetStatsAndOneAuditEntry) {
  RetentionRules rules;
  rules.events["e"] = kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  WriteBatch batch;
  for (int i = 0; i < 2500; ++i) batch.AppendEvent(ann, Event{"e", kT0 - 2 * kDay + i, {}, {}});
  for (int i = 0; i < 10; ++i) batch.AppendEvent(ann, Event{"e", kT0 + i, {}, {}});
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(store_->Stats()->expired_pending, 2500u);
  const std::uint64_t audit_before = store_->VerifyAuditLog()->entries;

  auto swept = store_->Sweep(1500);  // budget: stops after 1500 rows
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 1500u);
  EXPECT_EQ(swept->batches, 2u);  // 1000 rows per transaction
  EXPECT_EQ(swept->pending, 1000u);
  EXPECT_EQ(store_->VerifyAuditLog()->entries, audit_before + 1);
  EXPECT_EQ(LastSweepAudit(*store_), (std::pair<std::int64_t, std::int64_t>{1500, 0}));

  swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->events_deleted, 1000u);
  EXPECT_EQ(swept->pending, 0u);
  auto stats = store_->Stats();
  EXPECT_EQ(stats->expired_pending, 0u);
  EXPECT_EQ(stats->expired_removed, 2500u);
  EXPECT_EQ(stats->events, 10u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 10u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 10u);
  EXPECT_EQ(Events(*store_, ann).size(), 10u);

  // Nothing left: no audit entry for an empty sweep.
  swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->events_deleted + swept->records_deleted + swept->analytics_deleted, 0u);
  EXPECT_EQ(store_->VerifyAuditLog()->entries, audit_before + 2);
  EXPECT_TRUE(store_->VerifyAuditLog()->intact);
}

TEST_F(RetentionTest, BudgetThatEndsInsideOneRuleLeavesTheOthersPending) {
  RetentionRules rules;
  rules.events["a"] = 1;
  rules.collections["c"] = 1;
  rules.analytics = 1;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"a", kT0 - 10, {}, {}}));
  SKV_ASSERT_OK(store_->Put(ann, "c", "k", "v"));
  now_ = kT0 + 10;
  auto swept = store_->Sweep(1);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->events_deleted, 1u);
  EXPECT_EQ(swept->pending, 2u);  // the record and the analytics row
  swept = store_->Sweep(10);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->records_deleted, 1u);
  EXPECT_EQ(swept->analytics_deleted, 1u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
}

TEST_F(RetentionTest, MaintenanceSweeps) {
  RetentionRules rules;
  rules.collections["c"] = 1000;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(store_->Put(ann, "c", "k", "v"));
  now_ = kT0 + 1000;
  EXPECT_EQ(store_->Stats()->records, 1u);
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->records, 0u);
  EXPECT_EQ(store_->Stats()->expired_removed, 1u);
}

TEST_F(RetentionTest, ErasurePurgeRemovesThePersonsTimeIndexEntries) {
  RetentionRules keep_long;  // events of "e" and records of "c" are indexed (long before they expire)
  keep_long.events["e"] = 365 * kDay;
  keep_long.collections["c"] = 365 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(keep_long));
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  for (int i = 0; i < 20; ++i) {
    SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"e", kT0 + i, {}, {}}));
    SKV_ASSERT_OK(store_->Put(ann, "c", "k" + std::to_string(i), "v"));
  }
  SKV_ASSERT_OK(store_->AppendEvent(bob, Event{"e", kT0, {}, {}}));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 41u);
  ASSERT_TRUE(store_->Erase(ann).ok());
  auto purged = store_->Purge(100000);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(purged->people_pending, 0u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 1u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 1u);
  // Rules that expire everything find nothing of the erased person.
  RetentionRules rules;
  rules.events["e"] = 1;
  rules.collections["c"] = 1;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  now_ = kT0 + kDay;
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->events_deleted, 1u);
  EXPECT_EQ(swept->records_deleted, 0u);
}

// Only events whose name has a rule get time index entries; a rule added
// later back-fills the index from the events already stored (skipping erased
// people), so the sweep removes old events as if the rule had always been.
TEST_F(RetentionTest, EventsAreIndexedOnlyUnderARuleAndARuleAddedLaterBackfillsTheIndex) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  const PersonId cem = MakePerson("cem@x.org");
  WriteBatch batch;
  for (int i = 0; i < 30; ++i) batch.AppendEvent(ann, Event{"page_view", kT0 - 3 * kDay + i, {}, {}});
  for (int i = 0; i < 10; ++i) batch.AppendEvent(ann, Event{"purchase", kT0 - 3 * kDay + i, {}, {}});
  for (int i = 0; i < 5; ++i) batch.AppendEvent(bob, Event{"page_view", kT0 - i, {}, {}});
  for (int i = 0; i < 7; ++i) batch.AppendEvent(cem, Event{"page_view", kT0 - 3 * kDay + i, {}, {}});
  SKV_ASSERT_OK(store_->Write(batch));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 0u);  // no rule: no index
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 0u);
  ASSERT_TRUE(store_->Erase(cem).ok());

  RetentionRules rules;
  rules.events["page_view"] = kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  // ann's 30 and bob's 5 page views; not the purchases, not erased cem's rows.
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 35u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 35u);
  EXPECT_EQ(store_->Stats()->expired_pending, 30u);
  SKV_ASSERT_OK(store_->AppendEvent(bob, Event{"page_view", kT0, {}, {}}));  // indexed as written
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 36u);

  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 30u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(Events(*store_, ann).size(), 10u);  // the purchases
  EXPECT_EQ(Events(*store_, bob).size(), 6u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 6u);

  // Changing an existing rule's age needs no back-fill; its entries serve.
  rules.events["page_view"] = 2 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 6u);
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

// Data format 4: records of a collection without a rule have no time index
// entry (their sealed payload carries their last-write time); a collection
// rule added later is back-filled from those payloads, so old records
// expire by their own write time, not the rule's.
TEST_F(RetentionTest, RecordsAreIndexedOnlyUnderARuleAndARuleAddedLaterBackfillsThemByTheirWriteTime) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  const PersonId cem = MakePerson("cem@x.org");
  now_ = kT0 - 3 * kDay;
  for (const char* k : {"o1", "o2", "o3"}) SKV_ASSERT_OK(store_->Put(ann, "orders", k, "old"));
  SKV_ASSERT_OK(store_->Put(ann, "notes", "n1", "no rule"));
  SKV_ASSERT_OK(store_->Put(cem, "orders", "c1", "erased"));
  now_ = kT0 - 1000;
  SKV_ASSERT_OK(store_->Put(bob, "orders", "b1", "recent"));
  ASSERT_TRUE(store_->Erase(cem).ok());
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 0u);  // no rule: no index
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 0u);

  now_ = kT0;
  RetentionRules rules;
  rules.collections["orders"] = kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  EXPECT_EQ(impl->backfill_unreadable_rows(), 0u);
  // ann's 3 orders and bob's 1; not the note, not erased cem's order.
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 4u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 4u);
  EXPECT_EQ(store_->Stats()->expired_pending, 3u);  // by their own write time
  EXPECT_TRUE(store_->Get(ann, "orders", "o1").status().IsNotFound());
  EXPECT_EQ(*store_->Get(bob, "orders", "b1"), "recent");
  EXPECT_EQ(*store_->Get(ann, "notes", "n1"), "no rule");
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 3u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 1u);

  // The rule removed: a new record is not indexed, and a rewrite drops the
  // entry its record had.
  SKV_ASSERT_OK(store_->SetRetention(RetentionRules{}));
  SKV_ASSERT_OK(store_->Put(ann, "orders", "o4", "new"));
  SKV_ASSERT_OK(store_->Put(bob, "orders", "b1", "rewritten"));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 0u);
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry_refs), 0u);
  // Added again two days on: both back-filled at kT0, both past the rule.
  now_ = kT0 + 2 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 2u);
  EXPECT_TRUE(store_->Get(ann, "orders", "o4").status().IsNotFound());
  EXPECT_TRUE(store_->Get(bob, "orders", "b1").status().IsNotFound());
  EXPECT_EQ(store_->Stats()->expired_pending, 2u);
  EXPECT_TRUE(test::VerifiesClean(*store_));
}

engine::StoreImpl* g_hook_store = nullptr;
PersonId g_hook_person;
int g_hook_calls = 0;

// SetRetention(rules) with `hook` on the test points; the hook writes for
// `person` through `impl` (g_hook_calls counts the points it saw).
Status SetRetentionWithHook(engine::StoreImpl* impl, const PersonId& person, void (*hook)(std::string_view),
                            const RetentionRules& rules) {
  g_hook_store = impl;
  g_hook_person = person;
  g_hook_calls = 0;
  util::SetTestPointHook(hook);
  Status set = impl->SetRetention(rules);
  util::SetTestPointHook(nullptr);
  return set;
}

// Between two back-fill batches (no lock held): a record put in the ruled
// collection.
void PutDuringBackfill(std::string_view name) {
  if (name != "retention.backfill.after_batch" || g_hook_calls++ != 0) return;
  EXPECT_TRUE(g_hook_store->Put(g_hook_person, "orders", "during", "v").ok());
}

// The records walk runs in bounded batches that writes interleave with; a
// record written meanwhile is indexed as written, a damaged row is skipped
// and counted, and other collections' records are never opened.
TEST_F(RetentionTest, RecordsWrittenDuringTheBackfillAreIndexedAndADamagedRecordIsSkipped) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  now_ = kT0 - 2 * kDay;
  WriteBatch batch;
  for (int i = 0; i < 2500; ++i) batch.Put(ann, Record{"orders", "k" + std::to_string(i), "v"});
  for (int i = 0; i < 300; ++i) batch.Put(ann, Record{"notes", "n" + std::to_string(i), "v"});
  SKV_ASSERT_OK(store_->Write(batch));
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  // Damage the sealed bytes of one of ann's "notes" (never opened: its
  // collection gains no rule) and of the first of ann's records: the first
  // in key order is an order or a note; damage the first order found.
  const std::string orders_hash = impl->context().CollectionHash("orders");
  SKV_ASSERT_OK(impl->data().Update([&](storage::WriteTxn& txn) -> Status {
    auto cursor = txn.OpenCursor(impl->tables().records);
    if (!cursor.ok()) return cursor.status();
    bool order_done = false, note_done = false;
    for (Status m = (*cursor)->Seek(ann.view()); m.ok() && (*cursor)->Valid() && !(order_done && note_done);
         m = (*cursor)->Next()) {
      const std::string key((*cursor)->key());
      const bool is_order = key.substr(PersonId::kSize, orders_hash.size()) == orders_hash;
      if (is_order ? order_done : note_done) continue;
      std::string row((*cursor)->value());
      row[row.size() - 20] = static_cast<char>(row[row.size() - 20] ^ 0x5a);
      if (Status p = txn.Put(impl->tables().records, key, row); !p.ok()) return p;
      (is_order ? order_done : note_done) = true;
    }
    return Status::OK();
  }));
  now_ = kT0;
  RetentionRules rules;
  rules.collections["orders"] = kDay;
  SKV_ASSERT_OK(SetRetentionWithHook(impl, bob, &PutDuringBackfill, rules));
  EXPECT_GE(g_hook_calls, 2);  // 2,500 orders: three batches of at most 1,000
  EXPECT_EQ(impl->backfill_unreadable_rows(), 1u);  // the order; the note was skipped by its key
  // 2,499 readable orders back-filled, bob's order indexed by its write.
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 2500u);
  EXPECT_EQ(store_->Stats()->expired_pending, 2499u);
  auto swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 2499u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(*store_->Get(bob, "orders", "during"), "v");
}

// Rules given in Options::retention at open record the back-fill; Open does
// not wait for it and the next Sweep finishes it before sweeping.
TEST_F(RetentionTest, ARuleGivenAtOpenIsBackfilledByTheNextSweep) {
  const PersonId ann = MakePerson("ann@x.org");
  WriteBatch batch;
  for (int i = 0; i < 1500; ++i) batch.AppendEvent(ann, Event{"e", kT0 - 2 * kDay + i, {}, {}});
  SKV_ASSERT_OK(store_->Write(batch));
  RetentionRules rules;
  rules.events["e"] = kDay;
  options_.retention = rules;
  Reopen();
  EXPECT_TRUE(Events(*store_, ann).empty());  // reads apply the rule at once
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 0u);  // back-fill not run yet
  auto swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 1500u);
  EXPECT_EQ(store_->Stats()->events, 0u);
}

// Between two back-fill batches (no lock held): a write of the ruled name.
void AppendDuringBackfill(std::string_view name) {
  if (name != "retention.backfill.after_batch" || g_hook_calls++ != 0) return;
  EXPECT_TRUE(g_hook_store->AppendEvent(g_hook_person, Event{"e", kT0 - 2 * kDay, {}, {}}).ok());
}

// Writes interleave with the back-fill's batches and are indexed as written,
// whichever side of the back-fill's cursor their keys fall; a damaged row is
// skipped and counted instead of failing SetRetention (and every Sweep).
TEST_F(RetentionTest, WritesDuringTheBackfillAreIndexedAndADamagedRowIsSkipped) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  WriteBatch batch;
  for (int i = 0; i < 2500; ++i) batch.AppendEvent(ann, Event{"e", kT0 - 2 * kDay + i, {}, {}});
  SKV_ASSERT_OK(store_->Write(batch));
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  // Damage the sealed bytes of ann's first event row.
  SKV_ASSERT_OK(impl->data().Update([&](storage::WriteTxn& txn) -> Status {
    auto cursor = txn.OpenCursor(impl->tables().events);
    if (!cursor.ok()) return cursor.status();
    if (Status m = (*cursor)->Seek(ann.view()); !m.ok()) return m;
    std::string key((*cursor)->key()), row((*cursor)->value());
    row[row.size() - 20] = static_cast<char>(row[row.size() - 20] ^ 0x5a);
    return txn.Put(impl->tables().events, key, row);
  }));
  RetentionRules rules;
  rules.events["e"] = kDay;
  SKV_ASSERT_OK(SetRetentionWithHook(impl, bob, &AppendDuringBackfill, rules));
  EXPECT_GE(g_hook_calls, 1);
  EXPECT_EQ(impl->backfill_unreadable_rows(), 1u);
  // 2,499 readable rows of ann back-filled, bob's event indexed by its write.
  EXPECT_EQ(TableEntries(*store_, &engine::DataTables::expiry), 2500u);
  auto swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 2500u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_TRUE(store_->RunMaintenance().ok());
}

// A sweep over a store where nothing expires reads one index entry per rule
// (the first one, which is not expired), commits nothing, and so touches at
// most depth pages per rule, whatever the store's size.
TEST_F(RetentionTest, SweepWhereNothingExpiresTouchesABoundedNumberOfPages) {
  RetentionRules rules;
  rules.events["page_view"] = 30 * kDay;
  rules.events["search"] = 30 * kDay;
  rules.collections["orders"] = 365 * kDay;
  rules.analytics = 730 * kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  constexpr int kPeople = 20, kEventsPerPerson = 1000, kRecordsPerPerson = 50;
  for (int p = 0; p < kPeople; ++p) {
    const PersonId id = MakePerson("p" + std::to_string(p) + "@x.org");
    WriteBatch batch;
    for (int i = 0; i < kEventsPerPerson; ++i) {
      batch.AppendEvent(id, Event{i % 2 == 0 ? "page_view" : "search", kT0 - i * 1000, {{"q", "x"}}, {"q"}});
    }
    for (int i = 0; i < kRecordsPerPerson; ++i) batch.Put(id, "orders", "o" + std::to_string(i), "v");
    SKV_ASSERT_OK(store_->Write(batch));
  }
  // The analytics rows materialised (a scan does that first), so the
  // analytics rule's seek finds the first of them.
  ASSERT_TRUE(store_->ScanAnalytics({})->status().ok());
  ASSERT_EQ(store_->Stats()->analytics_staged, 0u);
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  storage::TableStats expiry_stats, analytics_stats, refs_stats, events_stats, records_stats;
  SKV_ASSERT_OK(impl->data().View([&](storage::ReadTxn& txn) -> Status {
    for (auto [table, out] : {std::pair{impl->tables().expiry_refs, &refs_stats},
                              std::pair{impl->tables().events, &events_stats},
                              std::pair{impl->tables().records, &records_stats}}) {
      auto st = txn.Stats(table);
      if (!st.ok()) return st.status();
      *out = *st;
    }
    auto e = txn.Stats(impl->tables().expiry);
    if (!e.ok()) return e.status();
    expiry_stats = *e;
    auto a = txn.Stats(impl->tables().analytics);
    if (!a.ok()) return a.status();
    analytics_stats = *a;
    return Status::OK();
  }));
  const auto txn_before = impl->data().Info()->last_txn_id;

  auto swept = store_->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted + swept->records_deleted + swept->analytics_deleted, 0u);
  EXPECT_EQ(swept->batches, 0u);
  EXPECT_EQ(swept->seeks, 4u);         // one per rule
  EXPECT_EQ(swept->entries_read, 4u);  // the first entry of each rule, not expired
  EXPECT_EQ(impl->data().Info()->last_txn_id, txn_before);  // nothing written
  // Each seek reads root to leaf (depth pages), and the one entry read sits
  // on the leaf the seek landed on.
  const std::uint64_t pages = 3ull * expiry_stats.depth + analytics_stats.depth;
  std::cout << "[ measure ] time index: " << expiry_stats.entries << " entries, depth " << expiry_stats.depth
            << ", " << expiry_stats.leaf_pages << " leaf + " << expiry_stats.branch_pages
            << " branch pages; analytics: " << analytics_stats.entries << " rows, depth "
            << analytics_stats.depth << "; sweep with nothing expired: " << swept->seeks << " seeks, "
            << swept->entries_read << " entries read, <= " << pages << " pages touched\n"
            << "[ measure ] index cost: expiry " << expiry_stats.leaf_pages + expiry_stats.branch_pages
            << " + expiry_refs " << refs_stats.leaf_pages + refs_stats.branch_pages << " pages, vs events "
            << events_stats.leaf_pages + events_stats.branch_pages << " + records "
            << records_stats.leaf_pages + records_stats.branch_pages << " pages\n";
  EXPECT_LE(pages, 16u);
  EXPECT_GT(expiry_stats.leaf_pages + expiry_stats.branch_pages, 10 * pages);
}

// ---- crash in the middle of a sweep --------------------------------------------------

// Opens (creating) the store of `o`, adds one person with `old_events` "e"
// events two days old and `recent` at kT0, closes it; returns the person.
PersonId PersonWithEvents(const Options& o, int old_events, int recent) {
  auto store = Store::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return PersonId();
  const PersonId id = *(*store)->CreatePerson({{"email", "ann@x.org"}});
  WriteBatch batch;
  for (int i = 0; i < old_events; ++i) batch.AppendEvent(id, Event{"e", kT0 - 2 * kDay + i, {}, {}});
  for (int i = 0; i < recent; ++i) batch.AppendEvent(id, Event{"e", kT0 + i, {}, {}});
  SKV_EXPECT_OK((*store)->Write(batch));
  return id;
}

// A child that opens the store and sets `rules`, killed after its
// `batches`-th back-fill batch; whether it was.
bool SetRetentionKilledAfterBatch(const Options& o, const RetentionRules& rules, int batches) {
  return test::RunChildKilledAt("retention.backfill.after_batch", batches, [&] {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    (void)(*store)->SetRetention(rules);
  });
}

TEST(RetentionCrashTest, SweepCutShortByACrashResumesAndAuditsEverything) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  o.clock = [] { return kT0; };
  RetentionRules rules;
  rules.events["e"] = kDay;
  o.retention = rules;
  const PersonId ann = PersonWithEvents(o, 2500, 3);
  ASSERT_FALSE(HasFailure());
  o.retention.reset();  // the stored rules apply
  const bool killed = test::RunChildKilledAt("sweep.after_batch", 1, [&] {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    (void)(*store)->Sweep(100000);
  });
  ASSERT_TRUE(killed);

  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->expired_removed, 1000u);  // the first batch committed
  EXPECT_EQ(stats->expired_pending, 1500u);
  EXPECT_EQ(stats->events, 1503u);
  EXPECT_EQ(Events(**store, ann).size(), 3u);  // expired rows invisible throughout

  auto swept = (*store)->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 1500u);
  EXPECT_EQ(swept->pending, 0u);
  // The audit entry covers the crashed sweep's batch too.
  EXPECT_EQ(LastSweepAudit(**store), (std::pair<std::int64_t, std::int64_t>{2500, 0}));
  EXPECT_EQ((*store)->Stats()->expired_removed, 2500u);
  EXPECT_EQ((*store)->Stats()->events, 3u);
  EXPECT_TRUE((*store)->VerifyAuditLog()->intact);
  EXPECT_TRUE(test::VerifiesClean(**store));
}

// A back-fill cut short by a crash is stored with its resume point; the next
// Sweep finishes it before sweeping, so no old event escapes its new rule.
TEST(RetentionCrashTest, BackfillCutShortByACrashIsFinishedByTheNextSweep) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  o.clock = [] { return kT0; };
  const PersonId ann = PersonWithEvents(o, 2500, 0);
  ASSERT_FALSE(HasFailure());
  RetentionRules rules;
  rules.events["e"] = kDay;
  ASSERT_TRUE(SetRetentionKilledAfterBatch(o, rules, 1));

  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->GetRetention()->events.at("e"), kDay);  // the rules committed first
  EXPECT_EQ(TableEntries(**store, &engine::DataTables::expiry), 1000u);  // one back-fill batch
  EXPECT_TRUE(Events(**store, ann).empty());  // reads apply the rule at once
  auto swept = (*store)->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 2500u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ((*store)->Stats()->events, 0u);
  EXPECT_EQ(TableEntries(**store, &engine::DataTables::expiry), 0u);
  EXPECT_TRUE(test::VerifiesClean(**store));
}

// The same for the records walk (data format 4), which runs after the
// events walk when a rule for both is added at once: one crash lands in the
// events walk, the next (a SetRetention that resumes it) in the records
// walk, and the next Sweep finishes the records.
TEST(RetentionCrashTest, ARecordsBackfillCutShortByACrashIsFinishedByTheNextSweep) {
  test::TempDir dir;
  Options o = test::TestOptions(dir.Sub("s"));
  o.durability = Durability::kFullSync;
  std::int64_t now = kT0 - 2 * kDay;
  o.clock = [&now] { return now; };
  const PersonId ann = PersonWithEvents(o, 1500, 0);
  ASSERT_FALSE(HasFailure());
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    WriteBatch batch;
    for (int i = 0; i < 1500; ++i) batch.Put(ann, Record{"orders", "k" + std::to_string(i), "v"});
    SKV_ASSERT_OK((*store)->Write(batch));
  }
  now = kT0;
  RetentionRules rules;
  rules.events["e"] = kDay;
  rules.collections["orders"] = kDay;
  for (int batches = 1; batches <= 2; ++batches) {  // events batch 1; then events 2, records 1
    SCOPED_TRACE("killed after back-fill batch " + std::to_string(batches));
    ASSERT_TRUE(SetRetentionKilledAfterBatch(o, rules, batches));
  }
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->Get(ann, "orders", "k1").status().IsNotFound());  // reads apply the rule at once
  auto swept = (*store)->Sweep(100000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->events_deleted, 1500u);
  EXPECT_EQ(swept->records_deleted, 1500u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ((*store)->Stats()->records, 0u);
  EXPECT_EQ(TableEntries(**store, &engine::DataTables::expiry), 0u);
  EXPECT_TRUE(test::VerifiesClean(**store));
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

// Outside audit 38b, F3: a budgeted sweep (what maintenance runs) always
// began with the event rules, so while an event stream expired more rows a
// round than the budget, records past their own expiry and expired feed
// notices never left the disk. The phases now take turns to go first.
TEST_F(RetentionTest, ABudgetedSweepReachesRecordsAndNoticesBehindAnEventBacklog) {
  RetentionRules rules;
  rules.events["page_view"] = kDay;
  rules.feed = kDay;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 10; ++i) {
    Record own;
    own.collection = "notes";
    own.key = "n" + std::to_string(i);
    own.value = "note";
    own.metadata.expires_ms = kT0 + 1;
    WriteBatch b;
    b.Put(ann, own);
    SKV_ASSERT_OK(store_->Write(b));  // a notice each, too
  }
  now_ = kT0 + 2 * kDay;  // the records and the notices are expired
  std::uint64_t records = 0;
  std::uint64_t notices = 0;
  for (int round = 0; round < 3; ++round) {
    WriteBatch views;
    for (int i = 0; i < 300; ++i) {
      views.AppendEvent(ann, Event{"page_view", now_ - 2 * kDay - round * 1000 - i, {}, {}});
    }
    SKV_ASSERT_OK(store_->Write(views));
    auto swept = store_->Sweep(200);
    ASSERT_TRUE(swept.ok()) << swept.status().ToString();
    records += swept->records_deleted;
    notices += swept->notices_deleted;
  }
  EXPECT_EQ(records, 10u) << "records past their own expiry stayed behind the event backlog";
  EXPECT_GT(notices, 0u) << "expired notices stayed behind the event backlog";
}

}  // namespace
}  // namespace shredkv
