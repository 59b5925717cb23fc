// Store::Erase and EraseCategory promise that once they returned no call
// returns the erased data, "also not reads that started earlier". Iterators
// hold a batch of decrypted entries between calls; an erasure that commits
// after the batch was read must reach those entries too (stop 26's outside
// audit, finding F3: a record scan handed out 256 records of a person after
// shredkv_erase returned OK, the export iterator 3 items).
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace shredkv {
namespace {

class ErasedMidScanTest : public test::StoreTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.Sub("store"));
    options_.categories = {"location"};
    options_.event_categories = {{"gps_ping", "location"}};
    options_.collection_categories = {{"addresses", "location"}};
    Reopen();
  }

  // Ten events, alternating gps_ping (category location) at odd times and
  // page_view (general) at even times 1000..1009, and ten notes.
  PersonId PersonWithTenOfEach(const std::string& email) {
    const PersonId id = MakePerson(email, {{"name", "Ann"}});
    for (int i = 0; i < 10; ++i) {
      const std::string name = i % 2 == 1 ? "gps_ping" : "page_view";
      EXPECT_TRUE(store_->AppendEvent(id, Event{name, 1000 + i, {{"i", i}}, {}, {}}).ok());
      EXPECT_TRUE(store_->Put(id, "notes", "n" + std::to_string(i), "note " + std::to_string(i)).ok());
    }
    return id;
  }
};

TEST_F(ErasedMidScanTest, AnEventScanStartedBeforeEraseReturnsNothingAfterIt) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->ScanEvents(ann, {});
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value().ts_ms, 1000);
  it->Next();
  ASSERT_TRUE(it->Valid());  // the other nine wait in the iterator's batch
  SKV_ASSERT_OK(store_->Erase(ann).status());
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsErased()) << it->status().ToString();
}

TEST_F(ErasedMidScanTest, ARecordScanStartedBeforeEraseReturnsNothingAfterIt) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->ScanRecords(ann, "notes");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value().key, "n0");
  it->Next();
  ASSERT_TRUE(it->Valid());
  SKV_ASSERT_OK(store_->Erase(ann).status());
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsErased()) << it->status().ToString();
}

// The caller saw Valid() before the erasure and asks for the entry after it
// returned: the entry is gone, so value() is an empty entry.
TEST_F(ErasedMidScanTest, AnEntryErasedBetweenValidAndValueReadsAsEmpty) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto events = store_->ScanEvents(ann, {});
  auto records = store_->ScanRecords(ann, "notes");
  ASSERT_TRUE(events->Valid());
  ASSERT_TRUE(records->Valid());
  SKV_ASSERT_OK(store_->Erase(ann).status());
  const StoredEvent& e = events->value();
  EXPECT_TRUE(e.name.empty());
  EXPECT_TRUE(e.properties.empty());
  const Record& r = records->value();
  EXPECT_TRUE(r.key.empty());
  EXPECT_TRUE(r.value.empty());
  EXPECT_FALSE(events->Valid());
  EXPECT_FALSE(records->Valid());
  EXPECT_TRUE(events->status().IsErased());
  EXPECT_TRUE(records->status().IsErased());
}

// value()'s reference is valid until Next() (iterator.h): an erasure that
// drops the batch leaves the entry handed out untouched (under ASan, a freed
// entry or a freed member of it would be a use after free here), and the
// scan goes on after it, skipping nothing and repeating nothing.
TEST_F(ErasedMidScanTest, AnEntryHeldAcrossAnErasureStaysValidUntilNext) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->ScanEvents(ann, {});
  it->Next();  // 1001, a gps_ping
  ASSERT_TRUE(it->Valid());
  const StoredEvent& held = it->value();
  ASSERT_EQ(held.name, "gps_ping");
  const std::string property = held.properties.begin()->first;
  SKV_ASSERT_OK(store_->EraseCategory(ann, "location").status());
  ASSERT_TRUE(it->Valid());  // the batch is read again: 1002 took 1001's place
  EXPECT_EQ(held.name, "gps_ping");
  EXPECT_EQ(held.properties.begin()->first, property);
  EXPECT_EQ(it->value().ts_ms, 1002);
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value().ts_ms, 1004);

  auto exported = store_->Export(ann);
  ASSERT_TRUE(exported->Valid());
  const ExportItem& person = exported->value();
  ASSERT_EQ(person.kind, ExportItem::Kind::kPerson);
  SKV_ASSERT_OK(store_->Erase(ann).status());
  EXPECT_FALSE(exported->Valid());
  ASSERT_EQ(person.person.identifiers.size(), 1u);  // untouched until Next()
  exported->Next();
  EXPECT_FALSE(exported->Valid());
}

