#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "engine/store_impl.h"
#include "test_util.h"

namespace shredkv {
namespace {

class ErasureTest : public test::StoreTest {
 protected:
  struct Snapshot {
    Attributes profile;
    std::vector<StoredEvent> events;
    std::vector<Record> records;
    PersonInfo info;
    bool operator==(const Snapshot& o) const {
      if (profile != o.profile || records.size() != o.records.size() || events.size() != o.events.size()) return false;
      for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i].name != o.events[i].name || events[i].ts_ms != o.events[i].ts_ms ||
            events[i].seq != o.events[i].seq || events[i].properties != o.events[i].properties) {
          return false;
        }
      }
      for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].key != o.records[i].key || records[i].value != o.records[i].value) return false;
      }
      return info.anon_id == o.info.anon_id && info.identifiers == o.info.identifiers;
    }
  };

  PersonId MakeFullPerson(const std::string& name, int events = 5) {
    auto id = store_->CreatePerson({{"email", name + "@x.org"}, {"phone", "+1555" + std::to_string(std::hash<std::string>{}(name) % 100000000)},
                                    {"customer_id", "C-" + name}},
                                   {{"name", name}});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    WriteBatch batch;
    for (int i = 0; i < events; ++i) {
      batch.AppendEvent(*id, Event{"view", 1000 + i * 3600001LL, {{"page", "/p" + std::to_string(i)}, {"ms", i}}, {"ms"}});
    }
    batch.Put(*id, "orders", "1", name + "-order-1");
    batch.Put(*id, "orders", "2", name + "-order-2");
    EXPECT_TRUE(store_->Write(batch).ok());
    return *id;
  }

  Snapshot Take(const PersonId& id) {
    Snapshot s;
    s.profile = *store_->GetProfile(id);
    for (auto it = store_->ScanEvents(id, {}); it->Valid(); it->Next()) s.events.push_back(it->value());
    for (auto it = store_->ScanRecords(id, "orders", ""); it->Valid(); it->Next()) s.records.push_back(it->value());
    s.info = *store_->GetPerson(id);
    return s;
  }

  std::vector<AnalyticsRow> Analytics() {
    std::vector<AnalyticsRow> out;
    for (auto it = store_->ScanAnalytics({}); it->Valid(); it->Next()) out.push_back(it->value());
    return out;
  }
};

TEST_F(ErasureTest, EveryReadAndWriteOfAnErasedPersonReturnsErased) {
  PersonId ann = MakeFullPerson("ann");
  auto receipt = store_->Erase(ann);
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_TRUE(store_->GetProfile(ann).status().IsErased());
  EXPECT_TRUE(store_->GetPerson(ann).status().IsErased());
  EXPECT_TRUE(store_->Get(ann, "orders", "1").status().IsErased());
  auto events = store_->ScanEvents(ann, {});
  EXPECT_FALSE(events->Valid());
  EXPECT_TRUE(events->status().IsErased());
  auto records = store_->ScanRecords(ann, "orders", "");
  EXPECT_FALSE(records->Valid());
  EXPECT_TRUE(records->status().IsErased());
  EXPECT_TRUE(store_->PatchProfile(ann, ProfilePatch{{{"x", 1}}, {}}).IsErased());
  EXPECT_TRUE(store_->AppendEvent(ann, Event{"e", 1, {}, {}}).IsErased());
  EXPECT_TRUE(store_->Put(ann, "orders", "3", "v").IsErased());
  EXPECT_TRUE(store_->Delete(ann, "orders", "1").IsErased());
  EXPECT_TRUE(store_->LinkIdentifier(ann, {"device_id", "d1"}).IsErased());
  EXPECT_TRUE(store_->Erase(ann).status().IsErased());
  // Not suppressed: the identifier says Erased until purge releases it.
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsErased());
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsNotFound());
  Reopen();
  EXPECT_TRUE(store_->GetProfile(ann).status().IsErased());
}

