// Partial erasure (design §6, issue 5): every registered category other than
// "general" has a key of its own per person; EraseCategory shreds one of them
// with the levels, receipts, audit and purge of a whole-person erasure, and
// leaves the person's other data intact.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <limits>
#include <thread>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "engine/store_impl.h"
#include "storage/environment.h"
#include "test_util.h"
#include "util/test_point.h"

namespace shredkv {
namespace {

Options CategoryOptions(Options o) {
  o.categories = {"location", "contact", "payment"};
  o.event_categories = {{"gps_ping", "location"}, {"email_opened", "contact"}};
  o.collection_categories = {{"addresses", "location"}, {"cards", "payment"}};
  o.attribute_categories = {{"home_city", "location"}, {"phone", "contact"}};
  return o;
}

Event Ping(std::int64_t ts, double lat) { return Event{"gps_ping", ts, {{"lat", lat}, {"device", "d1"}}, {"device"}, {}}; }
Event View(std::int64_t ts) { return Event{"page_view", ts, {{"url", "/home"}, {"ms", 12}}, {"url"}, {}}; }

class CategoryErasureTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = CategoryOptions(test::TestOptions(dir_.Sub("store")));
    Reopen();
  }

  // A person with data in general, location, contact and payment.
  PersonId MakeRichPerson(const std::string& email) {
    PersonId id = MakePerson(email, {{"name", "Ann"}, {"home_city", "Lyon"}, {"phone", "+33 1 23"}});
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(store_->AppendEvent(id, Ping(1000 + i, 45.7 + i)).ok());
      EXPECT_TRUE(store_->AppendEvent(id, View(2000 + i)).ok());
    }
    EXPECT_TRUE(store_->Put(id, "addresses", "home", "1 rue de la Paix").ok());
    EXPECT_TRUE(store_->Put(id, "cards", "visa", "4111").ok());
    EXPECT_TRUE(store_->Put(id, "notes", "n1", "likes tea").ok());
    return id;
  }

  // The keys of the `analytics` table itself (materialised rows).
  std::set<std::string> RawAnalyticsKeys() {
    std::set<std::string> keys;
    auto& impl = *dynamic_cast<engine::StoreImpl*>(store_.get());
    SKV_EXPECT_OK(impl.data().View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(impl.tables().analytics);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      Status m = c.SeekToFirst();
      for (; m.ok() && c.Valid(); m = c.Next()) keys.emplace(c.key());
      return m;
    }));
    return keys;
  }

  std::vector<StoredEvent> Events(const PersonId& id) {
    std::vector<StoredEvent> out;
    auto it = store_->ScanEvents(id, {});
    for (; it->Valid(); it->Next()) out.push_back(it->value());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }

  engine::StoreImpl& impl() { return *dynamic_cast<engine::StoreImpl*>(store_.get()); }

  // The key slot that seals the person's "addresses/home" record.
  std::uint32_t LocationSlot(const PersonId& id) {
    auto ks = impl().key_store().GetDek(id, 0);
    EXPECT_TRUE(ks.ok());
    std::uint32_t slot = 0;
    Status s = impl().data().View([&](storage::ReadTxn& txn) -> Status {
      auto cursor = txn.OpenCursor(impl().tables().events);
      if (!cursor.ok()) return cursor.status();
      auto& c = **cursor;
      for (Status m = c.Seek(id.view()); m.ok() && c.Valid(); m = c.Next()) {
        std::uint32_t row_slot = 0;
        if (Status h = codec::PersonRowSlot(c.value(), &row_slot); !h.ok()) return h;
        if (row_slot != 0) {
          slot = row_slot;
          break;
        }
      }
      return Status::OK();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return slot;
  }
};

// Issue 16 (9): Store::Put on an existing record moved it to the
// collection's category (here `general`), so erasing its own category left it
// readable.
TEST_F(CategoryErasureTest, AnUpdateKeepsTheRecordsCategoryAndItsErasureReachesIt) {
  PersonId id = MakePerson("ann@x.org");
  WriteBatch batch;
  batch.Put(id, "notes", "card-hint", "ends in 4242", "payment");
  SKV_ASSERT_OK(store_->Write(batch));
  SKV_ASSERT_OK(store_->Put(id, "notes", "card-hint", "ends in 1881"));  // no category: keeps payment
  SKV_ASSERT_OK(store_->Put(id, "notes", "plain", "likes tea"));         // new: the collection's (general)
  auto r = store_->Get(id, "notes", "card-hint");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "ends in 1881");
  ASSERT_TRUE(store_->EraseCategory(id, "payment", {}).ok());
  EXPECT_TRUE(store_->Get(id, "notes", "card-hint").status().IsNotFound());
  auto plain = store_->Get(id, "notes", "plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "likes tea");
  // An update that names a category moves the record there.
  SKV_ASSERT_OK(store_->Put(id, "notes", "plain", "likes coffee"));
  WriteBatch move;
  move.Put(id, "notes", "plain", "likes coffee", "contact");
  SKV_ASSERT_OK(store_->Write(move));
  ASSERT_TRUE(store_->EraseCategory(id, "contact", {}).ok());
  EXPECT_TRUE(store_->Get(id, "notes", "plain").status().IsNotFound());
}

// Found by stop 34's campaign of fuzz_store_model: deleting a record whose
// category was erased (NotFound for every read) wrote a "record.delete"
// notice, telling the feed's recipients of a deletion that changed nothing
// they could see. Such a record is absent for a delete too.
TEST_F(CategoryErasureTest, DeletingARecordErasedWithItsCategoryWritesNoNotice) {
  PersonId id = MakePerson("ann@x.org");
  WriteBatch batch;
  batch.Put(id, "notes", "card-hint", "ends in 4242", "payment");
  batch.Put(id, "notes", "plain", "likes tea");
  SKV_ASSERT_OK(store_->Write(batch));
  ASSERT_TRUE(store_->EraseCategory(id, "payment", {}).ok());
  auto before = store_->ReadFeed(100);
  ASSERT_TRUE(before.ok());
  SKV_ASSERT_OK(store_->Delete(id, "notes", "card-hint"));
  auto after = store_->ReadFeed(100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), before->size()) << "a notice for a record every read answers NotFound for";
  EXPECT_TRUE(store_->Get(id, "notes", "card-hint").status().IsNotFound());
  // A record of another category is deleted with its notice, as before.
  SKV_ASSERT_OK(store_->Delete(id, "notes", "plain"));
  after = store_->ReadFeed(100);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), before->size() + 1);
  EXPECT_EQ(after->back().names, (std::vector<std::string>{"record.delete"}));
  EXPECT_TRUE(store_->Get(id, "notes", "plain").status().IsNotFound());
  SKV_ASSERT_OK(store_->Verify().status());
}