// Outside audit 37b, F1: an entry handed out that survived the erasure
// (its category was not erased) was read again behind itself, and the copy
// was erased from the middle of the buffer; with more entries behind the
// copy than before it, the deque shifted the front part instead, and the
// entry handed out was destroyed (a use after free under ASan; garbage
// without it).
TEST_F(ErasedMidScanTest, AnEntryHeldThatSurvivesAnErasureIsNotDestroyedByItsCopy) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  SKV_ASSERT_OK(store_->Put(ann, "addresses", "home", "1 Main St"));
  auto events = store_->ScanEvents(ann, {});
  ASSERT_TRUE(events->Valid());
  const StoredEvent& event = events->value();  // 1000, a page_view, nine behind it
  ASSERT_EQ(event.name, "page_view");
  auto records = store_->ScanRecords(ann, "notes", {});
  ASSERT_TRUE(records->Valid());
  const Record& record = records->value();  // n0, nine behind it
  ASSERT_EQ(record.key, "n0");
  SKV_ASSERT_OK(store_->EraseCategory(ann, "location").status());
  ASSERT_TRUE(events->Valid());
  EXPECT_EQ(event.name, "page_view");
  EXPECT_EQ(event.ts_ms, 1000);
  ASSERT_EQ(event.properties.size(), 1u);
  EXPECT_EQ(event.properties.begin()->first, "i");
  EXPECT_EQ(&events->value(), &event) << "the entry handed out stays current";
  events->Next();
  ASSERT_TRUE(events->Valid());
  EXPECT_EQ(events->value().ts_ms, 1002);
  ASSERT_TRUE(records->Valid());
  EXPECT_EQ(record.key, "n0");
  EXPECT_EQ(record.value, "note 0");
  EXPECT_EQ(&records->value(), &record);
  records->Next();
  ASSERT_TRUE(records->Valid());
  EXPECT_EQ(records->value().key, "n1");
}

// The C API's shredkv_iter_next checked Valid() before Next(): after an
// erasure, Valid() made the next entry current and Next() skipped it
// unseen. Next() now moves past what value() handed out, not past an entry
// only Valid() saw; and checking Valid() twice changes nothing.
TEST_F(ErasedMidScanTest, NextAfterAnErasureSkipsNothingUnseen) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->ScanEvents(ann, {});
  it->Next();
  ASSERT_TRUE(it->Valid());
  ASSERT_EQ(it->value().ts_ms, 1001);  // a gps_ping, handed out
  SKV_ASSERT_OK(store_->EraseCategory(ann, "location").status());
  ASSERT_TRUE(it->Valid());
  ASSERT_TRUE(it->Valid());
  it->Next();  // past 1001 (gone); 1002 was not handed out yet
  std::vector<std::int64_t> rest;
  for (; it->Valid(); it->Next()) rest.push_back(it->value().ts_ms);
  SKV_EXPECT_OK(it->status());
  EXPECT_EQ(rest, (std::vector<std::int64_t>{1002, 1004, 1006, 1008}));

  // An entry that survives the drop stays current: Next() moves past it once.
  const PersonId bob = PersonWithTenOfEach("bob@x.org");
  const PersonId cat = PersonWithTenOfEach("cat@x.org");
  SKV_ASSERT_OK(store_->EraseCategory(bob, "location").status());
  auto bobs = store_->ScanEvents(bob, {});
  ASSERT_TRUE(bobs->Valid());
  ASSERT_EQ(bobs->value().ts_ms, 1000);
  SKV_ASSERT_OK(store_->EraseCategory(cat, "location").status());
  bobs->Next();
  ASSERT_TRUE(bobs->Valid());
  EXPECT_EQ(bobs->value().ts_ms, 1002);
}

