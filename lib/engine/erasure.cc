// Erasure (design §3): the erase commit in `keys`, the data side (identifiers,
// analytics mode, audit), purge, epoch rotation, compaction, maintenance.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "codec/row_codec.h"
#include "codec/sealed.h"
#include "crypto/random.h"
#include "crypto/secure_memory.h"
#include "engine/analytics_link.h"
#include "engine/data_rows.h"
#include "engine/keyring.h"
#include "engine/store_impl.h"
#include "util/coding.h"
#include "util/test_point.h"

namespace shredkv {

std::string_view ErasureLevelName(ErasureLevel level) {
  switch (level) {
    case ErasureLevel::kLogical: return "logical";
    case ErasureLevel::kCryptographic: return "cryptographic";
    case ErasureLevel::kPurged: return "purged";
  }
  return "unknown";
}

std::string_view AnalyticsOnEraseName(AnalyticsOnErase mode) {
  switch (mode) {
    case AnalyticsOnErase::kKeep: return "keep";
    case AnalyticsOnErase::kUnlink: return "unlink";
    case AnalyticsOnErase::kDelete: return "delete";
  }
  return "unknown";
}

namespace engine {
namespace {

using codec::TableId;

constexpr std::uint64_t kPurgeRowsPerTxn = 5000;
constexpr std::size_t kPurgeTicketsPerRound = 256;

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string NewRequestId() {
  auto b = crypto::RandomArray<16>();
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "er-";
  for (std::uint8_t x : b) {
    out.push_back(kDigits[x >> 4]);
    out.push_back(kDigits[x & 0xf]);
  }
  return out;
}

// Keys of `table` that start with `prefix`, at most `limit`.
Result<std::vector<std::string>> KeysWithPrefix(storage::ReadTxn& txn, storage::Table table,
                                                std::string_view prefix, std::uint64_t limit) {
  std::vector<std::string> out;
  auto cursor = txn.OpenCursor(table);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(prefix);
  for (; m.ok() && c.Valid() && out.size() < limit; m = c.Next()) {
    if (c.key().substr(0, prefix.size()) != prefix) break;
    out.emplace_back(c.key());
  }
  if (!m.ok()) return m;
  return out;
}

// Keys of the person's rows in `table` (keys start with the person ID) that
// are sealed under key `slot`, at most `limit`. Reads only row headers.
Result<std::vector<std::string>> KeysInSlot(storage::ReadTxn& txn, storage::Table table, const PersonId& person,
                                            std::uint32_t slot, std::uint64_t limit) {
  std::vector<std::string> out;
  auto cursor = txn.OpenCursor(table);
  if (!cursor.ok()) return cursor.status();
  auto& c = **cursor;
  Status m = c.Seek(person.view());
  for (; m.ok() && c.Valid() && out.size() < limit; m = c.Next()) {
    if (c.key().substr(0, PersonId::kSize) != person.view()) break;
    std::uint32_t row_slot = 0;
    // A damaged header cannot be attributed: verify reports it, purge of
    // the whole person removes it.
    if (!codec::PersonRowSlot(c.value(), &row_slot).ok() || row_slot != slot) continue;
    out.emplace_back(c.key());
  }
  if (!m.ok()) return m;
  return out;
}

// The request id and analytics mode of an Erase or EraseCategory call.
Status ValidateEraseOptions(const EraseOptions& options) {
  if (!options.request_id.empty() && !ValidRequestId(options.request_id)) {
    return Status::InvalidArgument("request id must be 1..64 printable ASCII characters without spaces");
  }
  if (options.analytics != AnalyticsOnErase::kKeep && options.analytics != AnalyticsOnErase::kUnlink &&
      options.analytics != AnalyticsOnErase::kDelete) {
    return Status::InvalidArgument("unknown analytics mode");
  }
  return Status::OK();
}

// Ends a lease drain begun by the caller when it goes out of scope.
struct DrainGuard {
  LeaseTable& leases;
  const std::vector<PersonId>& people;
  ~DrainGuard() { leases.EndDrain(people); }
};

// The `erased` marker of a ticket: the data side of its erasure was applied.
std::string MarkerKey(const keys::PurgeTicket& t) { return keys::TicketKey(t); }

}  // namespace

Status StoreImpl::Suppressed(std::string_view hash, bool* suppressed) {
  auto r = keys_->IsSuppressed(hash);
  if (!r.ok()) return r.status();
  *suppressed = *r;
  return Status::OK();
}

ErasureReceipt StoreImpl::ReceiptFrom(const keys::ErasureRequest& r, std::string audit_hash) const {
  ErasureReceipt out;
  out.request_id = r.request_id;
  out.erased_at_ms = r.erased_at_ms;
  out.people = r.people;
  out.analytics = static_cast<AnalyticsOnErase>(r.analytics_mode);
  out.suppressed = r.suppressed;
  out.key_epoch = r.key_epoch;
  out.cryptographic = keys_->oldest_epoch() > r.key_epoch && !keys_->rebuild_pending();
  out.purged = r.pending == 0;
  out.level = !out.cryptographic ? ErasureLevel::kLogical
                                 : (out.purged ? ErasureLevel::kPurged : ErasureLevel::kCryptographic);
  out.audit_hash = std::move(audit_hash);
  out.category = r.category;
  return out;
}

Result<ErasureReceipt> StoreImpl::Erase(const std::vector<PersonId>& people_in, const EraseOptions& options) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (people_in.empty()) return Status::InvalidArgument("nobody to erase");
  if (Status v = ValidateEraseOptions(options); !v.ok()) return v;
  std::vector<PersonId> people = people_in;
  std::sort(people.begin(), people.end());
  people.erase(std::unique(people.begin(), people.end()), people.end());