// Outside audit 36c, F3: Stats counted an erased person among `people`
// and, if they had been restricted, `restricted`, until the purge.
TEST_F(ErasureTest, StatsCountNeitherAnErasedPersonNorTheirRestrictionBeforeThePurge) {
  const PersonId carl = MakePerson("carl@x.org");
  const PersonId dora = MakePerson("dora@x.org");
  SKV_ASSERT_OK(store_->AppendEvent(dora, Event{"gps", 1, {}, {}, "location"}));
  SKV_ASSERT_OK(store_->Restrict(carl, RestrictionSpec{true, {}, {}, "objection"}));
  SKV_ASSERT_OK(store_->Restrict(dora, RestrictionSpec{true, {}, {}, "objection"}));
  SKV_ASSERT_OK(store_->EraseCategory(dora, "location", EraseOptions{}).status());  // a category: dora stays
  EXPECT_EQ(store_->Stats()->people, 2u);
  EXPECT_EQ(store_->Stats()->restricted, 2u);
  SKV_ASSERT_OK(store_->Erase(carl).status());
  auto before_purge = store_->Stats();
  ASSERT_TRUE(before_purge.ok());
  EXPECT_EQ(before_purge->pending_purge, 2u);  // carl and dora's category: their rows are still there
  EXPECT_EQ(before_purge->people, 1u);
  EXPECT_EQ(before_purge->restricted, 1u);
  SKV_ASSERT_OK(store_->Purge(1000000).status());
  EXPECT_EQ(store_->Stats()->people, 1u);
  EXPECT_EQ(store_->Stats()->restricted, 1u);
}

TEST_F(ErasureTest, OtherPeopleAreUntouchedByteForByte) {
  PersonId ann = MakeFullPerson("ann");
  PersonId bob = MakeFullPerson("bob");
  PersonId cid = MakeFullPerson("cid");
  const Snapshot bob_before = Take(bob), cid_before = Take(cid);
  ASSERT_TRUE(store_->Erase(ann, EraseOptions{"", true, AnalyticsOnErase::kDelete}).ok());
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_TRUE(Take(bob) == bob_before);
  EXPECT_TRUE(Take(cid) == cid_before);
  EXPECT_EQ(*store_->Resolve({"email", "bob@x.org"}), bob);
}

TEST_F(ErasureTest, EraseByIdentifierAndEraseManyInOneCall) {
  PersonId a = MakeFullPerson("a");
  PersonId b = MakeFullPerson("bb");
  PersonId c = MakeFullPerson("ccc");
  PersonId d = MakeFullPerson("dddd");
  auto by_id = store_->EraseByIdentifier({"customer_id", "C-a"});
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  EXPECT_EQ(by_id->people, 1u);
  EXPECT_TRUE(store_->GetProfile(a).status().IsErased());
  auto many = store_->Erase(std::vector<PersonId>{b, c, b});
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->people, 2u);
  EXPECT_TRUE(store_->GetProfile(b).status().IsErased());
  EXPECT_TRUE(store_->GetProfile(c).status().IsErased());
  EXPECT_TRUE(store_->GetProfile(d).ok());
  EXPECT_EQ(store_->Stats()->erased, 3u);
}

TEST_F(ErasureTest, FailedEraseOfManyErasesNobody) {
  PersonId a = MakeFullPerson("a");
  PersonId ghost(PersonId::Bytes{0x42});
  EXPECT_TRUE(store_->Erase(std::vector<PersonId>{a, ghost}).status().IsNotFound());
  EXPECT_TRUE(store_->GetProfile(a).ok());
  EXPECT_EQ(store_->Stats()->erased, 0u);
  EXPECT_TRUE(store_->EraseByIdentifier({"email", "nobody@x.org"}).status().IsNotFound());
}

