// Record metadata (RecordMetadata, issue 17): stored sealed with the record,
// read back canonical, enforced by processing leases, validated, replaced
// by the next put, and carried by exports and imports.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/store_impl.h"
#include "shredkv/portability.h"
#include "test_util.h"

namespace shredkv {
namespace {

class RecordMetadataTest : public test::StoreTest {
 protected:
  Status PutWith(const PersonId& id, const std::string& key, RecordMetadata m) {
    WriteBatch b;
    b.Put(id, Record{"orders", key, "value of " + key, {}, std::move(m)});
    return store_->Write(b);
  }
  std::vector<std::string> ScannedKeys(Lease& lease) {
    std::vector<std::string> keys;
    auto it = lease.ScanRecords("orders");
    for (; it->Valid(); it->Next()) keys.push_back(it->value().key);
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return keys;
  }
};

TEST_F(RecordMetadataTest, MetadataIsStoredWithTheRecordAndReadBackInCanonicalForm) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"support", "billing", "support"}, "checkout", {"psp", "carrier", "psp"}, true}));
  auto r = store_->GetRecord(ann, "orders", "1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "value of 1");
  EXPECT_EQ(r->metadata.purposes, (std::vector<std::string>{"billing", "support"}));
  EXPECT_EQ(r->metadata.origin, "checkout");
  EXPECT_EQ(r->metadata.shared_with, (std::vector<std::string>{"carrier", "psp"}));
  EXPECT_TRUE(r->metadata.automated_decision);
  auto it = store_->ScanRecords(ann, "orders");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value().metadata, r->metadata);
  // A put replaces the metadata with its own (here: none): rectification.
  SKV_ASSERT_OK(store_->Put(ann, "orders", "1", "corrected"));
  r = store_->GetRecord(ann, "orders", "1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value, "corrected");
  EXPECT_TRUE(r->metadata.empty());
}

TEST_F(RecordMetadataTest, ALeaseReadsOnlyRecordsCollectedForItsPurpose) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(PutWith(ann, "billing-only", RecordMetadata{{"billing"}, "", {}, false}));
  SKV_ASSERT_OK(PutWith(ann, "any", RecordMetadata{{}, "import", {}, false}));
  SKV_ASSERT_OK(store_->Put(ann, "orders", "plain", "no metadata"));
  {
    auto lease = store_->AcquireLease(ann, "support");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_TRUE((*lease)->Get("orders", "billing-only").status().IsRestricted());
    EXPECT_EQ(*(*lease)->Get("orders", "any"), "value of any");
    EXPECT_EQ(*(*lease)->Get("orders", "plain"), "no metadata");
    auto keys = ScannedKeys(**lease);
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"any", "plain"}));
  }
  auto lease = store_->AcquireLease(ann, "billing");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(*(*lease)->Get("orders", "billing-only"), "value of billing-only");
  EXPECT_EQ(ScannedKeys(**lease).size(), 3u);
}

TEST_F(RecordMetadataTest, InvalidMetadataIsRefusedAndNothingIsWritten) {
  const PersonId ann = MakePerson("ann@x.org");
  const std::vector<RecordMetadata> bad = {
      RecordMetadata{{"not_registered"}, "", {}, false},
      RecordMetadata{{""}, "", {}, false},
      RecordMetadata{{}, std::string(1025, 'o'), {}, false},
      RecordMetadata{{}, "", {std::string(256, 'r')}, false},
      RecordMetadata{{}, "", {""}, false},
      // Outside audit 37d, F3: a NUL byte, which C and Python cut at.
      RecordMetadata{{}, "", {std::string("a\0b", 3)}, false},
  };
  for (const RecordMetadata& m : bad) EXPECT_TRUE(PutWith(ann, "1", m).IsInvalidArgument());
  RecordMetadata many;
  for (int i = 0; i < 65; ++i) many.shared_with.push_back("r" + std::to_string(i));
  EXPECT_TRUE(PutWith(ann, "1", many).IsInvalidArgument());
  EXPECT_TRUE(store_->GetRecord(ann, "orders", "1").status().IsNotFound());
  many.shared_with.pop_back();  // 64 is allowed
  SKV_EXPECT_OK(PutWith(ann, "1", many));
}