  // No worker may be mid-processing when the keys are destroyed (design §6).
  if (Status d = leases_.BeginDrain(people, std::chrono::milliseconds(options_.lease_drain_timeout_ms)); !d.ok()) {
    return d;
  }
  const DrainGuard drain_guard{leases_, people};

  // Group commit: concurrent erasures share one `keys` transaction and one
  // fsync. The first caller to find no leader commits everyone queued.
  PendingErase me{people, options, {}, Status::OK(), {}, false};
  {
    std::unique_lock queue_lock(erase_queue_mu_);
    erase_queue_.push_back(&me);
    while (!me.done) {
      if (erase_leader_) {
        erase_queue_cv_.wait(queue_lock);
        continue;
      }
      erase_leader_ = true;
      std::vector<PendingErase*> group(erase_queue_.begin(), erase_queue_.end());
      erase_queue_.clear();
      queue_lock.unlock();
      CommitEraseGroup(group);
      queue_lock.lock();
      for (PendingErase* p : group) p->done = true;
      erase_leader_ = false;
      erase_queue_cv_.notify_all();
    }
  }
  if (!me.status.ok()) return me.status;
  return ReceiptFrom(me.request, std::move(me.audit_hash));
}

void StoreImpl::CommitEraseGroup(const std::vector<PendingErase*>& group) {
  std::lock_guard write_lock(write_mu_);
  std::vector<keys::ErasureCommit> commits;
  std::vector<PersonId> everyone;
  for (PendingErase* p : group) {
    keys::ErasureCommit c;
    c.people = p->people;
    if (p->options.suppress) {
      Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
        for (const PersonId& person : p->people) {
          auto keys = KeysWithPrefix(txn, tables_.ident_by_person, person.view(), ~0ull);
          if (!keys.ok()) return keys.status();
          for (const std::string& k : *keys) c.suppress_hashes.push_back(k.substr(PersonId::kSize));
        }
        return Status::OK();
      });
      if (!s.ok()) {
        p->status = s.WithContext("collecting identifiers to suppress");
        continue;
      }
    }
    if (p->options.analytics != AnalyticsOnErase::kKeep) {
      // Once the keys are gone only these links reach the analytics rows
      // that the data side must unlink or delete.
      for (const PersonId& person : p->people) {
        auto links = TicketLinks(person, keys::kPersonSlot, p->options.analytics);
        if (!links.ok()) {
          p->status = links.status();
          break;
        }
        c.analytics_links.push_back(std::move(links).value());
      }
      if (!p->status.ok()) {
        for (std::string& l : c.analytics_links) crypto::Wipe(&l);
        continue;
      }
    }
    keys::ErasureRequest& request = c.request;
    request.request_id = p->options.request_id.empty() ? NewRequestId() : p->options.request_id;
    request.erased_at_ms = Now();
    request.key_epoch = keys_->current_epoch();
    request.people = p->people.size();
    request.pending = p->people.size();
    request.analytics_mode = static_cast<std::uint8_t>(p->options.analytics);
    request.suppressed = p->options.suppress;
    p->request = request;
    everyone.insert(everyone.end(), p->people.begin(), p->people.end());
    commits.push_back(std::move(c));
  }
  std::vector<PendingErase*> live;
  for (PendingErase* p : group) {
    if (p->status.ok()) live.push_back(p);
  }
  // Links are in memory only until the data side is applied.
  struct WipeLinks {
    std::vector<keys::ErasureCommit>& commits;
    ~WipeLinks() {
      for (auto& c : commits) {
        for (std::string& l : c.analytics_links) crypto::Wipe(&l);
      }
    }
  } wipe_links{commits};
  if (live.empty()) return;
  {
    // No read of these people runs across the commit: a read either finished
    // before it or starts after it and finds no key.
    PersonLocks::ExclusiveGuard guard(person_locks_, everyone);
    Status c = live.size() == 1 ? Status::Busy("single") : keys_->CommitErasures(commits);
    if (!c.ok()) {
      // One request's failure (a person erased already, a reused request id)
      // must not fail the others: commit them one by one.
      for (std::size_t i = 0; i < live.size(); ++i) {
        live[i]->status = keys_->CommitErasures({commits[i]});
      }
    }
  }
  util::TestPoint("erase.after_keys_commit");
  // The erasures are committed. The data side follows; if it fails (a full
  // disk, say), the erasures stand and Purge() or the next open redo it.
  std::uint64_t next_seq = next_event_seq_;
  Status d = data_->Update([&](storage::WriteTxn& txn) -> Status {
    next_seq = next_event_seq_;
    for (std::size_t i = 0; i < live.size(); ++i) {
      PendingErase* p = live[i];
      if (!p->status.ok()) continue;
      std::vector<keys::PurgeTicket> tickets;
      for (std::size_t j = 0; j < p->people.size(); ++j) {
        const std::vector<std::string>& links = commits[i].analytics_links;
        tickets.push_back({p->people[j], keys::kPersonSlot, p->request.request_id, p->request.analytics_mode,
                           links.empty() ? std::string() : links[j]});
      }
      if (Status a = ApplyErasureToData(txn, tickets, &p->request, &p->audit_hash, &next_seq); !a.ok()) return a;
    }
    return Status::OK();
  });
  if (d.ok()) {
    next_event_seq_ = next_seq;
  } else {
    for (PendingErase* p : live) p->audit_hash.clear();
  }
}