// Only the entries of the erased category go; the scan goes on from where
// it was, each remaining entry once.
TEST_F(ErasedMidScanTest, ACategoryErasedMidScanDropsOnlyItsEntries) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->ScanEvents(ann, {});
  std::vector<std::int64_t> seen;
  for (int i = 0; i < 3 && it->Valid(); ++i, it->Next()) seen.push_back(it->value().ts_ms);
  SKV_ASSERT_OK(store_->EraseCategory(ann, "location").status());
  for (; it->Valid(); it->Next()) {
    EXPECT_NE(it->value().name, "gps_ping") << "at " << it->value().ts_ms;
    seen.push_back(it->value().ts_ms);
  }
  SKV_EXPECT_OK(it->status());
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1000, 1001, 1002, 1004, 1006, 1008}));
}

// Another person's erasure changes nothing of a scan, across batches too.
TEST_F(ErasedMidScanTest, AnotherPersonsErasureLeavesAScanWhole) {
  options_.iterator_batch_size = 3;
  Reopen();
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  const PersonId bob = PersonWithTenOfEach("bob@x.org");
  auto events = store_->ScanEvents(ann, {});
  auto records = store_->ScanRecords(ann, "notes");
  std::vector<std::int64_t> times;
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i, events->Next(), records->Next()) {
    ASSERT_TRUE(events->Valid());
    ASSERT_TRUE(records->Valid());
    times.push_back(events->value().ts_ms);
    keys.push_back(records->value().key);
  }
  SKV_ASSERT_OK(store_->Erase(bob).status());
  for (; events->Valid(); events->Next()) times.push_back(events->value().ts_ms);
  for (; records->Valid(); records->Next()) keys.push_back(records->value().key);
  SKV_EXPECT_OK(events->status());
  SKV_EXPECT_OK(records->status());
  EXPECT_EQ(times, (std::vector<std::int64_t>{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009}));
  EXPECT_EQ(keys, (std::vector<std::string>{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"}));
}

TEST_F(ErasedMidScanTest, FindRecordsLeavesOutAPersonErasedMidIteration) {
  std::vector<PersonId> people;
  for (int i = 0; i < 4; ++i) {
    people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
    WriteBatch b;
    for (int k = 0; k < 3; ++k) {
      b.Put(people.back(), Record{"orders", std::to_string(k), "order " + std::to_string(k), {}, RecordMetadata{{"billing"}, "", {}, false}});
    }
    SKV_ASSERT_OK(store_->Write(b));
  }
  auto it = store_->FindRecords(RecordQuery{RecordQuery::Field::kPurpose, "billing", 0});
  ASSERT_TRUE(it->Valid());
  const PersonId first = it->value().person;
  it->Next();
  ASSERT_TRUE(it->Valid());
  const PersonId erased = people[0] == first ? people[1] : people[0];
  SKV_ASSERT_OK(store_->Erase(erased).status());
  std::multiset<PersonId> owners{first};
  for (; it->Valid(); it->Next()) {
    EXPECT_NE(it->value().person, erased);
    owners.insert(it->value().person);
  }
  SKV_EXPECT_OK(it->status());
  EXPECT_EQ(owners.size(), 9u);  // three people's three records each
}

TEST_F(ErasedMidScanTest, PeopleWithConsentLeavesOutAPersonErasedMidIteration) {
  std::vector<PersonId> people;
  for (int i = 0; i < 5; ++i) people.push_back(MakePerson("p" + std::to_string(i) + "@x.org"));
  SKV_ASSERT_OK(store_->SetConsent(people, "marketing", false));
  auto it = store_->PeopleWithConsent("marketing", false);
  ASSERT_TRUE(it->Valid());
  std::set<PersonId> listed{it->value()};
  it->Next();
  std::set<PersonId> rest(people.begin(), people.end());
  rest.erase(*listed.begin());
  const PersonId erased = *rest.rbegin();  // still in the iterator's batch
  SKV_ASSERT_OK(store_->Erase(erased).status());
  for (; it->Valid(); it->Next()) listed.insert(it->value());
  SKV_EXPECT_OK(it->status());
  EXPECT_EQ(listed.size(), 4u);
  EXPECT_EQ(listed.count(erased), 0u);
}

TEST_F(ErasedMidScanTest, AnExportStartedBeforeEraseReturnsNothingAfterIt) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->Export(ann);
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value().kind, ExportItem::Kind::kPerson);
  it->Next();
  ASSERT_TRUE(it->Valid());  // identifiers, profile and restriction wait
  SKV_ASSERT_OK(store_->Erase(ann).status());
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsErased()) << it->status().ToString();
}