TEST_F(CategoryErasureTest, ErasingOneCategoryLeavesTheOthersIntact) {
  PersonId ann = MakeRichPerson("ann@x.org");
  PersonId bob = MakeRichPerson("bob@x.org");

  auto receipt = store_->EraseCategory(ann, "location", EraseOptions{"loc-1", false, AnalyticsOnErase::kKeep});
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_EQ(receipt->category, "location");
  EXPECT_EQ(receipt->request_id, "loc-1");
  EXPECT_EQ(receipt->people, 1u);
  EXPECT_EQ(receipt->audit_hash.size(), 64u);

  // Location items are gone for Ann: events, record, profile attribute.
  auto events = Events(ann);
  ASSERT_EQ(events.size(), 5u);
  for (const StoredEvent& e : events) EXPECT_EQ(e.name, "page_view");
  EXPECT_TRUE(store_->Get(ann, "addresses", "home").status().IsNotFound());
  auto profile = store_->GetProfile(ann);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->count("home_city"), 0u);
  // Everything else of Ann is intact.
  EXPECT_EQ(profile->at("name").as_string(), "Ann");
  EXPECT_EQ(profile->at("phone").as_string(), "+33 1 23");
  EXPECT_EQ(*store_->Get(ann, "cards", "visa"), "4111");
  EXPECT_EQ(*store_->Get(ann, "notes", "n1"), "likes tea");
  EXPECT_EQ(*store_->Resolve({"email", "ann@x.org"}), ann);
  // Bob's location data is untouched.
  EXPECT_EQ(Events(bob).size(), 10u);
  EXPECT_EQ(*store_->Get(bob, "addresses", "home"), "1 rue de la Paix");
  EXPECT_EQ(store_->GetProfile(bob)->at("home_city").as_string(), "Lyon");

  // The export holds no location item of Ann.
  int exported_events = 0;
  auto it = store_->Export(ann);
  for (; it->Valid(); it->Next()) {
    const ExportItem& item = it->value();
    if (item.kind == ExportItem::Kind::kEvent) {
      ++exported_events;
      EXPECT_NE(item.event.category, "location");
    }
    if (item.kind == ExportItem::Kind::kRecord) {
      EXPECT_NE(item.record.collection, "addresses");
    }
    if (item.kind == ExportItem::Kind::kProfile) {
      EXPECT_EQ(item.profile.count("home_city"), 0u);
    }
  }
  ASSERT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(exported_events, 5);

  // The receipt can be looked up, and a notice tells downstream recipients.
  auto again = store_->GetErasure("loc-1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->category, "location");
  bool noticed = false;
  auto feed = store_->ReadFeed(1000);
  ASSERT_TRUE(feed.ok());
  for (const Notice& n : *feed) {
    if (n.kind == NoticeKind::kErasure && n.person == ann) {
      noticed = std::find(n.names.begin(), n.names.end(), "category.location") != n.names.end();
    }
  }
  EXPECT_TRUE(noticed);
  auto stats = store_->Stats();
  EXPECT_EQ(stats->erased_categories, 1u);
  EXPECT_EQ(stats->erased, 0u);
  auto verify = store_->Verify();
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->problem_count, 0u) << (verify->problems.empty() ? "" : verify->problems[0]);
}