Result<ErasureReceipt> StoreImpl::EraseByIdentifier(const Identifier& identifier, const EraseOptions& options) {
  auto id = Resolve(identifier);
  if (!id.ok()) return id.status();
  return Erase(std::vector<PersonId>{*id}, options);
}

Result<ErasureReceipt> StoreImpl::EraseCategory(const PersonId& person, std::string_view category,
                                               const EraseOptions& options) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (Status v = ValidateEraseOptions(options); !v.ok()) return v;
  if (options.suppress) {
    return Status::InvalidArgument("a category erasure suppresses no identifiers: identifiers are not categorised");
  }
  if (category == kGeneralCategory) {
    return Status::InvalidArgument("category 'general' is sealed under the person key: erase the person");
  }
  if (Status c = policy_->CheckCategory(category); !c.ok()) return c;
  const std::vector<PersonId> people{person};
  if (Status d = leases_.BeginDrain(people, std::chrono::milliseconds(options_.lease_drain_timeout_ms)); !d.ok()) {
    return d;
  }
  const DrainGuard drain_guard{leases_, people};

  // Under write_mu_: no write takes a new key slot for the category between
  // reading the person's slots and the erase commit.
  std::lock_guard write_lock(write_mu_);
  auto dek = PersonKey(person);
  if (!dek.ok()) return dek.status();
  codec::PersonPayload payload;
  Status r = data_->View([&](storage::ReadTxn& txn) -> Status {
    std::string_view row;
    if (Status g = txn.Get(tables_.people, person.view(), &row); !g.ok()) return g;
    std::string plain;
    if (Status o = codec::OpenPersonRow(**dek, TableId::kPeople, person.view(), row, &plain); !o.ok()) return o;
    Status d = codec::DecodePerson(plain, &payload);
    crypto::Wipe(&plain);
    return d;
  });
  if (r.IsNotFound()) return Status::NotFound("no person " + person.ToHex());
  if (!r.ok()) return r.WithContext("person " + person.ToHex());
  auto slot = payload.category_slots.find(std::string(category));
  if (slot == payload.category_slots.end()) {
    return Status::NotFound("person " + person.ToHex() + " holds nothing in category '" + std::string(category) + "'");
  }
  auto already = keys_->IsSlotErased(person, slot->second);
  if (!already.ok()) return already.status();
  if (*already) {
    return Status::Erased("category '" + std::string(category) + "' of person " + person.ToHex() +
                          " was erased already and holds nothing written since");
  }
  keys::ErasureCommit commit;
  commit.people = people;
  commit.slot = slot->second;
  if (options.analytics != AnalyticsOnErase::kKeep) {
    auto links = TicketLinks(person, slot->second, options.analytics);
    if (!links.ok()) return links.status();
    commit.analytics_links.push_back(std::move(links).value());
  }
  struct WipeLinks {
    keys::ErasureCommit& commit;
    ~WipeLinks() {
      for (std::string& l : commit.analytics_links) crypto::Wipe(&l);
    }
  } wipe_links{commit};
  keys::ErasureRequest& request = commit.request;
  request.request_id = options.request_id.empty() ? NewRequestId() : options.request_id;
  request.erased_at_ms = Now();
  request.key_epoch = keys_->current_epoch();
  request.people = 1;
  request.pending = 1;
  request.analytics_mode = static_cast<std::uint8_t>(options.analytics);
  request.category = std::string(category);
  {
    // As in Erase: no read of the person runs across the commit.
    PersonLocks::ExclusiveGuard guard(person_locks_, people);
    if (Status c = keys_->CommitErasures({commit}); !c.ok()) return c;
  }
  util::TestPoint("erase_category.after_keys_commit");
  // The erasure is committed; the data side follows (or Purge() and the next
  // open redo it).
  std::string audit_hash;
  std::uint64_t next_seq = next_event_seq_;
  Status d = data_->Update([&](storage::WriteTxn& txn) -> Status {
    next_seq = next_event_seq_;
    const keys::PurgeTicket ticket{person, slot->second, request.request_id, request.analytics_mode,
                                   commit.analytics_links.empty() ? std::string() : commit.analytics_links[0]};
    return ApplyErasureToData(txn, {ticket}, &request, &audit_hash, &next_seq);
  });
  if (d.ok()) {
    next_event_seq_ = next_seq;
  } else {
    audit_hash.clear();
  }
  return ReceiptFrom(request, std::move(audit_hash));
}

