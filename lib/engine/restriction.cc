// Restriction of processing, consent and processing leases (design §6).
#include <algorithm>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/data_rows.h"
#include "engine/store_impl.h"
#include "util/coding.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

bool Contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Filters an iterator's entries by a predicate, keeping the inner
// iterator's batching and error reporting.
template <typename T>
class FilteringIterator final : public Iterator<T> {
 public:
  FilteringIterator(std::unique_ptr<Iterator<T>> inner, std::function<bool(const T&)> keep)
      : inner_(std::move(inner)), keep_(std::move(keep)) {
    Skip();
  }
  bool Valid() const override { return inner_->Valid(); }
  void Next() override {
    inner_->Next();
    Skip();
  }
  const T& value() const override { return inner_->value(); }
  Status status() const override { return inner_->status(); }

 private:
  void Skip() {
    while (inner_->Valid() && !keep_(inner_->value())) inner_->Next();
  }
  std::unique_ptr<Iterator<T>> inner_;
  std::function<bool(const T&)> keep_;
};

class LeaseImpl final : public Lease {
 public:
  LeaseImpl(StoreImpl* store, PersonId id, std::string purpose, std::vector<std::string> withheld)
      : store_(store), id_(id), purpose_(std::move(purpose)), withheld_(std::move(withheld)) {}
  ~LeaseImpl() override { store_->leases().Release(id_); }
  LeaseImpl(const LeaseImpl&) = delete;
  LeaseImpl& operator=(const LeaseImpl&) = delete;

  const PersonId& person() const override { return id_; }
  const std::string& purpose() const override { return purpose_; }

  Result<Attributes> GetProfile() override {
    auto profile = store_->GetProfile(id_);
    if (!profile.ok()) return profile.status();
    for (auto it = profile->begin(); it != profile->end();) {
      it = Withheld(store_->policy().AttributeCategory(it->first)) ? profile->erase(it) : std::next(it);
    }
    return profile;
  }

  std::unique_ptr<EventIterator> ScanEvents(TimeRange range) override {
    return std::make_unique<FilteringIterator<StoredEvent>>(
        store_->ScanEvents(id_, range), [this](const StoredEvent& e) { return !Withheld(e.category); });
  }

  Result<std::string> Get(std::string_view collection, std::string_view key) override {
    if (Withheld(store_->policy().CollectionCategory(collection, {}))) {
      return Status::Restricted("collection '" + std::string(collection) + "' is in a restricted category");
    }
    auto r = store_->GetRecord(id_, collection, key);
    if (!r.ok()) return r.status();
    if (Withheld(r->category)) return Status::Restricted("the record is in a restricted category");
    return std::move(r->value);
  }

  std::unique_ptr<RecordIterator> ScanRecords(std::string_view collection, std::string_view prefix) override {
    return std::make_unique<FilteringIterator<Record>>(store_->ScanRecords(id_, collection, prefix),
                                                       [this](const Record& r) { return !Withheld(r.category); });
  }

 private:
  bool Withheld(std::string_view category) const { return Contains(withheld_, category); }

  StoreImpl* store_;
  PersonId id_;
  std::string purpose_;
  std::vector<std::string> withheld_;
};

}  // namespace

Result<RestrictionState> StoreImpl::ReadRestriction(storage::ReadTxn& txn, const PersonId& id) const {
  std::string payload;
  Status g = ReadPlain(txn, tables_.restrictions, TableId::kRestrictions, id.view(), &payload);
  if (g.IsNotFound()) return RestrictionState{};
  if (!g.ok()) return g.WithContext("restriction of " + id.ToHex());
  RestrictionState r;
  if (Status d = codec::DecodeRestriction(payload, &r); !d.ok()) return d;
  return r;
}

Result<std::map<std::string, bool>> StoreImpl::ReadConsent(storage::ReadTxn& txn, const PersonId& id) const {
  std::map<std::string, bool> out;
  auto cursor = txn.OpenCursor(tables_.consent);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(id.view());
  for (; m.ok() && c.Valid() && c.key().substr(0, PersonId::kSize) == id.view(); m = c.Next()) {
    std::string_view payload;
    if (Status o = codec::OpenPlain(TableId::kConsent, c.key(), c.value(), &payload); !o.ok()) return o;
    if (payload.size() != 9) return Status::Corruption("consent row malformed");
    out[std::string(c.key().substr(PersonId::kSize))] = payload[0] == 1;
  }
  if (!m.ok()) return m;
  return out;
}

