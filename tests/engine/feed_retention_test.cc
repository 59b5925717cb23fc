// The change feed's retention rule (RetentionRules::feed; review of stop
// 29, L7: the outbox had no bound, so an application that never reads the
// feed kept every notice — person IDs and what changed — for good).
#include <gtest/gtest.h>

#include <atomic>

#include "codec/sealed.h"
#include "engine/retention.h"
#include "engine/store_impl.h"
#include "test_util.h"
#include "util/coding.h"

namespace shredkv {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;
constexpr std::int64_t kHour = 3'600'000;

class FeedRetentionTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.clock = [this] { return now_.load(); };
    Reopen();
  }

  // One rectification notice for `id`, written at the current clock.
  void Notice(const PersonId& id, const std::string& city) {
    Rectification r;
    r.profile.set = {{"city", city}};
    SKV_ASSERT_OK(store_->Rectify(id, r));
  }

  std::vector<std::uint64_t> Cursors() {
    auto f = store_->ReadFeed(1000);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    std::vector<std::uint64_t> out;
    if (f.ok()) {
      for (const auto& n : *f) out.push_back(n.cursor);
    }
    return out;
  }

  void SetFeedRule(std::int64_t max_age_ms) {
    RetentionRules rules;
    rules.feed = max_age_ms;
    SKV_ASSERT_OK(store_->SetRetention(rules));
  }

  std::atomic<std::int64_t> now_{kT0};
};

TEST_F(FeedRetentionTest, NoticesPastTheRuleAreHiddenAtOnceAndSweptOldestFirst) {
  const PersonId ann = MakePerson("ann@x.org");
  Notice(ann, "Berlin");  // cursor 1 at kT0
  now_ = kT0 + kHour;
  Notice(ann, "Hamburg");  // cursor 2 at kT0 + 1 h
  SetFeedRule(2 * kHour);
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{1, 2}));

  now_ = kT0 + 2 * kHour;  // cursor 1 is exactly 2 h old: expired
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store_->Stats()->expired_pending, 1u);
  // The export leaves it out as ReadFeed does.
  std::vector<std::uint64_t> exported;
  for (auto it = store_->Export(ann); it->Valid(); it->Next()) {
    if (it->value().kind == ExportItem::Kind::kNotice) exported.push_back(it->value().notice.cursor);
  }
  EXPECT_EQ(exported, (std::vector<std::uint64_t>{2}));

  auto swept = store_->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->notices_deleted, 1u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  // Cursor 1 is gone; lifting the rule does not bring it back.
  SetFeedRule(0);
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{2}));
  // A consumer that acknowledged nothing can still acknowledge what it read.
  SKV_ASSERT_OK(store_->AckFeed(2));
  EXPECT_TRUE(Cursors().empty());
}

TEST_F(FeedRetentionTest, SweepingTheNewestNoticesNeverIssuesTheirCursorsAgain) {
  const PersonId ann = MakePerson("ann@x.org");
  Notice(ann, "Berlin");
  Notice(ann, "Hamburg");
  Notice(ann, "Bremen");  // cursors 1..3, none acknowledged
  SetFeedRule(kHour);
  now_ = kT0 + kHour;
  const std::uint64_t removed_before = store_->Stats()->expired_removed;
  EXPECT_EQ(store_->Stats()->expired_pending, 3u);
  auto swept = store_->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->notices_deleted, 3u);
  EXPECT_TRUE(Cursors().empty());
  // Outside audit 39a, F5: what left expired_pending shows in expired_removed.
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  EXPECT_EQ(store_->Stats()->expired_removed, removed_before + 3);
  // A consumer that read cursor 3 before the sweep must not be handed a new
  // notice under cursor 3 (it would take it for one it saw): the next is 4,
  // and the gap after its last acknowledged cursor (0) shows what expired.
  Notice(ann, "Kiel");
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{4}));
  // Also across a reopen (the floor is stored).
  Reopen();
  Notice(ann, "Lübeck");
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{4, 5}));
  // Acknowledging a cursor the sweep deleted is fine.
  SKV_ASSERT_OK(store_->AckFeed(2));
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{4, 5}));
}

TEST_F(FeedRetentionTest, ABudgetStopsTheSweepAndCountsWhatIsLeft) {
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 5; ++i) Notice(ann, "city" + std::to_string(i));
  SetFeedRule(kHour);
  now_ = kT0 + kHour;
  auto first = store_->Sweep(2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->notices_deleted, 2u);
  EXPECT_EQ(first->pending, 3u);
  auto rest = store_->Sweep(100);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->notices_deleted, 3u);
  EXPECT_EQ(rest->pending, 0u);
}