Status StoreImpl::ApplyErasureToData(storage::WriteTxn& txn, const std::vector<keys::PurgeTicket>& tickets,
                                     const keys::ErasureRequest* request, std::string* audit_hash,
                                     std::uint64_t* next_seq) {
  const std::uint64_t seq_before = *next_seq;
  std::map<std::string, std::uint64_t> applied_per_request;
  for (const keys::PurgeTicket& t : tickets) {
    const std::string marker_key = MarkerKey(t);
    std::string_view marker;
    Status g = txn.Get(tables_.erased, marker_key, &marker);
    if (g.ok()) continue;  // applied before
    if (!g.IsNotFound()) return g;
    const bool category = t.slot != keys::kPersonSlot;

    // The identifier index keeps naming the erased person until purge, so
    // resolving one says Erased (or Suppressed); a new person may take an
    // identifier over meanwhile (Claim), and purge releases the rest.
    // The analytics rows are reached through the ticket's links alone.
    const auto mode = static_cast<AnalyticsOnErase>(t.analytics_mode);
    if (mode != AnalyticsOnErase::kKeep) {
      auto akeys = TicketAnalyticsKeys(txn, t);
      if (!akeys.ok()) return akeys.status();
      for (const std::string& akey : *akeys) {
        std::string payload;
        Status r = ReadPlain(txn, tables_.analytics, TableId::kAnalytics, akey, &payload);
        if (r.IsNotFound()) continue;
        if (mode == AnalyticsOnErase::kDelete || r.IsCorruption()) {
          if (Status d = txn.Delete(tables_.analytics, akey); !d.ok()) return d;
          continue;
        }
        if (!r.ok()) return r;
        AnalyticsRow row;
        if (Status d = codec::DecodeAnalytics(payload, &row); !d.ok()) return d;
        std::int64_t time = 0;
        if (akey.size() == codec::kAnalyticsKeySize) {
          if (Status d = codec::DecodeAnalyticsKey(akey, &time); !d.ok()) return d;
        } else {  // a format-2 key (an erasure recovered before the migration)
          std::uint64_t seq = 0;
          if (Status d = codec::DecodeTsSeq(akey, &time, &seq); !d.ok()) return d;
        }
        // A fresh ID per row, a coarser time and a random row id, so neither
        // ID, time nor order links the rows to each other or to anything.
        const AnonymousId fresh(crypto::RandomArray<AnonymousId::kSize>());
        std::string new_key;
        for (;;) {
          new_key = RandomAnalyticsKey(FloorTo(time, options_.unlink_time_granularity_ms));
          std::string_view taken;
          Status q = txn.Get(tables_.analytics, new_key, &taken);
          if (q.IsNotFound()) break;
          if (!q.ok()) return q;
        }
        std::string new_payload;
        codec::EncodeAnalytics(fresh, row.name, row.fields, &new_payload);
        if (Status d = txn.Delete(tables_.analytics, akey); !d.ok()) return d;
        if (Status p = txn.Put(tables_.analytics, new_key, PlainRow(TableId::kAnalytics, new_key, new_payload)); !p.ok()) {
          return p;
        }
      }
    }
    if (Status p = txn.Put(tables_.erased, marker_key, PlainRow(TableId::kErased, marker_key, t.request_id)); !p.ok()) {
      return p;
    }
    std::vector<std::string> names;
    if (category) {
      // The person's data changed: an export in progress must not mix the
      // state before and after (it stops with Busy).
      auto v = PersonVersion(txn, t.person);
      if (!v.ok()) return v.status();
      std::string enc;
      util::PutFixed64BE(&enc, *v + 1);
      if (Status p = txn.Put(tables_.versions, t.person.view(), PlainRow(TableId::kVersions, t.person.view(), enc));
          !p.ok()) {
        return p;
      }
      auto r = request != nullptr && request->request_id == t.request_id ? Result<keys::ErasureRequest>(*request)
                                                                          : keys_->GetRequest(t.request_id);
      if (!r.ok()) return r.status();
      names.push_back("category." + r->category);
    }
    if (Status n = outbox_->Append(txn, NoticeKind::kErasure, t.person, Now(), std::move(names)); !n.ok()) return n;
    ++applied_per_request[t.request_id];
  }
  if (*next_seq != seq_before) {
    std::string v;
    util::PutFixed64BE(&v, *next_seq);
    if (Status p = txn.Put(tables_.meta, kEventSeqKey, PlainRow(TableId::kDataMeta, kEventSeqKey, v)); !p.ok()) return p;
  }
  // One audit entry per request, written by whichever run applies it first.
  for (const auto& [request_id, n] : applied_per_request) {
    auto existing = audit_->HashOfRequest(txn, request_id);
    if (existing.ok()) {
      if (audit_hash != nullptr) *audit_hash = *existing;
      continue;
    }
    if (!existing.status().IsNotFound()) return existing.status();
    keys::ErasureRequest r;
    if (request != nullptr && request->request_id == request_id) {
      r = *request;
    } else {
      auto stored = keys_->GetRequest(request_id);
      if (!stored.ok()) return stored.status();
      r = *stored;
    }
    AuditEntry e{r.category.empty() ? AuditKind::kErase : AuditKind::kEraseCategory, r.erased_at_ms, request_id,
                 r.people, r.suppressed ? 1u : 0u, r.analytics_mode};
    auto hash = audit_->Append(txn, e);
    if (!hash.ok()) return hash.status();
    if (audit_hash != nullptr) *audit_hash = *hash;
  }
  return Status::OK();
}

