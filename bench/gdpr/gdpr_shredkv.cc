// GDPRbench on shredkv's public API: a person a GDPRbench user, records in
// collection "data" with their metadata (RecordMetadata), metadata queries
// through FindRecords, processing reads through a lease for the record's
// purpose, erasure by Erase, logs from ReadAudit — on one Store, or on a
// ShardedStore (the same calls, routed; the regulator's log read goes
// through every shard's audit log).
#include <mutex>
#include <shared_mutex>

#include "gdpr.h"
#include "shredkv/key_provider.h"
#include "shredkv/sharded_store.h"
#include "shredkv/store.h"
#include "shredkv/write_batch.h"

namespace shredkv_gdpr {
namespace {

using shredkv::PersonId;
using shredkv::Result;

void Check(const shredkv::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string("shredkv ") + what + ": " + s.ToString());
}

constexpr const char* kCollection = "data";

shredkv::Record ToRecord(const GdprRecord& r) {
  shredkv::Record rec;
  rec.collection = kCollection;
  rec.key = RecordKey(r.id);
  rec.value = r.value;
  rec.metadata.purposes = {r.purpose};
  rec.metadata.shared_with = {r.recipient};
  rec.metadata.origin = r.origin;
  rec.metadata.automated_decision = r.decision;
  rec.metadata.expires_ms = r.expires_ms;
  return rec;
}

// Opening and the audit log differ between a Store and a ShardedStore.
Result<std::unique_ptr<shredkv::Store>> OpenStore(shredkv::Options o, shredkv::Store*, std::uint32_t) {
  return shredkv::Store::Open(std::move(o));
}
Result<std::unique_ptr<shredkv::ShardedStore>> OpenStore(shredkv::Options o, shredkv::ShardedStore*,
                                                         std::uint32_t shards) {
  return shredkv::ShardedStore::Open(std::move(o), shards);
}
// Up to `max` entries after `after` in each shard's chain until `max` are read.
std::size_t AuditEntries(shredkv::Store& s, std::uint64_t after, std::size_t max) {
  auto entries = s.ReadAudit(after, max);
  Check(entries.status(), "read audit");
  return entries->size();
}
std::size_t AuditEntries(shredkv::ShardedStore& s, std::uint64_t after, std::size_t max) {
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < s.shard_count() && n < max; ++i) n += AuditEntries(s.shard(i), after, max - n);
  return n;
}

template <typename S>
class ShredkvGdpr final : public GdprSystem {
 public:
  ShredkvGdpr(const std::string& dir, std::uint32_t shards) : shards_(shards) {
    shredkv::Options opt;
    opt.directory = dir;
    opt.create_if_missing = true;
    opt.key_provider = shredkv::NewRawKeyProvider(std::string(32, '\x42'));
    opt.initial_map_size = 16ull << 30;
    opt.rotate_after_erasures = 0;
    opt.rotate_after_ms = 0;
    // The default tracking purpose, then GDPRbench's purposes.
    opt.purposes.push_back(shredkv::PurposeSpec{"analytics", shredkv::LawfulBasis::kLegitimateInterest});
    for (std::size_t i = 0; i < kPurposes; ++i) {
      opt.purposes.push_back(shredkv::PurposeSpec{PurposeName(i), shredkv::LawfulBasis::kLegitimateInterest});
    }
    auto store = OpenStore(std::move(opt), static_cast<S*>(nullptr), shards);
    Check(store.status(), "open");
    store_ = std::move(store).value();
  }
  ~ShredkvGdpr() override {
    if (store_) (void)store_->Close();
  }
  std::string_view name() const override { return shards_ == 0 ? "shredkv" : "shredkv_sharded"; }

  void Load(std::uint64_t n) override {
    const std::uint64_t people = n / kRecordsPerPerson;
    constexpr std::uint64_t kPeoplePerBatch = 1000;
    for (std::uint64_t p0 = 0; p0 < people; p0 += kPeoplePerBatch) {
      shredkv::WriteBatch b;
      for (std::uint64_t p = p0; p < std::min(people, p0 + kPeoplePerBatch); ++p) {
        const PersonId id = b.CreatePerson({{"email", "u" + std::to_string(p) + "@gdpr.bench"}});
        ids_.push_back(id);
        for (std::uint64_t r = p * kRecordsPerPerson; r < (p + 1) * kRecordsPerPerson; ++r) {
          b.Put(id, ToRecord(MakeRecord(r, n)));
        }
      }
      Check(store_->Write(b), "load");
    }
    Check(store_->RunMaintenance(), "maintenance");
  }

  void ErasePerson(std::uint64_t p) override {
    shredkv::EraseOptions o;
    o.request_id = "erase-" + std::to_string(p);
    Check(store_->Erase(std::vector<PersonId>{Person(p)}, o).status(), "erase");
  }