// A rule added after a category erasure back-fills the index from the rows
// that can still be read: the erased category's rows (awaiting purge) are
// skipped, another person's rows of that category are indexed.
TEST_F(CategoryErasureTest, RuleAddedAfterACategoryErasureSkipsTheShreddedRows) {
  PersonId ann = MakeRichPerson("ann@x.org");
  PersonId bob = MakeRichPerson("bob@x.org");
  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  RetentionRules keep;
  keep.events["gps_ping"] = std::numeric_limits<std::int64_t>::max();
  for (const char* c : {"addresses", "cards", "notes"}) keep.collections[c] = std::numeric_limits<std::int64_t>::max();
  SKV_ASSERT_OK(store_->SetRetention(keep));
  EXPECT_EQ(impl().backfill_unreadable_rows(), 0u);
  std::uint64_t entries = 0;
  SKV_ASSERT_OK(impl().data().View([&](storage::ReadTxn& txn) -> Status {
    auto n = txn.Count(impl().tables().expiry);
    if (!n.ok()) return n.status();
    entries = *n;
    return Status::OK();
  }));
  // bob's 5 pings and 3 records, ann's 2 records outside the erased
  // category: both walks (events, then records) skip the shredded rows.
  EXPECT_EQ(entries, 5u + 3u + 2u);
  EXPECT_EQ(Events(bob).size(), 10u);
}

TEST_F(CategoryErasureTest, LevelsGoFromLogicalToCryptographicToPurged) {
  PersonId ann = MakeRichPerson("ann@x.org");
  // Rules (that expire nothing) for the location pings and the records:
  // their time index entries, back-filled from the rows sealed under the
  // category key, must go with the rows at purge.
  RetentionRules keep;
  keep.events["gps_ping"] = std::numeric_limits<std::int64_t>::max();
  for (const char* c : {"addresses", "cards", "notes"}) keep.collections[c] = std::numeric_limits<std::int64_t>::max();
  SKV_ASSERT_OK(store_->SetRetention(keep));
  const std::uint64_t events_before = store_->Stats()->events;
  const std::uint64_t records_before = store_->Stats()->records;
  auto index_entries = [&] {
    std::uint64_t n = 0, refs = 0;
    EXPECT_TRUE(impl().data().View([&](storage::ReadTxn& txn) -> Status {
      auto a = txn.Count(impl().tables().expiry);
      auto b = txn.Count(impl().tables().expiry_refs);
      if (!a.ok()) return a.status();
      if (!b.ok()) return b.status();
      n = *a;
      refs = *b;
      return Status::OK();
    }).ok());
    EXPECT_EQ(n, refs);
    return n;
  };
  const std::uint64_t index_before = index_entries();
  EXPECT_EQ(index_before, 5u + 3u);  // 5 pings, 3 records
  auto receipt = store_->EraseCategory(ann, "location");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_EQ(receipt->level, ErasureLevel::kLogical);
  EXPECT_EQ(store_->Stats()->pending_purge, 1u);

  ASSERT_TRUE(store_->RotateEpoch().ok());
  EXPECT_EQ(store_->GetErasure(receipt->request_id)->level, ErasureLevel::kCryptographic);

  auto purge = store_->Purge(1000000);
  ASSERT_TRUE(purge.ok()) << purge.status().ToString();
  EXPECT_EQ(purge->people_purged, 1u);
  EXPECT_EQ(purge->rows_deleted, 5u + 1u + 1u);  // 5 pings, 1 address, 1 profile row
  EXPECT_EQ(store_->GetErasure(receipt->request_id)->level, ErasureLevel::kPurged);
  EXPECT_EQ(store_->Stats()->events, events_before - 5);
  EXPECT_EQ(store_->Stats()->records, records_before - 1);
  // The retention index entries of the purged rows went with them.
  EXPECT_EQ(index_entries(), index_before - 6);
  EXPECT_EQ(store_->Stats()->pending_purge, 0u);
  // Purged, the rest is still intact and verifies clean.
  EXPECT_EQ(Events(ann).size(), 5u);
  EXPECT_EQ(store_->GetProfile(ann)->at("phone").as_string(), "+33 1 23");
  EXPECT_EQ(store_->Verify()->problem_count, 0u);
  EXPECT_TRUE(store_->VerifyAuditLog()->intact);
}