Result<std::string> StoreImpl::TicketLinks(const PersonId& person, std::uint32_t slot, AnalyticsOnErase mode) {
  if (mode == AnalyticsOnErase::kKeep) return std::string();
  auto dek = PersonKey(person);
  if (!dek.ok()) return dek.status();
  Keyring keyring(keys_.get(), person, *dek);
  std::vector<std::uint32_t> slots;
  if (slot != keys::kPersonSlot) {
    slots.push_back(slot);
  } else {
    // Every key slot the person's events may be sealed under.
    codec::PersonPayload payload;
    Status r = data_->View([&](storage::ReadTxn& txn) -> Status {
      std::string_view row;
      if (Status g = txn.Get(tables_.people, person.view(), &row); !g.ok()) return g;
      std::string plain;
      if (Status o = codec::OpenPersonRow(**dek, TableId::kPeople, person.view(), row, &plain); !o.ok()) return o;
      Status d = codec::DecodePerson(plain, &payload);
      crypto::Wipe(&plain);
      return d;
    });
    if (r.IsNotFound()) return Status::NotFound("no person " + person.ToHex());
    if (!r.ok()) return r.WithContext("person " + person.ToHex());
    slots.push_back(keys::kPersonSlot);
    for (const auto& [category, s] : payload.category_slots) slots.push_back(s);
  }
  std::map<std::uint32_t, std::string> links;
  for (std::uint32_t s : slots) {
    auto key = s == keys::kPersonSlot ? Result<keys::DekHandle>(*dek) : keyring.Key(s);
    if (!key.ok()) return key.status();
    if (*key == nullptr) continue;  // an erased category: handled by its own erasure
    links[s] = AnalyticsLink(**key);
  }
  std::string out = EncodeLinks(links);
  for (auto& [s, l] : links) crypto::Wipe(&l);
  return out;
}

Result<std::vector<std::string>> StoreImpl::TicketAnalyticsKeys(storage::ReadTxn& txn,
                                                               const keys::PurgeTicket& t) {
  const bool category = t.slot != keys::kPersonSlot;
  auto event_keys = category ? KeysInSlot(txn, tables_.events, t.person, t.slot, ~0ull)
                             : KeysWithPrefix(txn, tables_.events, t.person.view(), ~0ull);
  if (!event_keys.ok()) return event_keys.status();
  std::vector<std::string> out;
  out.reserve(event_keys->size());
  if (data_format_ < kDataFormatVersion) {
    // Format 2 (recovery before the migration): rows share (ts, seq) with events.
    for (const std::string& ek : *event_keys) {
      std::int64_t ts = 0;
      std::uint64_t seq = 0;
      if (Status d = codec::DecodeTsSeq(std::string_view(ek).substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
      out.push_back(codec::AnalyticsKeyV2(ts, seq));
    }
    return out;
  }
  if (t.analytics_links.empty()) {
    return Status::Corruption("purge ticket of person " + t.person.ToHex() + " lacks the analytics links its mode needs");
  }
  std::map<std::uint32_t, std::string> links;
  struct Wipe {
    std::map<std::uint32_t, std::string>& links;
    ~Wipe() {
      for (auto& [s, l] : links) crypto::Wipe(&l);
    }
  } wipe{links};
  if (Status d = DecodeLinks(t.analytics_links, &links); !d.ok()) return d;
  for (const std::string& ek : *event_keys) {
    std::string_view row;
    if (Status g = txn.Get(tables_.events, ek, &row); !g.ok()) return g;
    std::uint32_t slot = 0;
    if (!codec::PersonRowSlot(row, &slot).ok()) continue;  // damaged: Verify reports it
    auto link = links.find(slot);
    if (link == links.end()) continue;  // a category erased before: its own erasure handled it
    std::int64_t ts = 0;
    std::uint64_t seq = 0;
    if (Status d = codec::DecodeTsSeq(std::string_view(ek).substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
    out.push_back(AnalyticsKeyFor(link->second, ts, seq));
  }
  return out;
}

Status StoreImpl::RecoverErasures() {
  std::lock_guard write_lock(write_mu_);
  auto tickets = keys_->PendingPurges(~std::size_t{0});
  if (!tickets.ok()) return tickets.status();
  if (tickets->empty()) return Status::OK();
  std::uint64_t next_seq = next_event_seq_;
  Status s = data_->Update([&](storage::WriteTxn& txn) {
    next_seq = next_event_seq_;
    return ApplyErasureToData(txn, *tickets, nullptr, nullptr, &next_seq);
  });
  if (s.ok()) next_event_seq_ = next_seq;
  return s;
}

Result<ErasureReceipt> StoreImpl::GetErasure(std::string_view request_id) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  if (!ValidRequestId(request_id)) {
    return Status::InvalidArgument("request id must be 1..64 printable ASCII characters without spaces");
  }
  auto r = keys_->GetRequest(request_id);
  if (!r.ok()) return r.status();
  std::string hash;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto h = audit_->HashOfRequest(txn, request_id);
    if (h.ok()) hash = *h;
    return h.ok() || h.status().IsNotFound() ? Status::OK() : h.status();
  });
  if (!s.ok()) return s;
  return ReceiptFrom(*r, std::move(hash));
}

Status StoreImpl::Unsuppress(const Identifier& identifier) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  auto n = registry_->Normalize(identifier);
  if (!n.ok()) return n.status();
  std::lock_guard write_lock(write_mu_);
  if (Status u = keys_->Unsuppress(IdentifierHash(keys_->index_key(), *n)); !u.ok()) return u;
  return data_->Update([&](storage::WriteTxn& txn) {
    return audit_->Append(txn, AuditEntry{AuditKind::kUnsuppress, Now(), "", 1, 0, 0}).status();
  });
}