TEST_F(ErasureTest, ReceiptLevelsAdvanceThroughPurgeAndRotation) {
  PersonId a = MakeFullPerson("a");
  auto r = store_->Erase(a, EraseOptions{"ticket-17", false, AnalyticsOnErase::kKeep});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request_id, "ticket-17");
  EXPECT_EQ(r->level, ErasureLevel::kLogical);
  EXPECT_FALSE(r->cryptographic);
  EXPECT_FALSE(r->purged);
  EXPECT_EQ(r->audit_hash.size(), 64u);
  EXPECT_TRUE(store_->Erase(MakeFullPerson("b"), EraseOptions{"ticket-17", false, {}}).status().IsAlreadyExists());
  EXPECT_TRUE(store_->Erase(MakeFullPerson("c"), EraseOptions{"bad id", false, {}}).status().IsInvalidArgument());

  ASSERT_TRUE(store_->Purge(1000000).ok());
  auto after_purge = store_->GetErasure("ticket-17");
  ASSERT_TRUE(after_purge.ok());
  EXPECT_TRUE(after_purge->purged);
  EXPECT_EQ(after_purge->level, ErasureLevel::kLogical);  // levels are cumulative
  EXPECT_EQ(after_purge->audit_hash, r->audit_hash);

  ASSERT_TRUE(store_->RotateEpoch().ok());
  auto after_rotation = store_->GetErasure("ticket-17");
  ASSERT_TRUE(after_rotation.ok());
  EXPECT_TRUE(after_rotation->cryptographic);
  EXPECT_EQ(after_rotation->level, ErasureLevel::kPurged);
  EXPECT_TRUE(store_->GetErasure("no-such").status().IsNotFound());
  Reopen();
  EXPECT_EQ(store_->GetErasure("ticket-17")->level, ErasureLevel::kPurged);
}

TEST_F(ErasureTest, GeneratedRequestIdsAreUnique) {
  auto r1 = store_->Erase(MakeFullPerson("a"));
  auto r2 = store_->Erase(MakeFullPerson("b"));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NE(r1->request_id, r2->request_id);
  EXPECT_FALSE(r1->request_id.empty());
}

TEST_F(ErasureTest, SuppressedIdentifierRefusesCreationUntilUnsuppressed) {
  PersonId ann = MakeFullPerson("ann");
  const AnonymousId old_anon = store_->GetPerson(ann)->anon_id;
  ASSERT_TRUE(store_->Erase(ann, EraseOptions{"", true, AnalyticsOnErase::kKeep}).ok());
  EXPECT_TRUE(store_->Resolve({"email", "ANN@x.org"}).status().IsSuppressed());
  EXPECT_TRUE(store_->Resolve({"customer_id", "C-ann"}).status().IsSuppressed());
  EXPECT_TRUE(store_->CreatePerson({{"email", "ann@x.org"}}).status().IsSuppressed());
  PersonId bob = MakeFullPerson("bob");
  EXPECT_TRUE(store_->LinkIdentifier(bob, {"customer_id", "C-ann"}).IsSuppressed());
  auto stats = store_->Stats();
  EXPECT_EQ(stats->suppressed, 3u);
  EXPECT_EQ(stats->suppressed_rejections, 2u);
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsSuppressed());  // survives purge
  Reopen();
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsSuppressed());  // and reopen

  SKV_ASSERT_OK(store_->Unsuppress({"email", " Ann@X.org"}));
  EXPECT_TRUE(store_->Unsuppress({"email", "ann@x.org"}).IsNotFound());
  EXPECT_TRUE(store_->Resolve({"email", "ann@x.org"}).status().IsNotFound());
  auto fresh = store_->CreatePerson({{"email", "ann@x.org"}});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_NE(*fresh, ann);
  EXPECT_NE(store_->GetPerson(*fresh)->anon_id, old_anon);
  EXPECT_EQ(store_->ScanEvents(*fresh, {})->Valid(), false);
}

TEST_F(ErasureTest, UnsuppressedReingestionBeforePurgeIsANewPerson) {
  PersonId ann = MakeFullPerson("ann");
  ASSERT_TRUE(store_->Erase(ann).ok());
  auto fresh = store_->CreatePerson({{"email", "ann@x.org"}, {"customer_id", "C-ann"}});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_NE(*fresh, ann);
  EXPECT_EQ(*store_->Resolve({"email", "ann@x.org"}), *fresh);
  ASSERT_TRUE(store_->Purge(1000000).ok());  // purge of ann must not drop the new owner's entries
  EXPECT_EQ(*store_->Resolve({"customer_id", "C-ann"}), *fresh);
}