TEST_F(RecordMetadataTest, ExportCarriesTheMetadataAndImportRestoresIt) {
  const PersonId ann = MakePerson("ann@x.org");
  const RecordMetadata m{{"billing"}, "checkout", {"psp"}, true, 4102444800000};  // expires in 2100
  SKV_ASSERT_OK(PutWith(ann, "1", m));
  SKV_ASSERT_OK(store_->Put(ann, "orders", "2", "plain"));
  std::ostringstream out;
  SKV_ASSERT_OK(ExportPerson(*store_, ann, ExportFormat::kNdjson, out));
  const std::string doc = out.str();
  EXPECT_NE(doc.find(R"("metadata":{"purposes":["billing"],"origin":"checkout","shared_with":["psp"],"automated_decision":true,"expires_ms":4102444800000})"),
            std::string::npos)
      << doc;
  // A record without metadata has no "metadata" key at all.
  EXPECT_NE(doc.find(R"("value_text":"plain","category":"general"})"), std::string::npos) << doc;
  SKV_ASSERT_OK(store_->Erase({ann}, EraseOptions{}).status());
  std::istringstream in(doc);
  auto imported = ImportPerson(*store_, in, ExportFormat::kNdjson);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto r = store_->GetRecord(imported->person, "orders", "1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->metadata, m);
  EXPECT_TRUE(store_->GetRecord(imported->person, "orders", "2")->metadata.empty());
}

}  // namespace
}  // namespace shredkv

namespace shredkv {
namespace {

class FindRecordsTest : public RecordMetadataTest {
 protected:
  // (person, key) of every record FindRecords returns.
  std::set<std::pair<PersonId, std::string>> Found(RecordQuery::Field field, const std::string& value) {
    std::set<std::pair<PersonId, std::string>> found;
    auto it = store_->FindRecords(RecordQuery{field, value});
    for (; it->Valid(); it->Next()) found.emplace(it->value().person, it->value().record.key);
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return found;
  }
  std::uint64_t IndexRows() {
    auto& impl = *dynamic_cast<engine::StoreImpl*>(store_.get());
    std::uint64_t n = 0;
    SKV_EXPECT_OK(impl.data().View([&](storage::ReadTxn& txn) -> Status {
      for (storage::Table t : {impl.tables().record_index, impl.tables().record_index_refs}) {
        auto c = txn.Count(t);
        if (!c.ok()) return c.status();
        n += *c;
      }
      return Status::OK();
    }));
    return n;
  }
};

TEST_F(FindRecordsTest, FindsTheRecordsOfEveryPersonThatCarryAPurposeOrARecipient) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing"}, "", {"psp"}, false}));
  SKV_ASSERT_OK(PutWith(ann, "2", RecordMetadata{{"support"}, "", {}, false}));
  SKV_ASSERT_OK(PutWith(bob, "1", RecordMetadata{{"billing", "support"}, "", {"carrier"}, false}));
  for (int i = 0; i < 200; ++i) SKV_ASSERT_OK(store_->Put(bob, "orders", "plain" + std::to_string(i), "v"));
  using F = RecordQuery::Field;
  EXPECT_EQ(Found(F::kPurpose, "billing"), (std::set<std::pair<PersonId, std::string>>{{ann, "1"}, {bob, "1"}}));
  EXPECT_EQ(Found(F::kPurpose, "support"), (std::set<std::pair<PersonId, std::string>>{{ann, "2"}, {bob, "1"}}));
  EXPECT_EQ(Found(F::kRecipient, "psp"), (std::set<std::pair<PersonId, std::string>>{{ann, "1"}}));
  EXPECT_TRUE(Found(F::kPurpose, "marketing").empty());
  EXPECT_TRUE(Found(F::kRecipient, "nobody").empty());
  // One entry per purpose and recipient, one refs row per record with any:
  // records without metadata cost the index nothing.
  EXPECT_EQ(IndexRows(), (2u + 1u + 3u) + 3u);
  auto bad = store_->FindRecords(RecordQuery{F::kPurpose, "not_registered"});
  EXPECT_FALSE(bad->Valid());
  EXPECT_TRUE(bad->status().IsInvalidArgument());
  EXPECT_TRUE(store_->FindRecords(RecordQuery{F::kRecipient, ""})->status().IsInvalidArgument());
}

TEST_F(FindRecordsTest, ReadsInGrowingBatchesAndFindsEveryRecordAcrossThem) {
  // Batches start at 16 entries and double up to iterator_batch_size (here
  // 64): 500 records cross every size, each found exactly once.
  options_.iterator_batch_size = 64;
  Reopen();
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  std::set<std::pair<PersonId, std::string>> want;
  for (int i = 0; i < 500; ++i) {
    const PersonId& who = i % 3 == 0 ? bob : ann;
    SKV_ASSERT_OK(PutWith(who, std::to_string(i), RecordMetadata{{"billing"}, "", {}, false}));
    want.emplace(who, std::to_string(i));
  }
  std::size_t seen = 0;
  auto it = store_->FindRecords(RecordQuery{RecordQuery::Field::kPurpose, "billing"});
  for (; it->Valid(); it->Next()) ++seen;
  SKV_ASSERT_OK(it->status());
  EXPECT_EQ(seen, 500u);
  EXPECT_EQ(Found(RecordQuery::Field::kPurpose, "billing"), want);
}

TEST_F(FindRecordsTest, ARewriteChangesOnlyTheEntriesThatDiffer) {
  // The index is updated by difference: entries kept, dropped and added in
  // one rewrite, and a rewrite with the same metadata leaves it as it was.
  const PersonId ann = MakePerson("ann@x.org");
  using F = RecordQuery::Field;
  using Set = std::set<std::pair<PersonId, std::string>>;
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing", "support"}, "", {"psp"}, false}));
  const auto rows = IndexRows();
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing", "support"}, "", {"psp"}, false}));
  EXPECT_EQ(IndexRows(), rows);
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"marketing", "support"}, "", {"carrier"}, false}));
  EXPECT_TRUE(Found(F::kPurpose, "billing").empty());
  EXPECT_EQ(Found(F::kPurpose, "support"), (Set{{ann, "1"}}));
  EXPECT_EQ(Found(F::kPurpose, "marketing"), (Set{{ann, "1"}}));
  EXPECT_TRUE(Found(F::kRecipient, "psp").empty());
  EXPECT_EQ(Found(F::kRecipient, "carrier"), (Set{{ann, "1"}}));
  EXPECT_EQ(IndexRows(), rows);  // still three entries and one refs row
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{}));
  EXPECT_EQ(IndexRows(), 0u);
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << (report->problems.empty() ? "" : report->problems.front());
}

