// Restriction of processing, consent and processing leases (design §6).
#include <algorithm>
#include <atomic>
#include <memory>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/secure_memory.h"
#include "engine/data_rows.h"
#include "engine/processing.h"
#include "engine/iterators.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv::engine {
namespace {

using codec::TableId;

bool Contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A record that names the purposes it was collected for is read only for
// those (RecordMetadata::purposes); one that names none, for any.
bool CollectedFor(const Record& r, std::string_view purpose) {
  return r.metadata.purposes.empty() || Contains(r.metadata.purposes, purpose);
}

class LeaseImpl final : public Lease {
 public:
  LeaseImpl(EngineContext& ctx, Reader& reader, PersonId id, std::string purpose, std::vector<std::string> withheld)
      : ctx_(ctx), reader_(reader), id_(id), purpose_(std::move(purpose)), withheld_(std::move(withheld)) {}
  // Its iterators end before the lease is released: a restriction or
  // erasure that waited for it finds none of them still reading.
  ~LeaseImpl() override {
    ended_->store(true, std::memory_order_release);
    ctx_.leases.Release(id_, holder_);
  }
  LeaseImpl(const LeaseImpl&) = delete;
  LeaseImpl& operator=(const LeaseImpl&) = delete;

  const PersonId& person() const override { return id_; }
  const std::string& purpose() const override { return purpose_; }

  Result<Attributes> GetProfile() override {
    auto profile = reader_.GetProfile(id_);
    if (!profile.ok()) return profile.status();
    for (auto it = profile->begin(); it != profile->end();) {
      it = Withheld(ctx_.policy->AttributeCategory(it->first)) ? profile->erase(it) : std::next(it);
    }
    return profile;
  }

  std::unique_ptr<EventIterator> ScanEvents(TimeRange range) override {
    // The filter holds copies, not the lease: an iterator kept past its
    // lease must not read a destroyed one (it may run from Valid()).
    return NewEventIterator(
        &ctx_, id_, range, [withheld = withheld_](const StoredEvent& e) { return !Contains(withheld, e.category); },
        ended_);
  }

  Result<std::string> Get(std::string_view collection, std::string_view key) override {
    // The record's own category decides, as in ScanRecords (a batch put may
    // give a record another category than its collection's). Until stop 34
    // a collection whose declared category was restricted refused every Get
    // while ScanRecords returned its records of other categories (review of
    // stop 34, R7).
    auto r = reader_.GetRecord(id_, collection, key);
    if (!r.ok()) return r.status();
    if (Withheld(r->category)) return Status::Restricted("the record is in a restricted category");
    if (!CollectedFor(*r, purpose_)) {
      return Status::Restricted("the record was not collected for purpose '" + purpose_ + "'");
    }
    return std::move(r->value);
  }

  std::unique_ptr<RecordIterator> ScanRecords(std::string_view collection, std::string_view prefix) override {
    // The filter runs where each batch is read (iterators.h, EntryFilter),
    // and holds copies of what it needs, as ScanEvents' does.
    return NewRecordIterator(&ctx_, id_, std::string(collection), std::string(prefix),
                             [withheld = withheld_, purpose = purpose_](const Record& r) {
                               return !Contains(withheld, r.category) && CollectedFor(r, purpose);
                             },
                             ended_);
  }

 private:
  bool Withheld(std::string_view category) const { return Contains(withheld_, category); }