TEST_F(ErasureTest, FencedPersonIdNeverGetsANewKey) {
  PersonId ann = MakeFullPerson("ann");
  ASSERT_TRUE(store_->Erase(ann).ok());
  auto* impl = dynamic_cast<engine::StoreImpl*>(store_.get());
  ASSERT_NE(impl, nullptr);
  auto dek = keys::KeyStore::NewDek();
  ASSERT_TRUE(dek.ok());
  EXPECT_TRUE(impl->key_store().PutDeks({keys::NewKey{ann, keys::kPersonSlot, *dek}}).IsErased());
}

TEST_F(ErasureTest, AnalyticsKeepLeavesRowsUnderTheAnonymousId) {
  PersonId ann = MakeFullPerson("ann", 4);
  MakeFullPerson("bob", 3);
  const AnonymousId anon = store_->GetPerson(ann)->anon_id;
  ASSERT_TRUE(store_->Erase(ann, EraseOptions{"", false, AnalyticsOnErase::kKeep}).ok());
  ASSERT_TRUE(store_->Purge(1000000).ok());
  auto rows = Analytics();
  EXPECT_EQ(rows.size(), 7u);
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [&](const AnalyticsRow& r) { return r.anon_id == anon; }), 4);
}

TEST_F(ErasureTest, AnalyticsUnlinkGivesEveryRowItsOwnIdAndACoarseTime) {
  options_.unlink_time_granularity_ms = 3600000;
  Reopen();
  PersonId ann = MakeFullPerson("ann", 6);
  PersonId bob = MakeFullPerson("bob", 3);
  const AnonymousId anon = store_->GetPerson(ann)->anon_id;
  const AnonymousId bob_anon = store_->GetPerson(bob)->anon_id;
  ASSERT_TRUE(store_->Erase(ann, EraseOptions{"", false, AnalyticsOnErase::kUnlink}).ok());
  auto rows = Analytics();
  ASSERT_EQ(rows.size(), 9u);
  std::set<AnonymousId> ids;
  int unlinked = 0;
  for (const AnalyticsRow& r : rows) {
    EXPECT_NE(r.anon_id, anon);
    if (r.anon_id == bob_anon) continue;
    ++unlinked;
    EXPECT_TRUE(ids.insert(r.anon_id).second) << "two unlinked rows share an ID";
    EXPECT_EQ(r.ts_ms % 3600000, 0) << r.ts_ms;
    EXPECT_EQ(r.fields.count("ms"), 1u);  // declared fields survive
  }
  EXPECT_EQ(unlinked, 6);
}

TEST_F(ErasureTest, AnalyticsDeleteRemovesOnlyThePersonsRows) {
  PersonId ann = MakeFullPerson("ann", 6);
  PersonId bob = MakeFullPerson("bob", 3);
  const AnonymousId bob_anon = store_->GetPerson(bob)->anon_id;
  ASSERT_TRUE(store_->Erase(ann, EraseOptions{"", false, AnalyticsOnErase::kDelete}).ok());
  auto rows = Analytics();
  ASSERT_EQ(rows.size(), 3u);
  for (const AnalyticsRow& r : rows) EXPECT_EQ(r.anon_id, bob_anon);
  EXPECT_EQ(store_->Stats()->analytics_rows, 3u);
}

TEST_F(ErasureTest, PurgeInBoundedBatchesRemovesEveryRowOfThePerson) {
  PersonId ann = MakeFullPerson("ann", 50);
  PersonId bob = MakeFullPerson("bob", 5);
  ASSERT_TRUE(store_->Erase(ann).ok());
  EXPECT_EQ(store_->Stats()->pending_purge, 1u);
  int calls = 0;
  for (;;) {
    auto p = store_->Purge(7);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_LE(p->rows_deleted, 7u);
    ++calls;
    if (p->people_pending == 0) break;
    ASSERT_LT(calls, 100);
  }
  EXPECT_GT(calls, 5);
  auto stats = store_->Stats();
  EXPECT_EQ(stats->people, 1u);
  EXPECT_EQ(stats->events, 5u);
  EXPECT_EQ(stats->records, 2u);
  EXPECT_EQ(stats->identifiers, 3u);
  EXPECT_EQ(stats->pending_purge, 0u);
  EXPECT_TRUE(store_->GetProfile(bob).ok());
  auto again = store_->Purge(100);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rows_deleted, 0u);
}