Status StoreImpl::Restrict(const PersonId& id, const RestrictionSpec& spec) {
  if (!spec.all && spec.purposes.empty() && spec.categories.empty()) {
    return Status::InvalidArgument("a restriction names all processing, purposes or categories");
  }
  {
    std::shared_lock close_lock(close_mu_);
    if (Status s = CheckUsable(); !s.ok()) return s;
  }
  // No worker may be mid-processing when the restriction starts.
  if (Status d = leases_.BeginDrain({id}, std::chrono::milliseconds(options_.lease_drain_timeout_ms)); !d.ok()) {
    return d;
  }
  WriteBatch batch;
  ConsentRecord rec;
  rec.action = ConsentRecord::Action::kRestrict;
  rec.restriction = spec;
  batch.RecordConsent(id, rec);
  Status s = Write(batch);
  leases_.EndDrain({id});
  return s;
}

Status StoreImpl::Unrestrict(const PersonId& id, const RestrictionSpec& spec) {
  WriteBatch batch;
  ConsentRecord rec;
  rec.action = ConsentRecord::Action::kUnrestrict;
  rec.restriction = spec;
  if (!spec.all && spec.purposes.empty() && spec.categories.empty()) rec.restriction.all = true;
  batch.RecordConsent(id, rec);
  return Write(batch);
}

Result<RestrictionState> StoreImpl::GetRestriction(const PersonId& id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  if (auto dek = PersonKey(id); !dek.ok()) return dek.status();
  RestrictionState out;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ReadRestriction(txn, id);
    if (!r.ok()) return r.status();
    out = *r;
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Status StoreImpl::SetConsent(const PersonId& id, std::string_view purpose, bool granted, std::string_view source) {
  WriteBatch batch;
  ConsentRecord rec;
  rec.action = granted ? ConsentRecord::Action::kGrant : ConsentRecord::Action::kWithdraw;
  rec.purpose = std::string(purpose);
  rec.source = std::string(source);
  batch.RecordConsent(id, rec);
  return Write(batch);
}

Result<std::map<std::string, bool>> StoreImpl::GetConsent(const PersonId& id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  if (auto dek = PersonKey(id); !dek.ok()) return dek.status();
  std::map<std::string, bool> out;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto c = ReadConsent(txn, id);
    if (!c.ok()) return c.status();
    out = *c;
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<ConsentRecord>> StoreImpl::GetConsentHistory(const PersonId& id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  PersonLocks::SharedGuard person_lock(person_locks_, id);
  auto dek = PersonKey(id);
  if (!dek.ok()) return dek.status();
  std::vector<ConsentRecord> out;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto cursor = txn.OpenCursor(tables_.consent_history);
    if (!cursor.ok()) return cursor.status();
    auto& c = **cursor;
    Status m = c.Seek(id.view());
    for (; m.ok() && c.Valid() && c.key().substr(0, PersonId::kSize) == id.view(); m = c.Next()) {
      std::string plain;
      if (Status o = codec::OpenPersonRow(**dek, TableId::kConsentHistory, c.key(), c.value(), &plain); !o.ok()) {
        return o;
      }
      ConsentRecord rec;
      Status d = codec::DecodeConsentRecord(plain, &rec);
      crypto::Wipe(&plain);
      if (!d.ok()) return d;
      out.push_back(std::move(rec));
    }
    return m;
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::unique_ptr<Lease>> StoreImpl::AcquireLease(const PersonId& id, std::string_view purpose) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (auto basis = policy_->Basis(purpose); !basis.ok()) return basis.status();
  {
    PersonLocks::SharedGuard person_lock(person_locks_, id);
    if (auto dek = PersonKey(id); !dek.ok()) return dek.status();
  }
  // Register first, then read the state: a restriction that starts draining
  // after this point waits for this lease; one that committed before is seen.
  if (Status a = leases_.Acquire(id); !a.ok()) return a;
  RestrictionState restriction;
  std::map<std::string, bool> consent;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ReadRestriction(txn, id);
    if (!r.ok()) return r.status();
    auto c = ReadConsent(txn, id);
    if (!c.ok()) return c.status();
    restriction = *r;
    consent = *c;
    return Status::OK();
  });
  if (s.ok() && policy_->Refused(restriction, consent, purpose)) {
    s = Status::Restricted("processing of person " + id.ToHex() + " for '" + std::string(purpose) +
                           "' is restricted or lacks consent");
  }
  if (!s.ok()) {
    leases_.Release(id);
    return s;
  }
  return std::unique_ptr<Lease>(
      std::make_unique<LeaseImpl>(this, id, std::string(purpose), std::move(restriction.categories)));
}

}  // namespace shredkv::engine