// ---- purge ---------------------------------------------------------------------

Status StoreImpl::PurgePerson(storage::WriteTxn& txn, const PersonId& id, std::uint64_t budget,
                              std::uint64_t* deleted, bool* complete) {
  *deleted = 0;
  *complete = false;
  // Identifiers first: index entries that still name the person go with
  // their back-references.
  {
    auto backrefs = KeysWithPrefix(txn, tables_.ident_by_person, id.view(), budget);
    if (!backrefs.ok()) return backrefs.status();
    for (const std::string& back : *backrefs) {
      const std::string hash = back.substr(PersonId::kSize);
      std::string owner;
      Status o = ReadPlain(txn, tables_.ident, TableId::kIdentIndex, hash, &owner);
      if ((o.ok() && owner == id.view()) || o.IsCorruption()) {
        if (Status d = txn.Delete(tables_.ident, hash); !d.ok()) return d;
      } else if (!o.ok() && !o.IsNotFound()) {
        return o;
      }
      if (Status d = txn.Delete(tables_.ident_by_person, back); !d.ok()) return d;
      ++*deleted;  // an identifier's index entry and back-reference count as one row
    }
    if (*deleted >= budget) return Status::OK();
  }
  for (storage::Table t : {tables_.events, tables_.records, tables_.consent, tables_.consent_history, tables_.profiles}) {
    const std::uint64_t left = budget - *deleted;
    if (left == 0) return Status::OK();
    bool more = false;
    auto n = txn.DeletePrefix(t, id.view(), left, nullptr, &more);
    if (!n.ok()) return n.status();
    *deleted += *n;
    if (more) return Status::OK();  // the rest next round
  }
  if (*deleted >= budget) return Status::OK();
  {
    // The person's retention time index entries and refs (engine/retention.h).
    std::uint64_t n = 0;
    bool index_done = false;
    if (Status r = retention_->PurgePerson(txn, id, budget - *deleted, &n, &index_done); !r.ok()) return r;
    *deleted += n;
    if (!index_done) return Status::OK();
  }
  for (storage::Table t : {tables_.versions, tables_.restrictions, tables_.people}) {
    std::string_view v;
    Status g = txn.Get(t, id.view(), &v);
    if (g.IsNotFound()) continue;
    if (!g.ok()) return g;
    if (*deleted >= budget) return Status::OK();  // the rest next round
    if (Status d = txn.Delete(t, id.view()); !d.ok()) return d;
    ++*deleted;
  }
  // Last, the `erased` markers (the person's and its categories').
  bool more = false;
  auto markers = txn.DeletePrefix(tables_.erased, id.view(), ~0ull, nullptr, &more);
  if (!markers.ok()) return markers.status();
  *complete = true;
  return Status::OK();
}

Status StoreImpl::PurgeCategory(storage::WriteTxn& txn, const PersonId& id, std::uint32_t slot, std::uint64_t budget,
                                std::uint64_t* deleted, bool* complete) {
  *deleted = 0;
  *complete = false;
  // Rows whose header names the slot (a damaged header cannot be
  // attributed: verify reports it, the purge of the whole person removes it).
  // Their retention index entries go with them.
  std::vector<std::string> removed;
  const storage::WriteTxn::RowFilter in_slot = [slot, &removed](std::string_view key, std::string_view value) {
    std::uint32_t row_slot = 0;
    if (!codec::PersonRowSlot(value, &row_slot).ok() || row_slot != slot) return false;
    removed.emplace_back(key);
    return true;
  };
  for (storage::Table t : {tables_.events, tables_.records}) {
    const std::uint64_t left = budget - *deleted;
    if (left == 0) return Status::OK();
    bool more = false;
    removed.clear();
    auto n = txn.DeletePrefix(t, id.view(), left, in_slot, &more);
    if (!n.ok()) return n.status();
    *deleted += *n;
    for (const std::string& k : removed) {
      if (t.dbi == tables_.events.dbi) {
        std::int64_t ts = 0;
        std::uint64_t seq = 0;
        if (Status d = codec::DecodeTsSeq(std::string_view(k).substr(PersonId::kSize), &ts, &seq); !d.ok()) return d;
        if (Status u = retention_->UnindexEvent(txn, id, ts, seq); !u.ok()) return u;
      } else if (Status u = retention_->UnindexRecord(txn, k); !u.ok()) {
        return u;
      }
    }
    if (more) return Status::OK();  // the rest next round
  }
  const std::string profile_key = codec::ProfileKey(id, slot);
  std::string_view v;
  Status g = txn.Get(tables_.profiles, profile_key, &v);
  if (g.ok()) {
    if (*deleted >= budget) return Status::OK();
    if (Status d = txn.Delete(tables_.profiles, profile_key); !d.ok()) return d;
    ++*deleted;
  } else if (!g.IsNotFound()) {
    return g;
  }
  if (Status d = txn.Delete(tables_.erased, codec::DekKey(id, slot)); !d.ok()) return d;
  *complete = true;
  return Status::OK();
}