TEST_F(ErasureTest, RotationKeepsEveryLivePersonReadableAndMovesThemToTheNewEpoch) {
  options_.rotation_batch_size = 7;
  Reopen();
  std::vector<PersonId> people;
  WriteBatch batch;
  for (int i = 0; i < 60; ++i) {
    people.push_back(batch.CreatePerson({{"customer_id", "R" + std::to_string(i)}}, {{"i", i}}));
  }
  SKV_ASSERT_OK(store_->Write(batch));
  ASSERT_TRUE(store_->Erase(people[0]).ok());
  auto r = store_->RotateEpoch();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->new_epoch, 2u);
  EXPECT_EQ(r->rewrapped_keys, 59u);
  EXPECT_GT(r->batches, 8u);
  EXPECT_EQ(r->destroyed_epochs, 1u);
  Reopen();
  for (int i = 1; i < 60; ++i) {
    auto p = store_->GetProfile(people[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->at("i").as_int64(), i);
    EXPECT_EQ(store_->GetPerson(people[static_cast<std::size_t>(i)])->key_epoch, 2u);
  }
  auto stats = store_->Stats();
  EXPECT_EQ(stats->key_epoch, 2u);
  EXPECT_EQ(stats->oldest_key_epoch, 2u);
  EXPECT_EQ(stats->erasures_since_rotation, 0u);
  // New people after rotation use the new epoch.
  PersonId late = MakePerson("late@x.org");
  EXPECT_EQ(store_->GetPerson(late)->key_epoch, 2u);
}

TEST_F(ErasureTest, MaintenanceRotatesWhenThePolicyIsDue) {
  options_.rotate_after_erasures = 2;
  options_.rotate_after_ms = 0;
  Reopen();
  ASSERT_TRUE(store_->Erase(MakeFullPerson("a")).ok());
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 1u);  // one erasure: not due
  EXPECT_EQ(store_->Stats()->pending_purge, 0u);  // but purged
  auto r = store_->Erase(MakeFullPerson("b"));
  ASSERT_TRUE(r.ok());
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 2u);
  EXPECT_EQ(store_->GetErasure(r->request_id)->level, ErasureLevel::kPurged);
}

TEST_F(ErasureTest, MaintenanceRotatesWhenTheOldestErasureIsOldEnough) {
  std::int64_t now = 1'000'000;
  options_.clock = [&now] { return now; };
  options_.rotate_after_erasures = 0;
  options_.rotate_after_ms = 60'000;
  Reopen();
  ASSERT_TRUE(store_->Erase(MakeFullPerson("a")).ok());
  now += 59'999;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 1u);
  now += 1;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 2u);
}

// Outside audit 38b, F1: the time trigger measured from the first erasure
// since the rotation: one made while the clock was a year ahead held every
// later erasure logical for that year, and one made at clock 0 (read as
// "none") turned the trigger off.
TEST_F(ErasureTest, TheRotationTimeTriggerSurvivesErasuresUnderAClockAheadOrAtZero) {
  std::int64_t now = 1'000'000;
  options_.clock = [&now] { return now; };
  for (const std::int64_t first_at : {1'000'000ll + 365ll * 24 * 3600 * 1000, 0ll}) {
    SCOPED_TRACE(first_at);
    now = 1'000'000;
    options_.rotate_after_erasures = 0;
    options_.rotate_after_ms = 60'000;
    Reopen();
    const std::uint64_t epoch = store_->Stats()->key_epoch;
    const std::int64_t right = now;
    now = first_at;
    ASSERT_TRUE(store_->Erase(MakeFullPerson("a" + std::to_string(first_at))).ok());
    now = right;
    auto b = store_->Erase(MakeFullPerson("b" + std::to_string(first_at)));
    ASSERT_TRUE(b.ok());
    // At 0: the earliest time, older than the bound at once. A year ahead:
    // b's time decides, the bound after it.
    if (first_at > right) {
      now += 59'999;
      SKV_ASSERT_OK(store_->RunMaintenance());
      EXPECT_EQ(store_->Stats()->key_epoch, epoch);
      now += 1;
    }
    SKV_ASSERT_OK(store_->RunMaintenance());
    EXPECT_EQ(store_->Stats()->key_epoch, epoch + 1);
    EXPECT_TRUE(store_->GetErasure(b->request_id)->cryptographic);
  }
  // An erasure alone recorded under a clock since set back by more than the
  // bound: its age cannot be told, so it is due at once.
  std::uint64_t epoch = store_->Stats()->key_epoch;
  std::int64_t right = now;
  now += 365ll * 24 * 3600 * 1000;
  ASSERT_TRUE(store_->Erase(MakeFullPerson("ahead")).ok());
  now = right;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, epoch + 1);
  // Set back by less (review 38, R9: an NTP step cost a rotation): due once
  // the clock passes the erasure's time by the bound.
  epoch = store_->Stats()->key_epoch;
  right = now;
  now += 5'000;
  ASSERT_TRUE(store_->Erase(MakeFullPerson("slightly-ahead")).ok());
  now = right;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, epoch);
  now = right + 5'000 + 59'999;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, epoch);
  now += 1;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, epoch + 1);
}