TEST_F(CategoryErasureTest, NewDataInAnErasedCategoryGetsANewKey) {
  PersonId ann = MakeRichPerson("ann@x.org");
  const std::uint32_t old_slot = LocationSlot(ann);
  ASSERT_NE(old_slot, 0u);
  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  // Erasing it again with nothing new written: Erased.
  EXPECT_TRUE(store_->EraseCategory(ann, "location").status().IsErased());

  SKV_ASSERT_OK(store_->AppendEvent(ann, Ping(5000, 1.5)));
  SKV_ASSERT_OK(store_->PatchProfile(ann, ProfilePatch{{{"home_city", "Nice"}}, {}}));
  auto events = Events(ann);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events.back().name, "gps_ping");
  EXPECT_EQ(store_->GetProfile(ann)->at("home_city").as_string(), "Nice");
  // The new key is another slot; the old one stays fenced.
  auto old_key = impl().key_store().GetDek(ann, old_slot);
  EXPECT_TRUE(old_key.status().IsNotFound());
  // A second erasure of the category shreds the new key too.
  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  EXPECT_EQ(Events(ann).size(), 5u);
  EXPECT_EQ(store_->GetProfile(ann)->count("home_city"), 0u);
  EXPECT_EQ(store_->Stats()->erased_categories, 2u);
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_EQ(store_->Verify()->problem_count, 0u);
}

TEST_F(CategoryErasureTest, AnalyticsRowsOfTheCategoryFollowTheMode) {
  PersonId ann = MakeRichPerson("ann@x.org");
  const AnonymousId anon = store_->GetPerson(ann)->anon_id;
  auto count_rows = [&](const std::string& name, bool with_ann_anon) {
    int n = 0;
    auto it = store_->ScanAnalytics(AnalyticsQuery{});
    for (; it->Valid(); it->Next()) {
      if (it->value().name == name && (it->value().anon_id == anon) == with_ann_anon) ++n;
    }
    EXPECT_TRUE(it->status().ok());
    return n;
  };
  ASSERT_EQ(count_rows("gps_ping", true), 5);
  ASSERT_TRUE(store_->EraseCategory(ann, "location", EraseOptions{"", false, AnalyticsOnErase::kUnlink}).ok());
  // Unlinked: the rows remain, under fresh anonymous IDs.
  EXPECT_EQ(count_rows("gps_ping", true), 0);
  EXPECT_EQ(count_rows("gps_ping", false), 5);
  EXPECT_EQ(count_rows("page_view", true), 5);  // other categories keep their link

  SKV_ASSERT_OK(store_->Put(ann, "cards", "mc", "5500"));
  SKV_ASSERT_OK(store_->AppendEvent(ann, Event{"email_opened", 7000, {{"campaign", "c1"}}, {"campaign"}, {}}));
  ASSERT_EQ(count_rows("email_opened", true), 1);
  ASSERT_TRUE(store_->EraseCategory(ann, "contact", EraseOptions{"", false, AnalyticsOnErase::kDelete}).ok());
  EXPECT_EQ(count_rows("email_opened", true) + count_rows("email_opened", false), 0);
  EXPECT_EQ(count_rows("page_view", true), 5);
  EXPECT_EQ(store_->GetProfile(ann)->count("phone"), 0u);
}