Result<PurgeResult> StoreImpl::PurgeLocked(std::size_t budget_rows) {
  PurgeResult result;
  std::uint64_t remaining = budget_rows;
  while (remaining > 0) {
    auto tickets = keys_->PendingPurges(kPurgeTicketsPerRound);
    if (!tickets.ok()) return tickets.status();
    if (tickets->empty()) break;
    std::vector<keys::PurgeTicket> done;
    for (const keys::PurgeTicket& t : *tickets) {
      if (remaining == 0) break;
      bool complete = false;
      while (remaining > 0 && !complete) {
        std::uint64_t deleted = 0;
        std::uint64_t next_seq = next_event_seq_;
        Status s = data_->Update([&](storage::WriteTxn& txn) -> Status {
          next_seq = next_event_seq_;
          if (Status a = ApplyErasureToData(txn, {t}, nullptr, nullptr, &next_seq); !a.ok()) return a;
          const std::uint64_t budget = std::min(remaining, kPurgeRowsPerTxn);
          return t.slot == keys::kPersonSlot ? PurgePerson(txn, t.person, budget, &deleted, &complete)
                                             : PurgeCategory(txn, t.person, t.slot, budget, &deleted, &complete);
        });
        if (!s.ok()) {
          (void)keys_->FinishPurges(done);  // keep the progress of this round
          return s.WithContext("purging person " + t.person.ToHex());
        }
        util::TestPoint("purge.after_data_txn");
        next_event_seq_ = next_seq;
        result.rows_deleted += deleted;
        remaining -= std::min(remaining, deleted);
        if (deleted == 0 && !complete) break;  // no progress: do not spin
      }
      if (complete) done.push_back(t);
    }
    if (Status f = keys_->FinishPurges(done); !f.ok()) return f;
    result.people_purged += done.size();
    if (done.empty()) break;
  }
  if (result.rows_deleted > 0 || result.people_purged > 0) {
    Status a = data_->Update([&](storage::WriteTxn& txn) {
      return audit_->Append(txn, AuditEntry{AuditKind::kPurge, Now(), "", result.rows_deleted, result.people_purged, 0})
          .status();
    });
    if (!a.ok()) return a.WithContext("auditing the purge");
  }
  auto counts = keys_->Counts();
  if (!counts.ok()) return counts.status();
  result.people_pending = counts->pending_purge;
  return result;
}

Result<PurgeResult> StoreImpl::Purge(std::size_t budget_rows) {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  std::lock_guard write_lock(write_mu_);
  return PurgeLocked(budget_rows);
}

// ---- rotation and compaction -----------------------------------------------------

Result<RotationResult> StoreImpl::RotateEpoch() {
  std::lock_guard rotation_lock(rotation_mu_);
  RotationResult result;
  {
    std::shared_lock close_lock(close_mu_);
    if (Status s = CheckUsable(); !s.ok()) return s;
    auto before = keys_->Info();
    if (!before.ok()) return before.status();
    result.keys_file_bytes_before = before->file_bytes;
    auto epoch = keys_->BeginRotation(Now());
    if (!epoch.ok()) return epoch.status();
    result.new_epoch = *epoch;
    std::uint64_t total_keys = 0;
    if (options_.progress) {
      auto n = keys_->CountDeks();
      if (n.ok()) total_keys = *n;
      options_.progress("rotate-keys", 0, total_keys);
    }
    std::string resume;
    for (bool done = false; !done;) {
      auto n = keys_->RewrapBatch(*epoch, std::max<std::size_t>(1, options_.rotation_batch_size), &resume, &done);
      if (!n.ok()) return n.status().WithContext("re-wrapping keys (the rotation can be run again)");
      result.rewrapped_keys += *n;
      ++result.batches;
      util::TestPoint("rotation.after_rewrap_batch");
      if (options_.progress) options_.progress("rotate-keys", result.rewrapped_keys, total_keys);
    }
    auto destroyed = keys_->DestroyEpochsBefore(*epoch);
    if (!destroyed.ok()) return destroyed.status();
    result.destroyed_epochs = *destroyed;
    util::TestPoint("rotation.after_destroy");
  }
  {
    std::unique_lock close_lock(close_mu_);  // every call waits for the file swap
    if (Status s = CheckUsable(); !s.ok()) return s;
    if (Status r = keys_->Rebuild(); !r.ok()) {
      if (!keys_->usable()) SetFatal(r.WithContext("keys file swap failed"));
      return r;
    }
  }
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  auto after = keys_->Info();
  if (!after.ok()) return after.status();
  result.keys_file_bytes_after = after->file_bytes;
  std::lock_guard write_lock(write_mu_);
  Status a = data_->Update([&](storage::WriteTxn& txn) {
    return audit_->Append(txn, AuditEntry{AuditKind::kRotation, Now(), "", result.new_epoch, result.rewrapped_keys, 0})
        .status();
  });
  if (!a.ok()) return a.WithContext("auditing the rotation");
  return result;
}