// The earliest erasure since the rotation decides, whichever came first.
TEST_F(ErasureTest, TheRotationTimeTriggerCountsFromTheEarliestErasure) {
  std::int64_t now = 10'000'000;
  options_.clock = [&now] { return now; };
  options_.rotate_after_erasures = 0;
  options_.rotate_after_ms = 60'000;
  Reopen();
  now += 30'000;
  ASSERT_TRUE(store_->Erase(MakeFullPerson("later")).ok());
  now -= 30'000;  // the clock set back: this erasure is the earlier
  ASSERT_TRUE(store_->Erase(MakeFullPerson("earlier")).ok());
  now += 59'999;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 1u);
  now += 1;
  SKV_ASSERT_OK(store_->RunMaintenance());
  EXPECT_EQ(store_->Stats()->key_epoch, 2u);
}

TEST_F(ErasureTest, BackgroundMaintenancePurgesWithoutCalls) {
  options_.background_maintenance_ms = 10;
  Reopen();
  ASSERT_TRUE(store_->Erase(MakeFullPerson("a")).ok());
  for (int i = 0; i < 500 && store_->Stats()->pending_purge != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(store_->Stats()->pending_purge, 0u);
}

TEST_F(ErasureTest, CompactionShrinksDataAndKeepsEverythingReadable) {
  std::vector<PersonId> people;
  for (int i = 0; i < 40; ++i) people.push_back(MakeFullPerson("p" + std::to_string(i), 100));
  std::vector<PersonId> erased(people.begin(), people.begin() + 30);
  ASSERT_TRUE(store_->Erase(erased).ok());
  ASSERT_TRUE(store_->Purge(1000000).ok());
  auto c = store_->CompactData();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_LT(c->file_bytes_after, c->file_bytes_before);
  for (std::size_t i = 30; i < 40; ++i) {
    auto p = store_->GetProfile(people[i]);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    int n = 0;
    for (auto it = store_->ScanEvents(people[i], {}); it->Valid(); it->Next()) ++n;
    EXPECT_EQ(n, 100);
  }
  EXPECT_TRUE(store_->GetProfile(people[0]).status().IsErased());
  PersonId after = MakeFullPerson("after");
  Reopen();
  EXPECT_TRUE(store_->GetProfile(after).ok());
}

TEST_F(ErasureTest, AuditLogChainsEveryErasureRotationPurgeAndUnsuppress) {
  ASSERT_TRUE(store_->Erase(MakeFullPerson("a"), EraseOptions{"", true, {}}).ok());
  ASSERT_TRUE(store_->Purge(1000).ok());
  ASSERT_TRUE(store_->RotateEpoch().ok());
  SKV_ASSERT_OK(store_->Unsuppress({"email", "a@x.org"}));
  auto v = store_->VerifyAuditLog();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->intact) << v->problem;
  EXPECT_EQ(v->entries, 4u);
  EXPECT_EQ(v->head_hash.size(), 64u);
}

}  // namespace
}  // namespace shredkv