// Outside audit 29b F5: in kKeep mode a category erasure left the
// category's analytics rows under the person's anonymous ID, which the
// living person's export shows: the erased category's fields stayed linked
// to them. The rows now get one fresh anonymous ID of their own: kept
// together (what kKeep keeps), linked to no one — at new row ids, so no key
// ties them to their old bytes (review of stop 29), and rows still staged
// stay staged (re-sealed).
TEST_F(CategoryErasureTest, AKeptCategorysAnalyticsRowsGetAnAnonymousIdOfTheirOwn) {
  for (const bool materialised : {false, true}) {
    SCOPED_TRACE(materialised ? "rows materialised before the erasure" : "rows still staged");
    const std::string tag = materialised ? "m" : "s";
    options_.directory = dir_.Sub("store-" + tag);  // a store of its own
    Reopen();
    PersonId ann = MakeRichPerson("ann-" + tag + "@x.org");
    PersonId bob = MakeRichPerson("bob-" + tag + "@x.org");
    const AnonymousId ann_anon = store_->GetPerson(ann)->anon_id;
    const AnonymousId bob_anon = store_->GetPerson(bob)->anon_id;
    // name → anonymous ID → rows (a scan materialises what is staged).
    auto rows = [&] {
      std::map<std::string, std::map<std::string, int>> out;
      auto it = store_->ScanAnalytics(AnalyticsQuery{});
      for (; it->Valid(); it->Next()) ++out[it->value().name][it->value().anon_id.ToHex()];
      EXPECT_TRUE(it->status().ok()) << it->status().ToString();
      return out;
    };
    auto staged = [&] { return store_->Stats()->analytics_staged; };
    std::set<std::string> keys_before;
    if (materialised) {
      ASSERT_EQ(rows()["gps_ping"][ann_anon.ToHex()], 5);
      ASSERT_EQ(staged(), 0u);
      keys_before = RawAnalyticsKeys();
    } else {
      ASSERT_GE(staged(), 20u);  // both people's pings and views
    }
    const std::uint64_t staged_before = staged();
    ASSERT_TRUE(store_->EraseCategory(ann, "location", EraseOptions{"loc-keep-" + tag, false, AnalyticsOnErase::kKeep})
                    .ok());
    EXPECT_EQ(staged(), staged_before) << "the erasure moved staged rows";
    if (materialised) {
      std::set<std::string> kept_keys;
      for (const std::string& k : RawAnalyticsKeys()) {
        if (!keys_before.count(k)) kept_keys.insert(k);
      }
      EXPECT_EQ(kept_keys.size(), 5u) << "the kept rows are at new row ids";
    }
    for (int pass = 0; pass < 2; ++pass) {  // as erased, then after the purge and a reopen
      auto r = rows();
      EXPECT_EQ(r["gps_ping"].count(ann_anon.ToHex()), 0u) << "an erased category's row still names the person";
      EXPECT_EQ(r["gps_ping"][bob_anon.ToHex()], 5);
      r["gps_ping"].erase(bob_anon.ToHex());
      ASSERT_EQ(r["gps_ping"].size(), 1u) << "the kept rows share one anonymous ID";
      EXPECT_EQ(r["gps_ping"].begin()->second, 5);
      EXPECT_EQ(r["page_view"][ann_anon.ToHex()], 5);  // the rest of the person's rows keep theirs
      ASSERT_TRUE(store_->Purge(1000000).ok());
      Reopen();
    }
    EXPECT_EQ(store_->Verify()->problem_count, 0u);
  }
}

TEST_F(CategoryErasureTest, RefusesWhatItCannotErase) {
  PersonId ann = MakeRichPerson("ann@x.org");
  PersonId bare = MakePerson("bare@x.org", {{"name", "B"}});
  EXPECT_TRUE(store_->EraseCategory(ann, "general").status().IsInvalidArgument());
  EXPECT_TRUE(store_->EraseCategory(ann, "unknown").status().IsInvalidArgument());
  EXPECT_TRUE(store_->EraseCategory(ann, "location", EraseOptions{"", true, AnalyticsOnErase::kKeep})
                  .status()
                  .IsInvalidArgument());
  EXPECT_TRUE(store_->EraseCategory(bare, "location").status().IsNotFound());
  ASSERT_TRUE(store_->EraseCategory(ann, "payment", EraseOptions{"req-a", false, AnalyticsOnErase::kKeep}).ok());
  EXPECT_TRUE(store_->EraseCategory(ann, "location", EraseOptions{"req-a", false, AnalyticsOnErase::kKeep})
                  .status()
                  .IsAlreadyExists());
  // The failed attempts changed nothing.
  EXPECT_EQ(*store_->Get(ann, "addresses", "home"), "1 rue de la Paix");
  ASSERT_TRUE(store_->Erase(ann).ok());
  EXPECT_TRUE(store_->EraseCategory(ann, "location").status().IsErased());
  // A whole-person erasure after a category erasure purges everything.
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_EQ(store_->Stats()->pending_purge, 0u);
  EXPECT_EQ(store_->Stats()->events, 0u);
  EXPECT_EQ(store_->Stats()->records, 0u);
  EXPECT_EQ(store_->Verify()->problem_count, 0u);
}