TEST_F(FindRecordsTest, RewritesDeletesErasuresAndPurgesKeepTheIndexExact) {
  const PersonId ann = MakePerson("ann@x.org");
  const PersonId bob = MakePerson("bob@x.org");
  using F = RecordQuery::Field;
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing"}, "", {"psp"}, false}));
  SKV_ASSERT_OK(PutWith(ann, "2", RecordMetadata{{"billing"}, "", {}, false}));
  SKV_ASSERT_OK(PutWith(bob, "1", RecordMetadata{{"billing"}, "", {"psp"}, false}));
  // A rewrite replaces the entries; a delete removes them.
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"support"}, "", {}, false}));
  SKV_ASSERT_OK(store_->Delete(ann, "orders", "2"));
  EXPECT_EQ(Found(F::kPurpose, "billing"), (std::set<std::pair<PersonId, std::string>>{{bob, "1"}}));
  EXPECT_EQ(Found(F::kPurpose, "support"), (std::set<std::pair<PersonId, std::string>>{{ann, "1"}}));
  EXPECT_EQ(Found(F::kRecipient, "psp"), (std::set<std::pair<PersonId, std::string>>{{bob, "1"}}));
  // An erased person is no longer found, at once; the purge removes the
  // entries themselves.
  ASSERT_TRUE(store_->Erase({bob}, EraseOptions{}).ok());
  EXPECT_TRUE(Found(F::kPurpose, "billing").empty());
  EXPECT_TRUE(Found(F::kRecipient, "psp").empty());
  auto purged = store_->Purge(1000000);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(IndexRows(), 1u + 1u);  // ann's record 1: support, and its refs
  auto report = store_->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
}