  bool ReadData(const GdprRecord& r) override {
    auto lease = store_->AcquireLease(Person(r.person), r.purpose);
    if (IsGone(lease.status())) return false;
    Check(lease.status(), "lease");
    auto v = (*lease)->Get(kCollection, RecordKey(r.id));
    if (IsGone(v.status())) return false;
    Check(v.status(), "lease get");
    return true;
  }
  std::size_t ReadDataByPurpose(std::string_view purpose) override {
    return Find(shredkv::RecordQuery{shredkv::RecordQuery::Field::kPurpose, std::string(purpose), 0}, kPage);
  }
  std::size_t ReadDataByRecipient(std::string_view recipient) override {
    return Find(shredkv::RecordQuery{shredkv::RecordQuery::Field::kRecipient, std::string(recipient), 0}, SIZE_MAX);
  }
  std::size_t ReadDataByUser(std::uint64_t person) override {
    std::size_t n = 0;
    auto it = store_->ScanRecords(Person(person), kCollection);
    for (; it->Valid(); it->Next()) ++n;
    if (IsGone(it->status())) return 0;
    Check(it->status(), "scan records");
    return n;
  }
  bool ReadMetadata(const GdprRecord& r) override {
    auto rec = store_->GetRecord(Person(r.person), kCollection, RecordKey(r.id));
    if (IsGone(rec.status())) return false;
    Check(rec.status(), "get record");
    return !rec->metadata.purposes.empty();
  }
  std::size_t ReadLogs(std::uint64_t after, std::size_t max) override { return AuditEntries(*store_, after, max); }
  std::uint64_t LogLength() override { return AuditEntries(*store_, 0, SIZE_MAX); }
  bool VerifyDeleted(std::uint64_t person) override {
    auto receipt = store_->GetErasure("erase-" + std::to_string(person));
    if (!receipt.ok()) return false;
    auto v = store_->Get(Person(person), kCollection, RecordKey(person * kRecordsPerPerson));
    return v.status().IsErased();
  }

  void Insert(const GdprRecord& r) override { Write(Batch(r.person, ToRecord(r)), "insert"); }
  void UpdateData(const GdprRecord& r, std::string_view value) override {
    auto rec = store_->GetRecord(Person(r.person), kCollection, RecordKey(r.id));
    if (IsGone(rec.status())) return;
    Check(rec.status(), "get record");
    rec->value.assign(value);
    Write(Batch(r.person, std::move(rec).value()), "update data");
  }
  void UpdateMetadata(const GdprRecord& r, std::string_view recipient) override {
    auto rec = store_->GetRecord(Person(r.person), kCollection, RecordKey(r.id));
    if (IsGone(rec.status())) return;
    Check(rec.status(), "get record");
    rec->metadata.shared_with = {std::string(recipient)};
    Write(Batch(r.person, std::move(rec).value()), "update metadata");
  }
  std::size_t UpdateMetadataByUser(std::uint64_t person, std::string_view recipient) override {
    shredkv::WriteBatch b;
    std::size_t n = 0;
    const PersonId id = Person(person);
    auto it = store_->ScanRecords(id, kCollection);
    for (; it->Valid(); it->Next()) {
      shredkv::Record rec = it->value();
      rec.metadata.shared_with = {std::string(recipient)};
      b.Put(id, std::move(rec));
      ++n;
    }
    if (IsGone(it->status())) return 0;
    Check(it->status(), "scan records");
    if (n != 0) Write(b, "update metadata by user");
    return n;
  }
  std::size_t UpdateMetadataByPurpose(std::string_view purpose, std::string_view recipient) override {
    shredkv::WriteBatch b;
    std::size_t n = 0;
    auto it = store_->FindRecords(shredkv::RecordQuery{shredkv::RecordQuery::Field::kPurpose, std::string(purpose), 0});
    for (; it->Valid() && n < kPage; it->Next()) {
      shredkv::FoundRecord found = it->value();
      found.record.metadata.shared_with = {std::string(recipient)};
      b.Put(found.person, std::move(found.record));
      ++n;
    }
    Check(it->status(), "find records");
    if (n != 0) Write(b, "update metadata by purpose");
    return n;
  }
  std::size_t DeleteByRecipient(std::string_view recipient) override {
    shredkv::WriteBatch b;
    std::size_t n = 0;
    auto it = store_->FindRecords(
        shredkv::RecordQuery{shredkv::RecordQuery::Field::kRecipient, std::string(recipient), 0});
    for (; it->Valid(); it->Next()) {
      b.Delete(it->value().person, kCollection, it->value().record.key);
      ++n;
    }
    Check(it->status(), "find records");
    if (n != 0) Write(b, "delete by recipient");
    return n;
  }
  WriteCounters Counters() override {
    auto st = store_->Stats();
    Check(st.status(), "stats");
    return {st->write_batches, st->write_commits};
  }
  void Delete(const GdprRecord& r) override {
    shredkv::WriteBatch b;
    b.Delete(Person(r.person), kCollection, RecordKey(r.id));
    Write(b, "delete");
  }

 private:
  // Erased (or absent) people are part of the workload: a customer may ask
  // about a record of someone erased during set-up.
  static bool IsGone(const shredkv::Status& s) { return s.IsErased() || s.IsNotFound(); }
  void Write(const shredkv::WriteBatch& b, const char* what) {
    const shredkv::Status s = store_->Write(b);
    if (!IsGone(s)) Check(s, what);
  }
  shredkv::WriteBatch Batch(std::uint64_t person, shredkv::Record rec) {
    shredkv::WriteBatch b;
    b.Put(Person(person), std::move(rec));
    return b;
  }
  const PersonId& Person(std::uint64_t p) const { return ids_.at(p); }
  std::size_t Find(const shredkv::RecordQuery& q, std::size_t limit) {
    std::size_t n = 0;
    auto it = store_->FindRecords(q);
    for (; it->Valid() && n < limit; it->Next()) ++n;
    Check(it->status(), "find records");
    return n;
  }

  std::uint32_t shards_;  // 0: one Store
  std::unique_ptr<S> store_;
  std::vector<PersonId> ids_;  // written by Load only, before any reader
};

}  // namespace

std::unique_ptr<GdprSystem> NewShredkv(const std::string& dir) {
  return std::make_unique<ShredkvGdpr<shredkv::Store>>(dir, 0);
}
std::unique_ptr<GdprSystem> NewShredkvSharded(const std::string& dir, std::uint32_t shards) {
  return std::make_unique<ShredkvGdpr<shredkv::ShardedStore>>(dir, shards);
}

}  // namespace shredkv_gdpr