TEST_F(CategoryErasureTest, WaitsForLeasesAndChangesNothingOnTimeout) {
  options_.lease_drain_timeout_ms = 50;
  Reopen();
  PersonId ann = MakeRichPerson("ann@x.org");
  {
    auto lease = store_->AcquireLease(ann, "analytics");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    // Another thread's lease: Busy (the caller's own would be FailedPrecondition).
    std::thread eraser([&] { EXPECT_TRUE(store_->EraseCategory(ann, "location").status().IsBusy()); });
    eraser.join();
    EXPECT_EQ(*store_->Get(ann, "addresses", "home"), "1 rue de la Paix");
    EXPECT_EQ(store_->Stats()->erased_categories, 0u);
  }
  EXPECT_TRUE(store_->EraseCategory(ann, "location").ok());
}

TEST_F(CategoryErasureTest, NoReadSeesTheCategoryAfterEraseCategoryReturned) {
  PersonId ann = MakeRichPerson("ann@x.org");
  std::atomic<std::uint64_t> clock{0};
  std::atomic<std::uint64_t> erased_at{~0ull};
  std::atomic<int> late_reads{0}, reads{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        const std::uint64_t started = clock.fetch_add(1);
        bool saw = false;
        if (t % 2 == 0) {
          auto it = store_->ScanEvents(ann, {});
          for (; it->Valid(); it->Next()) saw |= it->value().name == "gps_ping";
        } else {
          saw = store_->Get(ann, "addresses", "home").ok();
        }
        ++reads;
        if (saw && started > erased_at.load()) ++late_reads;
      }
    });
  }
  // Reads before and after the erasure, counted rather than slept for: a
  // loaded machine may run no reader at all in 20 ms.
  for (int i = 0; i < 60'000 && reads.load() < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  erased_at.store(clock.fetch_add(1));
  const int reads_at_erasure = reads.load();
  for (int i = 0; i < 60'000 && reads.load() < reads_at_erasure + 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop.store(true);
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(late_reads.load(), 0);
}

// After erase + rotate + purge + compact, neither the category key nor its
// wrapped form is in any file, and the category's plaintext never was.
TEST_F(CategoryErasureTest, NoKeyMaterialOfAnErasedCategorySurvives) {
  options_.durability = Durability::kFullSync;
  Reopen();
  PersonId ann = MakeRichPerson("ann@x.org");
  const std::uint32_t slot = LocationSlot(ann);
  ASSERT_NE(slot, 0u);
  keys::KeyStore& ks = impl().key_store();
  auto dek = ks.GetDek(ann, slot);
  ASSERT_TRUE(dek.ok());
  const std::string raw_dek((*dek)->view());
  dek->reset();
  auto wrapped = ks.RawRowForTesting("deks", codec::DekKey(ann, slot));
  ASSERT_TRUE(wrapped.ok());
  auto count_in_files = [&](const std::string& needle) {
    int hits = 0;
    for (const std::string& f : test::FilesUnder(dir_.path())) hits += test::ReadFile(f).find(needle) != std::string::npos;
    return hits;
  };
  EXPECT_GE(count_in_files(*wrapped), 1);  // the scan finds what is there
  EXPECT_EQ(count_in_files("rue de la Paix"), 0);

  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  ASSERT_TRUE(store_->Purge(1000000).ok());
  ASSERT_TRUE(store_->RotateEpoch().ok());
  ASSERT_TRUE(store_->CompactData().ok());
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  EXPECT_EQ(count_in_files(raw_dek), 0) << "raw category key found";
  EXPECT_EQ(count_in_files(*wrapped), 0) << "wrapped category key found";
  Reopen();
  EXPECT_EQ(store_->GetProfile(ann)->at("phone").as_string(), "+33 1 23");
  EXPECT_EQ(Events(ann).size(), 5u);
}

TEST(CategoryErasureCrashTest, CrashAfterTheKeysCommitIsFinishedAtOpen) {
  test::TempDir dir;
  Options o = CategoryOptions(test::TestOptions(dir.Sub("s")));
  o.durability = Durability::kFullSync;
  PersonId ann;
  {
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok());
    ann = *(*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}, {"home_city", "Lyon"}});
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE((*store)->AppendEvent(ann, Ping(i, 1.0)).ok());
      ASSERT_TRUE((*store)->AppendEvent(ann, View(i)).ok());
    }
  }
  ASSERT_TRUE(test::RunChildKilledAt("erase_category.after_keys_commit", 1, [&] {
    auto store = Store::Open(o);
    if (!store.ok()) _exit(4);
    (void)(*store)->EraseCategory(ann, "location", EraseOptions{"crash-loc", false, AnalyticsOnErase::kDelete});
  }));

  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // The keys commit stands; reopening applied the data side.
  auto profile = (*store)->GetProfile(ann);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->count("home_city"), 0u);
  EXPECT_EQ(profile->at("name").as_string(), "A");
  EXPECT_EQ((*store)->Stats()->analytics_rows, 4u);  // the pings' rows deleted
  auto receipt = (*store)->GetErasure("crash-loc");
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->category, "location");
  EXPECT_EQ(receipt->audit_hash.size(), 64u);
  ASSERT_TRUE((*store)->Purge(100000).ok());
  EXPECT_TRUE((*store)->GetErasure("crash-loc")->purged);
  EXPECT_EQ((*store)->Stats()->events, 4u);
  EXPECT_EQ((*store)->Verify()->problem_count, 0u);
}