Result<CompactionResult> StoreImpl::CompactData() {
  std::lock_guard rotation_lock(rotation_mu_);
  CompactionResult result;
  const std::string tmp = options_.directory + "/data/compact.mdb";
  for (int attempt = 0;; ++attempt) {
    std::uint64_t txn_at_copy = 0;
    {
      std::shared_lock close_lock(close_mu_);
      if (Status s = CheckUsable(); !s.ok()) return s;
      std::lock_guard write_lock(write_mu_);  // no write during the copy
      auto info = data_->Info();
      if (!info.ok()) return info.status();
      txn_at_copy = info->last_txn_id;
      result.file_bytes_before = info->file_bytes;
      ::unlink(tmp.c_str());
      // Rebuilt from the live rows, not copied page by page: no branch page
      // of the new file keeps an erased person's key as a separator.
      if (Status c = data_->RebuildToFile(tmp, info->map_size); !c.ok()) return c;
    }
    std::unique_lock close_lock(close_mu_);
    if (Status s = CheckUsable(); !s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    auto info = data_->Info();
    if (!info.ok()) return info.status();
    if (info->last_txn_id != txn_at_copy) {  // a write slipped in between: copy again
      ::unlink(tmp.c_str());
      if (attempt < 3) continue;
      return Status::Busy("writes kept landing during compaction; try again");
    }
    const std::string target = data_->data_file();
    audit_.reset();
    data_.reset();
    Status r = storage::ReplaceFile(target, tmp, /*wipe_old=*/true);
    Status o = OpenDataEnvironment(false);
    if (!o.ok()) SetFatal(o.WithContext("reopening the data file after compaction"));
    if (!r.ok()) return r.WithContext("swapping in the compacted data file");
    if (!o.ok()) return o.WithContext("reopening the compacted data file");
    break;
  }
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  auto info = data_->Info();
  if (!info.ok()) return info.status();
  result.file_bytes_after = info->file_bytes;
  std::lock_guard write_lock(write_mu_);
  Status a = data_->Update([&](storage::WriteTxn& txn) {
    return audit_->Append(txn, AuditEntry{AuditKind::kCompaction, Now(), "", result.file_bytes_before,
                                          result.file_bytes_after, 0})
        .status();
  });
  if (!a.ok()) return a;
  return result;
}

Result<bool> StoreImpl::RotationDue() {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  auto counts = keys_->Counts();
  if (!counts.ok()) return counts.status();
  if (options_.rotate_after_erasures > 0 && counts->erasures_since_rotation >= options_.rotate_after_erasures) {
    return true;
  }
  return options_.rotate_after_ms > 0 && counts->oldest_unrotated_ms != 0 &&
         Now() - counts->oldest_unrotated_ms >= options_.rotate_after_ms;
}

Status StoreImpl::RunMaintenance() {
  // Every step runs whatever the others did (a sweep that fails must not hold
  // back the rotation that makes erasures final); the first error is returned.
  Status first;
  auto keep = [&first](const Status& s) {
    if (first.ok() && !s.ok()) first = s;
  };
  auto purged = Purge(options_.purge_budget_rows);
  keep(purged.status());
  auto swept = Sweep(options_.sweep_budget_rows);
  keep(swept.status());
  auto due = RotationDue();
  keep(due.status());
  if (due.ok() && *due) keep(RotateEpoch().status());
  return first;
}

void StoreImpl::MaintenanceLoop() {
  std::unique_lock lock(maintenance_mu_);
  while (!maintenance_stop_) {
    maintenance_cv_.wait_for(lock, std::chrono::milliseconds(options_.background_maintenance_ms),
                             [&] { return maintenance_stop_; });
    if (maintenance_stop_) break;
    lock.unlock();
    (void)RunMaintenance();  // errors surface again on the caller's own calls
    lock.lock();
  }
}

Result<AuditVerification> StoreImpl::VerifyAuditLog() {
  std::shared_lock close_lock(close_mu_);
  if (Status s = CheckUsable(); !s.ok()) return s;
  AuditVerification v;
  Status s = data_->View([&](storage::ReadTxn& txn) -> Status {
    auto r = audit_->Verify(txn);
    if (!r.ok()) return r.status();
    v = *r;
    return Status::OK();
  });
  if (!s.ok()) return s;
  return v;
}

}  // namespace engine
}  // namespace shredkv