// The export is one snapshot: a category of the person erased in between
// stops it (export again), at once, also with items of it already read.
TEST_F(ErasedMidScanTest, AnExportStopsBusyWhenACategoryItReadIsErased) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  auto it = store_->Export(ann);
  while (it->Valid() && it->value().kind != ExportItem::Kind::kEvent) it->Next();
  ASSERT_TRUE(it->Valid()) << it->status().ToString();
  SKV_ASSERT_OK(store_->EraseCategory(ann, "location").status());
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsBusy()) << it->status().ToString();
}

// Another person's erasure leaves an export whole.
TEST_F(ErasedMidScanTest, AnotherPersonsErasureLeavesAnExportWhole) {
  const PersonId ann = PersonWithTenOfEach("ann@x.org");
  const PersonId bob = PersonWithTenOfEach("bob@x.org");
  auto counted = [](Iterator<ExportItem>& it, int events) {
    for (; it.Valid(); it.Next()) events += it.value().kind == ExportItem::Kind::kEvent ? 1 : 0;
    return events;
  };
  auto it = store_->Export(ann);
  ASSERT_TRUE(it->Valid());
  it->Next();
  SKV_ASSERT_OK(store_->Erase(bob).status());
  EXPECT_EQ(counted(*it, 0), 10);
  SKV_EXPECT_OK(it->status());
}

// A reader that started its scan before the erasure and reads on after
// Erase returned gets no entry from then on, at whatever point it was. The
// readers are slow (a pause per entry) so that batches read before the
// erasure's commit are still being handed out when Erase returns.
TEST_F(ErasedMidScanTest, NoEntryOfAScanIsReadAfterEraseReturned) {
  options_.iterator_batch_size = 4;
  Reopen();
  for (int round = 0; round < 5 * test::StressFactor(); ++round) {
    const PersonId victim = PersonWithTenOfEach("v" + std::to_string(round) + "@x.org");
    std::atomic<bool> erase_returned{false};
    std::atomic<bool> stop{false};
    std::atomic<int> late_entries{0}, scans{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
      readers.emplace_back([&, t] {
        while (!stop.load()) {
          if (t == 0) {
            auto it = store_->ScanEvents(victim, {});
            for (; it->Valid(); it->Next()) {
              const bool after = erase_returned.load();
              if (!it->value().name.empty() && after) ++late_entries;
              std::this_thread::sleep_for(std::chrono::microseconds(300));
            }
          } else {
            auto it = store_->ScanRecords(victim, "notes");
            for (; it->Valid(); it->Next()) {
              const bool after = erase_returned.load();
              if (!it->value().value.empty() && after) ++late_entries;
              std::this_thread::sleep_for(std::chrono::microseconds(300));
            }
          }
          ++scans;
        }
      });
    }
    while (scans.load() < 2) std::this_thread::yield();
    const auto erased = store_->Erase(victim);
    erase_returned.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop.store(true);
    for (auto& r : readers) r.join();
    SKV_ASSERT_OK(erased.status());
    EXPECT_EQ(late_entries.load(), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace shredkv