// Acknowledges every notice of the feed.
void AckWholeFeed(Store& store) {
  auto feed = store.ReadFeed(100'000);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  if (!feed->empty()) SKV_ASSERT_OK(store.AckFeed(feed->back().cursor));
}

// The notices the feed holds (none acknowledged since `AckWholeFeed`).
std::size_t FeedSize(Store& store) {
  auto feed = store.ReadFeed(100'000);
  EXPECT_TRUE(feed.ok()) << feed.status().ToString();
  return feed.ok() ? feed->size() : 0;
}

// Stop 28's audit, F1: with a category erasure and an erasure of the whole
// person both awaiting purge, one Purge handled both. The person's purge
// deleted all its `erased` markers, so the category's ticket, handled
// after it, found no marker and applied the erasure again: a notice naming
// the purged person and a `versions` row holding their ID, which survived
// rotation and compaction (and verify saw nothing).
TEST_F(CategoryErasureTest, APersonErasedAfterACategoryErasureLeavesNoTraceOnceBothArePurged) {
  const PersonId ann = MakeRichPerson("ann@x.org");
  const PersonId bob = MakeRichPerson("bob@x.org");
  ASSERT_TRUE(store_->EraseCategory(ann, "location").ok());
  ASSERT_TRUE(store_->Erase(ann).ok());
  AckWholeFeed(*store_);
  auto purge = store_->Purge(1'000'000);
  ASSERT_TRUE(purge.ok()) << purge.status().ToString();
  EXPECT_EQ(purge->people_purged, 2u);
  EXPECT_EQ(purge->people_pending, 0u);
  EXPECT_EQ(FeedSize(*store_), 0u);  // no notice written by the purge
  ASSERT_TRUE(store_->RotateEpoch().ok());
  ASSERT_TRUE(store_->CompactData().ok());
  EXPECT_TRUE(test::VerifiesClean(*store_));
  EXPECT_EQ(Events(bob).size(), 10u);
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  const std::string data = test::ReadFile(dir_.Sub("store/data/data.mdb"));
  EXPECT_EQ(data.find(std::string(ann.view())), std::string::npos);
  EXPECT_NE(data.find(std::string(bob.view())), std::string::npos);  // the scan can see
}

// The same cause through a crash: a purge whose last data transaction
// committed (markers deleted) and whose ticket was not yet removed from
// `keys` was applied again at the next open — a second erasure notice, and
// for a category erasure of a person who lives on, whose marker went with
// its purge, every time.
TEST(CategoryErasureCrashTest, APurgeCutShortBeforeItsTicketWentIsNotAppliedAgain) {
  for (const bool whole_person : {true, false}) {
    SCOPED_TRACE(whole_person ? "person erasure" : "category erasure");
    test::TempDir dir;
    Options o = CategoryOptions(test::TestOptions(dir.Sub("s")));
    PersonId ann;
    {
      auto store = Store::Open(o);
      ASSERT_TRUE(store.ok());
      ann = *(*store)->CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}, {"home_city", "Lyon"}});
      for (int i = 0; i < 3; ++i) ASSERT_TRUE((*store)->AppendEvent(ann, Ping(i, 1.0)).ok());
      ASSERT_TRUE((whole_person ? (*store)->Erase(ann).status() : (*store)->EraseCategory(ann, "location").status()).ok());
      AckWholeFeed(**store);
    }
    ASSERT_TRUE(test::RunChildKilledAt("purge.after_data_txn", 1, [&] {
      auto store = Store::Open(o);
      if (!store.ok()) _exit(4);
      (void)(*store)->Purge(100000);
    }));
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->Stats()->pending_purge, 1u);  // the ticket is still there
    auto purge = (*store)->Purge(100000);
    ASSERT_TRUE(purge.ok()) << purge.status().ToString();
    EXPECT_EQ(purge->people_purged, 1u);
    EXPECT_EQ(purge->rows_deleted, 0u);  // the first run deleted them all
    EXPECT_EQ((*store)->Stats()->pending_purge, 0u);
    EXPECT_EQ(FeedSize(**store), 0u);  // no second notice
    EXPECT_TRUE(test::VerifiesClean(**store));
    if (!whole_person) {
      EXPECT_EQ((*store)->GetProfile(ann)->at("name").as_string(), "A");
    }
  }
}