TEST_F(FindRecordsTest, ACategoryErasureHidesAndItsPurgeRemovesTheCategorysEntries) {
  const PersonId ann = MakePerson("ann@x.org");
  using F = RecordQuery::Field;
  WriteBatch b;
  b.Put(ann, Record{"cards", "visa", "4242", "payment", RecordMetadata{{"billing"}, "", {}, false}});
  b.Put(ann, Record{"orders", "1", "book", "general", RecordMetadata{{"billing"}, "", {}, false}});
  SKV_ASSERT_OK(store_->Write(b));
  ASSERT_EQ(Found(F::kPurpose, "billing").size(), 2u);
  ASSERT_TRUE(store_->EraseCategory(ann, "payment", {}).ok());
  EXPECT_EQ(Found(F::kPurpose, "billing"), (std::set<std::pair<PersonId, std::string>>{{ann, "1"}}));
  ASSERT_TRUE(store_->Purge(1000000).ok());
  EXPECT_EQ(IndexRows(), 1u + 1u);  // the general record's entry and refs
}

class RecordExpiryTest : public FindRecordsTest {
 protected:
  void SetUp() override {
    options_ = test::TestOptions(dir_.path());
    options_.clock = [this] { return now_.load(); };
    Reopen();
  }
  static constexpr std::int64_t kT0 = 1'700'000'000'000;
  std::atomic<std::int64_t> now_{kT0};
};

TEST_F(RecordExpiryTest, ARecordIsGoneAtItsOwnExpiryAndTheSweepDeletesIt) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(PutWith(ann, "soon", RecordMetadata{{"billing"}, "", {}, false, kT0 + 1000}));
  SKV_ASSERT_OK(PutWith(ann, "later", RecordMetadata{{}, "", {}, false, kT0 + 5000}));
  SKV_ASSERT_OK(store_->Put(ann, "orders", "never", "v"));
  using F = RecordQuery::Field;
  RecordQuery before{F::kExpiresBefore, "", kT0 + 2000};
  auto found = store_->FindRecords(before);
  ASSERT_TRUE(found->Valid());
  EXPECT_EQ(found->value().record.key, "soon");
  found->Next();
  EXPECT_FALSE(found->Valid());
  EXPECT_TRUE(found->status().ok());
  found.reset();
  EXPECT_TRUE(store_->Sweep(1000)->records_deleted == 0);  // nothing expired yet
  now_ = kT0 + 1000;  // "soon" expires
  EXPECT_TRUE(store_->GetRecord(ann, "orders", "soon").status().IsNotFound());
  EXPECT_TRUE(store_->Get(ann, "orders", "soon").status().IsNotFound());
  std::vector<std::string> keys;
  for (auto it = store_->ScanRecords(ann, "orders"); it->Valid(); it->Next()) keys.push_back(it->value().key);
  EXPECT_EQ(keys, (std::vector<std::string>{"later", "never"}));
  EXPECT_TRUE(Found(F::kPurpose, "billing").empty());
  std::ostringstream out;
  SKV_ASSERT_OK(ExportPerson(*store_, ann, ExportFormat::kNdjson, out));
  EXPECT_EQ(out.str().find("\"key_text\":\"soon\""), std::string::npos);
  EXPECT_NE(out.str().find("\"key_text\":\"later\""), std::string::npos);
  // The sweep deletes it, with its index entries.
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 1u);
  EXPECT_EQ(store_->Stats()->records, 2u);
  EXPECT_EQ(IndexRows(), 1u + 1u);  // "later": its expiry entry and refs
  EXPECT_EQ(store_->Sweep(1000)->records_deleted, 0u);
  EXPECT_TRUE(PutWith(ann, "bad", RecordMetadata{{}, "", {}, false, -5}).IsInvalidArgument());
}

// Review finding: a record deleted by its collection's retention rule kept
// its index entries, and its own expiry later counted it a second time.
TEST_F(RecordExpiryTest, ARetentionSweepRemovesTheRecordsIndexEntriesAndCountsItOnce) {
  RetentionRules rules;
  rules.collections["orders"] = 1000;
  SKV_ASSERT_OK(store_->SetRetention(rules));
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing"}, "", {"psp"}, false, kT0 + 5000}));
  ASSERT_EQ(IndexRows(), 3u + 1u);
  now_ = kT0 + 2000;  // past the collection's rule, before the record's own expiry
  auto swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 1u);
  EXPECT_EQ(IndexRows(), 0u);
  EXPECT_TRUE(Found(RecordQuery::Field::kPurpose, "billing").empty());
  now_ = kT0 + 6000;  // and past its own expiry: nothing left to delete or count
  swept = store_->Sweep(1000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->records_deleted, 0u);
  EXPECT_EQ(store_->Stats()->expired_removed, 1u);
}