  EngineContext& ctx_;
  Reader& reader_;
  LeaseHolder holder_ = ThisThreadAsLeaseHolder();  // the acquiring thread (LeaseTable)
  PersonId id_;
  std::string purpose_;
  std::vector<std::string> withheld_;
  // Set when the lease ends; its iterators share it (NewEventIterator).
  std::shared_ptr<std::atomic<bool>> ended_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace

namespace {

// The people once each, in order (a duplicate would be drained twice and
// get two history entries).
std::vector<PersonId> Distinct(const std::vector<PersonId>& people) {
  std::vector<PersonId> out = people;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Writes one batch that records `rec` for each of `people` (Distinct).
// An error names its person (the operations' messages do); the "operation
// #k" the writer puts first would count in the sorted, de-duplicated list,
// neither the caller's vector nor an `--ids` line (stop 28's audit, F8), so
// it is left out.
Status WriteConsent(Writer& writer, const std::vector<PersonId>& people, const ConsentRecord& rec) {
  WriteBatch batch;
  for (const PersonId& id : people) batch.RecordConsent(id, rec);
  Status s = writer.Write(batch);
  static constexpr std::string_view kOperation = "operation #";
  const std::string& m = s.message();
  if (s.ok() || m.compare(0, kOperation.size(), kOperation) != 0) return s;
  const std::size_t end = m.find("): ");
  return end == std::string::npos ? s : s.WithMessage(m.substr(end + 3));
}

}  // namespace

Status Processing::Restrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) {
  if (!spec.all && spec.purposes.empty() && spec.categories.empty()) {
    return Status::InvalidArgument("a restriction names all processing, purposes or categories");
  }
  if (people.empty()) return Status::InvalidArgument("Restrict needs at least one person");
  {
    CallGuard guard(ctx_);
    if (!guard.ok()) return guard.status();
  }
  const std::vector<PersonId> distinct = Distinct(people);
  // No worker may be mid-processing when the restriction starts.
  const auto timeout = std::chrono::milliseconds(ctx_.options.lease_drain_timeout_ms);
  if (Status d = ctx_.leases.BeginDrain(distinct, timeout); !d.ok()) return d;
  ConsentRecord rec;
  rec.action = ConsentRecord::Action::kRestrict;
  rec.restriction = spec;
  Status s = WriteConsent(writer_, distinct, rec);
  ctx_.leases.EndDrain(distinct);
  return s;
}

Status Processing::Unrestrict(const std::vector<PersonId>& people, const RestrictionSpec& spec) {
  if (people.empty()) return Status::InvalidArgument("Unrestrict needs at least one person");
  ConsentRecord rec;
  rec.action = ConsentRecord::Action::kUnrestrict;
  rec.restriction = spec;
  if (!spec.all && spec.purposes.empty() && spec.categories.empty()) rec.restriction.all = true;
  return WriteConsent(writer_, Distinct(people), rec);
}

Status Processing::SetConsent(const std::vector<PersonId>& people, std::string_view purpose, bool granted,
                              std::string_view source) {
  if (people.empty()) return Status::InvalidArgument("SetConsent needs at least one person");
  ConsentRecord rec;
  rec.action = granted ? ConsentRecord::Action::kGrant : ConsentRecord::Action::kWithdraw;
  rec.purpose = std::string(purpose);
  rec.source = std::string(source);
  return WriteConsent(writer_, Distinct(people), rec);
}

Result<std::unique_ptr<Lease>> Processing::AcquireLease(const PersonId& id, std::string_view purpose) {
  CallGuard guard(ctx_);
  if (!guard.ok()) return guard.status();
  if (auto basis = ctx_.policy->Basis(purpose); !basis.ok()) return basis.status();
  std::string subject;
  {
    PersonLocks::SharedGuard person_lock(ctx_.person_locks, id);
    auto dek = ctx_.PersonKey(id);
    if (!dek.ok()) return dek.status();
    if (ctx_.options.audit_processing_reads) subject = EngineContext::AuditSubject(**dek);
  }
  util::TestPoint("lease.before_register");
  // Register first, then read the state: a restriction or erasure that
  // starts draining after this point waits for this lease; one that
  // committed before is seen — the restriction in the row read below, the
  // erasure by the person's key read again (outside audit 34c, F2: only the
  // key read before registering was checked, and an erasure that committed
  // in between got its person a lease, OK).
  if (Status a = ctx_.leases.Acquire(id); !a.ok()) return a;
  Status s;
  {
    PersonLocks::SharedGuard person_lock(ctx_.person_locks, id);
    s = ctx_.PersonKey(id).status();
  }
  RestrictionState restriction;
  std::map<std::string, bool> consent;
  if (s.ok()) s = ctx_.data->View([&](storage::ReadTxn& txn) -> Status {
    auto r = ctx_.ReadRestriction(txn, id);
    if (!r.ok()) return r.status();
    auto c = ctx_.ReadConsent(txn, id);
    if (!c.ok()) return c.status();
    restriction = *r;
    consent = *c;
    return Status::OK();
  });
  if (s.ok() && ctx_.policy->Refused(restriction, consent, purpose)) {
    s = Status::Restricted("processing of person " + id.ToHex() + " for '" + std::string(purpose) +
                           "' is restricted or lacks consent");
  }
  if (s.ok() && ctx_.options.audit_processing_reads) {
    std::lock_guard write_lock(ctx_.write_mu);
    s = ctx_.data->Update([&](storage::WriteTxn& txn) {
      AuditEntry e{AuditKind::kProcessingRead, ctx_.Now(), std::string(purpose), 0, 0, 0, subject};
      return ctx_.audit->Append(txn, e).status();
    });
  }
  if (!s.ok()) {
    ctx_.leases.Release(id, ThisThreadAsLeaseHolder());
    return s;
  }
  return std::unique_ptr<Lease>(
      std::make_unique<LeaseImpl>(ctx_, reader_, id, std::string(purpose), std::move(restriction.categories)));
}

}  // namespace shredkv::engine