// Review of stop 29, L1: a category erasure whose data transaction failed
// (the key is gone, the data side left for Purge or the next open), then
// the whole person erased and both purged in one run. The person's ticket
// sorts first; its purge deleted the person's markers and rows, after which
// the category's ticket counted as applied and was skipped: the category's
// analytics rows were never unlinked, deleted or moved, and stayed under the
// erased person's anonymous ID in every mode.
std::string g_data_file;  // the data file the hook below caps
void CapDataFileAfterCategoryKeysCommit(std::string_view name) {
  if (name != "erase_category.after_keys_commit") return;
  struct stat st {};
  if (::stat(g_data_file.c_str(), &st) != 0) return;
  rlimit limit{};
  ::getrlimit(RLIMIT_FSIZE, &limit);
  limit.rlim_cur = static_cast<rlim_t>(st.st_size);  // no page can be added: the data commit fails
  ::setrlimit(RLIMIT_FSIZE, &limit);
}

TEST(CategoryErasureFailureTest, ACategoryWhoseDataSideFailedIsAppliedBeforeItsPersonsPurge) {
  for (const AnalyticsOnErase mode : {AnalyticsOnErase::kKeep, AnalyticsOnErase::kUnlink, AnalyticsOnErase::kDelete}) {
    SCOPED_TRACE(static_cast<int>(mode));
    test::TempDir dir;
    Options o = CategoryOptions(test::TestOptions(dir.Sub("s")));
    auto opened = Store::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    const PersonId ann = *store.CreatePerson({{"email", "a@x.org"}}, {{"name", "A"}});
    for (int i = 0; i < 3; ++i) {
      SKV_ASSERT_OK(store.AppendEvent(ann, Ping(i, 1.0)));
      SKV_ASSERT_OK(store.AppendEvent(ann, View(10 + i)));
    }
    const AnonymousId anon = store.GetPerson(ann)->anon_id;
    auto rows_under_ann = [&](const std::string& name) {
      int n = 0;
      auto it = store.ScanAnalytics(AnalyticsQuery{});
      for (; it->Valid(); it->Next()) n += it->value().name == name && it->value().anon_id == anon;
      EXPECT_TRUE(it->status().ok()) << it->status().ToString();
      return n;
    };
    ASSERT_EQ(rows_under_ann("gps_ping"), 3);
    SKV_ASSERT_OK(store.CompactData().status());  // no free page: the next data commit must grow the file
    AckWholeFeed(store);

    g_data_file = dir.Sub("s/data/data.mdb");
    rlimit original{};
    ::getrlimit(RLIMIT_FSIZE, &original);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
    util::SetTestPointHook(&CapDataFileAfterCategoryKeysCommit);
    auto receipt = store.EraseCategory(ann, "location", EraseOptions{"", false, mode});
    util::SetTestPointHook(nullptr);
    ::setrlimit(RLIMIT_FSIZE, &original);
    ::signal(SIGXFSZ, old_handler);
    ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();  // the key is gone: the erasure happened
    ASSERT_EQ(FeedSize(store), 0u) << "the data side was expected to fail (no erasure notice yet)";

    SKV_ASSERT_OK(store.Erase(ann, EraseOptions{"", false, AnalyticsOnErase::kUnlink}).status());
    auto purge = store.Purge(1'000'000);
    ASSERT_TRUE(purge.ok()) << purge.status().ToString();
    EXPECT_EQ(purge->people_purged, 2u);
    EXPECT_EQ(rows_under_ann("gps_ping"), 0);
    EXPECT_EQ(rows_under_ann("page_view"), 0);
    int pings = 0;
    for (auto it = store.ScanAnalytics(AnalyticsQuery{}); it->Valid(); it->Next()) pings += it->value().name == "gps_ping";
    EXPECT_EQ(pings, mode == AnalyticsOnErase::kDelete ? 0 : 3);
    auto level = store.GetErasure(receipt->request_id);
    ASSERT_TRUE(level.ok()) << level.status().ToString();
    EXPECT_TRUE(level->purged);
    EXPECT_FALSE(level->audit_hash.empty());  // the category erasure's audit entry was written
    EXPECT_TRUE(test::VerifiesClean(store));
  }
}

}  // namespace
}  // namespace shredkv