// Stop 28's audit, F2: records past their own expiry were not counted as
// pending, so a sweep stopped by its budget among them said `pending` 0
// (and `shredkv sweep`, which sweeps until nothing is pending, stopped
// after its first 10,000 rows with the rest still stored), and
// StoreStats::expired_pending left them out.
TEST_F(RecordExpiryTest, RecordsPastTheirOwnExpiryCountAsPendingUntilSwept) {
  const PersonId ann = MakePerson("ann@x.org");
  for (int i = 0; i < 3; ++i) {
    SKV_ASSERT_OK(PutWith(ann, "k" + std::to_string(i), RecordMetadata{{}, "", {}, false, kT0 + 1000 + i}));
  }
  SKV_ASSERT_OK(PutWith(ann, "later", RecordMetadata{{}, "", {}, false, kT0 + 5000}));
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  now_ = kT0 + 1002;  // k0, k1, k2 past their expiry
  EXPECT_EQ(store_->Stats()->expired_pending, 3u);
  auto swept = store_->Sweep(2);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->records_deleted, 2u);
  EXPECT_EQ(swept->pending, 1u);
  EXPECT_EQ(store_->Stats()->expired_pending, 1u);
  swept = store_->Sweep(1);  // the budget ends with the last one: nothing left to count
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->records_deleted, 1u);
  EXPECT_EQ(swept->pending, 0u);
  EXPECT_EQ(store_->Stats()->expired_pending, 0u);
  EXPECT_EQ(store_->Stats()->records, 1u);
}

TEST_F(FindRecordsTest, NoPurposeOrRecipientIsInTheClearInTheDataFile) {
  const PersonId ann = MakePerson("ann@x.org");
  SKV_ASSERT_OK(PutWith(ann, "1", RecordMetadata{{"billing"}, "canary-origin-4711", {"canary-recipient-0815"}, true}));
  SKV_ASSERT_OK(store_->Close());
  store_.reset();
  std::ifstream f(dir_.path() + "/data/data.mdb", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 0u);
  EXPECT_EQ(bytes.find("canary-recipient-0815"), std::string::npos);
  EXPECT_EQ(bytes.find("canary-origin-4711"), std::string::npos);
}


// Outside audit 30, F3: a put over a record past its own expiry (or its
// collection's rule) — gone for every reader, as if deleted — kept the dead
// record's category, so new data landed in a category nobody chose (and a
// category erasure of it shredded the new record). It takes the
// collection's declared category, as after a delete.
TEST(RecordExpiryCategoryTest, APutOverAnExpiredRecordTakesTheCollectionsCategory) {
  for (const bool own_expiry : {true, false}) {
    SCOPED_TRACE(own_expiry ? "past its own expiry" : "past its collection's rule");
    test::TempDir dir;
    std::atomic<std::int64_t> now{1'700'000'000'000};
    Options o = test::TestOptions(dir.Sub("s"));
    o.categories = {"payment"};
    o.clock = [&now] { return now.load(); };
    if (!own_expiry) o.retention = RetentionRules{{}, {{"orders", 1000}}, 0};
    auto opened = Store::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    const PersonId ann = *store.CreatePerson({{"email", "ann@x.org"}});
    Record old{"orders", "k", "old card", "payment", {}};
    if (own_expiry) old.metadata.expires_ms = now + 10;
    WriteBatch b;
    b.Put(ann, old);
    SKV_ASSERT_OK(store.Write(b));
    ASSERT_EQ(store.GetRecord(ann, "orders", "k")->category, "payment");
    now += 2000;
    ASSERT_TRUE(store.GetRecord(ann, "orders", "k").status().IsNotFound());
    SKV_ASSERT_OK(store.Put(ann, "orders", "k", "new value"));
    auto r = store.GetRecord(ann, "orders", "k");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->category, "general");
    // A payment erasure no longer reaches the new record.
    ASSERT_TRUE(store.EraseCategory(ann, "payment").ok());
    EXPECT_EQ(store.GetRecord(ann, "orders", "k")->value, "new value");
    // A record that is not expired still keeps its own category.
    Record live{"orders", "live", "card", "payment", {}};
    WriteBatch b2;
    b2.Put(ann, live);
    SKV_ASSERT_OK(store.Write(b2));
    SKV_ASSERT_OK(store.Put(ann, "orders", "live", "card 2"));
    EXPECT_EQ(store.GetRecord(ann, "orders", "live")->category, "payment");
  }
}

}  // namespace
}  // namespace shredkv