// Reads hide exactly the expired prefix the sweep deletes and the counts
// count (review of stop 30, F2: reads hid every expired notice, so a notice
// behind a younger one — the clock went back — was hidden, counted by no
// one, read again once the rule was lifted, and deleted unread by an
// acknowledgement of a later cursor).
TEST_F(FeedRetentionTest, ANoticeBehindAYoungerOneStaysReadableUntilThePrefixReachesIt) {
  const PersonId ann = MakePerson("ann@x.org");
  now_ = kT0 + 10 * kHour;
  Notice(ann, "Berlin");  // cursor 1 at +10 h
  now_ = kT0;              // the clock went back
  Notice(ann, "Hamburg");  // cursor 2 at +0 h
  SetFeedRule(5 * kHour);
  now_ = kT0 + 6 * kHour;  // cursor 2 is 6 h old, but behind cursor 1, which is not expired
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  auto swept = store_->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->notices_deleted, 0u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{1, 2}));

  now_ = kT0 + 15 * kHour;  // both expired: one prefix
  EXPECT_TRUE(Cursors().empty());
  EXPECT_EQ(store_->Stats()->expired_pending, 2u);
  Notice(ann, "Kiel");  // cursor 3, young
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{3}));
  swept = store_->Sweep(100);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->notices_deleted, 2u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{3}));
}

TEST_F(FeedRetentionTest, TheSweepDeletesTheOldestFirstWithTheBudgetTheRowsLeave) {
  RetentionRules rules;
  rules.events["view"] = kHour;
  rules.feed = kHour;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 3; ++i) SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"view", kT0 + i, {}, {}}));
  for (int i = 0; i < 5; ++i) Notice(ann, "city" + std::to_string(i));  // cursors 1..5
  now_ = kT0 + 2 * kHour;
  auto first = store_->Sweep(5);  // the three events first, then two notices
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->events_deleted, 3u);
  EXPECT_EQ(first->notices_deleted, 2u);
  EXPECT_EQ(first->pending, 3u);
  rules.feed = 0;  // lift the rule: what the sweep left is readable again, the oldest two are gone
  SKV_ASSERT_OK(store_->SetRetention(rules));
  EXPECT_EQ(Cursors(), (std::vector<std::uint64_t>{3, 4, 5}));
}

// A stored rules row with a feed field that is zero, negative or followed
// by more bytes is damage: one encoding a value (a zero feed is written as
// no field).
TEST_F(FeedRetentionTest, AMalformedStoredFeedRuleIsCorruption) {
  auto& impl = *dynamic_cast<engine::StoreImpl*>(store_.get());
  for (const std::int64_t feed : {std::int64_t{0}, std::int64_t{-5}}) {
    RetentionRules rules;
    rules.feed = kHour;
    SKV_ASSERT_OK(impl.data().Update([&](storage::WriteTxn& txn) {
      return engine::Retention::StoreRules(txn, impl.tables().meta, rules);
    }));
    // Rewrite the trailing feed field by hand.
    SKV_ASSERT_OK(impl.data().Update([&](storage::WriteTxn& txn) -> Status {
      std::string payload;
      if (Status r = codec::ReadPlain(txn, impl.tables().meta, codec::TableId::kDataMeta, "retention", &payload); !r.ok()) {
        return r;
      }
      payload.resize(payload.size() - 8);
      util::PutFixed64BE(&payload, util::OrderedFromSigned(feed));
      std::string row;
      codec::SealPlain(codec::TableId::kDataMeta, "retention", payload, &row);
      return txn.Put(impl.tables().meta, "retention", row);
    }));
    Status s = impl.data().View([&](storage::ReadTxn& txn) {
      return engine::Retention::Load(txn, impl.tables().meta).status();
    });
    EXPECT_TRUE(s.IsCorruption()) << feed << ": " << s.ToString();
  }
}

TEST_F(FeedRetentionTest, TheRuleIsStoredAndANegativeAgeIsRefused) {
  RetentionRules rules;
  rules.events["page_view"] = kHour;
  rules.feed = 30 * 24 * kHour;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  Reopen();
  auto stored = store_->GetRetention();
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, rules);
  RetentionRules negative;
  negative.feed = -1;
  EXPECT_TRUE(store_->SetRetention(negative).IsInvalidArgument());
  EXPECT_EQ(*store_->GetRetention(), rules);
  // Rules without a feed rule read back without one.
  rules.feed = 0;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  Reopen();
  EXPECT_EQ(*store_->GetRetention(), rules);
}

TEST_F(FeedRetentionTest, RunMaintenanceSweepsExpiredNotices) {
  const PersonId ann = MakePerson("ann@x.org");
  Notice(ann, "Berlin");
  SetFeedRule(kHour);
  now_ = kT0 + kHour;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  SetFeedRule(0);
  EXPECT_TRUE(Cursors().empty());
}

}  // namespace
}  // namespace shredkv
